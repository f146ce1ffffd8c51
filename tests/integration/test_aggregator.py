"""The aggregator on the real broker: one result per declaration, in one transaction with
its changelog and input offsets; state and deadlines survive a restart."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer

from services.aggregator.service import Aggregator
from singlewindow.events import (
    Agency,
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    Event,
    JoinState,
)
from singlewindow.kafka.reader import read_topic
from singlewindow.settings import Settings
from singlewindow.topics import (
    CLEARANCE_RESULTS,
    DECLARATIONS_SUBMITTED,
    JOIN_STATE,
    VERDICT_TOPICS,
)
from tests import factories

pytestmark = pytest.mark.integration


async def send(settings: Settings, events: list[Event]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for event in events:
            if isinstance(event, AgencyVerdict):
                topic = VERDICT_TOPICS[str(event.agency)].name
            else:
                topic = DECLARATIONS_SUBMITTED.name
            await producer.send_and_wait(topic, event.to_avro(), key=event.key())
    finally:
        await producer.stop()


async def results_for(settings: Settings, ids: set[str]) -> list[ClearanceResult]:
    records = await read_topic(settings, CLEARANCE_RESULTS.name, "read_committed")
    # only our keys: the topic may also hold other tests' garbage (dead-letter tests)
    ours = [r for r in records if r.key and r.key.decode() in ids]
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
    all3 = (Agency.CUSTOMS, Agency.CIQ, Agency.PORT)
    first: list[Event] = []
    second: list[Event] = []
    for i, d in enumerate(ids):
        first.append(
            factories.declaration(d, required_agencies=all3, submitted_at=datetime.now(UTC))
        )
        first.append(factories.verdict(d, Agency.CUSTOMS, Decision.CLEAR))
        first.append(factories.verdict(d, Agency.CUSTOMS, Decision.CLEAR))  # duplicate
        second.append(
            factories.verdict(d, Agency.CIQ, Decision.INSPECT if i % 2 else Decision.CLEAR)
        )
        second.append(factories.verdict(d, Agency.PORT, Decision.CLEAR))
    await send(settings, first)
    # first run: joins start, nothing is complete, state goes to the changelog
    done = asyncio.Event()
    runner = asyncio.create_task(run_until(Aggregator(settings, timedelta(hours=1)), done, 90))
    async with asyncio.timeout(60):
        while not set(ids) <= await changelog_ids(settings):
            await asyncio.sleep(0.5)
    done.set()
    await runner
    assert await results_for(settings, set(ids)) == []

    # second run: a new process restores the joins and completes them, once each
    await send(settings, second)
    done = asyncio.Event()
    aggregator = Aggregator(settings, timedelta(hours=1))
    runner = asyncio.create_task(run_until(aggregator, done, 90))
    found = await wait_for_results(settings, set(ids), len(ids))
    done.set()
    await runner
    await send(settings, second)  # late duplicates after the decision change nothing
    await run_until(Aggregator(settings, timedelta(hours=1)), None, 6)

    found = await results_for(settings, set(ids))
    assert Counter(r.declaration_id for r in found) == Counter(ids)
    by_id = {r.declaration_id: r for r in found}
    for i, d in enumerate(ids):
        expected = ClearanceStatus.INSPECTION_REQUIRED if i % 2 else ClearanceStatus.RELEASED
        assert by_id[d].status is expected


async def test_deadline_fires_after_a_restart(settings: Settings) -> None:
    d = f"AGG-DL-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    await send(
        settings,
        [
            factories.declaration(
                d, submitted_at=now, required_agencies=(Agency.CUSTOMS, Agency.PORT)
            ),
            factories.verdict(d, Agency.PORT, Decision.CLEAR),
        ],
    )
    done = asyncio.Event()
    runner = asyncio.create_task(run_until(Aggregator(settings, timedelta(seconds=20)), done, 90))
    async with asyncio.timeout(60):
        while d not in await changelog_ids(settings):
            await asyncio.sleep(0.5)
    done.set()
    await runner
    assert await results_for(settings, {d}) == []
    later = Aggregator(settings, timedelta(seconds=20))
    done = asyncio.Event()
    runner = asyncio.create_task(run_until(later, done, 90))
    (result,) = await wait_for_results(settings, {d}, 1)
    done.set()
    await runner
    assert result.status is ClearanceStatus.TIMED_OUT
    assert result.missing_agencies == (Agency.CUSTOMS,)
    assert result.decided_at == (now + timedelta(seconds=20)).replace(
        microsecond=(now.microsecond // 1000) * 1000
    )
