"""The intake process under ``singlewindow.runtime``, like every other service.

:class:`IntakeProcess` is a ``runtime.Service``: ``start`` starts the Kafka producer in the
background (Kafka may be away: the intake serves anyway, and submissions answer 503 until the
producer started), ``run`` serves HTTP (uvicorn) until ``stop``, lets the requests in flight
finish, then closes the adapters. ``runtime.serve`` owns SIGTERM and SIGINT and calls
``stop``; uvicorn's own signal handling is left out (:class:`Server`), so a stopped intake
exits 0 like the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Protocol

import uvicorn
from starlette.types import ASGIApp


class Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: whoever runs it says when to stop
    (``should_exit``), here ``runtime.serve`` on SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(app: ASGIApp, host: str, port: int) -> Server:
    """The intake's HTTP server for ``app`` on ``host``:``port``."""
    return Server(
        # log_config=None: uvicorn logs through the process's (rate-limited) logging
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="info",
            log_config=None,
            # h11, not httptools (which uvicorn picks when installed): uvicorn bounds a
            # request's headers (16 KiB) only with h11, and no caller is authenticated yet
            http="h11",
        )
    )


class Producer(Protocol):
    async def start(self, stopping: asyncio.Event | None = None) -> None:
        """Start, waiting for Kafka as long as it takes, or until ``stopping`` is set."""
        ...


class IntakeProcess:
    """The intake as a ``runtime.Service``: ``server`` serves the app; ``producer`` starts
    in the background; ``stopping`` are called when it is told to stop (the status streams
    end: the graceful shutdown waits for every response); ``closing`` (the adapters' close
    and stop) are awaited in order once the server stopped."""

    def __init__(
        self,
        server: uvicorn.Server,
        producer: Producer,
        closing: Sequence[Callable[[], Awaitable[None]]] = (),
        stopping: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.server, self.producer, self.closing = server, producer, closing
        self.stopping = stopping
        self._stopping = asyncio.Event()
        self._starting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the producer in the background: serving does not wait for Kafka."""
        self._starting = asyncio.create_task(self.producer.start(self._stopping))

    async def run(self) -> None:
        """Serve until :meth:`stop`, the requests in flight answered, then close."""
        try:
            await self.server.serve()
        finally:
            self._stopping.set()  # the producer gives up waiting for Kafka, if it still does
            if self._starting is not None:
                await self._starting
            for close in self.closing:
                await close()

    async def stop(self) -> None:
        """Stop accepting connections; :meth:`run` returns once the requests in flight are
        answered (uvicorn's graceful shutdown), the endless ones (streams) ended first."""
        for stop in self.stopping:
            stop()
        self.server.should_exit = True
