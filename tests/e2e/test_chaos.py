"""Chaos: while a patient trader lodges declarations over HTTP (each with its Idempotency-Key,
sent again until it gets a 202), then patient inspectors record their findings on every joint
inspection order at the station, then the trader pays every payment notice at the bank the same
way (those of the holder of the demo's general guarantee secured by draws on it, while half its
balance lasts), kill -9 every service (intake, projector, aggregator, each agency, the bank and
the inspection station) at random moments and restart it; once during the flow, kill -9 the
broker and FerretDB too. Afterwards every distinct accepted declaration has exactly one result
per step (read_committed: its first answer, for each inspection the decision on every agency's
findings, and for each paid notice one release) and a read-model document showing its last
step, and each first answer is what the pure join computes from the recorded verdicts; and the
guarantee's ledger on payments.confirmed has every draw once, in sequence, without a gap, its
balance following, and ends at the bank's balance.

The short form runs in ``make test``; the long form (20,000 declarations) is opt-in:
``make chaos-long`` (``pytest -m slow``).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import pytest

from deploy.local.components import Component, FerretDB, Kafka
from singlewindow.events import ClearanceResult
from singlewindow.events import ClearanceStatus as S
from tests.e2e.checks import (
    drawable,
    first_results,
    guarantee_balance,
    ledger_findings,
    outcome,
    pay_patiently,
    record_patiently,
    shown,
    submit_patiently,
)
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e
VICTIMS = ("aggregator", "customs", "ciq", "port", "intake", "projector", "bank", "inspection")
KILLS_EACH = 2
# the demo's consolidated general guarantee and its holder (deploy/local/guarantees.json)
GUARANTEE, HOLDER = "G-DEMO-XIAMEN-2026", "91350100M000100Y43"
# the broker and database are crashed only when they are the local stack's own
LOCAL_SERVERS = Kafka().running() and FerretDB().running()


async def crash_server(server: Component) -> None:
    """kill -9 a server of the local stack, then start it (returns once it serves again)."""
    await asyncio.to_thread(server.kill)
    await asyncio.sleep(1)
    await asyncio.to_thread(server.start)


async def chaos(
    platform: Platform, stop: asyncio.Event, rng: random.Random, abort: asyncio.Event
) -> Counter[str]:
    """kill -9 a random victim every few seconds and restart it shortly after, until the
    flow is over and every victim died at least KILLS_EACH times (or ``abort``: then after
    the restart in hand); the broker and the database die once each, early in the flow."""
    kills: Counter[str] = Counter()
    servers: list[Component] = [Kafka(), FerretDB()] if LOCAL_SERVERS else []
    while not abort.is_set() and not (
        stop.is_set() and min(kills[v] for v in VICTIMS) >= KILLS_EACH
    ):
        await asyncio.sleep(rng.uniform(0.5, 3.0))
        if servers and sum(kills.values()) in (3, 6):
            server = servers.pop(0)
            await crash_server(server)
            kills[server.name] += 1
            continue
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
    stop, abort = asyncio.Event(), asyncio.Event()
    chaos_task = asyncio.create_task(chaos(platform, stop, rng, abort))
    try:
        flow = asyncio.create_task(
            submit_patiently(platform.url, count, rng.randrange(10**6), f"chaos{seed}")
        )
        await asyncio.wait({flow, chaos_task}, return_when=asyncio.FIRST_COMPLETED)
        if chaos_task.done() and chaos_task.exception() is not None:
            flow.cancel()  # a server that could not be restarted: fail now, saying why
            raise AssertionError("the chaos could not restart a server") from (
                chaos_task.exception()
            )
        accepted, stats = await flow
        # the first answers come in while the chaos goes on; every agency an inspection order
        # names records the goods compliant at the station; then every notice is paid
        firsts = await first_results(set(accepted), timeout_s=300 + count / 20)
        orders = {d: r for d, r in firsts.items() if r.status is S.INSPECTION_REQUIRED}
        findings = await record_patiently(platform.inspection_url, orders)
        seconds = await first_results(set(orders), timeout_s=300 + len(orders) / 20, sequence=2)
        notices = {
            d: r for d, r in (*firsts.items(), *seconds.items()) if r.status is S.AWAITING_PAYMENT
        }
        before = await guarantee_balance(platform.bank_url, GUARANTEE)
        # half of what is left: the journeys after this test draw on the same guarantee
        drawn = await drawable(notices, HOLDER, GUARANTEE, before / 2)
        payments = await pay_patiently(platform.bank_url, notices, drawn)
        await asyncio.sleep(3)  # one more kill or so while the tail is processed
    except BaseException:  # a failed flow must not leave the killer running into other tests
        abort.set()
        await asyncio.gather(chaos_task, return_exceptions=True)  # after its current restart
        raise
    stop.set()
    kills = await chaos_task
    platform.wait_ready("intake", 60)
    result = await outcome(
        accepted, paid={d: r.sequence + 1 for d, r in notices.items()}, inspected=set(orders)
    )
    report(
        f"\nchaos: kills={sum(kills.values())} {dict(kills)} 503s={stats.answers_503} "
        f"unreachable={stats.unreachable} distinct_accepted={len(set(accepted))} "
        f"payment_503s={payments.answers_503} bank_unreachable={payments.unreachable} "
        f"finding_503s={findings.answers_503} station_unreachable={findings.unreachable} "
        f"drawn={len(drawn)} {result.line()}"
    )
    assert len(set(accepted)) == count, "every declaration is accepted once the trader persists"
    assert min(kills[v] for v in VICTIMS) >= KILLS_EACH
    if LOCAL_SERVERS:
        assert kills["kafka"] == kills["ferretdb"] == 1
    assert notices, "the demo's declarations owe duties: some notices are paid under chaos"
    assert orders, "the demo's declarations include inspections: findings recorded under chaos"
    result.assert_exactly_once()
    assert drawn, "the guarantee's holder owes duties: some notices are drawn under chaos"
    assert await ledger_findings() == []
    secured = sum((secured_by(notices[d]) for d in drawn), Decimal("0.00"))
    assert await guarantee_balance(platform.bank_url, GUARANTEE) == before - secured


def secured_by(result: ClearanceResult) -> Decimal:
    assert result.payment_notice is not None
    return result.payment_notice.amount


async def test_chaos_short(platform: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    count = int(os.environ.get("CHAOS_DECLARATIONS", "2000"))
    await run_chaos(platform, count, seed=2026, report=shown(capsys))


@pytest.mark.slow
async def test_chaos_long(platform: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    count = int(os.environ.get("CHAOS_LONG_DECLARATIONS", "20000"))
    await run_chaos(platform, count, seed=7, report=shown(capsys))
