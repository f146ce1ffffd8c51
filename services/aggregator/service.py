"""The aggregator process: the pure join inside a transactional Kafka loop.

Exactly one result per declaration decision: for each batch of one partition number, the
changed join states (compacted changelog), the results, any dead letters and the input
offsets commit in one Kafka transaction. Deadlines live in the state and are checked with
the wall clock, so they fire after a restart as they would have before it. After an error
whose outcome is unknown (a timeout during commit, a broker outage), the task is reopened
(new producer epoch, state restored from the changelog, input rewound to the committed
offsets) rather than retried blindly.

Nothing an input record carries can stop a partition: a record that does not decode, whose
key is not its event's declaration id (its state would split across partitions), whose
times the join cannot take, or a submission older than the retention (see ``join.stale``)
goes to the dead-letter topic in the batch's transaction. The tick looks only at the states
that are due (``JoinTable``): timeouts (a version's verdicts, or its inspection order's
findings, missing at their deadline), and orphans or decided states past their retention,
which are dropped with a changelog tombstone so that the compacted changelog and the memory
hold what the retention keeps, not the whole history.

It reports into the process's :class:`~singlewindow.health.Health`: the loop's progress on
every iteration; readiness of ``kafka`` (started, a metadata round trip), ``partitions``
(its rebalance listener) and ``tasks`` (none still restoring its changelog). Once a
transaction committed it observes what its steps measured (:mod:`services.aggregator.observe`:
submit-to-final and verdict latencies, in event time) and counts its dead letters; the open
join states and pending deadlines are read off the tasks' tables at a scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ProducerFenced

from services.aggregator import join
from services.aggregator.observe import first_answers, verdict_latencies
from services.aggregator.tasks import NAME, Task
from singlewindow import tracing
from singlewindow.events import (
    AgencyVerdict,
    ClearanceResult,
    DeclarationSubmitted,
    DeclarationWithdrawn,
    InspectionFinding,
    JoinState,
    PaymentConfirmed,
)
from singlewindow.health import Health, NotReady
from singlewindow.kafka.connect import start_client
from singlewindow.kafka.consumer import (
    PoisonMessage,
    Record,
    decode_signed,
    group_consumer,
    poll,
)
from singlewindow.kafka.deadletter import Letter, dead_letter, dead_letter_limit, error_kind
from singlewindow.kafka.watch import AssignmentListener, LagMeter
from singlewindow.metrics import (
    DEAD_LETTERED,
    DEADLINES_PENDING,
    JOIN_STATES_OPEN,
    MESSAGES,
    SUBMIT_TO_FINAL,
    VERDICT_LATENCY,
    Children,
)
from singlewindow.registry import agency_registry
from singlewindow.retry import Stopped, retry
from singlewindow.runtime import being_cancelled
from singlewindow.settings import Settings
from singlewindow.signing import ServiceKeys, Verifier
from singlewindow.topics import (
    CLEARANCE_RESULTS,
    DECLARATIONS_SUBMITTED,
    DECLARATIONS_WITHDRAWN,
    INSPECTION_FINDINGS,
    PAYMENTS_CONFIRMED,
    inputs,
)

log = logging.getLogger(__name__)
INPUTS = list(inputs())
AGENCY_OF_TOPIC = {agency.topic: agency.code for agency in agency_registry()}
# the inputs other than the verdicts, by topic
LIFE_EVENTS: dict[
    str, type[DeclarationSubmitted | DeclarationWithdrawn | PaymentConfirmed | InspectionFinding]
] = {
    DECLARATIONS_SUBMITTED.name: DeclarationSubmitted,
    DECLARATIONS_WITHDRAWN.name: DeclarationWithdrawn,
    PAYMENTS_CONFIRMED.name: PaymentConfirmed,
    INSPECTION_FINDINGS.name: InspectionFinding,
}
# a declaration's life (a notice is due in 15 days) must fit in it, late interest included
RETENTION = timedelta(days=60)
LOOP = "join"  # the loop's name in the process's liveness
TO_FINAL = Children(SUBMIT_TO_FINAL)
TO_VERDICT = Children(VERDICT_LATENCY)


def decode_input(record: Record, keys: Verifier) -> join.Input:
    """An input event, or PoisonMessage: undecodable, keyed other than by its declaration id
    (``decode_record``), not signed by the principal that must sign it (``decode_signed``:
    the intake a declaration or a withdrawal, the agency its verdict, the bank a payment), or
    a verdict on a topic that is not its registered agency's."""
    kind = LIFE_EVENTS.get(record.topic)
    if kind is not None:
        event: join.Input = decode_signed(kind, record, keys)
        return event
    verdict = decode_signed(AgencyVerdict, record, keys)
    if AGENCY_OF_TOPIC.get(record.topic) != verdict.agency:
        raise PoisonMessage(f"a {verdict.agency} verdict on {record.topic}: one writer per topic")
    return verdict


def observed(
    to_final: Iterable[tuple[str, float]], to_verdict: Iterable[tuple[str, float]]
) -> None:
    """Observe what a committed transaction's steps measured (by status, by agency)."""
    for status, seconds in to_final:
        TO_FINAL(status).observe(seconds)
    for agency, seconds in to_verdict:
        TO_VERDICT(agency).observe(seconds)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka sends no heartbeat while ``on_partitions_assigned`` runs: a callback longer
    than the session (restoring a large changelog on a busy machine) gets the member thrown
    out of the group, and the next assignment starts over. So assigned partitions are only
    paused and noted here; the run loop opens their tasks, heartbeats going on meanwhile."""

    def __init__(self, aggregator: Aggregator) -> None:
        self.aggregator = aggregator

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.aggregator.assignment.revoked()
        # aiokafka calls this from its coordinator task: wait for the transaction in hand
        async with self.aggregator.busy:
            for p in sorted({tp.partition for tp in revoked}):
                self.aggregator.unopened.discard(p)
                await self.aggregator.drop_task(p)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.aggregator.consumer.pause(*assigned)
        self.aggregator.unopened.update(tp.partition for tp in assigned)
        self.aggregator.assignment.assigned(assigned)


class Aggregator:
    """Start/run/stop service joining verdicts into results, exactly once."""

    def __init__(
        self,
        settings: Settings,
        deadline: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tick_s: float = 1.0,
        group: str = NAME,
        retention: timedelta = RETENTION,
        keys: ServiceKeys | None = None,
        inspection_deadline: timedelta = join.INSPECTION_DEADLINE,
        health: Health | None = None,
    ) -> None:
        self.settings, self.deadline, self.clock, self.tick_s = settings, deadline, clock, tick_s
        self.inspection_deadline = inspection_deadline
        self.group, self.retention = group, retention
        self.keys = keys or ServiceKeys.from_settings(settings)
        self.tasks: dict[int, Task] = {}
        self.consumer = self._new_consumer()
        self._stopping = asyncio.Event()
        self._next_tick = 0.0
        self.busy = asyncio.Lock()  # held while a batch is processed, so revocation waits
        self.unopened: set[int] = set()  # assigned partitions whose tasks are still to open
        self.health = health or Health(NAME)
        self.assignment = AssignmentListener(self.health.check("partitions"))
        self.opening = self.health.check("tasks", "no task yet")
        self.opening.set(True, "no task yet")
        self.lag = LagMeter(NAME, group)
        self._started = False
        self.health.probe("kafka", self._reachable)
        JOIN_STATES_OPEN.set_function(lambda: sum(t.table.open for t in self.tasks.values()))
        DEADLINES_PENDING.set_function(lambda: sum(t.table.pending for t in self.tasks.values()))

    async def open_task(self, partition: int) -> None:
        task = Task(
            self.settings, self.group, partition, self.retention, self.keys, clock=self.clock
        )

        async def attempt() -> None:
            await task.open(progress=lambda: self.health.progress(LOOP))  # a restore is no hang
            self.tasks[partition] = task

        def retryable(exc: BaseException) -> bool:
            # aiokafka's fetcher can surface a CancelledError of its own in a broker outage
            if isinstance(exc, asyncio.CancelledError):
                return not being_cancelled()
            return isinstance(exc, Exception)

        async def reopen(exc: BaseException) -> None:
            self.health.progress(LOOP)  # retrying in an outage is no hang
            log.warning("task p%s: open failed, retrying: %r", partition, exc)
            await task.close()

        with contextlib.suppress(Stopped):  # stopping: the task stays unopened
            await retry(
                attempt, retryable, first_s=0.2, max_s=5.0, stopping=self._stopping, on_retry=reopen
            )

    async def drop_task(self, partition: int) -> None:
        task = self.tasks.pop(partition, None)
        if task is not None:
            await task.close()

    async def start(self) -> None:
        """Join the group, waiting for Kafka as long as it takes (or until :meth:`stop`)."""
        consumer = await start_client(self._new_consumer, NAME, self._stopping, first=self.consumer)
        if consumer is None:
            return
        self.consumer, self._started = consumer, True
        self.consumer.subscribe(INPUTS, listener=_Rebalance(self))

    async def _reachable(self) -> str:
        """The ``kafka`` readiness probe: started, and a broker answers a metadata request."""
        if not self._started:
            raise NotReady("connecting" if not self._stopping.is_set() else "stopped")
        await self.consumer.topics()
        return "connected"

    def _new_consumer(self) -> AIOKafkaConsumer:
        return group_consumer(self.settings, self.group, NAME, max_poll_records=500)

    async def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.health.progress(LOOP)
                if self.unopened:
                    await self._open_assigned()
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
                await self.lag.update(self.consumer)
        finally:
            self.health.ended(LOOP)
            self._started = False
            self.lag.close()
            for partition in list(self.tasks):
                await self.drop_task(partition)
            await self.consumer.stop()  # leaves the group

    async def _open_assigned(self) -> None:
        """Open the tasks of the partitions assigned since (together: each waits on the broker
        a while, fencing and reading its changelog), then fetch their inputs."""
        async with self.busy:
            partitions, self.unopened = self.unopened, set()
            self.opening.set(False, f"restoring the join states of {len(partitions)} partitions")
            for p in partitions:  # assigned again without a revocation: open it afresh
                await self.drop_task(p)
            await asyncio.gather(*(self.open_task(p) for p in sorted(partitions)))
            self.opening.set(True, f"{len(self.tasks)} tasks open")
            inputs = [tp for p in partitions if p in self.tasks for tp in self._inputs(p)]
            # from the offsets committed now: a previous owner's last transaction, fenced
            # only by the task just opened, may have moved them since the assignment
            await self._rewind(inputs)
            self.consumer.resume(*inputs)

    def _admit(self, record: Record, now: datetime) -> join.Input:
        """The record's event, if the join may take it; PoisonMessage saying why not."""
        event = decode_input(record, self.keys.registry)
        reason = join.admit(event, now, self.deadline, self.retention)
        if reason is not None:
            raise PoisonMessage(reason)
        return event

    async def _process(self, partition: int, records: list[Record]) -> None:
        with tracing.handling_batch(records, NAME, self.group):  # a span a record
            await self._transact(partition, records)

    async def _transact(self, partition: int, records: list[Record]) -> None:
        task = self.tasks[partition]
        now = self.clock()
        changed: dict[str, JoinState | None] = {}
        results: list[ClearanceResult] = []
        traces: list[tracing.Outgoing] = []  # each result continues its input's trace
        letters: list[Letter] = []
        poisoned: list[tuple[str, str]] = []  # (source topic, error kind)
        to_final: list[tuple[str, float]] = []
        to_verdict: list[tuple[str, float]] = []
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
            with tracing.within(record):
                try:
                    event = self._admit(record, now)
                except PoisonMessage as exc:
                    letters.append(dead_letter(record, NAME, exc, dead_letter_limit(self.settings)))
                    poisoned.append((record.topic, error_kind(exc)))
                    MESSAGES.labels(NAME, record.topic, "dead_lettered").inc()
                    tracing.failed(exc)
                    continue
                key = event.declaration_id
                before = changed.get(key) or task.table.get(key)
                state, out = join.step(before, event, self.deadline, self.inspection_deadline)
                if state is not before:
                    changed[key] = state
                    to_verdict += verdict_latencies(before, state, event)
                if out:
                    to_final += first_answers(before, state, out)
                results += out
                traces += (
                    tracing.outgoing(NAME, CLEARANCE_RESULTS.name, r.declaration_id) for r in out
                )
        await task.commit(changed, results, letters, offsets, traces=traces)
        task.table.apply(changed)
        observed(to_final, to_verdict)
        for topic, kind in poisoned:
            DEAD_LETTERED.labels(NAME, topic, kind).inc()
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
        """Time out what is due, drop what is past its retention: O(due + log n)."""
        task = self.tasks[partition]
        changes, results = task.table.expired(now)
        if changes:
            to_final: list[tuple[str, float]] = []
            for result in results:  # timeouts: the first answer of a version not answered
                key = result.declaration_id
                to_final += first_answers(task.table.get(key), changes.get(key), [result])
            await task.commit(changes, results)
            task.table.apply(changes)
            observed(to_final, ())

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
        await self._rewind(self._inputs(partition))

    async def _rewind(self, inputs: list[TopicPartition]) -> None:
        """Fetch ``inputs`` from their committed offsets (the beginning if none)."""
        for tp in inputs:
            committed = await self.consumer.committed(tp)
            if committed is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)
