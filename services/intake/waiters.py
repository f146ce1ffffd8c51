"""Long-poll support: many waiting requests, one shared query loop against the read model.

While anyone waits, ONE background task asks ``read_model.statuses(all waited ids)`` every
``interval`` seconds and wakes the waiters whose declaration moved on: to a status other than
the one the waiter last saw, or, for a waiter that names none, to any answer (a status in
``schema.ANSWERED``: the first answer, and every later step). Waiters of the same id and
seen status share one ``asyncio.Event``. When nobody waits, the task sleeps and queries
nothing. The number of concurrent waiters is bounded (``TooManyWaiters`` beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.intake.ports import ReadModel, ReadModelUnavailable
from services.intake.schema import ANSWERED

Waited = tuple[str, str | None]  # (declaration id, the status its waiters last saw)


def moved_on(status: str | None, seen: str | None) -> bool:
    """Whether a waiter that last saw ``seen`` (None: nothing yet) is answered by ``status``."""
    if status is None:
        return False
    return status in ANSWERED if seen is None else status != seen


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
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """How many requests wait now."""
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
        if self.waiting >= self._max_waiters:
            raise TooManyWaiters(f"{self._max_waiters} requests are waiting already")
        self.start()
        waited = (declaration_id, seen)
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
                statuses = await self._read_model.statuses(ids)
            except ReadModelUnavailable as exc:
                log.warning("read model unavailable while long-polling: %s", exc)
            except Exception:
                log.exception("long-poll query failed")
            else:
                for (declaration_id, seen), event in list(self._events.items()):
                    if moved_on(statuses.get(declaration_id), seen):
                        event.set()
            await asyncio.sleep(self._interval)
