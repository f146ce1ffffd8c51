"""The bank's HTTP API: ``create_app(Bank(...), docs=False)`` -> FastAPI.

- ``POST /v1/payments`` with ``Authorization: Bearer <JWT>`` from the traders' token issuer
  (the intake's, ``services.intake.auth``) and a JSON body (``payments.PaymentRequest``):
  202 ``{"payment_id", "declaration_id", "notice_id"}`` only once Kafka acknowledged the
  signed ``PaymentConfirmed``; 401 without a valid token (``WWW-Authenticate: Bearer``); 403
  if the token does not act for the ``payer``; 400 (not JSON), 413 (over 16 KiB), 415 (not
  ``application/json``), 422 (a bad field, an unknown one, a value date without a time zone
  or in the future, a bad ``Idempotency-Key``); 503 with ``Retry-After`` when Kafka or the
  issuer's keys are unavailable. ``Idempotency-Key`` (1-128 printable ASCII characters):
  the same key of the same subject gives the same payment id.
- ``GET /healthz`` (open); ``/docs`` and ``/openapi.json`` only with ``docs``.

Every error is a problem document (``services.intake.errors``), as the intake's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from services.bank.payments import Bank, NotYourPayer, PaymentAccepted, PaymentRequest
from services.intake import api as intake_api
from services.intake import errors, strictjson
from services.intake.api import Credentials, IdempotencyKey
from services.intake.auth import Principal, challenge
from services.intake.errors import Problem
from services.intake.service import Refused

__all__ = ["Bank", "create_app"]


async def _caller(request: Request, credentials: Credentials) -> Principal:
    """The dependency of the payment route: the verified principal of the bearer token."""
    bank: Bank = request.app.state.bank
    return await bank.authenticate(None if credentials is None else credentials.credentials)


Caller = Annotated[Principal, Depends(_caller)]


def problem_of(refused: Refused, retry_after_s: int) -> Problem:
    """The problem document of a refusal: the bank's own, else as the intake answers it."""
    if isinstance(refused, NotYourPayer):  # RFC 6750 ``insufficient_scope``
        headers = challenge("insufficient_scope", "the token does not act for this payer")
        return Problem(403, str(refused), kind="not-your-payer", headers=headers)
    return intake_api.problem_of(refused, retry_after_s)


def create_app(bank: Bank, docs: bool = False) -> FastAPI:
    """The HTTP face of ``bank``: its routes and problem documents."""
    app = intake_api.door_app("Single Window bank (simulated)", docs, bank.retry_after, problem_of)
    app.state.bank = bank

    @app.post(
        "/v1/payments",
        status_code=202,
        response_model=PaymentAccepted,
        responses=errors.documented(400, 401, 403, 413, 415, 422, 503),
        openapi_extra={"requestBody": errors.json_body(PaymentRequest)},
    )
    async def pay(
        request: Request, principal: Caller, idempotency_key: IdempotencyKey = None
    ) -> JSONResponse:
        """Confirm a payment (or a bank guarantee) on a notice: 202 once it is in Kafka."""
        body = await strictjson.read_body(request, bank.max_body_bytes)
        payment = bank.parse(strictjson.parse(body, bank.max_json_depth))
        payment_id = await bank.pay(principal, payment, idempotency_key)
        accepted = PaymentAccepted(
            payment_id=payment_id,
            declaration_id=payment.declaration_id,
            notice_id=payment.notice_id,
        )
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)

    errors.document_schemas(app, PaymentRequest)
    return app
