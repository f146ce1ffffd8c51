"""Starting a Kafka client when the broker may not be up yet: a service waits for it.

aiokafka's ``start()`` raises ``KafkaConnectionError`` when no bootstrap server answers; a
process that let it escape would exit whenever it starts before Kafka (a fresh deployment, a
broker restart). :func:`start_client` retries instead, with backoff, each attempt bounded,
until the client starts or a stop is requested.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from aiokafka.errors import KafkaError

from singlewindow.retry import Stopped, retry

log = logging.getLogger(__name__)

# What a start can meet while the broker is away or still coming up.
START_FAULTS = (KafkaError, OSError, TimeoutError)


class Client(Protocol):
    """What :func:`start_client` needs of a client: aiokafka's consumers and producers."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


C = TypeVar("C", bound=Client)


async def start_client(
    make: Callable[[], C],
    what: str,
    stopping: asyncio.Event | None = None,
    first: C | None = None,
    attempt_timeout_s: float = 60.0,
    max_backoff_s: float = 10.0,
) -> C | None:
    """A started client (``first``, else one from ``make()``), or None once ``stopping`` is
    set. Each failed attempt is logged, its client closed, and a fresh one made for the next
    (an aiokafka client cannot be started twice). Cancellation closes the attempt in hand.
    """
    client = first or make()

    async def start() -> bool:
        return await attempt(client, stopping, attempt_timeout_s)

    async def replace(exc: BaseException) -> None:
        nonlocal client
        log.warning("%s: cannot start, Kafka not reachable; retrying: %r", what, exc)
        await close_quietly(client, what)
        client = make()

    try:
        started = await retry(
            start,
            lambda exc: isinstance(exc, START_FAULTS),
            first_s=0.5,
            max_s=max_backoff_s,
            stopping=stopping,
            on_retry=replace,
        )
    except Stopped:
        started = False
    except BaseException:  # cancelled, or a bug: close what was half started, re-raise
        await close_quietly(client, what)
        raise
    if started:
        return client
    await close_quietly(client, what)
    return None


async def attempt(client: Client, stopping: asyncio.Event | None, timeout_s: float) -> bool:
    """Start ``client`` within ``timeout_s``: True once started, False if ``stopping`` is set
    first (the start is then abandoned). A failed start raises."""
    async with asyncio.timeout(timeout_s):
        if stopping is None:
            await client.start()
            return True
        starting = asyncio.ensure_future(client.start())
        stopped = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (starting, stopped):
                task.cancel()
            await asyncio.gather(starting, stopped, return_exceptions=True)
        if starting.cancelled():
            return False
        starting.result()  # raises what the start raised
        return True


async def close_quietly(client: Client, what: str, timeout_s: float = 10.0) -> None:
    """Close a client that failed or will not be used; a failure to close is only logged."""
    try:
        await asyncio.wait_for(client.stop(), timeout_s)
    except Exception as exc:  # closing a client that never started: nothing left to save
        log.warning("%s: closing a client that did not start failed: %r", what, exc)
