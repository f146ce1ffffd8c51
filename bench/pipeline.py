"""Benchmark (not a test): declarations through the whole platform.

Starts the platform, submits N declarations (default 10,000) at full speed and N/10 at a
fixed rate, and prints accepted throughput and submit-to-final latency (from the submit to
the result's append time on the results topic) p50/p95/p99. ``python -m bench.pipeline [N]``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from deploy.local.launcher import running_platform
from services.demo_data import DEMO_BROKER, demo_usccs, sample_declaration_body
from services.intake.devissuer import bearer
from singlewindow.kafka.reader import key_text, read_topic
from singlewindow.settings import get_settings
from singlewindow.topics import CLEARANCE_RESULTS


async def submit(url: str, count: int, rate: float | None) -> dict[str, float]:
    """declaration id -> submit time (epoch seconds) of every accepted declaration."""
    sent: dict[str, float] = {}
    offset = uuid.uuid4().int % 10**6
    gate = asyncio.Semaphore(16)

    async def one(client: httpx.AsyncClient, i: int) -> None:
        async with gate:
            at = time.time()
            response = await client.post(
                "/v1/declarations", json=sample_declaration_body(offset + i)
            )
            if response.status_code == 202:
                sent[response.json()["declaration_id"]] = at

    auth = bearer(DEMO_BROKER, demo_usccs())
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=auth) as client:
        tasks = []
        for i in range(count):
            tasks.append(asyncio.create_task(one(client, i)))
            if rate:
                await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    return sent


async def latencies(sent: dict[str, float], timeout_s: float = 900) -> list[float]:
    settings = get_settings()
    deadline = time.monotonic() + timeout_s
    while True:
        done = {
            key_text(r): r.timestamp / 1000
            for r in await read_topic(settings, CLEARANCE_RESULTS.name)
            if r.key and key_text(r) in sent
        }
        if len(done) == len(sent) or time.monotonic() > deadline:
            return [done[k] - sent[k] for k in done]
        await asyncio.sleep(2)


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else values[0]


async def phase(url: str, label: str, count: int, rate: float | None) -> None:
    started = time.monotonic()
    sent = await submit(url, count, rate)
    elapsed = time.monotonic() - started
    lat = await latencies(sent)
    print(
        f"{label}: {len(sent)}/{count} accepted in {elapsed:.1f} s = "
        f"{len(sent) / elapsed:,.0f}/s; submit-to-final p50 {pct(lat, 50):.2f} s, "
        f"p95 {pct(lat, 95):.2f} s, p99 {pct(lat, 99):.2f} s ({len(lat)} results)"
    )


def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as logs, running_platform(Path(logs), 18100) as platform:
        asyncio.run(phase(platform.url, "full speed", count, None))
        asyncio.run(phase(platform.url, "fixed rate 50/s", max(count // 10, 100), 50))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
