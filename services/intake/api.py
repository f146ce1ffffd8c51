"""The intake's HTTP API: ``create_app(IntakeService(publisher, read_model, idempotency,
verifier=..., id_secret=...), exposure)`` -> FastAPI. The routes only translate: HTTP in, a
call of the service (``service``: the use cases), its answer or its refusal (a problem
document, ``errors``) out.

Every route but the ops answers (``/livez``, ``/healthz``, ``/readyz``) needs
``Authorization: Bearer <JWT>`` from the configured issuer (``auth``): it names the subject
and the USCCs it may act for. No token, or an invalid or
expired one: 401 with a ``WWW-Authenticate: Bearer`` challenge (RFC 6750); the issuer's keys
unreachable: 503. Each subject has a token bucket (``ratelimit``; ``Limits.rate_per_second``
and ``rate_burst``) that every submission and every read takes from: 429 with
``Retry-After`` when it is empty.

- ``POST /v1/declarations``: 202 + ``Location`` only once Kafka acknowledged the event; 403
  if the declarant's USCC is not one the token acts for (checked before anything is
  claimed or published). The id is ``DEC-`` + 32 upper-case hex digits: random, or, with an
  ``Idempotency-Key`` header, HMAC-derived from (subject, key) under the id secret and kept
  in the key's claim with the event id (``ids``), so that a retry after a crash publishes the
  same declaration and event ids and nobody can compute an id from a key.
- ``GET /v1/declarations/{id}[?wait=seconds]``: the trader's view of the status
  (``traderview``: decisions, trader-facing reason codes and messages, duties; no risk
  criteria, thresholds or sampling, no internal ids; the version, the steps, the payment
  notice and settlement, the inspection order, its findings (never the inspector) and the
  sanction, and ``next_step``); ``wait`` (0 < wait <= 30) long-polls until the
  status differs from ``seen`` (the status the caller last saw), or, without ``seen``, until
  the declaration is answered (any status but SUBMITTED and IN_REVIEW). A declaration
  whose declarant is not among the token's USCCs is answered exactly like an unknown id:
  404, same body.
- ``PUT /v1/declarations/{id}`` (an amendment, 修改: the full body, validated like POST),
  ``POST /v1/declarations/{id}/documents`` (``{"documents": [{"type", "reference"}, ...]}``:
  the current version with the documents added, e.g. what a HOLD asked for; 422 when every
  one is lodged already) and ``POST /v1/declarations/{id}/withdrawal`` (``{"reason"}``, 1-1000
  characters, 撤单): 202 (+ ``Location``) once Kafka acknowledged the new version or the
  withdrawal. The declaration must be the caller's (else 404, like GET) and, for an
  amendment, so must the new body's declarant (else 403). After release (RELEASED, or
  AMENDMENT_REFUSED: the release before stands) a PUT is a change after release (放行后修改):
  routed to customs alone, whose approval it needs (202); 422 ``containers-changed`` if it
  names other containers than those released; 409 ``amendment-raced`` when the version shown
  is an amendment that raced the release (the containers released are not known); 409
  ``change-window-closed`` when the latest
  step is older than ``INTAKE_CHANGE_AFTER_RELEASE_DAYS`` (30), and ``change-pending`` while
  one is assessed or its supplementary notice is unpaid. 409 (problem document) when it is
  closed (REJECTED, WITHDRAWN, SANCTIONED, RECALLED, and RELEASED for documents or a
  withdrawal: ``declaration-closed``), when the goods are released on condition or a
  supplementary notice is due (CONDITIONALLY_RELEASED, SUPPLEMENTARY_PAYMENT_DUE:
  ``goods-released``), for an
  amendment or documents after an inspection order, or a withdrawal while the inspection is
  not finished (INSPECTION_REQUIRED, REMEDIATION_REQUIRED, TIMED_OUT after the order: its
  escalation; ``inspection-ordered``, one inspection), when it was lodged before
  versions (``no-versions``), when the status database does not show the version lodged last
  yet (``not-yet-visible``, with ``Retry-After``), or when another request made the same
  version first (``version-taken``). ``Idempotency-Key`` works as on POST.
- the trader's window (``window``): the list of one's declarations (``GET
  /v1/declarations``), the status stream (``GET /v1/declarations/{id}/events``, Server-Sent
  Events), a dry-run validation, the code lists and the tariff lookup, and the web page
  (``/app/``), with a development sign-in only with ``Exposure.dev_issuer``.
- ``GET /livez``, ``/healthz`` (its alias) and ``/readyz`` (open: the process's
  :class:`~singlewindow.health.Health`, :mod:`singlewindow.web`); ``/docs``, ``/redoc``,
  ``/openapi.json`` and the event contract ``/asyncapi.json`` (AsyncAPI 3.0,
  :mod:`singlewindow.asyncapi`) only with ``Exposure.docs``, ``/metrics`` (Prometheus, the
  process's registry) only with ``Exposure.metrics``: both closed by default (404), since
  the intake faces the Internet (``INTAKE_METRICS_PORT`` serves them on an internal port
  instead). Every request's latency is measured (``singlewindow.web.HttpMetrics``).

Every error is a problem document (``errors``). Request limits (body fields: ``schema``):

- the body (``strictjson``): ``application/json`` (else 415), at most
  ``Limits.max_body_bytes`` (1 MiB) counted while reading (else 413), strict JSON nesting at
  most ``Limits.max_json_depth`` (32) levels (else 400);
- at most ``errors.MAX_LISTED_ERRORS`` field errors are listed in a 422 (the count of the
  rest is in ``detail``);
- ``Idempotency-Key``: 1-128 printable ASCII characters, else 422; scoped to the subject
  (another subject's identical key is another key); same key and same (canonical) body: the
  first answer again, publishing again if the first publish is not known to be
  acknowledged; same key, other body: 409; the same key while its first request is still
  being processed here: 409 with ``Retry-After: 1``;
- ``wait``: 0 < wait <= 30 seconds, else 422; at most ``Limits.max_waiters`` (1000) waiting
  requests, else 503; every 503 carries ``Retry-After`` (``Limits.retry_after``, 5 s).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response

from services.intake import errors, strictjson
from services.intake.auth import challenge, unauthorized
from services.intake.deps import Caller, caller
from services.intake.errors import Problem
from services.intake.ratelimit import retry_after
from services.intake.schema import (
    Accepted,
    DeclarationRequest,
    DeclarationState,
    DeclarationStatus,
    DocumentsRequest,
    WithdrawalRequest,
    parse_body,
    parse_declaration,
)
from services.intake.service import (
    ContainersChanged,
    IntakeService,
    KeyInProgress,
    KeyReused,
    Limits,
    NotAmendable,
    NothingNew,
    NotYetVisible,
    NotYourDeclarant,
    RateLimited,
    Refused,
    TooManyDocuments,
    Unauthenticated,
    Unavailable,
    UnknownDeclaration,
    VersionTaken,
)
from services.intake.webhooks import WebhookRegistry, webhook_routes
from services.intake.window import add_window
from singlewindow import asyncapi, tracing
from singlewindow.correlation import CorrelateRequests
from singlewindow.health import Health
from singlewindow.web import HttpMetrics, add_routes

__all__ = ["Exposure", "IntakeService", "Limits", "create_app"]
NAME = "intake"

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x20-\x7e]+$"),
]
DeclarationId = Annotated[str, PathParam(min_length=1, max_length=64)]
Wait = Annotated[
    float | None, Query(gt=0, le=30, description="seconds to wait for the status to move on")
]
Seen = Annotated[
    DeclarationState | None,
    Query(description="the status last seen: wait until it differs (default: an answer)"),
]


@dataclass(frozen=True)
class Exposure:
    """What the intake shows besides its API: closed unless asked (local runs open both)."""

    docs: bool = False  # /docs, /redoc, /openapi.json
    metrics: bool = False  # /metrics
    # a development issuer's directory: the web page offers a sign-in minting its tokens
    # (``window``; local runs only, INTAKE_DEV_SIGNIN)
    dev_issuer: Path | None = None


# the problem type of each reason a declaration may not change
NOT_AMENDABLE = {
    "closed": "declaration-closed",
    "released": "goods-released",
    "inspected": "inspection-ordered",
    "change-pending": "change-pending",
    "too-late": "change-window-closed",
    "raced": "amendment-raced",
    "no-versions": "no-versions",
}


def problem_of(refused: Refused, retry_after_s: int) -> Problem:
    """The problem document of a refusal of the service (503s say when to retry)."""
    match refused:
        case Unauthenticated():
            return unauthorized(refused.description)
        case RateLimited():
            headers = {"Retry-After": retry_after(refused.wait)}
            return Problem(429, str(refused), kind="rate-limited", headers=headers)
        case Unavailable():
            headers = {"Retry-After": str(retry_after_s)}
            return Problem(503, str(refused), kind=refused.reason, headers=headers)
        case NotYourDeclarant():  # RFC 6750 ``insufficient_scope``
            description = "the token does not act for this declarant"
            headers = challenge("insufficient_scope", description)
            return Problem(403, str(refused), kind="not-your-declarant", headers=headers)
        case UnknownDeclaration():  # an unknown id and someone else's alike: no oracle
            return Problem(404, str(refused), kind="unknown-declaration")
        case KeyReused():
            return Problem(409, str(refused), kind="idempotency-key-reused")
        case KeyInProgress():
            headers = {"Retry-After": "1"}
            return Problem(409, str(refused), kind="idempotency-in-progress", headers=headers)
        case NotAmendable():
            return Problem(409, str(refused), kind=NOT_AMENDABLE[refused.reason])
        case NotYetVisible():
            headers = {"Retry-After": "1"}
            return Problem(409, str(refused), kind="not-yet-visible", headers=headers)
        case VersionTaken():
            return Problem(409, str(refused), kind="version-taken")
        case NothingNew():
            return Problem(422, str(refused), kind="nothing-new")
        case TooManyDocuments():
            return Problem(422, str(refused), kind="too-many-documents")
        case ContainersChanged():
            return Problem(422, str(refused), kind="containers-changed")
    raise TypeError(f"no problem document for {refused!r}")  # pragma: no cover


def door_app(
    title: str,
    docs: bool,
    retry_after_s: int,
    problem: Callable[[Refused, int], Problem] = problem_of,
    *,
    service: str,
    health: Health | None = None,
) -> FastAPI:
    """The app of a door beside the intake (the bank, the inspection station, the gate):
    problem documents for every error, a refusal answered as ``problem`` says (the intake's
    answers by default), every request's latency measured under ``service``, the ops answers
    of ``health`` open (``/livez``, ``/healthz``, ``/readyz``), ``/docs`` and
    ``/openapi.json`` only with ``docs``. The caller adds its routes."""
    app = FastAPI(
        title=title,
        version="1",
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        telemetry=tracing.fastapi_telemetry(),
    )
    app.add_middleware(CorrelateRequests)
    errors.install(app)

    async def on_refused(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return errors.respond(problem(exc, retry_after_s))

    app.add_exception_handler(Refused, on_refused)
    app.add_middleware(HttpMetrics, service=service)
    add_routes(app, health or Health(service))
    return app


def create_app(
    service: IntakeService,
    exposure: Exposure = Exposure(),
    health: Health | None = None,
    webhooks: WebhookRegistry | None = None,
) -> FastAPI:
    """The HTTP face of ``service``: its routes, problem documents, metrics, lifespan, the
    ops answers of ``health`` (the process's); ``/v1/webhooks`` with ``webhooks``
    (:mod:`services.intake.webhooks`)."""
    limits = service.limits

    async def json_of(request: Request) -> object:
        """The request's body as strict JSON, within the size and depth limits."""
        body = await strictjson.read_body(request, limits.max_body_bytes)
        return strictjson.parse(body, limits.max_json_depth)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Single Window intake",
        version="1",
        lifespan=lifespan,
        docs_url="/docs" if exposure.docs else None,
        redoc_url="/redoc" if exposure.docs else None,
        openapi_url="/openapi.json" if exposure.docs else None,
        telemetry=tracing.fastapi_telemetry(),  # a server span a request when tracing
    )
    app.add_middleware(CorrelateRequests)  # logs carry the request's trace and declaration
    app.state.intake = service
    app.state.waiters = service.waiters  # observable: how many requests wait
    errors.install(app)

    async def on_refused(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return errors.respond(problem_of(exc, limits.retry_after))

    app.add_exception_handler(Refused, on_refused)
    app.add_middleware(HttpMetrics, service=NAME)
    add_routes(app, health or Health(NAME), metrics=exposure.metrics)

    if exposure.docs:
        # the event contract of this deployment's agencies (docs/asyncapi.json: the default's)
        contract = asyncapi.render(asyncapi.platform_document())

        @app.get("/asyncapi.json", include_in_schema=False)
        def event_contract() -> Response:
            """The event contract (AsyncAPI 3.0): every topic, its Avro value, who writes it,
            who may read it."""
            return Response(contract, media_type="application/json")

    @app.post(
        "/v1/declarations",
        status_code=202,
        response_model=Accepted,
        responses=errors.documented(400, 401, 403, 409, 413, 415, 422, 429, 503),
        openapi_extra={"requestBody": errors.json_body(DeclarationRequest)},
    )
    async def submit(
        request: Request, principal: Caller, idempotency_key: IdempotencyKey = None
    ) -> JSONResponse:
        """Lodge a declaration: 202 only once it is durably recorded in Kafka."""
        async with service.admitted():  # 503 at once when at capacity, never queued
            declaration = parse_declaration(await json_of(request))
            declaration_id = await service.lodge(principal, declaration, idempotency_key)
        return JSONResponse(
            Accepted(declaration_id=declaration_id).model_dump(mode="json"),
            status_code=202,
            headers={"Location": f"/v1/declarations/{declaration_id}"},
        )

    def accepted(declaration_id: str) -> JSONResponse:
        return JSONResponse(
            Accepted(declaration_id=declaration_id).model_dump(mode="json"),
            status_code=202,
            headers={"Location": f"/v1/declarations/{declaration_id}"},
        )

    changes = errors.documented(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)

    @app.put(
        "/v1/declarations/{declaration_id}",
        status_code=202,
        response_model=Accepted,
        responses=changes,
        openapi_extra={"requestBody": errors.json_body(DeclarationRequest)},
    )
    async def amend(
        declaration_id: DeclarationId,
        request: Request,
        principal: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        """Amend a declaration (修改): the full body, as a new version; 202 once in Kafka."""
        async with service.admitted():
            declaration = parse_declaration(await json_of(request))
            await service.amend(principal, declaration_id, declaration, idempotency_key)
        return accepted(declaration_id)

    @app.post(
        "/v1/declarations/{declaration_id}/documents",
        status_code=202,
        response_model=Accepted,
        responses=changes,
        openapi_extra={"requestBody": errors.json_body(DocumentsRequest)},
    )
    async def add_documents(
        declaration_id: DeclarationId,
        request: Request,
        principal: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        """Supply documents (what a HOLD asked for): a new version; 202 once in Kafka."""
        async with service.admitted():
            data = await json_of(request)
            documents = parse_body(DocumentsRequest, data, "documents")
            await service.add_documents(principal, declaration_id, documents, idempotency_key)
        return accepted(declaration_id)

    @app.post(
        "/v1/declarations/{declaration_id}/withdrawal",
        status_code=202,
        response_model=Accepted,
        responses=changes,
        openapi_extra={"requestBody": errors.json_body(WithdrawalRequest)},
    )
    async def withdraw(
        declaration_id: DeclarationId,
        request: Request,
        principal: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        """Withdraw a declaration (撤单) before release; 202 once in Kafka."""
        async with service.admitted():
            data = await json_of(request)
            withdrawal = parse_body(WithdrawalRequest, data, "withdrawal")
            await service.withdraw(principal, declaration_id, withdrawal, idempotency_key)
        return accepted(declaration_id)

    @app.get(
        "/v1/declarations/{declaration_id}",
        response_model=DeclarationStatus,
        # a declaration lodged before versions: the fields it always had, no more
        response_model_exclude_unset=True,
        responses=errors.documented(401, 404, 422, 429, 503),
    )
    async def status(
        declaration_id: DeclarationId, principal: Caller, wait: Wait = None, seen: Seen = None
    ) -> DeclarationStatus:
        """The status and verdicts; with ``wait``, first wait (long-poll) for the status to
        move on from ``seen``, or, without it, for an answer."""
        return await service.status(principal, declaration_id, wait, seen and str(seen))

    if webhooks is not None:
        app.include_router(webhook_routes(webhooks, caller))
    add_window(app, exposure.dev_issuer)  # the web page, the list and the status stream
    errors.document_schemas(app, DeclarationRequest, DocumentsRequest, WithdrawalRequest)
    return app
