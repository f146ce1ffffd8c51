"""The at-least-once consume loop every consumer service runs.

- A record's offset is committed only after its handler returned (or its dead letter was
  acknowledged): nothing is lost, a crash yields at most a harmless redelivery.
- A record that can never be processed (:class:`PoisonMessage`, or a handler error that
  persists over ``max_attempts``) goes to the dead-letter topic with its original key, value
  and headers plus provenance, cut to a size the broker accepts
  (:mod:`singlewindow.kafka.deadletter`); the partition keeps flowing.
- Transient faults (broker or database unavailable) are retried with backoff, forever, and
  never dead-lettered; the service does not exit on them, nor when Kafka is not up yet at
  start. A record Kafka refuses (:data:`~singlewindow.kafka.producer.REJECTED`, say a result
  too big to publish) is no transient fault: it counts as a handler failure.
- A record whose header key is not UTF-8 is delivered (:mod:`singlewindow.kafka.records`)
  and :func:`decode_record` rejects it as poison.
- It reports into the process's :class:`~singlewindow.health.Health`: progress on every
  iteration (an idle poll and a retry in an outage too), ``kafka`` readiness (not started,
  connecting, then a metadata round trip when asked), ``partitions`` readiness (its
  rebalance listener, :mod:`singlewindow.kafka.watch`), and its lag after each poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

from singlewindow import tracing
from singlewindow.avro import CodecError
from singlewindow.events import Event
from singlewindow.health import Health, NotReady
from singlewindow.kafka.connect import start_client
from singlewindow.kafka.deadletter import (
    MINIMAL_MAX_BYTES,
    Letter,
    dead_letter,
    dead_letter_limit,
    error_kind,
)
from singlewindow.kafka.options import kafka_options
from singlewindow.kafka.producer import REJECTED, EventProducer, PublishTimeout
from singlewindow.kafka.records import header_key_bytes, is_utf8_key
from singlewindow.kafka.transport import ConsumerClient, Transport
from singlewindow.kafka.watch import AssignmentListener, LagMeter
from singlewindow.metrics import DEAD_LETTERED, HANDLE_SECONDS, MESSAGES
from singlewindow.retry import Stopped, retry
from singlewindow.settings import Settings
from singlewindow.signing import SignatureError, Verifier
from singlewindow.topics import DEAD_LETTERS

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord  # aiokafka.ConsumerRecord[bytes, bytes]
Handler = Callable[[Record], Awaitable[None]]
BatchHandler = Callable[[list[Record]], Awaitable[None]]
TRANSIENT = (KafkaError, PublishTimeout, ConnectionFailure, OSError, TimeoutError)
LOOP = "consume"  # the loop's name in the process's liveness


def is_transient(exc: BaseException) -> bool:
    """A fault of the infrastructure, retried for ever; not one of the record itself."""
    return isinstance(exc, TRANSIENT) and not isinstance(exc, REJECTED)


class PoisonMessage(Exception):
    """This record can never be processed (undecodable, invalid): dead-letter it."""


E = TypeVar("E", bound=Event)


def refusal(record: Record, event: Event) -> str | None:
    """Why a decoded record is poison though its value is a valid event, or None.

    A header key that is not UTF-8 breaks the Kafka protocol (no producer of the platform
    writes one). A record whose key is not its event's declaration id (None and non-UTF-8
    keys included) would split a declaration's events across partitions. Every consumer
    refuses both alike, and auditors' tools read the log the same way.
    """
    for key, _ in record.headers or ():
        if not is_utf8_key(key):
            return f"header key {header_key_bytes(key)!r} is not UTF-8"
    if record.key != event.key():  # bytes compared: no key is ever decoded
        return (
            f"key {record.key!r:.80} is not the declaration id {event.declaration_id!r}: "
            "every topic is keyed by declaration id (co-partitioning)"
        )
    return None


def decode_record(kind: type[E], record: Record) -> E:
    """Decode and validate a record's value as ``kind``, or raise PoisonMessage saying why
    (see :func:`refusal` for the records refused although their value is valid)."""
    if record.value is None:
        raise PoisonMessage("empty value")
    try:
        event = kind.from_avro(record.value)
    except (CodecError, ValidationError) as exc:
        raise PoisonMessage(f"{type(exc).__name__}: {exc}") from exc
    reason = refusal(record, event)
    if reason is not None:
        raise PoisonMessage(reason)
    return event


def decode_signed(kind: type[E], record: Record, keys: Verifier) -> E:
    """:func:`decode_record`, then the signature: an event whose signature ``keys`` refuse
    (missing, unknown or revoked key, not its signer's, wrong) is a PoisonMessage too."""
    event = decode_record(kind, record)
    try:
        keys.check(record.value or b"", event)
    except SignatureError as exc:
        raise PoisonMessage(f"signature refused: {exc}") from exc
    return event


def group_consumer(
    settings: Settings,
    group_id: str,
    client_id: str,
    *topics: str,
    max_poll_records: int = 200,
    fill: Fill | None = None,
    listener: ConsumerRebalanceListener | None = None,
) -> AIOKafkaConsumer:
    """A consumer-group member as every service of the platform runs it: manual commits,
    ``read_committed``, range assignment (partition p of every co-partitioned topic goes to
    the same instance), a short session so a dead member's partitions move quickly. A fetch
    returns as soon as a record is there, unless ``fill`` lets the broker hold it.
    ``listener`` hears of its rebalances (without topics: the caller subscribes)."""
    fill = fill or Fill()
    consumer = AIOKafkaConsumer(
        **kafka_options(settings),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        request_timeout_ms=settings.kafka_request_timeout_ms,
        max_poll_records=max_poll_records,
        fetch_max_wait_ms=fill.max_wait_ms,
        fetch_min_bytes=fill.min_bytes,
        partition_assignment_strategy=(RangePartitionAssignor,),
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_session_timeout_ms // 3,
    )
    if topics:
        consumer.subscribe(list(topics), listener=listener)
    return consumer


@dataclass(frozen=True)
class Fill:
    """How long the broker may hold a fetch until ``min_bytes`` are there. The default is
    aiokafka's: a fetch returns at once when there is a record (and an idle consumer asks
    twice a second). A consumer off the critical path holds longer for larger batches; a
    short wait on the critical path costs more than it saves: at 10 ms, every idle consumer
    made a hundred empty round trips a second (9% of a core per agency, a quarter of one
    for the broker)."""

    max_wait_ms: int = 500
    min_bytes: int = 1


async def poll(
    consumer: ConsumerClient, timeout_ms: int, service: str
) -> dict[TopicPartition, list[Record]]:
    """The next records; during a broker outage nothing, after a pause: a service never exits
    on one."""
    try:
        batch: dict[TopicPartition, list[Record]] = await consumer.getmany(timeout_ms=timeout_ms)
        return batch
    except KafkaError as exc:
        log.warning("%s: consumer: %r; retrying", service, exc)
        await asyncio.sleep(1)
        return {}


class ConsumerService:
    """Consume ``topics`` in consumer group ``group_id``; hand every record to ``handle``.

    Its consumer is an aiokafka group member, or the ``transport``'s (see
    :mod:`singlewindow.kafka.transport`); ``producer`` (for dead letters) should use the
    same transport.
    """

    def __init__(
        self,
        service: str,
        topics: list[str],
        group_id: str,
        settings: Settings,
        handle: Handler,
        producer: EventProducer,
        max_attempts: int = 3,
        max_backoff_s: float = 5.0,
        handle_batch: BatchHandler | None = None,
        fill: Fill | None = None,
        transport: Transport | None = None,
        health: Health | None = None,
    ) -> None:
        self.service, self.topics, self.handle = service, topics, handle
        self.handle_batch = handle_batch
        self.producer, self.max_attempts, self.max_backoff_s = producer, max_attempts, max_backoff_s
        self.dead_letter_max_bytes = dead_letter_limit(settings)
        self.settings, self.group_id = settings, group_id
        self.fill, self.transport = fill, transport
        self.health = health or Health(service)
        self.assignment = AssignmentListener(self.health.check("partitions"))
        self.lag = LagMeter(service, group_id)
        self._kafka = "not started"  # then "connecting", then "started"
        self.health.probe("kafka", self._reachable)
        self.consumer = self._new_consumer()
        self._stopping = asyncio.Event()

    def _new_consumer(self) -> ConsumerClient:
        """A new group member: aiokafka's (or the transport's client, when given one)."""
        if self.transport is not None:
            return self.transport.consumer(
                self.settings,
                self.group_id,
                self.service,
                self.topics,
                self.fill,
                listener=self.assignment,
            )
        consumer: ConsumerClient = group_consumer(
            self.settings,
            self.group_id,
            self.service,
            *self.topics,
            fill=self.fill,
            listener=self.assignment,
        )
        return consumer

    async def start(self) -> None:
        """Start the producer and join the group, waiting for Kafka as long as it takes (or
        until :meth:`stop`)."""
        self._kafka = "connecting"  # for as long as it takes: no loop runs yet, none hangs
        await self.producer.start(self._stopping)
        consumer = await start_client(
            self._new_consumer, f"{self.service}: consumer", self._stopping, first=self.consumer
        )
        if consumer is not None:
            self.consumer, self._kafka = consumer, "started"

    async def _reachable(self) -> str:
        """The ``kafka`` readiness probe: started, and a broker answers a metadata request."""
        if self._kafka != "started":
            raise NotReady(self._kafka)
        await self.consumer.topics()
        return "connected"

    async def stop(self) -> None:
        """Ask the loop to finish the record in hand, commit, leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.health.progress(LOOP)
                batch = await poll(self.consumer, 500, self.service)
                handled = False  # the whole batch at once
                if batch and self.handle_batch is not None:
                    outcome = await self._try_batch([r for rs in batch.values() for r in rs])
                    if outcome is None:  # stopping during a transient fault: commit nothing
                        break
                    handled = outcome
                if handled:
                    await self._commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})
                else:
                    await self._one_at_a_time(batch)
                # after every poll, a batch handled at once included: under load, every poll
                # brings one, and that is when the lag matters
                await self.lag.update(self.consumer)
        finally:
            self.health.ended(LOOP)
            self._kafka = "stopped"
            self.lag.close()
            await self.consumer.stop()  # leaves the group
            await self.producer.stop()

    async def _one_at_a_time(self, batch: dict[TopicPartition, list[Record]]) -> None:
        """Each record of ``batch`` handled alone, then the offsets of those done committed."""
        done: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            last = await self._process_partition(records)
            if last is not None:
                done[tp] = last.offset + 1
            if self._stopping.is_set():
                break
        if done:
            await self._commit(done)

    async def _try_batch(self, records: list[Record]) -> bool | None:
        """The whole batch at once: True when done, False to fall back to one at a time,
        None when stopping during a transient fault (or before the first try)."""
        handle_batch = self.handle_batch
        assert handle_batch is not None

        async def attempt() -> None:
            with tracing.handling_batch(records, self.service, self.group_id):
                await handle_batch(records)

        def transient(exc: BaseException) -> None:
            self.health.progress(LOOP)
            log.warning("%s: transient fault, retrying the batch: %r", self.service, exc)

        try:
            await retry(
                attempt,
                is_transient,
                max_s=self.max_backoff_s,
                stopping=self._stopping,
                on_retry=transient,
            )
        except Stopped:
            return None
        except Exception as exc:
            log.warning("%s: batch failed (%r); one record at a time", self.service, exc)
            return False
        for record in records:
            MESSAGES.labels(self.service, record.topic, "processed").inc()
        return True

    async def _process_partition(self, records: list[Record]) -> Record | None:
        last = None
        for record in records:
            if self._stopping.is_set():
                break
            with (
                HANDLE_SECONDS.labels(self.service, record.topic).time(),
                tracing.handling(record, self.service, self.group_id),
            ):
                await self._process(record)
            last = record
        return last

    async def _process(self, record: Record) -> None:
        """Handle one record: transient faults are retried for ever, other failures up to
        ``max_attempts`` in a row, then (or at once for a PoisonMessage) it is dead-lettered."""
        failures = 0

        async def attempt() -> None:
            await self.handle(record)

        def retryable(exc: BaseException) -> bool:
            nonlocal failures
            if not isinstance(exc, Exception) or isinstance(exc, PoisonMessage):
                return False
            if is_transient(exc):
                log.warning("%s: transient fault, retrying: %r", self.service, exc)
                failures = 0  # transient faults never count towards dead-lettering
                return True
            log.error(
                "%s: handler failed on %s@%s",
                self.service,
                record.topic,
                record.offset,
                exc_info=exc,
            )
            failures += 1
            return failures < self.max_attempts

        def retried(exc: BaseException) -> None:
            self.health.progress(LOOP)
            MESSAGES.labels(self.service, record.topic, "retried").inc()

        try:
            await retry(attempt, retryable, max_s=self.max_backoff_s, on_retry=retried)
        except Exception as exc:
            await self._dead_letter(record, exc)
            return
        MESSAGES.labels(self.service, record.topic, "processed").inc()

    async def _dead_letter(self, record: Record, error: BaseException) -> None:
        """Send the dead letter of ``record``; return once Kafka acknowledged it.

        Should the broker refuse the letter itself (a ``message.max.bytes`` below this
        service's bound), a minimal one goes instead; retried for ever are only transient
        faults, and a refusal of the minimal letter, which only a broken broker gives.
        """
        letter: Letter = dead_letter(record, self.service, error, self.dead_letter_max_bytes)
        minimal = False

        async def attempt() -> None:
            nonlocal letter, minimal
            try:
                await self.producer.send(DEAD_LETTERS.name, *letter)
            except REJECTED as exc:
                if minimal:
                    raise
                log.warning("%s: dead letter refused (%r); sending less", self.service, exc)
                letter = dead_letter(record, self.service, error, MINIMAL_MAX_BYTES)
                minimal = True
                await self.producer.send(DEAD_LETTERS.name, *letter)

        def failed(exc: BaseException) -> None:
            self.health.progress(LOOP)
            if isinstance(exc, REJECTED):
                log.warning("%s: even a minimal dead letter refused: %r", self.service, exc)
            else:
                log.warning("%s: dead-letter topic unavailable, retrying: %r", self.service, exc)

        await retry(
            attempt,
            lambda exc: isinstance(exc, TRANSIENT),
            max_s=self.max_backoff_s,
            on_retry=failed,
        )
        MESSAGES.labels(self.service, record.topic, "dead_lettered").inc()
        DEAD_LETTERED.labels(self.service, record.topic, error_kind(error)).inc()
        tracing.failed(error)
        log.warning(
            "%s: dead-lettered %s@%s/%s: %s",
            self.service,
            record.topic,
            record.partition,
            record.offset,
            error,
        )

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit ``offsets`` in one request (a partition revoked meanwhile is left out: its
        new owner redelivers from its last commit)."""

        async def attempt() -> None:
            nonlocal offsets
            assignment = self.consumer.assignment()
            revoked = [tp for tp in offsets if tp not in assignment]
            if revoked:
                log.warning("%s: %s revoked before its commit; redelivered", self.service, revoked)
                offsets = {tp: o for tp, o in offsets.items() if tp in assignment}
            if not offsets:
                return
            try:
                await self.consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                # the partitions moved to another instance, which redelivers from the last commit
                log.warning("%s: commit lost to a rebalance: %r", self.service, exc)

        def failed(exc: BaseException) -> None:
            self.health.progress(LOOP)
            log.warning("%s: commit failed, retrying: %r", self.service, exc)

        await retry(
            attempt,
            lambda exc: isinstance(exc, TRANSIENT),
            max_s=self.max_backoff_s,
            on_retry=failed,
        )
