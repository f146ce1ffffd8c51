"""The gate's HTTP API: ``create_app(Gate(...), docs=False)`` -> FastAPI.

- ``POST /v1/gate-out`` with ``Authorization: Bearer <JWT>`` of a gate officer (an inspector's
  token, ``sub`` and ``agency``, whose agency is the gate's: ``GATE_AGENCY``) and a JSON body
  (``gateout.GateOutRequest``): 202 ``{"gate_out_id", "declaration_id", "result_id"}`` only
  once Kafka acknowledged the signed ``GateOut``; 401 without a valid inspector's token (a
  trader's names no agency: ``WWW-Authenticate: Bearer``); 403 ``not-a-gate-officer`` (an
  inspector of another agency); 404 ``unknown-declaration``; 409 ``not-released`` (the
  declaration's latest status is no release) or ``already-out`` (a container the read model
  shows gone out under another gate-out, each named in ``errors``); 400 (not JSON), 413
  (over 64 KiB), 415 (not ``application/json``), 422 (a bad field, an unknown one, a
  container the declaration does not list, a bad ``Idempotency-Key``); 503 with
  ``Retry-After`` when Kafka, the database or the issuer's keys are unavailable.
  ``Idempotency-Key`` (1-128 printable ASCII characters): the same key of the same officer
  gives the same gate-out id.
- ``GET /livez``, ``/healthz`` (its alias), ``/readyz`` (open); ``/docs`` and
  ``/openapi.json`` only with ``docs``.

Every error is a problem document (``services.intake.errors``), as the intake's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gate.gateout import Gate, GateOutAccepted, GateOutRequest
from services.intake import api as intake_api
from services.intake import errors, strictjson
from services.intake.api import IdempotencyKey
from services.intake.auth import Inspector
from singlewindow.health import Health
from singlewindow.signing import GATE

__all__ = ["Gate", "create_app"]

_BEARER = HTTPBearer(
    auto_error=False,  # no token: the gate refuses it, with a problem document
    bearerFormat="JWT",
    description="a JWT from the configured issuer naming `sub` and the gate's `agency`",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


async def _caller(request: Request, credentials: Credentials) -> Inspector:
    """The dependency of the gate-out route: the verified gate officer of the bearer token."""
    gate: Gate = request.app.state.gate
    return await gate.authenticate(None if credentials is None else credentials.credentials)


Caller = Annotated[Inspector, Depends(_caller)]


def create_app(gate: Gate, docs: bool = False, health: Health | None = None) -> FastAPI:
    """The HTTP face of ``gate``: its routes and problem documents, the ops answers of
    ``health`` (the process's)."""
    app = intake_api.door_app(
        "Single Window port gate", docs, gate.retry_after, service=GATE, health=health
    )
    app.state.gate = gate

    @app.post(
        "/v1/gate-out",
        status_code=202,
        response_model=GateOutAccepted,
        responses=errors.documented(400, 401, 403, 404, 409, 413, 415, 422, 503),
        openapi_extra={"requestBody": errors.json_body(GateOutRequest)},
    )
    async def gate_out(
        request: Request, officer: Caller, idempotency_key: IdempotencyKey = None
    ) -> JSONResponse:
        """Let goods out under their release: 202 once the gate-out is in Kafka."""
        body = await strictjson.read_body(request, gate.max_body_bytes)
        wanted = gate.parse(strictjson.parse(body, gate.max_json_depth))
        event = await gate.let_out(officer, wanted, idempotency_key)
        accepted = GateOutAccepted(
            gate_out_id=event.gate_out_id,
            declaration_id=event.declaration_id,
            result_id=event.result_id,
        )
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)

    errors.document_schemas(app, GateOutRequest)
    return app
