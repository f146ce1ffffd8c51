"""Waiting for a declaration to move on: many waiting requests, one shared query loop
against the read model.

While anyone waits, ONE background task asks ``read_model.heads(all waited ids)`` every
``interval`` seconds (the status and the revision of each, :class:`~ports.Head`) and wakes
the waiters whose declaration moved on:

- a long-poll (``GET /v1/declarations/{id}?wait=``, :meth:`Waiters.wait_change`): to a status
  other than the one it last saw, or, naming none, to any answer (a status in
  ``schema.ANSWERED``: the first answer, and every later step);
- a status stream (``GET /v1/declarations/{id}/events``, :meth:`Waiters.wait_revision`): to
  a revision other than the one it last read (any change of the document).

Waiters of the same id and the same thing seen share one ``asyncio.Event``. When nobody
waits, the task sleeps and queries nothing. The number of concurrent long-polls is bounded
(``TooManyWaiters`` beyond); streams are bounded where they are admitted (``streams``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.intake.ports import Head, ReadModel, ReadModelUnavailable
from services.intake.schema import ANSWERED

# (declaration id, what its waiters saw: ("status", the status or None) or ("revision", n))
Waited = tuple[str, tuple[str, str | int | None]]


def moved_on(status: str | None, seen: str | None) -> bool:
    """Whether a waiter that last saw ``seen`` (None: nothing yet) is answered by ``status``."""
    if status is None:
        return False
    return status in ANSWERED if seen is None else status != seen


def woken(head: Head | None, seen: tuple[str, str | int | None]) -> bool:
    """Whether a waiter that saw ``seen`` is woken by the document's ``head``."""
    if head is None:
        return False
    kind, value = seen
    if kind == "revision":
        return head.revision != value  # another revision: a change (or a rebuilt document)
    assert not isinstance(value, int)
    return moved_on(head.status, value)


log = logging.getLogger(__name__)


class TooManyWaiters(Exception):
    """The bound on concurrent waiting requests is reached."""


class Waiters:
    def __init__(self, read_model: ReadModel, *, max_waiters: int, interval: float) -> None:
        self._read_model = read_model
        self._max_waiters = max_waiters
        self._interval = interval
        self._events: dict[Waited, asyncio.Event] = {}
        self._counts: dict[Waited, int] = {}
        self._polls = 0  # long-polls waiting now (streams are bounded where admitted)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """How many requests wait now (long-polls and streams)."""
        return sum(self._counts.values())

    def start(self) -> None:
        """Start the shared task (idempotent; also restarts it if it ended)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="intake-waiters")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_final(self, declaration_id: str, timeout: float) -> bool:
        """Wait for the first answer (a status in ``ANSWERED``); see :meth:`wait_change`."""
        return await self.wait_change(declaration_id, None, timeout)

    async def wait_change(self, declaration_id: str, seen: str | None, timeout: float) -> bool:
        """Wait until the declaration moves on from ``seen`` (:func:`moved_on`: True) or
        ``timeout`` seconds passed (False)."""
        if self._polls >= self._max_waiters:
            raise TooManyWaiters(f"{self._max_waiters} requests are waiting already")
        self._polls += 1
        try:
            return await self._wait((declaration_id, ("status", seen)), timeout)
        finally:
            self._polls -= 1

    async def wait_revision(
        self, declaration_id: str, revision: int, timeout: float, stop: asyncio.Event
    ) -> bool:
        """Wait until the declaration's document has another revision than ``revision``
        (True), ``timeout`` seconds passed or ``stop`` is set (False)."""
        if stop.is_set():
            return False
        stopping = asyncio.ensure_future(stop.wait())
        try:
            waiting = asyncio.ensure_future(
                self._wait((declaration_id, ("revision", revision)), timeout)
            )
            done, _ = await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if waiting not in done:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
                return False
            return waiting.result()
        finally:
            stopping.cancel()

    async def _wait(self, waited: Waited, timeout: float) -> bool:
        self.start()
        event = self._events.setdefault(waited, asyncio.Event())
        self._counts[waited] = self._counts.get(waited, 0) + 1
        self._wakeup.set()
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._counts[waited] -= 1
            if not self._counts[waited]:
                del self._counts[waited], self._events[waited]

    async def _poll(self) -> None:
        while True:
            if not self._events:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            try:
                ids = list(dict.fromkeys(declaration_id for declaration_id, _ in self._events))
                heads = await self._read_model.heads(ids)
            except ReadModelUnavailable as exc:
                log.warning("read model unavailable while waiting for changes: %s", exc)
            except Exception:
                log.exception("waiters' query failed")
            else:
                for (declaration_id, seen), event in list(self._events.items()):
                    if woken(heads.get(declaration_id), seen):
                        event.set()
            await asyncio.sleep(self._interval)
