"""Record headers: what is not business data. A W3C trace context, the producing service,
the writer schema's fingerprint; dead letters add their provenance, and an event re-driven
from the dead-letter topic says where it was (``sw-redriven-from``)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from singlewindow.avro.codec import HEADER_LEN

Headers = list[tuple[str, bytes]]

TRACEPARENT = "traceparent"
PRODUCER = "sw-producer"
FINGERPRINT = "sw-schema-fingerprint"
REDRIVEN_FROM = "sw-redriven-from"  # deadletters/<partition>/<offset>, on a re-driven event


def header(headers: Sequence[tuple[str, bytes]] | None, name: str) -> bytes | None:
    """The first value of a header, or None."""
    for key, value in headers or ():
        if key == name:
            return value
    return None


def child_traceparent(parent: bytes | None) -> bytes:
    """Continue the trace of ``parent`` (W3C traceparent) with a new span, or start one."""
    trace_id = secrets.token_hex(16)
    if parent:
        parts = parent.decode("ascii", "replace").split("-")
        if len(parts) == 4 and len(parts[1]) == 32:
            trace_id = parts[1]
    return f"00-{trace_id}-{secrets.token_hex(8)}-01".encode()


def event_headers(service: str, payload: bytes, traceparent: bytes | None = None) -> Headers:
    """Headers of an event this service produces; ``traceparent`` is the event's own trace
    context (its producer span's: :mod:`singlewindow.tracing`), None to start a new trace."""
    return [
        (TRACEPARENT, traceparent or child_traceparent(None)),
        (PRODUCER, service.encode()),
        (FINGERPRINT, payload[2:HEADER_LEN].hex().encode()),
    ]
