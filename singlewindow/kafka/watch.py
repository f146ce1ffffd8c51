"""What a group member reports about itself: its assignment (readiness), its lag (metrics).

- :class:`AssignmentListener` is the member's rebalance listener: between a revocation and
  the next assignment the member is not ready (``rebalancing``); once assigned it is,
  partitions or none. A member with none is an idle standby (the group has more members than
  the topics have partitions): ready, it takes over when another member leaves.
- :class:`LagMeter` sets ``singlewindow_consumer_lag`` per assigned partition: the partition's
  end as the last fetch saw it (the last stable offset: the members read committed, so a
  transactional topic's end is where its records become readable) minus the member's
  position. Called after each poll, it does its work at most once per ``every_s`` and never
  asks the broker: both numbers are what the fetcher already knows. A partition not fetched
  yet has no lag until it is; one revoked loses its series.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError
from prometheus_client import Gauge

from singlewindow.health import Check
from singlewindow.metrics import CONSUMER_LAG

log = logging.getLogger(__name__)

NOT_ASSIGNED = "no assignment yet"
REBALANCING = "rebalancing"
IDLE = "no partition assigned: the group has more members than partitions (a standby)"


class AssignmentListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """A rebalance listener that keeps ``check`` (the member's ``partitions`` readiness)."""

    def __init__(self, check: Check) -> None:
        self.check = check
        check.set(False, NOT_ASSIGNED)

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.revoked()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.assigned(assigned)

    def revoked(self) -> None:
        self.check.set(False, REBALANCING)

    def assigned(self, assigned: Iterable[TopicPartition]) -> None:
        count = len(set(assigned))
        self.check.set(True, f"{count} partitions assigned" if count else IDLE)


class Offsets(Protocol):
    """What the meter reads of a consumer (aiokafka's and the fake broker's have it)."""

    def assignment(self) -> set[TopicPartition]: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    def last_stable_offset(self, partition: TopicPartition) -> int | None: ...
    async def position(self, partition: TopicPartition) -> int: ...


def partition_end(consumer: Offsets, tp: TopicPartition) -> int | None:
    """The end of ``tp`` as the last fetch saw it (None: not fetched yet): its last stable
    offset, or its high watermark where the broker gives none (-1: read uncommitted)."""
    end = consumer.last_stable_offset(tp)
    if end is None or end < 0:
        end = consumer.highwater(tp)
    return end


class LagMeter:
    """``singlewindow_consumer_lag{service, group, topic, partition}`` of one member."""

    def __init__(
        self,
        service: str,
        group: str,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service, self.group, self.every_s, self.clock = service, group, every_s, clock
        self.gauges: dict[TopicPartition, Gauge] = {}
        self._next_at = 0.0

    async def update(self, consumer: Offsets) -> None:
        """Set the lag of every assigned partition (at most once per ``every_s``)."""
        now = self.clock()
        if now < self._next_at:
            return
        self._next_at = now + self.every_s
        assigned = consumer.assignment()
        for tp in [tp for tp in self.gauges if tp not in assigned]:
            self.forget(tp)
        try:
            # a position is known once a partition was fetched; bounded all the same: a
            # partition just rewound (seek_to_beginning) waits for its reset
            async with asyncio.timeout(0.5):
                for tp in assigned:
                    end = partition_end(consumer, tp)
                    if end is not None:
                        lag = max(end - await consumer.position(tp), 0)
                        self._gauge(tp).set(lag)
        except (TimeoutError, IllegalStateError, AssertionError) as exc:  # revoked meanwhile
            log.debug("%s: lag not measured this time: %r", self.service, exc)

    def forget(self, tp: TopicPartition) -> None:
        if self.gauges.pop(tp, None) is not None:
            CONSUMER_LAG.remove(self.service, self.group, tp.topic, str(tp.partition))

    def close(self) -> None:
        """Drop every series of this member (it left the group)."""
        for tp in list(self.gauges):
            self.forget(tp)

    def _gauge(self, tp: TopicPartition) -> Gauge:
        gauge = self.gauges.get(tp)
        if gauge is None:
            labels = (self.service, self.group, tp.topic, str(tp.partition))
            gauge = self.gauges[tp] = CONSUMER_LAG.labels(*labels)
        return gauge
