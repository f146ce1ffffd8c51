"""Prometheus metrics every service exposes (``/metrics``, :mod:`singlewindow.ops`).

One prefix, ``singlewindow_``; the label ``service`` is the process's name as
``runtime.main`` knows it. Everything lives in prometheus_client's default registry, with
the process and garbage-collector collectors, so one ``/metrics`` shows all of it.

On a hot path, take a label set's child once (``Children``) rather than calling
``.labels()`` per record: a lookup costs a lock, a tuple and a dictionary probe, which at
thousands of records a second is a measurable share of a core.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

MESSAGES = Counter(
    "singlewindow_messages_total",
    "Records consumed, by outcome (processed, skipped, dead_lettered, retried, not_routed)",
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
HTTP_SECONDS = Histogram(
    "singlewindow_http_request_duration_seconds",
    "HTTP requests by route template (unmatched: no route) and status, until the response is sent",
    ["service", "method", "route", "status"],
)
CONSUMER_LAG = Gauge(
    "singlewindow_consumer_lag",
    "Records between the group member's position and the partition's end (last stable "
    "offset), per assigned partition",
    ["service", "group", "topic", "partition"],
)
# event time: from the declaration's submitted_at to the result's decided_at, so a replay or
# a restart observes what the declarant lived, not when the aggregator happened to read it
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 14400, 86400)
SUBMIT_TO_FINAL = Histogram(
    "singlewindow_submit_to_final_seconds",
    "From a declaration version's submission to its first consolidated result (event times), "
    "by the result's status",
    ["status"],
    buckets=LATENCY_BUCKETS,
)
VERDICT_LATENCY = Histogram(
    "singlewindow_verdict_latency_seconds",
    "From a declaration version's submission to an agency's verdict on it (event times), "
    "observed when the aggregator reads the verdict",
    ["agency"],
    buckets=LATENCY_BUCKETS,
)
DEAD_LETTERED = Counter(
    "singlewindow_dead_letters_total",
    "Records sent to the dead-letter topic, by source topic and error kind (exception class)",
    ["service", "source_topic", "error"],
)
TRANSACTION_SECONDS = Histogram(
    "singlewindow_transaction_commit_seconds",
    "One Kafka transaction of the aggregator, from its begin to its commit acknowledged",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
JOIN_STATES_OPEN = Gauge(
    "singlewindow_join_states_open",
    "Join states of the aggregator's tasks not final (declarations in progress, orphans)",
)
DEADLINES_PENDING = Gauge(
    "singlewindow_deadlines_pending",
    "Undecided deadlines the aggregator's tasks hold (verdicts or findings awaited)",
)
READY = Gauge(
    "singlewindow_ready",
    "1 when the process is ready (what /readyz answers), else 0",
    ["service"],
)

M = TypeVar("M", bound=MetricWrapperBase)


class Children(Generic[M]):
    """The children of ``metric`` for label sets met on a hot path, each looked up once."""

    def __init__(self, metric: M, *fixed: str) -> None:
        self.metric, self.fixed = metric, fixed
        self._children: dict[Hashable, M] = {}

    def __call__(self, *labels: str) -> M:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.metric.labels(*self.fixed, *labels)
        return child
