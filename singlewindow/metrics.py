"""Prometheus metrics every service exposes on its own port (``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

MESSAGES = Counter(
    "singlewindow_messages_total",
    "Records consumed, by outcome (processed, skipped, dead_lettered, retried)",
    ["service", "topic", "outcome"],
)
HANDLE_SECONDS = Histogram(
    "singlewindow_handle_seconds", "Time to handle one record", ["service", "topic"]
)
PUBLISHED = Counter("singlewindow_published_total", "Events published", ["service", "topic"])
# the aggregator's committed results by status: TIMED_OUT is an escalation (an agency has not
# ruled by the deadline, or recorded no finding on an inspection order by the order's
# deadline), the signal for an operator's alert
STEPS = Counter(
    "singlewindow_clearance_steps_total",
    "Results the aggregator committed, by status (TIMED_OUT: an agency escalated)",
    ["status"],
)


def serve_metrics(port: int) -> None:
    """Serve ``/metrics`` on ``port`` in a background thread (0 disables)."""
    if port:
        start_http_server(port)
