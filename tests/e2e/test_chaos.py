"""Chaos: while declarations flow over HTTP, kill -9 the aggregator and each agency at random
moments and restart them. Afterwards every accepted declaration has exactly one result
(read_committed) and one final read-model document, and each result is what the pure join
computes from the recorded verdicts.

The short form runs in ``make test``; the long form (20,000 declarations) is opt-in:
``make chaos-long`` (``pytest -m slow``).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.aggregator.join import fold
from services.demo_data import sample_declaration_body
from singlewindow.db import find_by_ids, mongo_client
from singlewindow.events import AgencyVerdict, ClearanceResult, DeclarationSubmitted, Event
from singlewindow.kafka.reader import read_topic
from singlewindow.readmodel import COLLECTION, FINAL
from singlewindow.settings import get_settings
from singlewindow.topics import CLEARANCE_RESULTS, DECLARATIONS_SUBMITTED, VERDICT_TOPICS
from tests.e2e.conftest import DEADLINE_SECONDS, Platform

pytestmark = pytest.mark.e2e
VICTIMS = ("aggregator", "customs", "ciq", "port")
KILLS_EACH = 2


async def submit_all(url: str, count: int, offset: int, concurrency: int = 12) -> list[str]:
    """POST ``count`` demo declarations; the ids of those answered 202."""
    accepted: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(offset + i)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = sample_declaration_body(queue.get_nowait())
            response = await client.post("/v1/declarations", json=body)
            if response.status_code == 202:
                accepted.append(response.json()["declaration_id"])

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return accepted


async def chaos(platform: Platform, stop: asyncio.Event, rng: random.Random) -> Counter[str]:
    """kill -9 a random victim every few seconds and restart it shortly after, until the
    flow is over and every victim died at least KILLS_EACH times."""
    kills: Counter[str] = Counter()
    while not (stop.is_set() and min(kills[v] for v in VICTIMS) >= KILLS_EACH):
        await asyncio.sleep(rng.uniform(0.5, 3.0))
        victim = rng.choice(VICTIMS)
        platform.kill(victim)
        kills[victim] += 1
        await asyncio.sleep(rng.uniform(0.2, 2.0))
        platform.start(victim)
    return kills


async def recorded(ids: set[str]) -> dict[str, dict[str, list[Any]]]:
    """Every recorded event of these declarations, per topic, in log order."""
    settings = get_settings()
    events: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    topics: list[tuple[str, type[Event]]] = [
        (DECLARATIONS_SUBMITTED.name, DeclarationSubmitted),
        *((t.name, AgencyVerdict) for t in VERDICT_TOPICS.values()),
        (CLEARANCE_RESULTS.name, ClearanceResult),
    ]
    for topic, kind in topics:
        for record in await read_topic(settings, topic, "read_committed"):
            if record.key is not None and record.key.decode() in ids:
                events[record.key.decode()][topic].append(kind.from_avro(record.value))
    return events


async def wait_for_results(ids: set[str], timeout_s: float) -> None:
    settings = get_settings()
    async with asyncio.timeout(timeout_s):
        while True:
            records = await read_topic(settings, CLEARANCE_RESULTS.name, "read_committed")
            if ids <= {r.key.decode() for r in records if r.key}:
                return
            await asyncio.sleep(2)


async def read_model_statuses(ids: set[str], timeout_s: float) -> dict[str, str]:
    settings = get_settings()
    client = mongo_client(settings)
    collection = client[settings.mongodb_database][COLLECTION]
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                docs = await find_by_ids(collection, ids, {"status": 1})
                statuses = {key: doc["status"] for key, doc in docs.items()}
                if all(statuses.get(i) in FINAL for i in ids):
                    return statuses
                await asyncio.sleep(2)
    finally:
        await client.close()


async def run_chaos(
    platform: Platform, count: int, seed: int, report: Callable[[str], None]
) -> None:
    rng = random.Random(seed)
    stop = asyncio.Event()
    chaos_task = asyncio.create_task(chaos(platform, stop, rng))
    accepted = await submit_all(platform.url, count, offset=rng.randrange(10**6))
    await asyncio.sleep(3)  # one more kill or so while the tail is processed
    stop.set()
    kills = await chaos_task
    ids = set(accepted)
    await wait_for_results(ids, timeout_s=300 + count / 20)

    events = await recorded(ids)
    results_per_id = Counter({d: len(events[d][CLEARANCE_RESULTS.name]) for d in ids})
    lost = sum(1 for d in ids if results_per_id[d] == 0)
    duplicates = sum(n - 1 for n in results_per_id.values() if n > 1)
    mismatches = []
    for d in ids:
        declaration = events[d][DECLARATIONS_SUBMITTED.name][:1]
        verdicts = [v for t in VERDICT_TOPICS.values() for v in events[d][t.name]]
        verdicts.sort(key=lambda v: v.agency)  # order across agencies does not matter
        _, expected = fold([*declaration, *verdicts], timedelta(seconds=DEADLINE_SECONDS))
        if expected != events[d][CLEARANCE_RESULTS.name][:1]:
            mismatches.append(d)
    statuses = await read_model_statuses(ids, timeout_s=120)
    stale = [d for d in ids if statuses[d] != events[d][CLEARANCE_RESULTS.name][0].status]
    report(
        f"\nchaos: accepted={len(accepted)} kills={sum(kills.values())} {dict(kills)} "
        f"results={sum(results_per_id.values())} lost={lost} duplicates={duplicates} "
        f"mismatches={len(mismatches)} read_model_disagreements={len(stale)}"
    )
    assert len(accepted) == count, "the intake refused declarations it should accept"
    assert min(kills[v] for v in VICTIMS) >= KILLS_EACH
    assert lost == 0 and duplicates == 0
    assert mismatches == []
    assert stale == []


def shown(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print past pytest's capture: the figures belong in the test log."""

    def say(line: str) -> None:
        with capsys.disabled():
            print(line)

    return say


async def test_chaos_short(platform: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    count = int(os.environ.get("CHAOS_DECLARATIONS", "2000"))
    await run_chaos(platform, count, seed=2026, report=shown(capsys))


@pytest.mark.slow
async def test_chaos_long(platform: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    count = int(os.environ.get("CHAOS_LONG_DECLARATIONS", "20000"))
    await run_chaos(platform, count, seed=7, report=shown(capsys))
