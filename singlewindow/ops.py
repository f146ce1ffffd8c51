"""The ops endpoints of every process: ``/metrics``, ``/livez``, ``/readyz``.

:func:`serve_ops` serves them on the process's metrics port: a few dozen lines of HTTP/1.0
on asyncio's streams, in the process's own event loop, so a loop that is blocked does not
answer and fails its liveness probe (prometheus_client's server ran in a thread, which
answered whatever the loop did). Each connection answers one GET and closes; a request head
is bounded (8 KiB, 5 s). Plain HTTP, no auth: the port is the cluster's, never the
Internet's.

The HTTP services answer the same on their API port too (:mod:`singlewindow.web`), where
``/healthz`` stays an alias of ``/livez``. Bodies are JSON (:mod:`singlewindow.health`);
liveness and readiness 200, or 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from singlewindow.health import Health

log = logging.getLogger(__name__)
JSON = "application/json"
MAX_HEAD_BYTES = 8192
HEAD_TIMEOUT_S = 5.0
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
REASONS[503] = "Service Unavailable"
Answer = tuple[int, str, bytes]


def _json(ok: bool, body: dict[str, Any]) -> Answer:
    return (200 if ok else 503), JSON, json.dumps(body).encode()


async def livez(health: Health) -> Answer:
    """Liveness: 200 while the process makes progress, else 503 naming the loop that hangs."""
    return _json(*health.live())


async def readyz(health: Health) -> Answer:
    """Readiness: 200 when every check passes, else 503 naming what is not ready."""
    return _json(*await health.ready())


async def metrics(health: Health) -> Answer:
    """The default registry, ``singlewindow_ready`` evaluated first (probes are cached)."""
    await health.ready()
    return 200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY)


ROUTES = {"/livez": livez, "/healthz": livez, "/readyz": readyz, "/metrics": metrics}


async def answer(health: Health, method: str, path: str) -> Answer:
    """What the ops server answers to ``method path``."""
    route = ROUTES.get(path)
    if route is None:
        return 404, JSON, b'{"error": "not found"}'
    if method not in ("GET", "HEAD"):
        return 405, JSON, b'{"error": "GET only"}'
    return await route(health)


class OpsServer:
    """The ops endpoints on ``host``:``port`` (0: any free port, then ``port`` says which)."""

    def __init__(self, health: Health, port: int, host: str = "0.0.0.0") -> None:
        self.health, self.host, self.port = health, host, port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, limit=MAX_HEAD_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(HEAD_TIMEOUT_S):
                    head = await reader.readuntil(b"\r\n\r\n")
                method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return  # a half request, or none: nothing to answer
            except ValueError:
                status, kind, body = 400, JSON, b'{"error": "bad request"}'
            else:
                status, kind, body = await answer(self.health, method, target.split("?", 1)[0])
                if method == "HEAD":
                    body = b""
            reason = REASONS.get(status, "")
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except ConnectionError:
            pass  # the caller went away
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def serve_ops(health: Health, port: int) -> OpsServer | None:
    """The ops server on ``port``, started (0: none, nothing is served)."""
    if not port:
        return None
    server = OpsServer(health, port)
    await server.start()
    log.info("ops endpoints (/metrics, /livez, /readyz) on port %s", server.port)
    return server
