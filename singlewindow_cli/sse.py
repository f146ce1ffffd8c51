"""A Server-Sent Events parser (the WHATWG HTML "event stream" interpretation), for the
status stream ``GET /v1/declarations/{id}/events``: lines in, events out.

A blank line dispatches the event gathered so far (if it has data); ``data`` lines are
joined with newlines; ``id`` sets the last event id (kept across events, as a reconnecting
client sends it back in ``Last-Event-ID``; an id with a NUL is ignored); ``event`` names the
type (default ``message``); ``retry`` is the reconnection delay in milliseconds; a line
starting with ``:`` is a comment (the platform's ``: keep-alive``). One space after the
colon is not part of the value. An unfinished event at the end of the stream is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    id: str | None  # the last event id when it was dispatched
    retry_ms: int | None = None


def parse(lines: Iterable[str]) -> Iterator[Event]:
    """The events of a stream read line by line (line endings removed)."""
    last_id: str | None = None
    kind, data, retry = "", list[str](), None
    for line in lines:
        if not line:
            if data:
                yield Event(kind or "message", "\n".join(data), last_id, retry)
            kind, data, retry = "", [], None
            continue
        if line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            kind = value
        elif field == "id" and "\0" not in value:
            last_id = value
        elif field == "retry" and value.isdigit():
            retry = int(value)
