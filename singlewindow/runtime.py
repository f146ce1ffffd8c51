"""Run one service process: logging, the ops endpoints, traces, SIGTERM/SIGINT, a bounded
shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, Protocol, TypeVar

import uvloop

from singlewindow.health import Health
from singlewindow.logs import configure_logging
from singlewindow.ops import serve_ops
from singlewindow.settings import SettingsError
from singlewindow.signing import SignatureError
from singlewindow.tracing import configure_tracing

log = logging.getLogger(__name__)
T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a process's main coroutine on uvloop (libuv's event loop: its sockets and TLS cost
    a fraction of the standard loop's CPU, and every service is mostly socket I/O)."""
    return uvloop.run(main)


class Service(Protocol):
    """The start/stop interface of every service."""

    async def start(self) -> None: ...
    async def run(self) -> None: ...
    async def stop(self) -> None: ...


async def serve(service: Service, shutdown_timeout_s: float = 30.0) -> None:
    """Start ``service``, run it until SIGTERM/SIGINT, then stop it within the bound.

    A stop signal while the service is still starting (waiting for Kafka) is honoured too:
    the service is asked to stop, its start gives up, and its run only cleans up."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    stopper = asyncio.create_task(stop_requested.wait())
    starting = asyncio.create_task(service.start())
    await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if stopper.done():
        await service.stop()
    await starting  # a failed start surfaces as an exit code
    running = asyncio.create_task(service.run())
    await asyncio.wait({running, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        stopper.cancel()
        running.result()  # a crash surfaces as an exit code
        return
    log.info("stopping")
    await service.stop()
    try:
        await asyncio.wait_for(running, shutdown_timeout_s)
    except TimeoutError:
        log.error("did not stop within %ss", shutdown_timeout_s)
    except asyncio.CancelledError:
        # aiokafka's clients, closed while Kafka is away, re-raise the cancellation of their
        # own background requests: the stop is done, only the goodbye to the broker failed
        if being_cancelled():
            raise
        log.warning("stopped; Kafka was unreachable, so the group was not left cleanly")


def being_cancelled() -> bool:
    """Whether the current task is being cancelled (not just seeing a CancelledError)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def own_settings(name: str, read: Callable[[], T]) -> T:
    """The process's own settings, read once at its start (``read``: e.g.
    ``AggregatorSettings.read``): an invalid one exits at once (code 2), naming the
    variable, before anything is started."""
    try:
        return read()
    except SettingsError as exc:
        configure_logging(name)
        refuse_to_start(exc)


def refuse_to_start(reason: Exception) -> NoReturn:
    """Exit (code 2) saying why: what is missing or invalid in the configuration."""
    log.error("refusing to start: %s", reason)
    sys.exit(2)


def main(name: str, make_service: Callable[[Health], Service], metrics_port: int) -> None:
    """The body of every ``python -m services.<name>``; the service is built in the loop,
    given the process's :class:`~singlewindow.health.Health` to report into. The ops
    endpoints (``/metrics``, ``/livez``, ``/readyz``: :mod:`singlewindow.ops`) answer on
    ``metrics_port`` (0: none) from before the service is built until it stopped. A service
    whose keys or settings are missing or invalid exits at once (code 2), saying which."""
    configure_logging(name)

    async def build_and_serve() -> None:
        configure_tracing(name)  # before the service: its app's spans need the provider
        health = Health(name)
        ops = await serve_ops(health, metrics_port)
        try:
            await serve(make_service(health))
        finally:
            if ops is not None:
                await ops.stop()

    try:
        run_loop(build_and_serve())
    except (SignatureError, SettingsError) as exc:
        refuse_to_start(exc)
