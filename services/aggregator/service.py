"""The aggregator process: the pure join inside a transactional Kafka loop.

Exactly one result per declaration decision: for each batch of one partition number, the
changed join states (compacted changelog), the results, any dead letters and the input
offsets commit in one Kafka transaction. Deadlines live in the state and are checked with
the wall clock, so they fire after a restart as they would have before it. After an error
whose outcome is unknown (a timeout during commit, a broker outage), the task is reopened
(new producer epoch, state restored from the changelog, input rewound to the committed
offsets) rather than retried blindly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ProducerFenced

from services.aggregator import join
from services.aggregator.tasks import NAME, Task
from singlewindow.events import AgencyVerdict, ClearanceResult, DeclarationSubmitted, JoinState
from singlewindow.kafka.consumer import (
    PoisonMessage,
    Record,
    dead_letter_headers,
    decode_record,
    group_consumer,
    poll,
)
from singlewindow.kafka.headers import Headers
from singlewindow.metrics import MESSAGES
from singlewindow.settings import Settings
from singlewindow.topics import DECLARATIONS_SUBMITTED, VERDICT_TOPICS

log = logging.getLogger(__name__)
INPUTS = [DECLARATIONS_SUBMITTED.name, *(t.name for t in VERDICT_TOPICS.values())]


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def decode_input(record: Record) -> DeclarationSubmitted | AgencyVerdict:
    """An input event, or PoisonMessage (including a verdict on another agency's topic)."""
    if record.topic == DECLARATIONS_SUBMITTED.name:
        return decode_record(DeclarationSubmitted, record)
    verdict = decode_record(AgencyVerdict, record)
    topic = VERDICT_TOPICS.get(str(verdict.agency))
    if topic is None or topic.name != record.topic:
        raise PoisonMessage(f"a {verdict.agency} verdict on {record.topic}: one writer per topic")
    return verdict


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, aggregator: Aggregator) -> None:
        self.aggregator = aggregator

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # aiokafka calls this from its coordinator task: wait for the transaction in hand
        async with self.aggregator.busy:
            for p in sorted({tp.partition for tp in revoked}):
                await self.aggregator.drop_task(p)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        for p in sorted({tp.partition for tp in assigned}):
            await self.aggregator.open_task(p)
        self.aggregator.consumer.resume(*assigned)


class Aggregator:
    """Start/run/stop service joining verdicts into results, exactly once."""

    def __init__(
        self,
        settings: Settings,
        deadline: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tick_s: float = 1.0,
        group: str = NAME,
    ) -> None:
        self.settings, self.deadline, self.clock, self.tick_s = settings, deadline, clock, tick_s
        self.group = group
        self.tasks: dict[int, Task] = {}
        self.consumer = group_consumer(settings, group, NAME, max_poll_records=500)
        self._stopping = asyncio.Event()
        self._next_tick = 0.0
        self.busy = asyncio.Lock()  # held while a batch is processed, so revocation waits

    async def open_task(self, partition: int) -> None:
        task = Task(self.settings, self.group, partition)
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                await task.open()
                self.tasks[partition] = task
                return
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and _being_cancelled():
                    raise
                # aiokafka's fetcher can surface a CancelledError of its own in a broker outage
                log.warning("task p%s: open failed, retrying: %r", partition, exc)
                await task.close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def drop_task(self, partition: int) -> None:
        task = self.tasks.pop(partition, None)
        if task is not None:
            await task.close()

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.subscribe(INPUTS, listener=_Rebalance(self))

    async def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                batch = await poll(self.consumer, 200, NAME)
                async with self.busy:
                    by_task: dict[int, list[Record]] = {}
                    for tp, records in batch.items():
                        if tp.partition in self.tasks:
                            by_task.setdefault(tp.partition, []).extend(records)
                        elif tp in self.consumer.assignment():
                            # fetched while its task was still opening: fetch it again
                            self.consumer.seek(tp, records[0].offset)
                    for partition, records in sorted(by_task.items()):
                        await self._guarded(partition, self._process(partition, records))
                    await self._tick()
        finally:
            for partition in list(self.tasks):
                await self.drop_task(partition)
            await self.consumer.stop()  # leaves the group

    async def _process(self, partition: int, records: list[Record]) -> None:
        task = self.tasks[partition]
        changed: dict[str, JoinState] = {}
        results: list[ClearanceResult] = []
        letters: list[tuple[bytes | None, bytes | None, Headers]] = []
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
            try:
                event = decode_input(record)
            except PoisonMessage as exc:
                letters.append((record.key, record.value, dead_letter_headers(record, NAME, exc)))
                MESSAGES.labels(NAME, record.topic, "dead_lettered").inc()
                continue
            key = event.declaration_id
            before = changed.get(key) or task.states.get(key)
            state, out = join.step(before, event, self.deadline)
            if state is not before:
                changed[key] = state
            results += out
        await task.commit(changed.values(), results, letters, offsets)
        task.states.update(changed)
        for record in records:
            MESSAGES.labels(NAME, record.topic, "processed").inc()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_tick:
            return
        self._next_tick = loop.time() + self.tick_s
        now = self.clock()
        for partition in list(self.tasks):
            await self._guarded(partition, self._expire(partition, now))

    async def _expire(self, partition: int, now: datetime) -> None:
        task = self.tasks[partition]
        changed, results = {}, []
        for key, state in task.states.items():
            if state.decided is None and state.deadline is not None and state.deadline <= now:
                new, out = join.expire(state, now)
                changed[key], results = new, results + out
        if changed:
            await task.commit(changed.values(), results)
            task.states.update(changed)

    async def _guarded(self, partition: int, work: object) -> None:
        """Run one transaction's work; on failure, reopen the task from committed data."""
        try:
            await work  # type: ignore[misc]
        except ProducerFenced:
            log.warning("task p%s fenced by a newer owner: dropping it", partition)
            await self.drop_task(partition)
            self.consumer.pause(*self._inputs(partition))
        except Exception as exc:
            log.warning(
                "task p%s: transaction failed (%r); reopening from the changelog", partition, exc
            )
            await self._reopen(partition)

    def _inputs(self, partition: int) -> list[TopicPartition]:
        return [tp for tp in self.consumer.assignment() if tp.partition == partition]

    async def _reopen(self, partition: int) -> None:
        await self.drop_task(partition)
        if not any(tp.partition == partition for tp in self.consumer.assignment()):
            return
        await self.open_task(partition)
        for tp in self._inputs(partition):
            committed = await self.consumer.committed(tp)
            if committed is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)
