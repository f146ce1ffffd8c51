"""The broker restarts under load; instances scale out and in during the flow. Either way
no acknowledged declaration is lost and each gets exactly one result."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx
import pytest

from deploy.local.components import Kafka
from services.demo_data import sample_declaration_body
from tests.e2e.checks import outcome, shown, submit_all
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e
SCALED = ("aggregator", "customs", "ciq", "port")


async def submit_with_retries(
    url: str, count: int, offset: int
) -> tuple[list[str], dict[str, float]]:
    """A patient trader: on 503 wait Retry-After and retry with the same Idempotency-Key."""
    accepted: list[str] = []
    stats = {"503": 0.0, "slowest_s": 0.0}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(offset + i)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            key = f"restart-{offset}-{i}"
            while True:
                started = time.monotonic()
                response = await client.post(
                    "/v1/declarations",
                    json=sample_declaration_body(i),
                    headers={"Idempotency-Key": key},
                )
                stats["slowest_s"] = max(stats["slowest_s"], time.monotonic() - started)
                if response.status_code == 202:
                    accepted.append(response.json()["declaration_id"])
                    break
                assert response.status_code == 503, response.text
                assert int(response.headers["retry-after"]) > 0
                stats["503"] += 1
                await asyncio.sleep(1)

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(8)))
    return accepted, stats


@pytest.mark.skipif(
    bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")), reason="restarts the local broker only"
)
async def test_broker_restart_under_load(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = uuid.uuid4().int % 10**6
    flow = asyncio.create_task(submit_with_retries(platform.url, 400, offset))
    await asyncio.sleep(3)
    broker = Kafka()
    await asyncio.to_thread(broker.stop)
    down_at = time.monotonic()
    await asyncio.sleep(5)
    await asyncio.to_thread(broker.start)
    downtime = time.monotonic() - down_at
    accepted, stats = await flow
    result = await outcome(accepted)
    shown(capsys)(
        f"\nbroker restart: down {downtime:.1f}s, 503s={int(stats['503'])}, "
        f"slowest answer {stats['slowest_s']:.1f}s, {result.line()}"
    )
    assert len(accepted) == 400
    assert stats["slowest_s"] < 35  # bounded: a 503 comes, never a hang
    result.assert_exactly_once()
    assert all(platform.alive().values()), "services recover without a restart of their own"


async def test_scale_out_and_in_during_the_flow(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = uuid.uuid4().int % 10**6
    flow = asyncio.create_task(submit_all(platform.url, 600, offset))
    extra = [f"{name}#{n}" for name in SCALED for n in (2, 3)]
    try:
        for name in extra:
            platform.start(name)
        for name in extra:
            await asyncio.to_thread(platform.wait_ready, name, 60)
        await asyncio.sleep(3)
        for name in extra[::2]:  # scale in half of them while declarations keep coming
            assert await asyncio.to_thread(platform.stop, name) == 0
        accepted = await flow
        await asyncio.sleep(2)
        for name in extra[1::2]:
            assert await asyncio.to_thread(platform.stop, name) == 0
    finally:
        for name in extra:
            if name in platform.procs:
                platform.kill(name)
    result = await outcome(accepted)
    shown(capsys)(f"\nscale out/in: 3 instances each of {', '.join(SCALED)}; {result.line()}")
    assert len(accepted) == 600
    result.assert_exactly_once()
