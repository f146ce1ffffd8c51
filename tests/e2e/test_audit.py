"""Auditors replay the log: verify recomputes every decision and catches what a service's
own key signed outside the rules (forgeries without the key: ``test_forgery``), the read
model rebuilds identically, a timeline shows one declaration in causal order."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from deploy.local.demo_data import sample_declaration_body
from singlewindow.db import mongo_client
from singlewindow.events import (
    AgencyDecision,
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    Reason,
)
from singlewindow.kafka.options import kafka_options
from singlewindow.readmodel import COLLECTION
from singlewindow.settings import get_settings
from singlewindow.signing import signer_of
from singlewindow.topics import CLEARANCE_RESULTS, verdict_topics
from tests.e2e.checks import local_signer, trader
from tests.e2e.conftest import DEADLINE_SECONDS, ROOT, Platform
from tests.e2e.test_pipeline import final_status, submit

pytestmark = pytest.mark.e2e


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.audit", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "AGGREGATOR_DEADLINE_SECONDS": str(DEADLINE_SECONDS), "COLUMNS": "250"},
    )


async def demo_load(platform: Platform, count: int) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=platform.url, timeout=60, headers=trader()) as client:
        ids = [await submit(client, sample_declaration_body(500 + i)) for i in range(count)]
        return list(await asyncio.gather(*(final_status(client, d) for d in ids)))


async def read_model_document(declaration_id: str) -> dict[str, Any]:
    """The whole read-model document (the trader's view leaves out verdict ids and the
    agencies' criteria, which a forger copies)."""
    settings = get_settings()
    client = mongo_client(settings)
    try:
        doc = await client[settings.mongodb_database][COLLECTION].find_one({"_id": declaration_id})
    finally:
        await client.close()
    assert doc is not None, declaration_id
    return doc


async def publish(topic: str, event: AgencyVerdict | ClearanceResult) -> None:
    """Publish ``event`` signed with the real key of the service that signs such events: a
    service gone wrong (or its stolen key). The signature holds; recomputation catches it."""
    _, payload = local_signer(signer_of(event)).sign(event, datetime.now(UTC))
    producer = AIOKafkaProducer(**kafka_options(get_settings()))
    await producer.start()
    try:
        await producer.send_and_wait(topic, payload, key=event.key())
    finally:
        await producer.stop()


async def test_auditors_verify_rebuild_and_trace(platform: Platform) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    answers = await demo_load(platform, 40)

    clean = audit("verify", "--from", since)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "findings" in clean.stdout

    rebuilt = audit("rebuild-read-model", "--into", f"shadow_{uuid.uuid4().hex[:8]}")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert " 0 differ" in rebuilt.stdout

    chosen = next(a for a in answers if len(a["verdicts"]) >= 2)  # type: ignore[arg-type]
    shown = audit("timeline", str(chosen["declaration_id"]))
    assert shown.returncode == 0, shown.stderr
    lines = [
        line
        for line in shown.stdout.splitlines()
        if "declarations.submitted" in line or "verdicts." in line or "clearance.results" in line
    ]
    assert "declarations.submitted" in lines[0] and "clearance.results" in lines[-1]
    assert all("verdicts." in line for line in lines[1:-1]) and len(lines) >= 4

    # a forged verdict: cleared goods "rejected" by customs, outside the rules
    released = next(a for a in answers if a["status"] in ("RELEASED", "AWAITING_PAYMENT"))
    recorded = await read_model_document(str(released["declaration_id"]))
    verdict = AgencyVerdict.model_validate(recorded["verdicts"]["customs"])
    forged = verdict.model_copy(
        update={
            "decision": Decision.REJECT,
            "reasons": (Reason(code="CUS-PROHIBITED", message="forged", item=1),),
        }
    )
    await publish(verdict_topics()[str(verdict.agency)].name, forged)
    caught = audit("verify", "--from", since)
    assert caught.returncode == 1
    assert "verdict mismatch" in caught.stdout and str(released["declaration_id"]) in caught.stdout

    # a result contradicting its verdicts: a rejected declaration "released"
    rejected = next(a for a in answers if a["status"] == "REJECTED")
    result = ClearanceResult.model_validate(
        (await read_model_document(str(rejected["declaration_id"])))["result"]
    )
    lie = result.model_copy(
        update={
            "status": ClearanceStatus.RELEASED,
            "decisions": tuple(
                AgencyDecision(agency=d.agency, decision=Decision.CLEAR, verdict_id=d.verdict_id)
                for d in result.decisions
            ),
        }
    )
    await publish(CLEARANCE_RESULTS.name, lie)
    caught = audit("verify", "--from", since)
    assert caught.returncode == 1
    assert "duplicate result" in caught.stdout
    assert "result contradicts verdicts" in caught.stdout
    assert str(rejected["declaration_id"]) in caught.stdout
