"""Long-poll support: many waiting requests, one shared query loop against the read model.

While anyone waits, ONE background task asks ``read_model.final_among(all waited ids)``
every ``interval`` seconds and wakes the waiters whose declaration became final. Waiters of
the same id share one ``asyncio.Event``. When nobody waits, the task sleeps and queries
nothing. The number of concurrent waiters is bounded (``TooManyWaiters`` beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.intake.ports import ReadModel, ReadModelUnavailable

log = logging.getLogger(__name__)


class TooManyWaiters(Exception):
    """The bound on concurrent waiting requests is reached."""


class Waiters:
    def __init__(self, read_model: ReadModel, *, max_waiters: int, interval: float) -> None:
        self._read_model = read_model
        self._max_waiters = max_waiters
        self._interval = interval
        self._events: dict[str, asyncio.Event] = {}
        self._counts: dict[str, int] = {}
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
        """Wait until the declaration is seen final (True) or ``timeout`` seconds passed."""
        if self.waiting >= self._max_waiters:
            raise TooManyWaiters(f"{self._max_waiters} requests are waiting already")
        self.start()
        event = self._events.setdefault(declaration_id, asyncio.Event())
        self._counts[declaration_id] = self._counts.get(declaration_id, 0) + 1
        self._wakeup.set()
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._counts[declaration_id] -= 1
            if not self._counts[declaration_id]:
                del self._counts[declaration_id], self._events[declaration_id]

    async def _poll(self) -> None:
        while True:
            if not self._events:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            try:
                final = await self._read_model.final_among(list(self._events))
            except ReadModelUnavailable as exc:
                log.warning("read model unavailable while long-polling: %s", exc)
            except Exception:
                log.exception("long-poll query failed")
            else:
                for declaration_id in final:
                    if (event := self._events.get(declaration_id)) is not None:
                        event.set()
            await asyncio.sleep(self._interval)
