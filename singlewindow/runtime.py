"""Run one service process: logging, metrics, SIGTERM/SIGINT, a bounded shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Protocol

from singlewindow.metrics import serve_metrics

log = logging.getLogger(__name__)


class Service(Protocol):
    """The start/stop interface of every service."""

    async def start(self) -> None: ...
    async def run(self) -> None: ...
    async def stop(self) -> None: ...


def configure_logging(service: str) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


async def serve(service: Service, shutdown_timeout_s: float = 30.0) -> None:
    """Start ``service``, run it until SIGTERM/SIGINT, then stop it within the bound."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    await service.start()
    running = asyncio.create_task(service.run())
    stopper = asyncio.create_task(stop_requested.wait())
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


def main(name: str, make_service: Callable[[], Service], metrics_port: int) -> None:
    """The body of every ``python -m services.<name>``; the service is built in the loop."""
    configure_logging(name)
    serve_metrics(metrics_port)

    async def build_and_serve() -> None:
        await serve(make_service())

    asyncio.run(build_and_serve())
