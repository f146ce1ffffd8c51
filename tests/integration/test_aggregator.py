"""The aggregator on the real broker: one result per declaration, in one transaction with
its changelog and input offsets; state and deadlines survive a restart; hostile records are
dead-lettered while the partition keeps flowing; the join state is bounded (orphans and
decided states are dropped with a changelog tombstone, late duplicates never decide twice)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.structs import RecordMetadata
from prometheus_client import REGISTRY

from services.aggregator.service import RETENTION, Aggregator
from services.aggregator.tasks import Task
from singlewindow.avro import encode
from singlewindow.events import (
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    Event,
    JoinState,
)
from singlewindow.kafka.headers import header
from singlewindow.kafka.options import kafka_options
from singlewindow.kafka.reader import key_text, read_topic
from singlewindow.settings import Settings
from singlewindow.topics import (
    CLEARANCE_RESULTS,
    DEAD_LETTERS,
    DECLARATIONS_SUBMITTED,
    JOIN_STATE,
    verdict_topics,
)
from tests import factories

pytestmark = pytest.mark.integration
KEYS = factories.service_keys("aggregator")  # what the aggregator signs and verifies with


async def send(settings: Settings, events: list[Event]) -> None:
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all")
    await producer.start()
    try:
        for event in events:
            if isinstance(event, AgencyVerdict):
                topic = verdict_topics()[str(event.agency)].name
            else:
                topic = DECLARATIONS_SUBMITTED.name
            await producer.send_and_wait(topic, factories.signed(event), key=event.key())
    finally:
        await producer.stop()


async def results_for(settings: Settings, ids: set[str]) -> list[ClearanceResult]:
    records = await read_topic(settings, CLEARANCE_RESULTS.name, "read_committed")
    # only our keys: the topic may also hold other tests' garbage (dead-letter tests)
    ours = [r for r in records if r.key and key_text(r) in ids]
    return [ClearanceResult.from_avro(r.value) for r in ours]


async def changelog_ids(settings: Settings) -> set[str]:
    records = await read_topic(settings, JOIN_STATE.name)
    return {JoinState.from_avro(r.value).declaration_id for r in records if r.value}


async def run_until(aggregator: Aggregator, done: asyncio.Event | None, seconds: float) -> None:
    await aggregator.start()
    running = asyncio.create_task(aggregator.run())
    try:
        if done is None:
            await asyncio.sleep(seconds)
        else:
            async with asyncio.timeout(seconds):
                await done.wait()
    finally:
        await aggregator.stop()
        await asyncio.wait_for(running, 30)


async def wait_for_results(settings: Settings, ids: set[str], n: int) -> list[ClearanceResult]:
    async with asyncio.timeout(60):
        while len(found := await results_for(settings, ids)) < n:
            await asyncio.sleep(0.5)
    return found


async def test_one_result_per_declaration_across_a_restart(settings: Settings) -> None:
    run = uuid.uuid4().hex[:8]
    ids = [f"AGG-{run}-{i}" for i in range(6)]
    all3 = ("customs", "ciq", "port")
    first: list[Event] = []
    second: list[Event] = []
    for i, d in enumerate(ids):
        first.append(
            factories.declaration(d, required_agencies=all3, submitted_at=datetime.now(UTC))
        )
        first.append(factories.verdict(d, "customs", Decision.CLEAR))
        first.append(factories.verdict(d, "customs", Decision.CLEAR))  # duplicate
        second.append(factories.verdict(d, "ciq", Decision.INSPECT if i % 2 else Decision.CLEAR))
        second.append(factories.verdict(d, "port", Decision.CLEAR))
    await send(settings, first)
    # first run: joins start, nothing is complete, state goes to the changelog
    done = asyncio.Event()
    runner = asyncio.create_task(
        run_until(Aggregator(settings, keys=KEYS, deadline=timedelta(hours=1)), done, 90)
    )
    async with asyncio.timeout(60):
        while not set(ids) <= await changelog_ids(settings):
            await asyncio.sleep(0.5)
    done.set()
    await runner
    assert await results_for(settings, set(ids)) == []

    # second run: a new process restores the joins and completes them, once each
    await send(settings, second)
    done = asyncio.Event()
    aggregator = Aggregator(settings, keys=KEYS, deadline=timedelta(hours=1))
    runner = asyncio.create_task(run_until(aggregator, done, 90))
    found = await wait_for_results(settings, set(ids), len(ids))
    done.set()
    await runner
    await send(settings, second)  # late duplicates after the decision change nothing
    await run_until(Aggregator(settings, keys=KEYS, deadline=timedelta(hours=1)), None, 6)

    found = await results_for(settings, set(ids))
    assert Counter(r.declaration_id for r in found) == Counter(ids)
    by_id = {r.declaration_id: r for r in found}
    for i, d in enumerate(ids):
        expected = ClearanceStatus.INSPECTION_REQUIRED if i % 2 else ClearanceStatus.RELEASED
        assert by_id[d].status is expected


def escalations() -> float:
    """The aggregator's count of committed TIMED_OUT results (its ``/metrics``)."""
    value = REGISTRY.get_sample_value(
        "singlewindow_clearance_steps_total", {"status": ClearanceStatus.TIMED_OUT.value}
    )
    return value or 0.0


async def test_deadline_fires_after_a_restart(settings: Settings) -> None:
    d = f"AGG-DL-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    await send(
        settings,
        [
            factories.declaration(d, submitted_at=now, required_agencies=("customs", "port")),
            factories.verdict(d, "port", Decision.CLEAR),
        ],
    )
    done = asyncio.Event()
    runner = asyncio.create_task(
        run_until(Aggregator(settings, keys=KEYS, deadline=timedelta(seconds=20)), done, 90)
    )
    async with asyncio.timeout(60):
        while d not in await changelog_ids(settings):
            await asyncio.sleep(0.5)
    done.set()
    await runner
    assert await results_for(settings, {d}) == []
    later = Aggregator(settings, keys=KEYS, deadline=timedelta(seconds=20))
    done = asyncio.Event()
    escalated = escalations()
    runner = asyncio.create_task(run_until(later, done, 90))
    (result,) = await wait_for_results(settings, {d}, 1)
    done.set()
    await runner
    assert result.status is ClearanceStatus.TIMED_OUT
    assert escalations() == escalated + 1  # what an operator's alert watches
    assert result.missing_agencies == ("customs",)
    assert result.decided_at == (now + timedelta(seconds=20)).replace(
        microsecond=(now.microsecond // 1000) * 1000
    )


# --- hostile records, a bounded join state ------------------------------------------------

NOT_UTF8 = b"\xff\xfe\x80-not-utf8"
ALL3 = ("customs", "ciq", "port")


def topic_of(event: Event) -> str:
    if isinstance(event, AgencyVerdict):
        return verdict_topics()[str(event.agency)].name
    return DECLARATIONS_SUBMITTED.name


async def send_raw(
    settings: Settings, records: list[tuple[str, bytes | None, bytes | None]], partition: int
) -> list[RecordMetadata]:
    """(topic, key, value) records, all to one partition number; where each landed."""
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all")
    await producer.start()
    try:
        return [
            await producer.send_and_wait(topic, value, key=key, partition=partition)
            for topic, key, value in records
        ]
    finally:
        await producer.stop()


def at_any_time(event: Event, **times: datetime) -> bytes:
    """The event with these instants, encoded without validation: what a hostile producer
    writes, whatever range the SDK's models accept."""
    datum = event.avro_datum()
    datum.update(times)
    return encode(event.AVRO_NAME, datum)


async def letters_from(
    settings: Settings, sources: list[RecordMetadata]
) -> dict[tuple[str, int, int], str]:
    """The aggregator's dead letters of these source records: (topic, partition, offset) ->
    the error it gave."""
    wanted = {(m.topic, m.partition, m.offset) for m in sources}
    found = {}
    for record in await read_topic(settings, DEAD_LETTERS.name, "read_committed"):
        if header(record.headers, "sw-dlq-service") != b"aggregator":
            continue
        source = (
            (header(record.headers, "sw-dlq-source-topic") or b"").decode(),
            int(header(record.headers, "sw-dlq-source-partition") or -1),
            int(header(record.headers, "sw-dlq-source-offset") or -1),
        )
        if source in wanted:
            found[source] = (header(record.headers, "sw-dlq-error") or b"").decode()
    return found


async def wait_for_letters(
    settings: Settings, sources: list[RecordMetadata]
) -> dict[tuple[str, int, int], str]:
    async with asyncio.timeout(60):
        while len(found := await letters_from(settings, sources)) < len(sources):
            await asyncio.sleep(0.5)
    return found


async def changelog_last(settings: Settings, key: str) -> list[ConsumerRecord]:
    """The changelog records of one key, in order."""
    records = await read_topic(settings, JOIN_STATE.name)
    return sorted((r for r in records if r.key == key.encode()), key=lambda r: r.offset)


async def wait_for_tombstone(settings: Settings, key: str) -> None:
    async with asyncio.timeout(60):
        while not (records := await changelog_last(settings, key)) or records[-1].value:
            await asyncio.sleep(0.5)


async def test_hostile_inputs_are_dead_lettered_and_the_partition_keeps_flowing(
    settings: Settings,
) -> None:
    run, now = uuid.uuid4().hex[:8], datetime.now(UTC)
    partition = int(run, 16) % settings.topic_partitions
    good = f"AGG-OK-{run}"
    ids = {name: f"AGG-{name}-{run}" for name in ("END", "1970", "KEY", "NONE", "BYTES", "OLD")}

    def fresh(key: str) -> DeclarationSubmitted:
        return factories.declaration(key, required_agencies=ALL3, submitted_at=now)

    hostile: list[tuple[str, bytes | None, bytes | None]] = [
        # decodes (without the SDK's range check), then its deadline overflowed in step
        (
            DECLARATIONS_SUBMITTED.name,
            ids["END"].encode(),
            at_any_time(
                fresh(ids["END"]), submitted_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
            ),
        ),
        (
            verdict_topics()["port"].name,
            ids["1970"].encode(),
            at_any_time(
                factories.verdict(ids["1970"], "port"),
                decided_at=datetime(1970, 1, 1, tzinfo=UTC),
            ),
        ),
        # keyed other than by the declaration id: its state would split across partitions
        (DECLARATIONS_SUBMITTED.name, b"SOMEONE-ELSE", factories.signed(fresh(ids["KEY"]))),
        (DECLARATIONS_SUBMITTED.name, None, factories.signed(fresh(ids["NONE"]))),
        (DECLARATIONS_SUBMITTED.name, NOT_UTF8, factories.signed(fresh(ids["BYTES"]))),
        # older than the retention (60 days): its join may be gone, it must not decide again
        (
            DECLARATIONS_SUBMITTED.name,
            ids["OLD"].encode(),
            factories.signed(
                factories.declaration(ids["OLD"], submitted_at=now - RETENTION - timedelta(days=1))
            ),
        ),
    ]
    flowing: list[Event] = [
        fresh(good),
        *(factories.verdict(good, a, Decision.CLEAR, decided_at=now) for a in ALL3),
    ]
    sources = await send_raw(settings, hostile, partition)
    await send_raw(
        settings, [(topic_of(e), e.key(), factories.signed(e)) for e in flowing], partition
    )

    done = asyncio.Event()
    runner = asyncio.create_task(
        run_until(Aggregator(settings, keys=KEYS, deadline=timedelta(hours=1)), done, 120)
    )
    try:
        (result,) = await wait_for_results(settings, {good}, 1)
        letters = await wait_for_letters(settings, sources)
    finally:
        done.set()
        await runner
    assert result.status is ClearanceStatus.RELEASED
    errors = [letters[(m.topic, m.partition, m.offset)] for m in sources]
    assert "outside" in errors[0] and "outside" in errors[1]
    assert all("is not the declaration id" in e for e in errors[2:5])
    assert "stale" in errors[5]
    assert await results_for(settings, set(ids.values())) == []


async def test_an_orphan_verdict_is_dropped_with_a_tombstone_and_no_result(
    settings: Settings,
) -> None:
    orphan = f"AGG-ORPHAN-{uuid.uuid4().hex[:8]}"
    long_ago = datetime.now(UTC) - RETENTION - timedelta(days=1)  # its window has passed
    await send(settings, [factories.verdict(orphan, "ciq", decided_at=long_ago)])
    done = asyncio.Event()
    runner = asyncio.create_task(
        run_until(Aggregator(settings, keys=KEYS, deadline=timedelta(hours=1)), done, 90)
    )
    try:
        await wait_for_tombstone(settings, orphan)
    finally:
        done.set()
        await runner
    written = await changelog_last(settings, orphan)
    assert JoinState.from_avro(written[0].value).declaration_id == orphan  # kept, then dropped
    assert await results_for(settings, {orphan}) == []


async def test_a_duplicate_submission_after_the_retention_never_decides_twice(
    settings: Settings,
) -> None:
    """Decided in the past (the aggregator's clock set a day more than the retention back, so
    nothing of anyone else's times out meanwhile), then the clock catches up: the state is
    dropped and a duplicate of the submission is dead-lettered as stale."""
    d = f"AGG-RET-{uuid.uuid4().hex[:8]}"
    back = RETENTION + timedelta(days=1)
    then = datetime.now(UTC) - back
    submission = factories.declaration(d, required_agencies=ALL3, submitted_at=then)
    verdicts = [factories.verdict(d, a, Decision.CLEAR, decided_at=then) for a in ALL3]
    shift = [-back]
    aggregator = Aggregator(
        settings, timedelta(hours=1), keys=KEYS, clock=lambda: datetime.now(UTC) + shift[0]
    )
    await send(settings, [submission, *verdicts])
    done = asyncio.Event()
    runner = asyncio.create_task(run_until(aggregator, done, 150))
    try:
        await wait_for_results(settings, {d}, 1)
        shift[0] = timedelta(0)  # a day more than the retention later: past it
        await wait_for_tombstone(settings, d)
        partition = (await changelog_last(settings, d))[-1].partition
        (duplicate,) = await send_raw(
            settings,
            [(DECLARATIONS_SUBMITTED.name, submission.key(), factories.signed(submission))],
            partition,
        )
        letters = await wait_for_letters(settings, [duplicate])
    finally:
        done.set()
        await runner
    assert "stale" in next(iter(letters.values()))
    assert len(await results_for(settings, {d})) == 1


async def test_a_changelog_with_unusable_keys_still_restores(
    settings: Settings, scratch_topic: str
) -> None:
    """Tombstones keyed with bytes that are not UTF-8, a state keyed by such bytes and an
    unreadable value, in the changelog a task restores from: it opens, keeps what is
    readable, and its transactions flow on."""
    kept, rekeyed = factories.join_state("CL-KEPT"), factories.join_state("CL-REKEYED")
    await send_raw(
        settings,
        [
            (scratch_topic, kept.key(), factories.signed(kept)),
            (scratch_topic, NOT_UTF8, None),  # raised UnicodeDecodeError: the task never opened
            (scratch_topic, b"\xc3", None),  # (None, None) no client sends
            (scratch_topic, NOT_UTF8, factories.signed(rekeyed)),
            (scratch_topic, b"CL-GARBAGE", b"\xc3\x01 not a join state"),
        ],
        partition=0,
    )
    group = f"test-restore-{uuid.uuid4().hex[:8]}"
    task = Task(settings, group, 0, timedelta(days=7), KEYS, changelog=scratch_topic)
    try:
        async with asyncio.timeout(60):
            await task.open()
        assert set(task.table.states) == {"CL-KEPT", "CL-REKEYED"}
        await task.commit({"CL-KEPT": None}, [])  # the partition's transactions flow on
    finally:
        await task.close()
    again = Task(settings, group, 0, timedelta(days=7), KEYS, changelog=scratch_topic)
    try:
        async with asyncio.timeout(60):
            await again.open()
        assert set(again.table.states) == {"CL-REKEYED"}
    finally:
        await again.close()
