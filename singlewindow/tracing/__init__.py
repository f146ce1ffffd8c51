"""OpenTelemetry traces of the flow: an intake request, each agency, the aggregator, the
projector, and the doors (bank, inspection, gate) where they publish, as one trace a
declaration, linked by the W3C ``traceparent`` header every event carries.

Spans (OpenTelemetry's messaging conventions):
- the HTTP services' requests: a server span, FastAPI's own (:func:`fastapi_telemetry`),
  continuing a ``traceparent`` the request came with;
- every record a consumer handles: a consumer span ``process <topic>``, a child of the
  producer span in the record's ``traceparent`` (:func:`handling`; a batch handled at once
  gets one such span a record, :func:`handling_batch`, and the SDK runs a record's work in
  its span, :func:`within`);
- every publish: a producer span ``send <topic>``, a child of the span in hand, whose own
  context is the ``traceparent`` the record carries on (:class:`producing`, :func:`outgoing`).

:func:`configure_tracing` (every process, ``singlewindow.runtime.main``) exports them over
OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, to a JSON-lines file when
``OTEL_TRACES_FILE`` is (``python -m singlewindow.tracing show <trace id>`` prints a trace
from those files as a tree), else nowhere: then no span is made at all, and the per-record
cost is one context variable set (the log scope) and, on a publish, the ``traceparent``
carried on as before (same trace id, a new span id), so logs and records still correlate.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar, Token
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRecord
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from singlewindow import correlation
from singlewindow.kafka.headers import TRACEPARENT, child_traceparent, header
from singlewindow.settings import TracingSettings, read_settings

if TYPE_CHECKING:  # the SDK is imported only when a process traces (half a second)
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "Outgoing",
    "configure_tracing",
    "failed",
    "fastapi_telemetry",
    "finish",
    "handling",
    "handling_batch",
    "outgoing",
    "producing",
    "use",
    "within",
]

INSTRUMENTATION = "singlewindow"
_W3C = TraceContextTextMapPropagator()


@dataclass
class _State:
    """The process's tracer: None while tracing is off (nothing is made then)."""

    tracer: Tracer | None = None
    provider: TracerProvider | None = None


_state = _State()
# the consumer spans of the batch in hand, by id() of their record (see within)
_BATCH: ContextVar[dict[int, Span] | None] = ContextVar("singlewindow_batch", default=None)


def enabled() -> bool:
    return _state.tracer is not None


def use(provider: TracerProvider | None) -> TracerProvider | None:
    """Make spans with ``provider`` (None: none at all); the provider used before."""
    before = _state.provider
    _state.provider = provider
    _state.tracer = None if provider is None else provider.get_tracer(INSTRUMENTATION)
    return before


def exporters(service: str, settings: TracingSettings) -> list[SpanExporter]:
    """The exporters the settings ask for (none: tracing off)."""
    if settings.otel_sdk_disabled:
        return []
    from singlewindow.tracing.jsonl import JsonLinesExporter

    out: list[SpanExporter] = []
    if settings.otlp:
        # imported only when used: the exporter pulls in protobuf and requests
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # headers, timeout, compression: the exporter reads the other OTEL_* variables
        out.append(OTLPSpanExporter(endpoint=settings.otlp_traces_url))
    if settings.otel_traces_file:
        out.append(JsonLinesExporter(Path(settings.otel_traces_file.replace("{service}", service))))
    return out


def configure_tracing(service: str, settings: TracingSettings | None = None) -> bool:
    """Trace this process as ``service`` if the settings (by default the environment's) name
    an exporter; whether it does. SettingsError on an invalid setting."""
    settings = settings or read_settings(TracingSettings)
    chosen = exporters(service, settings)
    if not chosen:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    for exporter in chosen:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    # (the provider exports the spans still queued at exit itself: shutdown_on_exit)
    trace.set_tracer_provider(provider)  # FastAPI's server spans use the global one
    use(provider)
    return True


def fastapi_telemetry() -> TelemetryConfig:
    """``FastAPI(telemetry=...)``: a server span a request when tracing is on, with FastAPI's
    own metrics and log records left to Prometheus and the process's logging."""
    return {
        "tracer_provider": _state.provider,
        "tracing": enabled(),
        "metrics": False,
        "logs": False,
        "operation_spans": False,
    }


def traceparent_of(context: SpanContext) -> bytes:
    return (
        f"00-{trace.format_trace_id(context.trace_id)}-{trace.format_span_id(context.span_id)}"
        f"-{context.trace_flags:02x}"
    ).encode()


def _parent(traceparent: bytes | None) -> otel_context.Context:
    """The context of the remote span a traceparent names (an empty one: a new trace, never
    the child of whatever span happens to be current)."""
    if not correlation.valid_traceparent(traceparent):
        return otel_context.Context()
    assert traceparent is not None
    return _W3C.extract({TRACEPARENT: traceparent.decode("ascii")}, otel_context.Context())


def _key(record: ConsumerRecord) -> str | None:
    key = record.key
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else None


def _consumer_span(tracer: Tracer, record: ConsumerRecord, service: str, group: str) -> Span:
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
        "messaging.consumer.group.name": group,
        "messaging.client.id": service,
    }
    key = _key(record)
    if key is not None:
        attributes["messaging.kafka.message.key"] = key
    return tracer.start_span(
        f"process {record.topic}",
        context=_parent(header(record.headers, TRACEPARENT)),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    )


def _end(span: Span, error: BaseException | None) -> None:
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.end()


class _InSpan:
    """``with``: ``span`` is the current span and ``scope`` the log scope; ``span`` ends on
    exit if ``owned``."""

    __slots__ = ("owned", "scope", "span", "token")

    def __init__(self, span: Span, scope: correlation.Scope, owned: bool) -> None:
        self.span, self.scope, self.owned = span, scope, owned

    def __enter__(self) -> None:
        self.scope.__enter__()
        self.token = otel_context.attach(trace.set_span_in_context(self.span))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        otel_context.detach(self.token)
        self.scope.__exit__(kind, exc, tb)
        if self.owned:
            _end(self.span, exc)


def handling(record: ConsumerRecord, service: str, group: str) -> AbstractContextManager[Any]:
    """``with``: the work on one consumed record. Its log scope; with tracing on, its
    consumer span (ended on exit, an error if an exception leaves)."""
    scope = correlation.RecordScope(record)
    tracer = _state.tracer
    if tracer is None:
        return scope
    return _InSpan(_consumer_span(tracer, record, service, group), scope, owned=True)


@contextmanager
def _batch_spans(
    tracer: Tracer, records: Sequence[ConsumerRecord], service: str, group: str
) -> Iterator[None]:
    spans = {id(r): _consumer_span(tracer, r, service, group) for r in records}
    token: Token[dict[int, Span] | None] = _BATCH.set(spans)
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        _BATCH.reset(token)
        for span in spans.values():
            _end(span, error)


def handling_batch(
    records: Sequence[ConsumerRecord], service: str, group: str
) -> AbstractContextManager[Any]:
    """``with``: a batch handled at once. With tracing on, a consumer span a record (ended on
    exit; all errors if an exception leaves); :func:`within` runs a record's work in its."""
    tracer = _state.tracer
    if tracer is None:
        return nullcontext()
    return _batch_spans(tracer, records, service, group)


def within(record: ConsumerRecord) -> AbstractContextManager[Any]:
    """``with``: work on ``record`` inside a batch: its log scope, and its consumer span as
    the current span (outside a batch, the span of :func:`handling` stays current)."""
    scope = correlation.RecordScope(record)
    spans = _BATCH.get()
    span = spans.get(id(record)) if spans else None
    if span is None:
        return scope
    return _InSpan(span, scope, owned=False)


def failed(error: BaseException) -> None:
    """Mark the current span failed (a record dead-lettered, say)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record on its way out: the ``traceparent`` it carries and, with tracing on, the
    producer span it names (end it with :func:`finish` once the record is acknowledged)."""

    traceparent: bytes
    span: Span | None = None


def outgoing(service: str, topic: str, key: str, parent: bytes | None = None) -> Outgoing:
    """Start sending one record about ``key`` to ``topic``.

    With tracing on: a producer span, the child of the current span (else of ``parent``, a
    traceparent); the record carries the span's own context. Off: the record carries on the
    trace of ``parent`` or of the log scope (a handled record's, a request's) with a new span
    id, as every record did before there were spans."""
    tracer = _state.tracer
    if tracer is None:
        if parent is None and (scope := correlation.current()) is not None:
            parent = scope.traceparent
        return Outgoing(child_traceparent(parent))
    context = None
    if not trace.get_current_span().get_span_context().is_valid:
        context = _parent(parent)
    span = tracer.start_span(
        f"send {topic}",
        context=context,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": topic,
            "messaging.kafka.message.key": key,
            "messaging.client.id": service,
        },
    )
    return Outgoing(traceparent_of(span.get_span_context()), span)


def finish(out: Outgoing, error: BaseException | None = None) -> None:
    """The record of ``out`` was acknowledged (or ``error`` says why not)."""
    if out.span is not None:
        _end(out.span, error)


class producing:
    """``with producing(service, topic, key, parent) as traceparent:`` send one record with
    that ``traceparent`` header; its producer span (tracing on) ends on exit (see
    :func:`outgoing`)."""

    __slots__ = ("args", "out")

    def __init__(self, service: str, topic: str, key: str, parent: bytes | None = None) -> None:
        self.args = (service, topic, key, parent)

    def __enter__(self) -> bytes:
        self.out = outgoing(*self.args)
        return self.out.traceparent

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        finish(self.out, exc)
