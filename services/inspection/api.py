"""The inspection station's HTTP API: ``create_app(Station(...), docs=False)`` -> FastAPI.

- ``POST /v1/inspections/{order_id}/findings`` with ``Authorization: Bearer <JWT>`` of an
  inspector (``sub`` and the ``agency`` it inspects for: ``services.intake.auth.inspector_of``)
  and a JSON body (``findings.FindingRequest``): 202 ``{"finding_id", "declaration_id",
  "order_id"}`` only once Kafka acknowledged the signed ``InspectionFinding``; 401 without a
  valid inspector's token (a trader's names no agency: ``WWW-Authenticate: Bearer``); 400
  (not JSON), 413 (over 64 KiB), 415 (not ``application/json``), 422 (a bad field, an unknown
  one, a measure or samples the outcome does not call for, a bad ``order_id`` or
  ``Idempotency-Key``); 503 with ``Retry-After`` when Kafka or the issuer's keys are
  unavailable. ``Idempotency-Key`` (1-128 printable ASCII characters): the same key of the
  same inspector gives the same finding id.
- ``GET /livez``, ``/healthz`` (its alias), ``/readyz`` (open); ``/docs`` and
  ``/openapi.json`` only with ``docs``.

Every error is a problem document (``services.intake.errors``), as the intake's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.inspection.findings import FindingAccepted, FindingRequest, Station
from services.intake import api as intake_api
from services.intake import errors, strictjson
from services.intake.api import IdempotencyKey
from services.intake.auth import Inspector
from singlewindow.health import Health
from singlewindow.signing import INSPECTION

__all__ = ["Station", "create_app"]

_BEARER = HTTPBearer(
    auto_error=False,  # no token: the station refuses it, with a problem document
    bearerFormat="JWT",
    description="a JWT from the configured issuer naming `sub` and the `agency` inspected for",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]


async def _caller(request: Request, credentials: Credentials) -> Inspector:
    """The dependency of the finding route: the verified inspector of the bearer token."""
    station: Station = request.app.state.station
    return await station.authenticate(None if credentials is None else credentials.credentials)


Caller = Annotated[Inspector, Depends(_caller)]


def create_app(station: Station, docs: bool = False, health: Health | None = None) -> FastAPI:
    """The HTTP face of ``station``: its routes and problem documents, the ops answers of
    ``health`` (the process's)."""
    app = intake_api.door_app(
        "Single Window joint inspection station",
        docs,
        station.retry_after,
        service=INSPECTION,
        health=health,
    )
    app.state.station = station

    @app.post(
        "/v1/inspections/{order_id}/findings",
        status_code=202,
        response_model=FindingAccepted,
        responses=errors.documented(400, 401, 413, 415, 422, 503),
        openapi_extra={"requestBody": errors.json_body(FindingRequest)},
    )
    async def record(
        request: Request,
        order_id: OrderId,
        inspector: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        """Record an inspector's finding against the order: 202 once it is in Kafka."""
        body = await strictjson.read_body(request, station.max_body_bytes)
        finding = station.parse(strictjson.parse(body, station.max_json_depth))
        finding_id = await station.record(inspector, order_id, finding, idempotency_key)
        accepted = FindingAccepted(
            finding_id=finding_id, declaration_id=finding.declaration_id, order_id=order_id
        )
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)

    errors.document_schemas(app, FindingRequest)
    return app
