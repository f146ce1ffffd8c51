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
from collections import Counter
from collections.abc import Callable

import pytest

from tests.e2e.checks import outcome, shown, submit_all
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e
VICTIMS = ("aggregator", "customs", "ciq", "port")
KILLS_EACH = 2


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
    result = await outcome(accepted)
    report(f"\nchaos: kills={sum(kills.values())} {dict(kills)} {result.line()}")
    assert len(accepted) == count, "the intake refused declarations it should accept"
    assert min(kills[v] for v in VICTIMS) >= KILLS_EACH
    result.assert_exactly_once()


async def test_chaos_short(platform: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    count = int(os.environ.get("CHAOS_DECLARATIONS", "2000"))
    await run_chaos(platform, count, seed=2026, report=shown(capsys))


@pytest.mark.slow
async def test_chaos_long(platform: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    count = int(os.environ.get("CHAOS_LONG_DECLARATIONS", "20000"))
    await run_chaos(platform, count, seed=7, report=shown(capsys))
