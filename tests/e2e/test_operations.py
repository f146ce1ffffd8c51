"""What an operator (and Kubernetes) sees of the running platform: every process live and
ready on its ops endpoints, a consumer that cannot reach Kafka not ready and saying so, and
the metrics of issue 14 on the right processes once declarations have flowed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.local.demo_data import sample_declaration_body
from singlewindow.registry import agency_registry
from singlewindow.topics import DECLARATIONS_SUBMITTED
from tests.e2e.checks import trader
from tests.e2e.conftest import Platform
from tests.e2e.test_pipeline import final_status, submit

pytestmark = pytest.mark.e2e
AGENCIES = agency_registry().codes
CONSUMERS = (*AGENCIES, "aggregator", "projector")
Samples = list[tuple[dict[str, str], float]]


def ops_urls(platform: Platform) -> dict[str, str]:
    """Every running process's ops endpoints: its metrics port, and the API ports of the
    HTTP services (which answer /livez and /readyz there too)."""
    urls = {
        name: f"http://127.0.0.1:{port}"
        for name, port in platform.metrics_ports.items()
        if name in platform.procs
    }
    doors = {
        "intake-api": platform.url,
        "bank-api": platform.bank_url,
        "inspection-api": platform.inspection_url,
        "gate-api": platform.gate_url,
    }
    return {**urls, **doors}


async def until_ready(client: httpx.AsyncClient, url: str, timeout_s: float = 60) -> httpx.Response:
    """``url``/readyz once it answers 200 (a member may be rebalancing a moment), or the last
    answer when it never does."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await client.get(f"{url}/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.5)


def samples(text: str, name: str) -> Samples:
    """The samples named ``name`` (a histogram's ``_count``, say) in a Prometheus text page."""
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def total(found: Samples, **labels: str) -> float:
    return sum(v for ls, v in found if all(ls.get(k) == w for k, w in labels.items()))


async def test_every_process_is_live_and_ready(platform: Platform) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for name, url in ops_urls(platform).items():
            livez = await client.get(f"{url}/livez")
            assert livez.status_code == 200, (name, livez.text)
            assert livez.json()["status"] == "live", name
            readyz = await until_ready(client, url)
            assert readyz.status_code == 200, (name, readyz.text)
            assert all(c["ok"] for c in readyz.json()["checks"].values()), name
        for name in CONSUMERS:  # a consumer is ready when connected and assigned
            url = f"http://127.0.0.1:{platform.metrics_ports[name]}"
            checks = (await client.get(f"{url}/readyz")).json()["checks"]
            assert {"kafka", "partitions"} <= checks.keys(), name
            assert checks["kafka"]["ok"] and checks["partitions"]["ok"], name
        # where a database is used, its reachability is part of readiness
        for url in (f"http://127.0.0.1:{platform.metrics_ports['projector']}", platform.url):
            checks = (await client.get(f"{url}/readyz")).json()["checks"]
            assert checks["database"]["ok"], url
        healthz = await client.get(f"{platform.url}/healthz")  # the alias older probes use
        assert healthz.status_code == 200 and healthz.json()["status"] == "live"


async def test_a_consumer_that_cannot_reach_kafka_is_live_but_not_ready_naming_kafka(
    platform: Platform,
) -> None:
    """One more port agency, pointed at a port where no broker listens: it waits for Kafka
    (live: a restart would not bring Kafka back) and is not ready, saying why."""
    name = "port#no-kafka"
    platform.start(name, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    try:
        url = f"http://127.0.0.1:{platform.metrics_ports[name]}"
        async with httpx.AsyncClient(timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:  # until its ops server answers
                try:
                    readyz = await client.get(f"{url}/readyz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, platform.log_tail(name)
                    await asyncio.sleep(0.3)
            livez = await client.get(f"{url}/livez")
            metrics = (await client.get(f"{url}/metrics")).text
    finally:
        assert platform.stop(name) == 0, platform.log_tail(name)
    assert readyz.status_code == 503
    body = readyz.json()
    assert body["status"] == "not ready"
    assert body["checks"]["kafka"] == {"ok": False, "detail": "connecting"}
    assert livez.status_code == 200
    assert total(samples(metrics, "singlewindow_ready"), service="port") == 0


async def test_the_metrics_of_the_flow_appear_on_the_right_processes(platform: Platform) -> None:
    count = 5
    async with httpx.AsyncClient(base_url=platform.url, timeout=60, headers=trader()) as client:
        ids = [await submit(client, sample_declaration_body(i)) for i in range(count)]
        answers: list[dict[str, Any]] = await asyncio.gather(
            *(final_status(client, d) for d in ids)
        )
    assert len(answers) == count
    async with httpx.AsyncClient(timeout=10) as client:
        for url in ops_urls(platform).values():
            await until_ready(client, url)  # singlewindow_ready is evaluated at each scrape
        pages = {
            name: (await client.get(f"{url}/metrics")).text
            for name, url in ops_urls(platform).items()
            if not name.endswith("-api")
        }
        pages["intake"] = (await client.get(f"{platform.url}/metrics")).text

    intake = pages["intake"]
    posted = samples(intake, "singlewindow_http_request_duration_seconds_count")
    assert total(posted, service="intake", method="POST", route="/v1/declarations", status="202")
    assert total(posted, service="intake", route="/v1/declarations/{declaration_id}")
    assert not any("DEC-" in ls["route"] for ls, _ in posted)  # route templates, never ids
    published = samples(intake, "singlewindow_published_total")
    assert total(published, service="intake", topic=DECLARATIONS_SUBMITTED.name) >= count
    for door in ("bank", "inspection", "gate"):  # their /readyz was asked on the API port
        timed = samples(pages[door], "singlewindow_http_request_duration_seconds_count")
        assert total(timed, service=door, route="/readyz", status="200"), door

    for name, page in pages.items():
        assert total(samples(page, "singlewindow_ready"), service=name.split("#")[0]) == 1, name
        # declared everywhere; a series per (source topic, error kind) once one is sent
        assert "# HELP singlewindow_dead_letters_total" in page, name

    for consumer in CONSUMERS:
        lag = samples(pages[consumer], "singlewindow_consumer_lag")
        assert lag, consumer  # one series per assigned partition
        assert {ls["service"] for ls, _ in lag} == {consumer}, consumer
        assert all(v >= 0 for _, v in lag), consumer

    aggregator = pages["aggregator"]
    finals = samples(aggregator, "singlewindow_submit_to_final_seconds_count")
    assert sum(v for _, v in finals) >= count
    assert {ls["status"] for ls, _ in finals} & {a["status"] for a in answers}
    sums = samples(aggregator, "singlewindow_submit_to_final_seconds_sum")
    assert 0 <= sum(v for _, v in sums) / sum(v for _, v in finals) < 600  # seconds, sensible
    verdicts = samples(aggregator, "singlewindow_verdict_latency_seconds_count")
    assert total(verdicts, agency="customs") >= count  # customs rules on every declaration
    commits = samples(aggregator, "singlewindow_transaction_commit_seconds_count")
    assert total(commits, service="aggregator") >= 1
    assert samples(aggregator, "singlewindow_join_states_open")[0][1] >= 0
    assert samples(aggregator, "singlewindow_deadlines_pending")[0][1] >= 0
    steps = samples(aggregator, "singlewindow_clearance_steps_total")
    assert sum(v for _, v in steps) >= count
