"""Testing a service without Kafka: :class:`FakeBroker`, topics in memory.

An agency (ours or one outside this project) tests its handler in full, in memory: its
service is built as in production but with ``transport=broker``, so the SDK's own consume
loop runs it (decoding, signatures, batches and their fallback to one record at a time,
dead letters, retries, commits), only the clients are the broker's::

    async with FakeBroker() as broker:
        service = agency_service("customs", assess, settings, transport=broker)
        await broker.start(service)
        await broker.publish(DECLARATIONS_SUBMITTED.name, declaration, signer=intake_key)
        await broker.run_until_idle()
        verdicts = broker.events(verdict_topics()["customs"].name, AgencyVerdict)
        assert broker.dead_letters() == []
        assert broker.committed("customs") == {TopicPartition(DECLARATIONS_SUBMITTED.name, 0): 1}

``settings`` name the service's signing key and the key registry (files), as in production:
:mod:`singlewindow.signing` makes keys and registries (``SigningKey.generate``,
``register``, ``KeyRegistry.save``).

What the broker does as Kafka does: partitions (a key's partition is the Java client's and
aiokafka's, murmur2), offsets, per-group committed offsets, range assignment among a group's
members (with every member's positions reset to the committed offsets on a rebalance),
``auto_offset_reset="earliest"``, the size limit of a record (``message.max.bytes``), header
keys that are not UTF-8 delivered as :mod:`singlewindow.kafka.records` delivers them. What it
does not: transactions (every record is visible at once), replication, retention and
compaction, timeouts of a group member, a fetch's byte limits. Faults are injected:
:meth:`FakeBroker.fail` makes sends to a topic fail, :meth:`FakeBroker.hold` keeps them
unacknowledged until released.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalOperation,
    IllegalStateError,
    MessageSizeTooLargeError,
)
from aiokafka.partitioner import DefaultPartitioner

from singlewindow.events import Event
from singlewindow.kafka.consumer import Fill
from singlewindow.kafka.deadletter import letter_size
from singlewindow.kafka.headers import Headers, event_headers
from singlewindow.kafka.records import header_key_bytes
from singlewindow.kafka.transport import Transport
from singlewindow.runtime import Service
from singlewindow.settings import Settings
from singlewindow.signing import SigningKey
from singlewindow.topics import DEAD_LETTERS

E = TypeVar("E", bound=Event)
AnyHeaders = Sequence[tuple[str | bytes, bytes | None]]
# the broker's default message.max.bytes
MAX_MESSAGE_BYTES = 1_048_588
_KEY_OF_EVENT: Any = object()  # publish's default key: the event's own


class Hold:
    """Sends to a topic wait here, neither written nor acknowledged, until :meth:`release`."""

    def __init__(self, broker: FakeBroker, topic: str) -> None:
        self.broker, self.topic = broker, topic
        self.waiting = 0  # sends held now
        self._released = asyncio.Event()

    async def reached(self, count: int = 1, timeout_s: float = 5.0) -> None:
        """Once ``count`` sends are held."""
        await self.broker.until(
            lambda: self.waiting >= count, timeout_s, f"{count} sends held on {self.topic}"
        )

    def release(self) -> None:
        """Let the held sends through, and every later one."""
        self._released.set()
        self.broker.holds.pop(self.topic, None)

    async def held(self) -> None:
        """Wait here until released (a send to the topic)."""
        self.waiting += 1
        self.broker.changed()
        try:
            await self._released.wait()
        finally:
            self.waiting -= 1


class FakeBroker:
    """A Kafka broker in memory, and the :class:`~singlewindow.kafka.transport.Transport`
    whose clients use it. Use it in one event loop, as ``async with``: on exit it stops the
    services it started (see :meth:`start`)."""

    def __init__(self, partitions: int = 1, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.default_partitions, self.max_message_bytes = partitions, max_message_bytes
        self.logs: dict[str, list[list[ConsumerRecord]]] = {}
        self.offsets: dict[str, dict[TopicPartition, int]] = {}  # group -> committed
        self.groups: dict[str, list[FakeConsumer]] = {}  # group -> members, in join order
        self.holds: dict[str, Hold] = {}
        self.failures: dict[str, list[BaseException]] = {}
        self.running: dict[Service, asyncio.Task[None]] = {}
        self._change: asyncio.Future[None] | None = None
        self._members = itertools.count()
        self._partitioner = DefaultPartitioner()

    async def __aenter__(self) -> FakeBroker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        failures: list[BaseException] = []
        for service in list(self.running):
            try:
                await self.stop(service)
            except Exception as failure:
                failures.append(failure)
        if failures and exc[0] is None:
            raise failures[0]

    # -- the transport ---------------------------------------------------------------------

    def consumer(
        self,
        settings: Settings,
        group_id: str,
        client_id: str,
        topics: Sequence[str],
        fill: Fill | None = None,
        listener: ConsumerRebalanceListener | None = None,
    ) -> FakeConsumer:
        """A member of ``group_id`` subscribed to ``topics`` (it joins when started)."""
        return FakeConsumer(self, group_id, client_id, topics, listener=listener)

    def producer(self, settings: Settings, client_id: str) -> FakeProducer:
        return FakeProducer(self, client_id)

    def reader(self, group_id: str | None = None) -> FakeConsumer:
        """A consumer for manual assignment (``assign``, ``seek``), as
        :func:`singlewindow.kafka.reader.read_to_end` takes one; in ``group_id`` only to
        commit, as the re-drive of dead letters does."""
        return FakeConsumer(self, group_id, "reader", ())

    # -- topics ----------------------------------------------------------------------------

    def create_topic(self, topic: str, partitions: int | None = None) -> None:
        """Create ``topic`` (by default with the broker's partition count) unless it exists.
        Topics are created when first used, as a broker that auto-creates them does."""
        if topic in self.logs:
            return
        self.logs[topic] = [[] for _ in range(partitions or self.default_partitions)]
        for group in self.groups:
            self._rebalance(group)

    def partitions(self, topic: str) -> list[TopicPartition]:
        self.create_topic(topic)
        return [TopicPartition(topic, p) for p in range(len(self.logs[topic]))]

    def end_offset(self, tp: TopicPartition) -> int:
        self.create_topic(tp.topic)
        return len(self.logs[tp.topic][tp.partition])

    async def publish(
        self,
        topic: str,
        value: Event | bytes | None,
        *,
        key: bytes | None = _KEY_OF_EVENT,
        headers: AnyHeaders | None = None,
        partition: int | None = None,
        signer: SigningKey | None = None,
        timestamp_ms: int | None = None,
    ) -> ConsumerRecord:
        """Write a record, as another service would, and return it as consumers will see it.

        An event is signed by ``signer`` (unsigned without one), keyed by its declaration id
        and has the headers its producer would give it, unless ``key`` and ``headers`` say
        otherwise. A header key given as bytes is written as is, UTF-8 or not. Neither
        :meth:`fail` nor :meth:`hold` applies (they are for the services' sends).
        """
        if isinstance(value, Event):
            payload = signer.sign(value, datetime.now(UTC))[1] if signer else value.to_avro()
            if key is _KEY_OF_EVENT:
                key = value.key()
            if headers is None:
                headers = event_headers("test", payload)
            value = payload
        elif key is _KEY_OF_EVENT:
            key = None
        return self.append(topic, value, key, headers or (), partition, timestamp_ms)

    def append(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: AnyHeaders,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> ConsumerRecord:
        """Write one record now (the end of every send)."""
        delivered = [(_delivered_key(k), v) for k, v in headers]
        sized = [(header_key_bytes(k).decode("utf-8", "replace"), v or b"") for k, v in delivered]
        size = letter_size(key, value, sized)
        if size > self.max_message_bytes:
            raise MessageSizeTooLargeError(f"{size} bytes > {self.max_message_bytes}")
        tps = self.partitions(topic)
        if partition is None:
            all_partitions = [tp.partition for tp in tps]
            partition = self._partitioner(key, all_partitions, all_partitions)
        log = self.logs[topic][partition]
        record = ConsumerRecord(
            topic=topic,
            partition=partition,
            offset=len(log),
            timestamp=int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            timestamp_type=0,
            key=key,
            value=value,
            checksum=None,
            serialized_key_size=-1 if key is None else len(key),
            serialized_value_size=-1 if value is None else len(value),
            headers=delivered,
        )
        log.append(record)
        self.changed()
        return record

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: AnyHeaders,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> ConsumerRecord:
        """A service's send: a failure :meth:`fail` queued, or a wait while :meth:`hold`
        holds the topic, then the record written and acknowledged."""
        queued = self.failures.get(topic)
        if queued:
            raise queued.pop(0)
        hold = self.holds.get(topic)
        if hold is not None:
            await hold.held()
        return self.append(topic, value, key, headers, partition, timestamp_ms)

    # -- what is there ---------------------------------------------------------------------

    def records(self, topic: str) -> list[ConsumerRecord]:
        """Every record of ``topic``, partition after partition, in offset order."""
        return [r for log in self.logs.get(topic, []) for r in log]

    def events(self, topic: str, kind: type[E]) -> list[E]:
        """The values of ``topic`` decoded as ``kind`` (signatures are not checked)."""
        return [kind.from_avro(r.value) for r in self.records(topic)]

    def dead_letters(self) -> list[ConsumerRecord]:
        return self.records(DEAD_LETTERS.name)

    def committed(self, group: str) -> dict[TopicPartition, int]:
        """The offsets ``group`` committed (none: absent)."""
        return dict(self.offsets.get(group, {}))

    # -- faults ----------------------------------------------------------------------------

    def fail(self, topic: str, *errors: BaseException) -> None:
        """The next sends to ``topic`` raise ``errors``, one each, in turn (nothing is
        written). A ``KafkaError`` (say ``KafkaConnectionError()``) is a transient fault."""
        self.failures.setdefault(topic, []).extend(errors)

    def hold(self, topic: str) -> Hold:
        """Sends to ``topic`` wait, unacknowledged and unwritten, until the hold is released."""
        hold = self.holds.get(topic)
        if hold is None:
            hold = self.holds[topic] = Hold(self, topic)
        return hold

    # -- running services ------------------------------------------------------------------

    async def start(self, service: Service) -> None:
        """Start ``service`` and run it in the background, until :meth:`stop` or the end of
        the ``async with``."""
        if service in self.running:
            raise RuntimeError(f"{service!r} is running already")
        await service.start()
        self.running[service] = asyncio.create_task(service.run())

    async def stop(self, service: Service, timeout_s: float = 10.0) -> None:
        """Stop ``service`` as SIGTERM does and wait for its run to end (raising what made
        it fail, if anything did)."""
        task = self.running.pop(service)
        await service.stop()
        self.changed()  # a poll in hand returns at once
        await asyncio.wait_for(task, timeout_s)

    def idle(self) -> bool:
        """Whether every group with a member has committed every record of its partitions."""
        for group, members in self.groups.items():
            committed = self.offsets.get(group, {})
            for member in members:
                for tp in member.assignment():
                    if committed.get(tp, 0) < self.end_offset(tp):
                        return False
        return True

    async def run_until_idle(self, timeout_s: float = 10.0) -> None:
        """Until every group with a member has committed all its records (and so written
        everything it writes for them); raises TimeoutError saying what lags, or what made a
        running service fail."""
        await self.until(self.idle, timeout_s, "idle", self._lag)

    async def until(
        self,
        condition: Callable[[], bool],
        timeout_s: float,
        what: str,
        explain: Callable[[], str] = str,
    ) -> None:
        """Until ``condition()`` holds (checked on every change), or TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            for task in self.running.values():
                if task.done():
                    task.result()  # raises what ended the service
                    raise RuntimeError("a service ended without being stopped")
            if condition():
                return
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"not {what} after {timeout_s}s{explain()}")
            await self.wait(min(left, 0.5))  # also to notice a service that failed

    def _lag(self) -> str:
        lags = [
            f"{group} at {tp.topic}/{tp.partition}: {self.offsets.get(group, {}).get(tp, 0)}"
            f" of {self.end_offset(tp)}"
            for group, members in self.groups.items()
            for member in members
            for tp in sorted(member.assignment())
            if self.offsets.get(group, {}).get(tp, 0) < self.end_offset(tp)
        ]
        return f": {', '.join(lags)}" if lags else ""

    # -- changes, groups -------------------------------------------------------------------

    def changed(self) -> None:
        """Wake whoever waits for a change (a record, a commit, a stop)."""
        if self._change is not None and not self._change.done():
            self._change.set_result(None)
        self._change = None

    async def wait(self, timeout_s: float) -> None:
        """Until the next change, at most ``timeout_s``."""
        if self._change is None:
            self._change = asyncio.get_running_loop().create_future()
        await asyncio.wait({self._change}, timeout=timeout_s)

    def join(self, member: FakeConsumer) -> None:
        for topic in member.subscription:
            self.create_topic(topic)
        assert member.group_id is not None
        self.groups.setdefault(member.group_id, []).append(member)
        self._rebalance(member.group_id)

    def leave(self, member: FakeConsumer) -> None:
        assert member.group_id is not None
        members = self.groups.get(member.group_id, [])
        if member in members:
            members.remove(member)
            self._rebalance(member.group_id)

    def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        self.offsets.setdefault(group, {}).update(offsets)
        self.changed()

    def _rebalance(self, group: str) -> None:
        """Range assignment, as the platform's consumers ask for it: per topic, its
        partitions in order, split in consecutive runs among the members in join order."""
        members = [m for m in self.groups.get(group, []) if m.subscription]
        assigned: dict[FakeConsumer, list[TopicPartition]] = {m: [] for m in members}
        topics = sorted({t for m in members for t in m.subscription})
        for topic in topics:
            subscribed = [m for m in members if topic in m.subscription]
            tps = self.partitions(topic)
            share, extra = divmod(len(tps), len(subscribed))
            start = 0
            for i, member in enumerate(subscribed):
                size = share + (1 if i < extra else 0)
                assigned[member] += tps[start : start + size]
                start += size
        for member, tps in assigned.items():
            member.assigned(tps)
        self.changed()


class FakeProducer:
    """The broker's :class:`~singlewindow.kafka.transport.ProducerClient`."""

    def __init__(self, broker: FakeBroker, client_id: str) -> None:
        self.broker, self.client_id = broker, client_id
        self.started = self.stopped = False

    async def start(self) -> None:
        if self.started or self.stopped:  # as aiokafka's: a client starts once
            raise IllegalStateError(f"{self.client_id}: a producer starts once")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
    ) -> ConsumerRecord:
        """Write the record; return it once acknowledged."""
        if not self.started or self.stopped:
            raise RuntimeError(f"{self.client_id}: send on a producer not started, or stopped")
        return await self.broker.send(topic, value, key, headers or (), partition, timestamp_ms)


class FakeConsumer:
    """The broker's :class:`~singlewindow.kafka.transport.ConsumerClient`: a group member
    subscribed to ``topics``, or (without topics) a consumer of partitions it is assigned.
    Its ``listener`` hears of a rebalance as aiokafka's does, within the member's next
    fetch: the partitions revoked, then those assigned (none, for a member the group has no
    partition for)."""

    def __init__(
        self,
        broker: FakeBroker,
        group_id: str | None,
        client_id: str,
        topics: Sequence[str],
        max_poll_records: int = 200,
        listener: ConsumerRebalanceListener | None = None,
    ) -> None:
        self.broker, self.group_id, self.client_id = broker, group_id, client_id
        self.subscription, self.max_poll_records = tuple(topics), max_poll_records
        self.listener = listener
        self.member = next(broker._members)
        self.started = self.stopped = False
        self._assignment: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._heard: list[TopicPartition] | None = None  # the assignment the listener knows

    def __repr__(self) -> str:
        return f"FakeConsumer({self.client_id!r}, group {self.group_id!r}, #{self.member})"

    async def start(self) -> None:
        if self.started or self.stopped:
            raise IllegalStateError(f"{self.client_id}: a consumer starts once")
        self.started = True
        if self.subscription and self.group_id is not None:
            self.broker.join(self)

    async def stop(self) -> None:
        if self.started and not self.stopped and self.subscription and self.group_id is not None:
            self.broker.leave(self)
        self.stopped = True

    def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        """A rebalance gave this member ``partitions``: every position is reset (to the
        committed offsets, on the next fetch)."""
        self._assignment, self._positions = list(partitions), {}

    def assignment(self) -> set[TopicPartition]:
        return set(self._assignment)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        if self.subscription:
            raise IllegalStateError("subscribed: a group member is assigned by the group")
        self._assignment, self._positions = list(partitions), {}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._check_assigned(tp)
        self._positions[tp] = offset

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions or self._assignment:
            self.seek(tp, 0)

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        for tp in partitions or self._assignment:
            self.seek(tp, self.broker.end_offset(tp))

    async def position(self, tp: TopicPartition) -> int:
        self._check_assigned(tp)
        if tp not in self._positions:  # the committed offset, else auto_offset_reset=earliest
            committed = self.broker.offsets.get(self.group_id or "", {})
            self._positions[tp] = committed.get(tp, 0) if self.group_id is not None else 0
        return self._positions[tp]

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.broker.offsets.get(self.group_id or "", {}).get(tp)

    async def beginning_offsets(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in partitions}

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.broker.end_offset(tp) for tp in partitions}

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's end (known at once: the broker is in memory)."""
        self._check_assigned(tp)
        return self.broker.end_offset(tp)

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        """The high watermark: the broker has no transactions, every record is stable."""
        return self.highwater(tp)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        if topic not in self.broker.logs:
            return None
        return {tp.partition for tp in self.broker.partitions(topic)}

    async def topics(self) -> set[str]:
        return set(self.broker.logs)

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """The records after the positions of ``partitions`` (default: all assigned), at
        most ``max_records``; when there are none, waits up to ``timeout_ms`` for some. It
        may return nothing early (on any change of the broker), as a fetch may."""
        self._check_started()
        await self._rebalanced()
        batch = await self._take(partitions, max_records or self.max_poll_records)
        if not batch and timeout_ms > 0:
            await self.broker.wait(timeout_ms / 1000)
            batch = await self._take(partitions, max_records or self.max_poll_records)
        return batch

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        self._check_started()
        if self.group_id is None:
            raise IllegalOperation("a consumer without a group_id cannot commit")
        if offsets is None:
            offsets = {tp: await self.position(tp) for tp in self._assignment}
        for tp in offsets:
            if tp not in self._assignment:  # the group moved it to another member
                raise CommitFailedError(f"{tp} is not assigned to {self!r}")
        self.broker.commit(self.group_id, offsets)

    async def _take(
        self, partitions: Sequence[TopicPartition], limit: int
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        batch: dict[TopicPartition, list[ConsumerRecord]] = {}
        for tp in partitions or self._assignment:
            if limit <= 0:
                break
            self._check_assigned(tp)
            position = await self.position(tp)
            records = self.broker.logs[tp.topic][tp.partition][position : position + limit]
            if records:
                batch[tp] = records
                self._positions[tp] = position + len(records)
                limit -= len(records)
        return batch

    async def _rebalanced(self) -> None:
        """Tell the listener of a rebalance since the last fetch."""
        if self.listener is None or self._heard == self._assignment:
            return
        if self._heard is not None:
            await self.listener.on_partitions_revoked(list(self._heard))
        self._heard = list(self._assignment)
        await self.listener.on_partitions_assigned(list(self._assignment))

    def _check_started(self) -> None:
        if not self.started or self.stopped:
            raise IllegalStateError(f"{self!r} is not started, or stopped")

    def _check_assigned(self, tp: TopicPartition) -> None:
        if tp not in self._assignment:
            raise IllegalStateError(f"{tp} is not assigned to {self!r}")


def _delivered_key(key: str | bytes) -> str:
    """A header key as consumers see it: bytes that are not UTF-8 as
    :mod:`singlewindow.kafka.records` delivers them (``surrogateescape``)."""
    if isinstance(key, bytes):
        return key.decode("utf-8", "surrogateescape")
    return key


if TYPE_CHECKING:  # mypy checks that the broker is a Transport, its clients the SDK's clients
    _transport: Transport = FakeBroker()
