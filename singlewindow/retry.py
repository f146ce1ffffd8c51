"""Waiting out a fault: the one retry-with-backoff loop of the platform.

Every loop that outlasts an outage (Kafka or the database away, a client that cannot start,
a commit or a dead letter that cannot be sent yet) is :func:`retry`: an attempt, then on a
failure the caller accepts a pause, doubling from ``first_s`` up to ``max_s``, then the next
attempt. What differs between the loops is only what is worth retrying (``retryable``), what
is done before each pause (``on_retry``: log, count, close a broken client) and whether a
stop request ends the retrying (``stopping``).

A loop of its own rather than tenacity's: tenacity builds and inspects its machinery on every
call, about 0.1 ms even when the first attempt succeeds, and this runs on the critical path,
twice per fetched batch of every consumer (the batch, its commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Stopped(Exception):
    """A stop was requested (``stopping`` set) before the next attempt: none was made."""


async def pause(seconds: float, stopping: asyncio.Event | None = None) -> None:
    """Sleep ``seconds``, or less when ``stopping`` is set meanwhile."""
    if stopping is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def retry(
    attempt: Callable[[], Awaitable[T]],
    retryable: Callable[[BaseException], bool],
    *,
    first_s: float = 0.1,
    max_s: float = 5.0,
    stopping: asyncio.Event | None = None,
    on_retry: Callable[[BaseException], object] | None = None,
) -> T:
    """``await attempt()`` until it returns; what it returns.

    A failure that ``retryable`` accepts is followed by ``on_retry(failure)`` (awaited when it
    returns an awaitable), a pause (``first_s``, twice that, ... at most ``max_s``) and the
    next attempt; any other failure is raised at once, as it was raised. ``retryable`` sees
    every failure, :class:`asyncio.CancelledError` included: it must refuse a cancellation,
    unless one is a fault to wait out. It is asked once per failure, so it may count them.

    With ``stopping``, a pause ends early once it is set, and no attempt begins once it is
    set: :class:`Stopped` is raised instead (before the first attempt too).
    """
    delay = min(first_s, max_s)
    while True:
        if stopping is not None and stopping.is_set():
            raise Stopped
        try:
            return await attempt()
        except BaseException as exc:
            if not retryable(exc):
                raise
            if on_retry is not None:
                done = on_retry(exc)
                if inspect.isawaitable(done):
                    await done
        await pause(delay, stopping)
        delay = min(delay * 2, max_s)
