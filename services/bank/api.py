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
  ``kind: GENERAL_GUARANTEE`` with ``guarantee_id`` draws on a general guarantee (总担保,
  ``services.bank.ledger``): it needs an ``Idempotency-Key`` (422 ``idempotency-key-required``);
  403 ``not-your-guarantee`` (unknown, or not the payer's), 422 ``guarantee-not-valid`` (the
  value date outside its validity), 409 ``guarantee-exhausted`` (the balance under the
  amount: nothing changes) or ``notice-drawn`` (the notice has another draw on it).
- ``POST /v1/guarantees/{guarantee_id}/repayments`` (the holder's token, an
  ``Idempotency-Key``, a body ``payments.RepaymentRequest``: the notices drawn and a value
  date): the consolidated repayment (汇总征税), 202 ``payments.RepaymentAccepted`` once one
  ``CONSOLIDATED_PAYMENT`` per notice is in Kafka; 403 ``not-your-guarantee``, 409
  ``not-consolidated``, ``notice-not-drawn``, ``notice-repaid``, ``repaid-before-drawn`` (the
  value date before a draw's), 422 as above.
- ``GET /v1/guarantees/{guarantee_id}`` (the holder's token): its balance, ledger sequence
  and the draws not yet repaid, with their due dates.
- ``GET /livez``, ``/healthz`` (its alias), ``/readyz`` (open); ``/docs`` and
  ``/openapi.json`` only with ``docs``.

Every error is a problem document (``services.intake.errors``), as the intake's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse

from services.bank.payments import (
    Bank,
    GuaranteeExhausted,
    GuaranteeNotValid,
    GuaranteeView,
    KeyRequired,
    NotConsolidated,
    NoticeDrawn,
    NoticeNotDrawn,
    NoticeRepaid,
    NotYourGuarantee,
    NotYourPayer,
    PaymentAccepted,
    PaymentRequest,
    RepaidBeforeDrawn,
    RepaymentAccepted,
    RepaymentRequest,
)
from services.intake import api as intake_api
from services.intake import errors, strictjson
from services.intake.api import IdempotencyKey
from services.intake.auth import Principal, challenge
from services.intake.deps import Credentials
from services.intake.errors import Problem
from services.intake.service import Refused
from singlewindow.health import Health
from singlewindow.signing import BANK

__all__ = ["Bank", "create_app"]


async def _caller(request: Request, credentials: Credentials) -> Principal:
    """The dependency of the payment route: the verified principal of the bearer token."""
    bank: Bank = request.app.state.bank
    return await bank.authenticate(None if credentials is None else credentials.credentials)


Caller = Annotated[Principal, Depends(_caller)]
GuaranteeId = Annotated[str, Path(min_length=1, max_length=64)]


def problem_of(refused: Refused, retry_after_s: int) -> Problem:
    """The problem document of a refusal: the bank's own, else as the intake answers it."""
    match refused:
        case NotYourPayer():  # RFC 6750 ``insufficient_scope``
            headers = challenge("insufficient_scope", "the token does not act for this payer")
            return Problem(403, str(refused), kind="not-your-payer", headers=headers)
        case NotYourGuarantee():  # an unknown guarantee and another's alike: no oracle
            headers = challenge("insufficient_scope", "the token does not hold this guarantee")
            return Problem(403, str(refused), kind="not-your-guarantee", headers=headers)
        case KeyRequired():
            return Problem(422, str(refused), kind="idempotency-key-required")
        case GuaranteeNotValid():
            return Problem(422, str(refused), kind="guarantee-not-valid")
        case GuaranteeExhausted():
            return Problem(409, str(refused), kind="guarantee-exhausted")
        case NoticeDrawn():
            return Problem(409, str(refused), kind="notice-drawn")
        case NotConsolidated():
            return Problem(409, str(refused), kind="not-consolidated")
        case NoticeNotDrawn():
            return Problem(409, str(refused), kind="notice-not-drawn")
        case NoticeRepaid():
            return Problem(409, str(refused), kind="notice-repaid")
        case RepaidBeforeDrawn():
            return Problem(409, str(refused), kind="repaid-before-drawn")
    return intake_api.problem_of(refused, retry_after_s)


def create_app(bank: Bank, docs: bool = False, health: Health | None = None) -> FastAPI:
    """The HTTP face of ``bank``: its routes and problem documents, the ops answers of
    ``health`` (the process's)."""
    app = intake_api.door_app(
        "Single Window bank (simulated)",
        docs,
        bank.retry_after,
        problem_of,
        service=BANK,
        health=health,
    )
    app.state.bank = bank

    @app.post(
        "/v1/payments",
        status_code=202,
        response_model=PaymentAccepted,
        responses=errors.documented(400, 401, 403, 409, 413, 415, 422, 503),
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

    @app.post(
        "/v1/guarantees/{guarantee_id}/repayments",
        status_code=202,
        response_model=RepaymentAccepted,
        responses=errors.documented(400, 401, 403, 409, 413, 415, 422, 503),
        openapi_extra={"requestBody": errors.json_body(RepaymentRequest)},
    )
    async def repay(
        request: Request,
        principal: Caller,
        guarantee_id: GuaranteeId,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        """Repay drawn notices to a general guarantee in the consolidated payment (汇总征税):
        202 once Kafka has one confirmation per notice."""
        body = await strictjson.read_body(request, bank.max_body_bytes)
        repayment = bank.parse_repayment(strictjson.parse(body, bank.max_json_depth))
        accepted = await bank.repay(principal, guarantee_id, repayment, idempotency_key)
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)

    @app.get(
        "/v1/guarantees/{guarantee_id}",
        response_model=GuaranteeView,
        responses=errors.documented(401, 403, 422, 503),
    )
    async def guarantee(principal: Caller, guarantee_id: GuaranteeId) -> JSONResponse:
        """A general guarantee as its holder sees it: its balance, the draws not repaid."""
        view = await bank.view(principal, guarantee_id)
        return JSONResponse(view.model_dump(mode="json"))

    errors.document_schemas(app, PaymentRequest, RepaymentRequest)
    return app
