"""What a log line is about: the declaration in hand and its trace.

Where work on one declaration starts (the consume loop takes a record, an HTTP request
arrives), a :class:`Scope` is set in a context variable; every log line written in that scope
carries its declaration id and trace id (:mod:`singlewindow.logs`), and no call has to pass
them. Setting one is cheap: nothing is decoded until a line is written, so the consume loop
sets one per record whether or not anything is logged.

The trace id and span id are those of the current OpenTelemetry span when tracing is on
(:mod:`singlewindow.tracing`); when it is off, the trace id is the one the scope's
``traceparent`` carries (a record's header, or the one an HTTP request came with or was
given), so logs of one declaration can be followed across services either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRecord
from opentelemetry import trace

from singlewindow.kafka.headers import TRACEPARENT, child_traceparent, header

if TYPE_CHECKING:  # the SDK's agencies have no HTTP server: no starlette at run time
    from starlette.types import ASGIApp, Receive, Send
    from starlette.types import Scope as ASGIScope


_SCOPE: ContextVar[Scope | None] = ContextVar("singlewindow_scope", default=None)


class Scope:
    """The declaration and trace context of the work in hand; ``with scope:`` the work in
    it is about it (entered once: a scope a record, a scope a request)."""

    __slots__ = ("_token",)

    def __enter__(self) -> Scope:
        self._token = _SCOPE.set(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _SCOPE.reset(self._token)

    @property
    def declaration_id(self) -> str | None:
        return None

    @property
    def traceparent(self) -> bytes | None:
        return None


class RecordScope(Scope):
    """Handling one record: its key is its declaration id (every topic is keyed by it), its
    ``traceparent`` header the trace it continues. Both read only when asked."""

    __slots__ = ("record",)

    def __init__(self, record: ConsumerRecord) -> None:
        self.record = record

    @property
    def declaration_id(self) -> str | None:
        key = self.record.key
        return key.decode("utf-8", "replace") if isinstance(key, bytes) else None

    @property
    def traceparent(self) -> bytes | None:
        return header(self.record.headers, TRACEPARENT)


class RequestScope(Scope):
    """Handling one HTTP request: the trace it came with (a valid ``traceparent`` header) or
    a new one; the declaration the handler names (:func:`about`), else the route's
    ``{declaration_id}`` (read from the ASGI scope's path parameters, there once routed)."""

    __slots__ = ("_declaration_id", "_traceparent", "asgi")

    def __init__(self, traceparent: bytes | None, asgi: Mapping[str, Any]) -> None:
        self._traceparent = child_traceparent(
            traceparent if valid_traceparent(traceparent) else None
        )
        self._declaration_id: str | None = None
        self.asgi = asgi

    @property
    def declaration_id(self) -> str | None:
        if self._declaration_id is not None:
            return self._declaration_id
        named = (self.asgi.get("path_params") or {}).get("declaration_id")
        return named if isinstance(named, str) else None

    @declaration_id.setter
    def declaration_id(self, value: str) -> None:
        self._declaration_id = value

    @property
    def traceparent(self) -> bytes | None:
        return self._traceparent


class CorrelateRequests:
    """ASGI middleware: every HTTP request in its own :class:`RequestScope`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traceparent = next((v for k, v in scope["headers"] if k == b"traceparent"), None)
        with RequestScope(traceparent, scope):
            await self.app(scope, receive, send)


def current() -> Scope | None:
    """The scope of the work in hand, if any."""
    return _SCOPE.get()


def about(declaration_id: str) -> None:
    """Say which declaration the current HTTP request is about (once the handler knows it:
    a new declaration's id is minted in the handler)."""
    scope = _SCOPE.get()
    if isinstance(scope, RequestScope):
        scope.declaration_id = declaration_id


def valid_traceparent(value: bytes | None) -> bool:
    """A W3C traceparent of version 00 with a non-zero trace id and span id."""
    if not value or len(value) != 55:
        return False
    parts = value.split(b"-")
    if len(parts) != 4 or parts[0] != b"00":
        return False
    lengths = (2, 32, 16, 2)
    try:
        ints = [int(p, 16) for p in parts]
    except ValueError:
        return False
    return all(len(p) == n for p, n in zip(parts, lengths, strict=True)) and all(ints[1:3])


def trace_ids() -> tuple[str | None, str | None]:
    """(trace id, span id) of the work in hand: the current span's, or else the trace id of
    the scope's traceparent (span id None: no span of this process is recording)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)
    scope = _SCOPE.get()
    traceparent = scope.traceparent if scope is not None else None
    if valid_traceparent(traceparent):
        assert traceparent is not None
        return traceparent[3:35].decode(), None
    return None, None


def fields() -> dict[str, str]:
    """``declaration_id``, ``trace_id``, ``span_id`` of the work in hand: those known."""
    out: dict[str, str] = {}
    scope = _SCOPE.get()
    if scope is not None and (declaration_id := scope.declaration_id) is not None:
        out["declaration_id"] = declaration_id
    trace_id, span_id = trace_ids()
    if trace_id is not None:
        out["trace_id"] = trace_id
    if span_id is not None:
        out["span_id"] = span_id
    return out
