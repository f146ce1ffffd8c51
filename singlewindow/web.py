"""What every HTTP service of the platform adds to its FastAPI app (needs FastAPI, which
the SDK's wheel does not: an agency has no HTTP API).

- :class:`HttpMetrics`, ASGI middleware:
  ``singlewindow_http_request_duration_seconds{service, method, route, status}``, from the
  request's arrival to its response sent (its body included), by the route template
  (``/v1/declarations/{declaration_id}``, never the id itself: bounded label values; a path
  no route matches is ``unmatched``, an unknown method ``other``). Its ``_count`` is the
  request count: ``route="/v1/declarations", method="POST"`` by status is the intake's
  accepted (202), refused (4xx) and failed (5xx) declarations.
- :func:`add_routes`: the ops answers (:mod:`singlewindow.ops`) on the API port, open (no
  token): ``/livez``, ``/healthz`` (its alias, for older probes), ``/readyz``, and
  ``/metrics`` only when asked (the intake faces the Internet).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from singlewindow.health import Health
from singlewindow.metrics import HTTP_SECONDS, Children
from singlewindow.ops import ROUTES, Answer

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """ASGI middleware: every HTTP request's duration, by method, route template, status."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.seconds = Children(HTTP_SECONDS, service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # the router sets the matched route in the scope it was given (this one)
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.seconds(method, route, str(status)).observe(time.perf_counter() - started)


def add_routes(app: FastAPI, health: Health, metrics: bool = False) -> None:
    """``/livez``, ``/healthz`` (its alias) and ``/readyz`` on ``app``; ``/metrics`` too with
    ``metrics``."""
    paths = ["/livez", "/healthz", "/readyz", *(["/metrics"] if metrics else [])]
    for path in paths:
        endpoint = _endpoint(ROUTES[path], health)
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=path != "/metrics")


def _endpoint(route: Callable[[Health], Awaitable[Answer]], health: Health) -> Any:
    async def endpoint() -> Response:
        status, kind, body = await route(health)
        return Response(body, status_code=status, media_type=kind)

    endpoint.__doc__ = route.__doc__
    return endpoint
