"""The intake's HTTP API: ``create_app(publisher, read_model, idempotency, ...)`` -> FastAPI.

- ``POST /v1/declarations``: 202 + ``Location`` only once Kafka acknowledged the event.
  The id is ``DEC-`` + 32 upper-case hex digits: a random uuid4, or, with an
  ``Idempotency-Key`` header, uuid5 of the key (the event id likewise), so that a retry after
  a crash publishes the same declaration and event ids.
- ``GET /v1/declarations/{id}[?wait=seconds]``: the status; ``wait`` (0 < wait <= 30)
  long-polls until the status is final.
- ``GET /healthz``, ``/docs``, ``/metrics`` (Prometheus).

Every error is a problem document (``errors``). Request limits (body fields: ``schema``):

- ``Content-Type: application/json`` (parameters such as ``charset=utf-8`` allowed), else 415;
- body <= ``Limits.max_body_bytes`` (1 MiB), counted while reading, whatever
  ``Content-Length`` says, else 413;
- ``Content-Length``, when present, a decimal count of at most 18 digits, else 400;
- strict JSON: UTF-8, nesting <= ``Limits.max_json_depth`` (32), no NaN/Infinity literals,
  no duplicate keys, else 400; every check is linear in the body;
- at most ``errors.MAX_LISTED_ERRORS`` field errors are listed in a 422 (the count of the
  rest is in ``detail``);
- ``Idempotency-Key``: 1-128 printable ASCII characters, else 422; same key and same
  (canonical) body: the first answer again, publishing again if the first publish is not
  known to be acknowledged; same key, other body: 409; the same key while its first
  request is still being processed here: 409 with ``Retry-After: 1``;
- ``wait``: 0 < wait <= 30 seconds, else 422; at most ``Limits.max_waiters`` (1000) waiting
  requests, else 503; every 503 carries ``Retry-After`` (``Limits.retry_after``, 5 s).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.intake import errors
from services.intake.errors import Problem
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
from services.intake.routing import RoutingTable, load_table, route
from services.intake.schema import (
    FINAL_STATUSES,
    Accepted,
    DeclarationRequest,
    DeclarationStatus,
    parse_declaration,
)
from services.intake.waiters import TooManyWaiters, Waiters

log = logging.getLogger(__name__)
# Fixed forever: the declaration and event ids of idempotent requests derive from it.
KEY_NAMESPACE = uuid.UUID("5d1c9a4e-8f0b-4c6e-9a57-0c1f3b2e7d11")
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x20-\x7e]+$"),
]
DeclarationId = Annotated[str, Path(min_length=1, max_length=64)]
Wait = Annotated[float | None, Query(gt=0, le=30, description="seconds to wait for a final status")]


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1024 * 1024  # 413 above, counted while reading the body
    max_json_depth: int = 32  # 400 above
    max_waiters: int = 1000  # concurrent long-polls; 503 beyond
    poll_interval: float = 0.25  # seconds between the shared final_among queries
    publish_timeout: float = 30.0  # seconds; a publish that takes longer is a 503
    retry_after: int = 5  # seconds, in the Retry-After header of every 503


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _nothing(_: str) -> None:
    return None


def create_app(
    publisher: Publisher,
    read_model: ReadModel,
    idempotency: IdempotencyStore | None = None,
    *,
    clock: Callable[[], datetime] = _utcnow,
    routing_table: RoutingTable | None = None,
    limits: Limits = Limits(),
    after_claim: Callable[[str], Awaitable[None]] = _nothing,
) -> FastAPI:
    """The intake app. ``idempotency`` defaults to an in-memory store (one process only).

    ``after_claim(key)`` runs between an Idempotency-Key's claim and its publish: a fault
    injection point for tests (``services.intake.__main__`` can kill the process there).
    """
    store = InMemoryIdempotencyStore() if idempotency is None else idempotency
    table = load_table() if routing_table is None else routing_table
    waiters = Waiters(read_model, max_waiters=limits.max_waiters, interval=limits.poll_interval)
    in_flight: set[str] = set()  # idempotency keys being processed by this process
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

    app = FastAPI(title="Single Window intake", version="1", lifespan=lifespan)
    app.state.waiters = waiters  # observable: how many requests wait
    errors.install(app)
    registry = CollectorRegistry()
    app.add_middleware(_Metrics, registry=registry)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

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

    async def publish_once(declaration: DeclarationRequest, key: str) -> str:
        """Claim the key, publish unless the claim is known published, then mark it published.

        A claim is never released: whatever died when (this process, the store, Kafka), the
        next request with the key publishes the same event again unless Kafka is known to
        have it, so a 202 always means the event is in Kafka.
        """
        if key in in_flight:
            detail = "a request with this Idempotency-Key is still being processed; retry"
            raise Problem(409, detail, kind="idempotency-in-progress", headers={"Retry-After": "1"})
        new = Claim(
            body_hash=declaration.body_hash(),
            declaration_id="DEC-" + uuid.uuid5(KEY_NAMESPACE, key).hex.upper(),
            submitted_at=clock(),
        )
        in_flight.add(key)
        try:
            try:
                claim = await store.claim(key, new)
            except IdempotencyUnavailable as exc:
                raise unavailable("the idempotency store is unavailable", "idempotency") from exc
            if claim.body_hash != new.body_hash:
                detail = "this Idempotency-Key was used with a different body"
                raise Problem(409, detail, kind="idempotency-key-reused")
            if not claim.published:
                await after_claim(key)
                event_id = str(uuid.uuid5(KEY_NAMESPACE, key))
                await publish(declaration, claim.declaration_id, event_id, claim.submitted_at)
                try:  # if this fails, the next request with the key publishes once more
                    await store.mark_published(key)
                except IdempotencyUnavailable as exc:
                    log.warning("publish state of a key not recorded: %r", exc)
            return claim.declaration_id
        finally:
            in_flight.discard(key)

    @app.post(
        "/v1/declarations",
        status_code=202,
        response_model=Accepted,
        responses=errors.documented(400, 409, 413, 415, 422, 503),
        openapi_extra={"requestBody": errors.json_body(DeclarationRequest)},
    )
    async def submit(request: Request, idempotency_key: IdempotencyKey = None) -> JSONResponse:
        """Lodge a declaration: 202 only once it is durably recorded in Kafka."""
        body = await _read_body(request, limits.max_body_bytes)
        declaration = parse_declaration(_parse_json(body, limits.max_json_depth))
        if idempotency_key is None:
            declaration_id = "DEC-" + uuid.uuid4().hex.upper()
            await publish(declaration, declaration_id, str(uuid.uuid4()), clock())
        else:
            declaration_id = await publish_once(declaration, idempotency_key)
        return JSONResponse(
            Accepted(declaration_id=declaration_id).model_dump(mode="json"),
            status_code=202,
            headers={"Location": f"/v1/declarations/{declaration_id}"},
        )

    async def read(declaration_id: str) -> DeclarationStatus:
        try:
            document = await read_model.get(declaration_id)
        except ReadModelUnavailable as exc:
            raise unavailable("the status database is unavailable", "read-model") from exc
        if document is None:
            raise Problem(404, f"no declaration {declaration_id!r}", kind="unknown-declaration")
        return DeclarationStatus.model_validate(document)

    @app.get(
        "/v1/declarations/{declaration_id}",
        response_model=DeclarationStatus,
        responses=errors.documented(404, 422, 503),
    )
    async def status(declaration_id: DeclarationId, wait: Wait = None) -> DeclarationStatus:
        """The status and verdicts; with ``wait``, first wait (long-poll) for a final status."""
        current = await read(declaration_id)
        if wait is None or current.status in FINAL_STATUSES:
            return current
        try:
            await waiters.wait_final(declaration_id, wait)
        except TooManyWaiters as exc:
            raise unavailable("too many requests are waiting", "too-many-waiters") from exc
        return await read(declaration_id)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    errors.document_schemas(app, DeclarationRequest)
    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (415) unless JSON and (413) as soon as it exceeds ``limit`` bytes."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise Problem(415, "send the declaration as application/json", kind="media-type")
    too_large = Problem(413, f"the body exceeds {limit} bytes", kind="too-large")
    declared = request.headers.get("content-length", "")
    if declared and not (declared.isascii() and declared.isdigit() and len(declared) <= 18):
        raise Problem(400, "Content-Length must be a decimal byte count", kind="bad-length")
    if declared and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():  # the declared length may lie or be absent
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _too_deep(value: object, limit: int) -> bool:
    """Whether parsed JSON nests deeper than ``limit``: one pass, no recursion, linear."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in children)  # type: ignore[union-attr]
    return False


def _parse_json(body: bytes, max_depth: int) -> object:
    """Strict JSON (UTF-8, no NaN/Infinity, no duplicate keys, bounded depth) or a 400.

    Every step is linear in the body: the C decoder parses (it refuses pathological nesting
    with RecursionError), then one iterative walk measures the depth before anything else
    looks at the value.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(
            400, f"the body is not UTF-8 (byte {exc.start})", kind="invalid-json"
        ) from None
    too_deep = Problem(400, f"JSON nests deeper than {max_depth} levels", kind="invalid-json")
    try:
        value = json.loads(
            text, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_unique_keys
        )
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}", kind="invalid-json") from None
    if _too_deep(value, max_depth):
        raise too_deep
    return value


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("an object has a duplicate key")
    return result


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Metrics:
    """ASGI middleware: requests by method, route template and status; declarations by outcome."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "intake_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=registry,
        )
        self.declarations = Counter(
            "intake_declarations",
            "POSTed declarations: accepted, rejected (4xx), failed (5xx)",
            ["outcome"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.requests.labels(method, route, str(status)).inc()
            if route == "/v1/declarations" and method == "POST":
                outcome = "accepted" if status < 400 else "rejected" if status < 500 else "failed"
                self.declarations.labels(outcome).inc()
