"""One aggregator task per partition number: partition p of every input topic (they are
co-partitioned), partition p of the join-state changelog, and a transactional producer.

aiokafka's ``send_offsets_to_transaction`` takes only a group id (no KIP-447 generation
fencing), so zombies are fenced the way Kafka Streams did before KIP-447: one transactional
producer per task, its ``transactional.id`` derived from the group and the partition. Opening
a task initialises that id, which aborts whatever a previous owner left open, and only then
restores the state from the changelog: the state is always what was committed.

Every state and result is signed with the aggregator's key. Restoring reads the changelog as
compaction leaves it (the last usable record per key) and takes only states the aggregator
signed (the key registry says which keys are its own): a value is filed under its state's own
``declaration_id`` whatever its key; a tombstone ends the writes before it under its key and
removes the state its key names, and one whose key is None or not UTF-8 names no state (the
aggregator keys states by their id). Records that cannot be used are skipped and counted,
one log line per kind per restore: the task always opens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from services.aggregator.table import JoinTable
from singlewindow import tracing
from singlewindow.avro import CodecError
from singlewindow.events import ClearanceResult, JoinState
from singlewindow.kafka.headers import PRODUCER, Headers, event_headers
from singlewindow.kafka.producer import new_producer
from singlewindow.kafka.reader import read_partition
from singlewindow.metrics import STEPS, TRANSACTION_SECONDS
from singlewindow.settings import Settings
from singlewindow.signing import ServiceKeys, SignatureError, Verifier
from singlewindow.topics import CLEARANCE_RESULTS, DEAD_LETTERS, JOIN_STATE

log = logging.getLogger(__name__)
NAME = "aggregator"
TRANSACTION = TRANSACTION_SECONDS.labels(NAME)
# InitProducerId is answered in milliseconds; aiokafka retries it for ever while the
# transaction coordinator is away, so a start is bounded and retried (retries are progress)
START_TIMEOUT_S = 30.0
PROGRESS_EVERY_S = 5.0  # while the states decode in a thread


def _nothing() -> None:
    pass


@dataclass
class Restored:
    """The states a changelog holds, and what was skipped on the way (kind -> offsets)."""

    states: dict[str, JoinState] = field(default_factory=dict)
    skipped: dict[str, list[int]] = field(default_factory=dict)
    rekeyed: int = 0  # values whose key is not their declaration id, filed under the id

    def skip(self, kind: str, offset: int) -> None:
        self.skipped.setdefault(kind, []).append(offset)


def restore(records: Iterable[ConsumerRecord], keys: Verifier) -> Restored:
    """The states a changelog holds (pure), read as Kafka's compaction leaves it: per key the
    last usable record (a state the aggregator signed, or a tombstone), the survivors applied
    in offset order. An unusable record (unreadable, or not signed by the aggregator: ``keys``
    refuse its signature) is skipped, and the key's write before it counts.

    Only survivors are decoded and verified, newest first: a key written n times costs one
    decoding, not n, so a task opens in a fraction of the time.
    """
    out = Restored()
    since_tombstone: dict[bytes | None, list[ConsumerRecord]] = {}
    for record in records:
        if record.value is None:  # it ends every earlier write under its key
            since_tombstone[record.key] = [record]
        else:
            since_tombstone.setdefault(record.key, []).append(record)
    survivors: list[tuple[ConsumerRecord, JoinState | None]] = []
    for candidates in since_tombstone.values():
        for record in reversed(candidates):
            if record.value is None:
                survivors.append((record, None))
                break
            state = _usable(out, record, keys)
            if state is not None:
                survivors.append((record, state))
                break
    for kind in out.skipped:
        out.skipped[kind].sort()
    for record, state in sorted(survivors, key=lambda s: s[0].offset):
        if state is None:
            _tombstone(out, record)
            continue
        if record.key != state.key():
            out.rekeyed += 1
        out.states[state.declaration_id] = state
    return out


def _usable(out: Restored, record: ConsumerRecord, keys: Verifier) -> JoinState | None:
    """The state a changelog value holds, if the aggregator signed it (else skipped)."""
    try:
        state = JoinState.from_avro(record.value)
    except (CodecError, ValidationError):  # never block the partition
        out.skip("unreadable join state", record.offset)
        return None
    try:
        keys.check(record.value, state)
    except SignatureError:
        out.skip("join state not signed by the aggregator", record.offset)
        return None
    return state


def _tombstone(out: Restored, record: ConsumerRecord) -> None:
    try:
        key = record.key.decode()  # strict: a replaced character could name a real id
    except (AttributeError, UnicodeDecodeError):  # None, or not UTF-8: names no state
        out.skip("tombstone with a key that is no declaration id", record.offset)
        return
    out.states.pop(key, None)


def log_restore(partition: int, restored: Restored, changelog: str = JOIN_STATE.name) -> None:
    """One line per kind of skipped record, then the count restored."""
    for kind, offsets in restored.skipped.items():
        log.error(
            "task p%s: %s %s skipped (%s records, first at offset %s)",
            partition,
            changelog,
            kind,
            len(offsets),
            offsets[0],
        )
    if restored.rekeyed:
        log.warning(
            "task p%s: %s join states keyed other than by their declaration id: filed by id",
            partition,
            restored.rekeyed,
        )
    log.info("task p%s restored %s join states", partition, len(restored.states))


class Task:
    """The join state and transactional producer of one partition number."""

    def __init__(
        self,
        settings: Settings,
        group: str,
        partition: int,
        retention: timedelta,
        keys: ServiceKeys,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        changelog: str = JOIN_STATE.name,
    ) -> None:
        self.settings, self.group, self.partition = settings, group, partition
        self.retention, self.changelog = retention, changelog
        self.keys, self.clock = keys, clock
        self.table = JoinTable(retention)
        self.producer: AIOKafkaProducer | None = None

    @property
    def transactional_id(self) -> str:
        return f"{self.group}.join.p{self.partition}"

    def new_producer(self) -> AIOKafkaProducer:
        """The task's transactional producer: the SDK's (idempotent, ``acks=all``), with the
        task's ``transactional.id``."""
        return new_producer(
            self.settings,
            f"{NAME}-p{self.partition}",
            transactional_id=self.transactional_id,
            transaction_timeout_ms=60_000,
            linger_ms=5,
        )

    async def open(self, progress: Callable[[], None] = _nothing) -> None:
        """Fence any previous owner, then restore the committed state. A restore may take
        minutes: ``progress()`` is called after every fetch of the changelog and every few
        seconds while its states decode (the aggregator's liveness); TimeoutError when the
        producer cannot start within ``START_TIMEOUT_S``."""
        self.producer = self.new_producer()
        async with asyncio.timeout(START_TIMEOUT_S):
            await self.producer.start()  # InitProducerId: bumps the epoch, aborts an open txn
        progress()
        changelog = TopicPartition(self.changelog, self.partition)
        records = await read_partition(self.settings, changelog, progress=progress)
        # in a thread: decoding thousands of states must not starve the group's heartbeats
        decoding = asyncio.ensure_future(asyncio.to_thread(restore, records, self.keys.registry))
        while not decoding.done():
            progress()
            await asyncio.wait({decoding}, timeout=PROGRESS_EVERY_S)
        restored = decoding.result()
        log_restore(self.partition, restored, self.changelog)
        self.table = JoinTable(self.retention, restored.states.values())

    async def close(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            try:
                await asyncio.wait_for(producer.stop(), 10)
            except Exception as exc:  # closing a broken producer: nothing left to save
                log.warning("task p%s: producer close failed: %r", self.partition, exc)

    async def commit(
        self,
        changes: Mapping[str, JoinState | None],
        results: Iterable[ClearanceResult],
        dead_letters: Iterable[tuple[bytes | None, bytes | None, Headers]] = (),
        offsets: dict[TopicPartition, int] | None = None,
        timeout_s: float = 30.0,
        traces: Sequence[tracing.Outgoing] = (),
    ) -> None:
        """One transaction: changelog (a state, or None: a tombstone), results, dead letters
        and input offsets, or nothing. ``traces`` are the results' (in their order: the
        trace each continues, :func:`singlewindow.tracing.outgoing`); without them each
        result starts a trace of its own (a timeout: no input led to it). Its time, from
        begin to the commit acknowledged, is observed once committed
        (``singlewindow_transaction_commit_seconds``)."""
        producer = self.producer
        if producer is None:
            raise RuntimeError(f"task p{self.partition} is closed")
        results = tuple(results)
        started = time.perf_counter()
        outs = list(traces) or [
            tracing.outgoing(NAME, CLEARANCE_RESULTS.name, r.declaration_id) for r in results
        ]
        try:
            await self._transaction(
                producer, changes, results, outs, dead_letters, offsets, timeout_s
            )
        except BaseException as exc:
            for out in outs:
                tracing.finish(out, exc)
            raise
        TRANSACTION.observe(time.perf_counter() - started)
        for out in outs:
            tracing.finish(out)
        for result in results:
            STEPS.labels(result.status.value).inc()

    async def _transaction(
        self,
        producer: AIOKafkaProducer,
        changes: Mapping[str, JoinState | None],
        results: Sequence[ClearanceResult],
        traces: Sequence[tracing.Outgoing],
        dead_letters: Iterable[tuple[bytes | None, bytes | None, Headers]],
        offsets: dict[TopicPartition, int] | None,
        timeout_s: float,
    ) -> None:
        async with asyncio.timeout(timeout_s):
            await producer.begin_transaction()
            sends = []
            for key, state in changes.items():
                sends.append(await self._send_state(producer, key, state))
            for result, out in zip(results, traces, strict=True):
                _, payload = self.keys.signer.sign(result, self.clock())
                sends.append(
                    await producer.send(
                        CLEARANCE_RESULTS.name,
                        payload,
                        key=result.key(),
                        partition=self.partition,
                        headers=event_headers(NAME, payload, out.traceparent),
                    )
                )
            for letter_key, value, headers in dead_letters:
                sends.append(
                    await producer.send(DEAD_LETTERS.name, value, key=letter_key, headers=headers)
                )
            await asyncio.gather(*sends)
            if offsets:
                await producer.send_offsets_to_transaction(offsets, self.group)
            await producer.commit_transaction()

    async def _send_state(
        self, producer: AIOKafkaProducer, key: str, state: JoinState | None
    ) -> asyncio.Future[object]:
        """Send one changelog record: the state, or a tombstone when it was dropped."""
        payload: bytes | None = None
        headers: Headers = [(PRODUCER, NAME.encode())]
        if state is not None:
            _, payload = self.keys.signer.sign(state, self.clock())
            headers = event_headers(NAME, payload)
        future: asyncio.Future[object] = await producer.send(
            self.changelog, payload, key=key.encode(), partition=self.partition, headers=headers
        )
        return future
