"""The status stream of a declaration (``GET /v1/declarations/{id}/events``): Server-Sent
Events, one per change of the trader's view.

Each event is ``id: <revision>`` (the read-model document's revision,
``singlewindow.readmodel``: it grows with every change of the document), ``event: status``
and ``data:`` the trader's view, the body ``GET /v1/declarations/{id}`` answers. The first
event is the current view, unless the client has it already (``Last-Event-ID`` is its
revision: a reconnection after a drop); a comment ``: keep-alive`` goes out after
``keep_alive`` seconds (15) without an event, so that proxies keep the connection.

A stream does not poll: it waits on the intake's shared query loop (``waiters``) for its
declaration's revision to move on, then reads the document once. What it shows is checked
as a read is (the document must still be the principal's declarant's: an amendment that
moves it to a declarant the principal does not act for ends the stream). At most
``max_streams`` are open in the process (the rest refused at once: 503); each ends after
``lifetime`` seconds (the client reconnects with ``Last-Event-ID``, and its token is checked
again: a stream outlives no token by more than that), and every one ends at once when the
intake stops (:meth:`Streams.close`), so that a graceful shutdown does not wait for them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from services.intake.waiters import Waiters

Doc = dict[str, Any]
KEEP_ALIVE = b": keep-alive\n\n"


class TooManyStreams(Exception):
    """Every place for a stream is taken."""


class Unreadable(Exception):
    """The document cannot be read now (the read model is unavailable): try at the next
    change."""


def event(revision: int, view: Doc) -> bytes:
    """One Server-Sent Event: the view (one line of JSON) at ``revision``."""
    data = json.dumps(view, ensure_ascii=False, separators=(",", ":"))
    return f"id: {revision}\nevent: status\ndata: {data}\n\n".encode()


def revision_of(document: Doc) -> int:
    """The document's revision (0 for one written before revisions)."""
    return int(document.get("revision") or 0)


class Stream:
    """The chunks of one open stream; :meth:`close` gives its place back (once), whether the
    chunks were read to their end or never started (a client gone before the first)."""

    def __init__(self, chunks: AsyncIterator[bytes], release: Callable[[], None]) -> None:
        self._chunks, self._release, self._closed = chunks, release, False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()


class Streams:
    """The open streams of the process: their bound, their end at shutdown."""

    def __init__(
        self,
        waiters: Waiters,
        *,
        max_streams: int,
        keep_alive: float = 15.0,
        lifetime: float = 600.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.waiters, self.max_streams = waiters, max_streams
        self.keep_alive, self.lifetime, self.monotonic = keep_alive, lifetime, monotonic
        self.open = 0
        self.closing = asyncio.Event()

    def close(self) -> None:
        """End every stream now, and every one opened from now on at its first event."""
        self.closing.set()

    def follow(
        self,
        declaration_id: str,
        first: Doc,
        last_event_id: int | None,
        read: Callable[[], Awaitable[Doc | None]],
        view: Callable[[Doc], Doc],
    ) -> Stream:
        """The stream of a declaration whose document is ``first`` now; ``read`` reads it
        again (None: it is no longer the caller's; :class:`Unreadable`: not now), ``view``
        makes the trader's view of it. TooManyStreams when every place is taken."""
        if self.open >= self.max_streams:
            raise TooManyStreams(f"{self.max_streams} status streams are open already")
        self.open += 1
        stream = Stream(self._chunks(declaration_id, first, last_event_id, read, view), self._gone)
        return stream

    def _gone(self) -> None:
        self.open -= 1

    async def _chunks(
        self,
        declaration_id: str,
        document: Doc,
        last_event_id: int | None,
        read: Callable[[], Awaitable[Doc | None]],
        view: Callable[[Doc], Doc],
    ) -> AsyncIterator[bytes]:
        ends = self.monotonic() + self.lifetime
        revision, shown = revision_of(document), view(document)
        if last_event_id != revision:  # the client does not have this revision
            yield event(revision, shown)
        while not self.closing.is_set():
            left = ends - self.monotonic()
            if left <= 0:
                return
            wait = min(self.keep_alive, left)
            moved = await self.waiters.wait_revision(declaration_id, revision, wait, self.closing)
            if self.closing.is_set():
                return
            if not moved:
                if self.monotonic() < ends:
                    yield KEEP_ALIVE
                continue
            try:
                found = await read()
            except Unreadable:
                continue
            if found is None:
                return  # no longer the caller's declaration
            revision = revision_of(found)
            now = view(found)
            if now != shown:
                shown = now
                yield event(revision, now)
