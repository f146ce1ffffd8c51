"""The broker restarts under load; instances scale out and in during the flow. Either way
no acknowledged declaration is lost and each gets exactly one result."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from typing import Any

import httpx
import pytest

from deploy.local.components import Kafka
from deploy.local.demo_data import DEMO_BROKER, sample_declaration_body
from services.intake.ids import scoped_key
from singlewindow.db import mongo_client
from singlewindow.kafka.reader import key_text, read_topic
from singlewindow.settings import get_settings
from singlewindow.topics import DECLARATIONS_SUBMITTED
from tests.e2e.checks import outcome, shown, submit_patiently, trader
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e
SCALED = ("aggregator", "customs", "ciq", "port")


async def idempotency_claim(key: str) -> dict[str, Any] | None:
    """What the intake recorded for an Idempotency-Key."""
    settings = get_settings()
    client = mongo_client(settings)
    try:
        keys = client[settings.mongodb_database]["idempotency_keys"]
        return await keys.find_one({"_id": scoped_key(DEMO_BROKER, key)})  # keys are per trader
    finally:
        await client.close()


async def submitted_ids() -> set[str]:
    records = await read_topic(get_settings(), DECLARATIONS_SUBMITTED.name)
    return {key_text(r) for r in records if r.key}


@pytest.mark.skipif(not Kafka().running(), reason="restarts the local stack's broker only")
async def test_broker_restart_under_load(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = uuid.uuid4().int % 10**6
    flow = asyncio.create_task(submit_patiently(platform.url, 400, offset, "restart"))
    await asyncio.sleep(3)
    broker = Kafka()
    stopping_at = time.monotonic()
    assert await asyncio.to_thread(broker.stop)  # SIGTERM, then wait for the JVM to exit
    down_at = time.monotonic()
    await asyncio.sleep(5)
    await asyncio.to_thread(broker.start)  # returns once the broker serves clients again
    downtime = time.monotonic() - down_at
    accepted, stats = await flow
    result = await outcome(accepted)
    shown(capsys)(
        f"\nbroker restart: clean stop took {down_at - stopping_at:.1f}s, down {downtime:.1f}s, "
        f"503s={stats.answers_503}, slowest answer {stats.slowest_s:.1f}s, {result.line()}"
    )
    assert len(set(accepted)) == 400
    assert stats.slowest_s < 35  # bounded: a 503 comes, never a hang
    result.assert_exactly_once()
    assert all(platform.alive().values()), "services recover without a restart of their own"


async def test_scale_out_and_in_during_the_flow(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = uuid.uuid4().int % 10**6
    flow = asyncio.create_task(submit_patiently(platform.url, 600, offset, "scale", 12))
    extra = [f"{name}#{n}" for name in SCALED for n in (2, 3)]
    try:
        for name in extra:
            platform.start(name)
        for name in extra:
            await asyncio.to_thread(platform.wait_ready, name, 60)
        await asyncio.sleep(3)
        for name in extra[::2]:  # scale in half of them while declarations keep coming
            assert await asyncio.to_thread(platform.stop, name) == 0
        accepted, _ = await flow
        await asyncio.sleep(2)
        for name in extra[1::2]:
            assert await asyncio.to_thread(platform.stop, name) == 0
    finally:
        for name in extra:
            if name in platform.procs:
                platform.kill(name)
    result = await outcome(accepted)
    shown(capsys)(f"\nscale out/in: 3 instances each of {', '.join(SCALED)}; {result.line()}")
    assert len(set(accepted)) == 600
    result.assert_exactly_once()


async def test_an_intake_killed_between_claim_and_publish_publishes_on_the_retry(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """The intake dies (SIGKILL) after claiming the Idempotency-Key and before publishing:
    the trader gets no answer, the claim stays. The retry (on the restarted intake) must not
    answer 202 from the claim alone: it publishes, and the declaration gets one result."""
    key = f"doomed-{uuid.uuid4().hex}"
    doomed = "intake#2"
    platform.start(doomed, INTAKE_FAULT_KILL_AFTER_CLAIM="doomed-")
    await asyncio.to_thread(platform.wait_ready, doomed, 60)
    body = sample_declaration_body(uuid.uuid4().int % 10**6)
    async with httpx.AsyncClient(
        base_url=platform.intake_urls[doomed], timeout=60, headers=trader()
    ) as client:
        with pytest.raises(httpx.TransportError):  # the process died mid-request
            await client.post("/v1/declarations", json=body, headers={"Idempotency-Key": key})
    assert await asyncio.to_thread(platform.exited, doomed, 30) == -signal.SIGKILL
    claim = await idempotency_claim(key)
    assert claim is not None and not claim["published"]  # claimed, then died
    declaration_id = claim["declaration_id"]
    assert declaration_id not in await submitted_ids()  # nothing was published

    async with httpx.AsyncClient(base_url=platform.url, timeout=60, headers=trader()) as client:
        retried = await client.post("/v1/declarations", json=body, headers={"Idempotency-Key": key})
    assert retried.status_code == 202, retried.text
    assert retried.json()["declaration_id"] == declaration_id
    assert declaration_id in await submitted_ids()  # the 202 came after the publish
    result = await outcome([declaration_id])
    shown(capsys)(f"\nintake killed between claim and publish, then retried: {result.line()}")
    result.assert_exactly_once()
    assert (await idempotency_claim(key) or {}).get("published") is True
