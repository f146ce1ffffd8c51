"""The intake's HTTP API: ``create_app(publisher, read_model, idempotency, verifier=...,
id_secret=...)`` -> FastAPI.

Every route but ``/healthz`` needs ``Authorization: Bearer <JWT>`` from the configured issuer
(``auth``): it names the subject and the USCCs it may act for. No token, or an invalid or
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
  criteria, thresholds or sampling, no internal ids); ``wait`` (0 < wait <= 30) long-polls
  until the status is final. A declaration whose declarant is not among the token's USCCs is
  answered exactly like an unknown id: 404, same body.
- ``GET /healthz`` (open); ``/docs``, ``/redoc``, ``/openapi.json`` only with
  ``Exposure.docs``, ``/metrics`` (Prometheus) only with ``Exposure.metrics``: both closed
  by default (404), since the intake faces the Internet (``app.state.metrics_registry`` can
  be served on an internal port instead; ``httpmetrics`` counts requests and declarations).

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

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.intake import errors, ids, strictjson
from services.intake.auth import (
    InvalidToken,
    KeysUnavailable,
    Principal,
    Verifier,
    challenge,
    unauthorized,
)
from services.intake.errors import Problem
from services.intake.httpmetrics import HttpMetrics
from services.intake.ports import (
    Claim,
    IdempotencyStore,
    IdempotencyUnavailable,
    InMemoryIdempotencyStore,
    Publisher,
    PublishUnavailable,
    ReadModel,
    ReadModelUnavailable,
)
from services.intake.ratelimit import RateLimiter, retry_after
from services.intake.routing import RoutingTable, load_table, route
from services.intake.schema import (
    FINAL_STATUSES,
    Accepted,
    DeclarationRequest,
    DeclarationStatus,
    parse_declaration,
)
from services.intake.traderview import declarant_of, trader_view
from services.intake.waiters import TooManyWaiters, Waiters

log = logging.getLogger(__name__)
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x20-\x7e]+$"),
]
DeclarationId = Annotated[str, Path(min_length=1, max_length=64)]
Wait = Annotated[float | None, Query(gt=0, le=30, description="seconds to wait for a final status")]
_BEARER = HTTPBearer(
    auto_error=False,  # no token: ``authenticate`` answers, with a problem document
    bearerFormat="JWT",
    description="a JWT from the configured issuer naming `sub` and the `usccs` it acts for",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


async def _caller(request: Request, credentials: Credentials) -> Principal:
    """The dependency of every protected route: the app's own ``authenticate``."""
    authenticate: Callable[[HTTPAuthorizationCredentials | None], Awaitable[Principal]]
    authenticate = request.app.state.authenticate
    return await authenticate(credentials)


Caller = Annotated[Principal, Depends(_caller)]


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1024 * 1024  # 413 above, counted while reading the body
    max_json_depth: int = 32  # 400 above
    max_waiters: int = 1000  # concurrent long-polls; 503 beyond
    poll_interval: float = 0.25  # seconds between the shared final_among queries
    publish_timeout: float = 30.0  # seconds; a publish that takes longer is a 503
    retry_after: int = 5  # seconds, in the Retry-After header of every 503
    rate_per_second: float = 10.0  # per subject: submissions and reads, refill rate
    rate_burst: int = 100  # per subject: requests allowed at once
    # submissions in progress at once in this process; 503 beyond, at once: an overloaded
    # intake answers "retry later" rather than queueing requests until they time out
    max_submissions: int = 500


@dataclass(frozen=True)
class Exposure:
    """What the intake shows besides its API: closed unless asked (local runs open both)."""

    docs: bool = False  # /docs, /redoc, /openapi.json
    metrics: bool = False  # /metrics


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _nothing(_: str) -> None:
    return None


def _forbidden(uscc: str) -> Problem:
    """403: the token may not act for this declarant (RFC 6750 ``insufficient_scope``)."""
    description = "the token does not act for this declarant"
    return Problem(
        403,
        f"this token may not lodge declarations for declarant {uscc}",
        kind="not-your-declarant",
        headers=challenge("insufficient_scope", description),
    )


def _not_found(declaration_id: str) -> Problem:
    """404 for an unknown id and for someone else's declaration alike (no existence oracle)."""
    return Problem(404, f"no declaration {declaration_id!r}", kind="unknown-declaration")


def create_app(
    publisher: Publisher,
    read_model: ReadModel,
    idempotency: IdempotencyStore | None = None,
    *,
    verifier: Verifier,
    id_secret: bytes,
    clock: Callable[[], datetime] = _utcnow,
    routing_table: RoutingTable | None = None,
    limits: Limits = Limits(),
    exposure: Exposure = Exposure(),
    after_claim: Callable[[str], Awaitable[None]] = _nothing,
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The intake app. ``idempotency`` defaults to an in-memory store (one process only).

    ``verifier`` authenticates bearer tokens (``auth.JwtVerifier``); ``id_secret`` keys the
    ids of idempotent submissions (``ids.KeyedIds``); ``monotonic`` is the rate limiter's
    clock. ``after_claim(key)`` runs between an Idempotency-Key's claim and its publish: a
    fault injection point for tests (``services.intake.__main__`` can kill the process there).
    """
    store = InMemoryIdempotencyStore() if idempotency is None else idempotency
    table = load_table() if routing_table is None else routing_table
    keyed_ids = ids.KeyedIds(id_secret)
    limiter = RateLimiter(limits.rate_per_second, limits.rate_burst, clock=monotonic)
    waiters = Waiters(read_model, max_waiters=limits.max_waiters, interval=limits.poll_interval)
    in_flight: set[str] = set()  # scoped idempotency keys being processed by this process
    submitting = asyncio.Semaphore(limits.max_submissions)  # admission
    retry = {"Retry-After": str(limits.retry_after)}

    def unavailable(what: str, kind: str) -> Problem:
        return Problem(503, f"{what}; retry later", kind=kind, headers=retry)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        waiters.start()
        try:
            yield
        finally:
            await waiters.stop()

    app = FastAPI(
        title="Single Window intake",
        version="1",
        lifespan=lifespan,
        docs_url="/docs" if exposure.docs else None,
        redoc_url="/redoc" if exposure.docs else None,
        openapi_url="/openapi.json" if exposure.docs else None,
    )
    app.state.waiters = waiters  # observable: how many requests wait
    errors.install(app)
    registry = CollectorRegistry()
    app.state.metrics_registry = registry  # to serve on an internal port instead
    app.add_middleware(HttpMetrics, registry=registry)

    if exposure.metrics:

        @app.get("/metrics", include_in_schema=False)
        def metrics() -> Response:
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def authenticate(credentials: HTTPAuthorizationCredentials | None) -> Principal:
        """The verified principal of the request, within its rate (401, 429, 503 otherwise)."""
        if credentials is None:
            raise unauthorized()
        try:
            principal = await verifier.verify(credentials.credentials)
        except InvalidToken as exc:
            raise unauthorized(str(exc)) from None
        except KeysUnavailable as exc:
            raise unavailable("the token issuer's keys are unavailable", "issuer-keys") from exc
        wait = limiter.take(principal.subject)
        if wait:
            detail = "too many requests from this subject; retry later"
            headers = {"Retry-After": retry_after(wait)}
            raise Problem(429, detail, kind="rate-limited", headers=headers)
        return principal

    app.state.authenticate = authenticate

    async def publish(
        declaration: DeclarationRequest, declaration_id: str, event_id: str, submitted_at: datetime
    ) -> None:
        agencies, version = route(declaration, table)
        event = declaration.to_event(
            declaration_id=declaration_id,
            event_id=event_id,
            submitted_at=submitted_at,
            agencies=agencies,
            routing_version=version,
        )
        try:
            async with asyncio.timeout(limits.publish_timeout):
                await publisher.publish(event)
        except (PublishUnavailable, TimeoutError) as exc:
            raise unavailable("Kafka did not acknowledge the declaration", "publish") from exc

    async def publish_once(declaration: DeclarationRequest, subject: str, key: str) -> str:
        """Claim the subject's key, publish unless the claim is known published, then mark it
        published.

        A claim is never released: whatever died when (this process, the store, Kafka), the
        next request with the key publishes the same event again unless Kafka is known to
        have it, so a 202 always means the event is in Kafka.
        """
        scoped = ids.scoped_key(subject, key)
        if scoped in in_flight:
            detail = "a request with this Idempotency-Key is still being processed; retry"
            raise Problem(409, detail, kind="idempotency-in-progress", headers={"Retry-After": "1"})
        new = Claim(
            body_hash=declaration.body_hash(),
            declaration_id=keyed_ids.declaration_id(subject, key),
            event_id=keyed_ids.event_id(subject, key),
            submitted_at=clock(),
        )
        in_flight.add(scoped)
        try:
            try:
                claim = await store.claim(scoped, new)
            except IdempotencyUnavailable as exc:
                raise unavailable("the idempotency store is unavailable", "idempotency") from exc
            if claim.body_hash != new.body_hash:
                detail = "this Idempotency-Key was used with a different body"
                raise Problem(409, detail, kind="idempotency-key-reused")
            if not claim.published:
                await after_claim(key)
                event_id = claim.event_id or new.event_id  # a claim stored without one
                await publish(declaration, claim.declaration_id, event_id, claim.submitted_at)
                try:  # if this fails, the next request with the key publishes once more
                    await store.mark_published(scoped)
                except IdempotencyUnavailable as exc:
                    log.warning("publish state of a key not recorded: %r", exc)
            return claim.declaration_id
        finally:
            in_flight.discard(scoped)

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
        if submitting.locked():  # all taken: answer at once, never queue
            raise unavailable("the intake is at capacity", "overloaded")
        async with submitting:
            return await lodge(request, principal, idempotency_key)

    async def lodge(
        request: Request, principal: Principal, idempotency_key: str | None
    ) -> JSONResponse:
        body = await strictjson.read_body(request, limits.max_body_bytes)
        declaration = parse_declaration(strictjson.parse(body, limits.max_json_depth))
        if not principal.acts_for(declaration.declarant.uscc):
            raise _forbidden(declaration.declarant.uscc)
        if idempotency_key is None:
            declaration_id = ids.random_declaration_id()
            await publish(declaration, declaration_id, ids.random_event_id(), clock())
        else:
            declaration_id = await publish_once(declaration, principal.subject, idempotency_key)
        return JSONResponse(
            Accepted(declaration_id=declaration_id).model_dump(mode="json"),
            status_code=202,
            headers={"Location": f"/v1/declarations/{declaration_id}"},
        )

    async def read(declaration_id: str, principal: Principal) -> DeclarationStatus:
        """The trader's view of the declaration, if the principal acts for its declarant."""
        try:
            document = await read_model.get(declaration_id)
        except ReadModelUnavailable as exc:
            raise unavailable("the status database is unavailable", "read-model") from exc
        if document is None or not principal.acts_for(declarant_of(document) or ""):
            raise _not_found(declaration_id)
        return DeclarationStatus.model_validate(trader_view(document))

    @app.get(
        "/v1/declarations/{declaration_id}",
        response_model=DeclarationStatus,
        responses=errors.documented(401, 404, 422, 429, 503),
    )
    async def status(
        declaration_id: DeclarationId, principal: Caller, wait: Wait = None
    ) -> DeclarationStatus:
        """The status and verdicts; with ``wait``, first wait (long-poll) for a final status."""
        current = await read(declaration_id, principal)
        if wait is None or current.status in FINAL_STATUSES:
            return current
        try:
            await waiters.wait_final(declaration_id, wait)
        except TooManyWaiters as exc:
            raise unavailable("too many requests are waiting", "too-many-waiters") from exc
        return await read(declaration_id, principal)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    errors.document_schemas(app, DeclarationRequest)
    return app
