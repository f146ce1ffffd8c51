"""A trader's declarations through the whole platform, over HTTP: one submission, every
agency asked rules on it, one consolidated answer."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from services.aggregator.join import joint_status
from services.demo_data import SCENARIOS, sample_declaration_body, scenario
from singlewindow.events import Agency, Decision, TransportMode
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e
FINAL = {"RELEASED", "INSPECTION_REQUIRED", "HELD", "REJECTED", "TIMED_OUT"}


async def submit(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/v1/declarations", json=body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "SUBMITTED"
    assert response.headers["location"] == f"/v1/declarations/{answer['declaration_id']}"
    return str(answer["declaration_id"])


async def final_status(client: httpx.AsyncClient, declaration_id: str) -> dict[str, Any]:
    for _ in range(4):  # up to 4 long polls of 30 s
        response = await client.get(f"/v1/declarations/{declaration_id}", params={"wait": 30})
        assert response.status_code == 200, response.text
        if response.json()["status"] in FINAL:
            return dict(response.json())
    raise AssertionError(f"{declaration_id} has no final status: {response.json()}")


async def test_every_scenario_gets_one_consolidated_answer(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.url, timeout=60) as client:
        ids = [await submit(client, sample_declaration_body(i)) for i in range(len(SCENARIOS))]
        answers = await asyncio.gather(*(final_status(client, d) for d in ids))
    for i, answer in enumerate(answers):
        case = scenario(i)
        verdicts = {Agency(v["agency"]): v for v in answer["verdicts"]}
        result = answer["result"]
        assert result is not None, case.name
        asked = {Agency(d["agency"]) for d in result["decisions"]}
        assert asked == set(verdicts), case.name
        assert Agency.CUSTOMS in asked, case.name
        assert (Agency.PORT in asked) == (case.mode is TransportMode.SEA), case.name
        for agency, verdict in verdicts.items():
            expected = case.expected[agency]
            decision = Decision(verdict["decision"])
            sampled = any(r["code"] == "CUS-RANDOM-SAMPLE" for r in verdict["reasons"])
            if not (agency is Agency.CUSTOMS and sampled and expected is Decision.CLEAR):
                assert decision is expected, (case.name, agency, verdict)
            assert verdict["rules_version"], case.name
        status = joint_status([Decision(v["decision"]) for v in verdicts.values()])
        assert answer["status"] == result["status"] == status, case.name
        if status == "INSPECTION_REQUIRED":
            assert result["inspection"]["checks"], case.name
        assert result["total_duties"] == verdicts[Agency.CUSTOMS]["total_duties"], case.name


async def test_bad_input_is_refused_with_every_bad_field_named(platform: Platform) -> None:
    body = sample_declaration_body(0)
    body["declarant"]["uscc"] = "91350100M000100Y44"  # wrong check character
    body["items"][0]["hs_code"] = "12345"
    body["items"][0]["customs_value"] = "-1"
    async with httpx.AsyncClient(base_url=platform.url, timeout=30) as client:
        response = await client.post("/v1/declarations", json=body)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        fields = {e["field"] for e in response.json()["errors"]}
        assert {"declarant.uscc", "items[0].hs_code", "items[0].customs_value"} <= fields
        assert (await client.get("/v1/declarations/DEC-NOT-THERE")).status_code == 404


async def test_the_same_idempotency_key_returns_the_first_answer(platform: Platform) -> None:
    body = sample_declaration_body(1)
    headers = {"Idempotency-Key": f"e2e-{id(body)}"}
    async with httpx.AsyncClient(base_url=platform.url, timeout=30) as client:
        first = await client.post("/v1/declarations", json=body, headers=headers)
        again = await client.post("/v1/declarations", json=body, headers=headers)
        other = await client.post(
            "/v1/declarations", json=sample_declaration_body(2), headers=headers
        )
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert other.status_code == 409


async def test_every_service_serves_metrics(platform: Platform) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        intake = await client.get(f"{platform.url}/metrics")
        assert intake.status_code == 200
        for name, port in platform.metrics_ports.items():
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
            assert response.status_code == 200, name
            assert "singlewindow_" in response.text, name
