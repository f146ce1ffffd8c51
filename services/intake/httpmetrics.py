"""Prometheus metrics of the intake's HTTP traffic, as ASGI middleware.

``intake_http_requests_total{method, route, status}``: every request, by its route template
(``/v1/declarations/{declaration_id}``, never the id itself: bounded label values; an
unknown path is ``unmatched``, an unknown method ``other``);
``intake_declarations_total{outcome}``: every ``POST /v1/declarations`` as ``accepted``,
``rejected`` (4xx) or ``failed`` (5xx). Both go to the registry given, not the global one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DECLARATIONS = "/v1/declarations"


class HttpMetrics:
    """ASGI middleware: requests by method, route template and status; declarations by outcome."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "intake_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=registry,
        )
        self.declarations = Counter(
            "intake_declarations",
            "POSTed declarations: accepted, rejected (4xx), failed (5xx)",
            ["outcome"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.requests.labels(method, route, str(status)).inc()
            if route == DECLARATIONS and method == "POST":
                outcome = "accepted" if status < 400 else "rejected" if status < 500 else "failed"
                self.declarations.labels(outcome).inc()
