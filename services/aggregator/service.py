"""The aggregator process: the join state machine inside a Kafka loop.

Consumes the submitted declarations and every verdict topic (one group, co-partitioned by
declaration id), applies ``join.step`` and publishes each ClearanceResult before the input
offset is committed. A ticker applies ``join.expire`` with the wall clock once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from services.aggregator import join
from singlewindow.events import AgencyVerdict, ClearanceResult, DeclarationSubmitted
from singlewindow.kafka.consumer import ConsumerService, PoisonMessage, Record, decode_record
from singlewindow.kafka.producer import EventProducer
from singlewindow.settings import Settings
from singlewindow.topics import CLEARANCE_RESULTS, DECLARATIONS_SUBMITTED, VERDICT_TOPICS

NAME = "aggregator"
log = logging.getLogger(__name__)


class Aggregator:
    """Start/stop service joining verdicts into results."""

    def __init__(
        self,
        settings: Settings,
        deadline: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tick_s: float = 1.0,
    ) -> None:
        self.deadline, self.clock, self.tick_s = deadline, clock, tick_s
        self.states: dict[str, join.JoinState] = {}
        self.producer = EventProducer(settings, NAME)
        topics = [DECLARATIONS_SUBMITTED.name, *(t.name for t in VERDICT_TOPICS.values())]
        self.consumer = ConsumerService(NAME, topics, NAME, settings, self.handle, self.producer)
        self._ticker: asyncio.Task[None] | None = None

    async def handle(self, record: Record) -> None:
        event: DeclarationSubmitted | AgencyVerdict
        if record.topic == DECLARATIONS_SUBMITTED.name:
            event = decode_record(DeclarationSubmitted, record)
        else:
            event = decode_record(AgencyVerdict, record)
            if VERDICT_TOPICS.get(str(event.agency)) is None or (
                VERDICT_TOPICS[str(event.agency)].name != record.topic
            ):
                raise PoisonMessage(f"a {event.agency} verdict on {record.topic}")
        state, results = join.step(self.states.get(event.declaration_id), event, self.deadline)
        self.states[event.declaration_id] = state
        await self._publish(results)

    async def tick(self) -> None:
        now = self.clock()
        for key, state in list(self.states.items()):
            state, results = join.expire(state, now)
            self.states[key] = state
            await self._publish(results)

    async def _publish(self, results: list[ClearanceResult]) -> None:
        for result in results:
            await self.producer.publish(CLEARANCE_RESULTS.name, result)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.tick()
            except Exception:  # a transient fault: the next tick retries what is left
                log.exception("deadline tick failed")

    async def start(self) -> None:
        await self.consumer.start()
        self._ticker = asyncio.create_task(self._tick_forever())

    async def run(self) -> None:
        await self.consumer.run()

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.consumer.stop()
