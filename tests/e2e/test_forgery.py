"""Forged events have no effect and are reported: whoever reaches Kafka with write rights
(here the stack's admin) but not a service's signing key cannot submit a declaration, rule
for an agency, decide a result, or rewrite the aggregator's memory.

One real declaration is lodged while customs is stopped; meanwhile a forger publishes, each
unsigned and signed with a key the registry does not know or that belongs to another
service: a declaration routed to nobody (it would be RELEASED at once), a customs CLEAR for
the real declaration, a RELEASED result with no decisions, and a decided join state on the
aggregator's changelog (then the aggregator restarts and restores). Customs comes back: the
real declaration gets the one result its real verdicts give, the read model shows nothing
forged, and ``audit verify`` reports every forgery.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from deploy.local.demo_data import sample_declaration_body
from singlewindow.db import mongo_client
from singlewindow.events import (
    ClearanceResult,
    ClearanceStatus,
    Decision,
    Event,
    JoinState,
)
from singlewindow.kafka.options import kafka_options
from singlewindow.readmodel import COLLECTION
from singlewindow.settings import get_settings
from singlewindow.signing import SigningKey
from singlewindow.topics import (
    CLEARANCE_RESULTS,
    DECLARATIONS_SUBMITTED,
    JOIN_STATE,
    verdict_topics,
)
from tests import factories
from tests.e2e.checks import local_signer, trader
from tests.e2e.conftest import Platform
from tests.e2e.test_audit import audit
from tests.e2e.test_pipeline import final_status, submit

STRANGER = "forger-1"  # a key id the registry does not know


async def publish(forgeries: list[tuple[str, bytes, Event]]) -> None:
    """Send each (topic, payload) keyed by its declaration id, as the stack's admin."""
    producer = AIOKafkaProducer(**kafka_options(get_settings()), acks="all")
    await producer.start()
    try:
        for topic, payload, event in forgeries:
            await producer.send_and_wait(topic, payload, key=event.key())
    finally:
        await producer.stop()


def forged_three_ways(event: Event, impostor: str) -> list[bytes]:
    """``event`` unsigned, signed by a stranger's key, and signed by ``impostor``'s real key
    (a service that must not sign this kind of event)."""
    now = datetime.now(UTC)
    return [
        event.to_avro(),
        SigningKey.generate(STRANGER).sign(event, now)[1],
        local_signer(impostor).sign(event, now)[1],
    ]


async def document(declaration_id: str) -> dict[str, Any] | None:
    settings = get_settings()
    client = mongo_client(settings)
    try:
        found = await client[settings.mongodb_database][COLLECTION].find_one(
            {"_id": declaration_id}
        )
        return dict(found) if found else None
    finally:
        await client.close()


async def test_forged_events_change_nothing_and_verify_reports_them(platform: Platform) -> None:
    since = datetime.now(UTC).isoformat()
    platform.stop("customs")  # the real declaration waits for customs meanwhile
    async with httpx.AsyncClient(base_url=platform.url, timeout=60, headers=trader()) as client:
        real = await submit(client, sample_declaration_body(1))  # customs and the port
        status = (await client.get(f"/v1/declarations/{real}")).json()
    assert status["status"] in ("SUBMITTED", "IN_REVIEW")

    nobody = factories.declaration(f"DEC-FORGED-{uuid.uuid4().hex[:8]}", required_agencies=())
    clear = factories.verdict(real, "customs", Decision.CLEAR, verdict_id="FORGED-CLEAR")
    released = ClearanceResult(
        declaration_id=real,
        result_id="FORGED-RESULT",
        status=ClearanceStatus.RELEASED,
        decisions=(),
        total_duties=0,
        decided_at=datetime.now(UTC),
    )
    decided = JoinState(declaration_id=real, decided=ClearanceStatus.RELEASED)
    forgeries: list[tuple[str, bytes, Event]] = []
    for topic, event, impostor in (
        (DECLARATIONS_SUBMITTED.name, nobody, "customs"),
        (verdict_topics()["customs"].name, clear, "ciq"),
        (CLEARANCE_RESULTS.name, released, "intake"),
        (JOIN_STATE.name, decided, "port"),
    ):
        forgeries += [(topic, p, event) for p in forged_three_ways(event, impostor)]
    await publish(forgeries)

    platform.kill("aggregator")  # it restores from the changelog, forged state included
    platform.start("aggregator")
    platform.start("customs")
    async with httpx.AsyncClient(base_url=platform.url, timeout=60, headers=trader()) as client:
        answer = await final_status(client, real)

    # the real declaration: decided by the real verdicts, nothing forged in the read model
    # (the whole document: the trader's view leaves out the ids a forger would copy)
    doc: dict[str, Any] | None = await document(real)
    assert doc is not None and doc["status"] == answer["status"]
    decisions = {d["agency"]: d for d in doc["result"]["decisions"]}
    assert set(decisions) == set(doc["declaration"]["required_agencies"]) == {"customs", "port"}
    assert decisions["customs"]["verdict_id"] == doc["verdicts"]["customs"]["verdict_id"]
    assert decisions["customs"]["verdict_id"] != "FORGED-CLEAR"
    assert doc["result"]["result_id"] != "FORGED-RESULT" and doc["result"]["decisions"]
    assert await document(nobody.declaration_id) is None  # never projected, never decided

    # every forgery is on the dead-letter topic of the services that saw it, and in verify
    report = audit("verify", "--from", since, "--format", "json")
    assert report.returncode == 1, report.stdout + report.stderr
    findings = json.loads(report.stdout)["findings"]
    refused = [f for f in findings if f["kind"] == "signature refused"]
    by_topic: dict[str, int] = {}
    for finding in refused:
        topic = finding["detail"].split("@")[0]
        by_topic[topic] = by_topic.get(topic, 0) + 1
    assert by_topic == {
        DECLARATIONS_SUBMITTED.name: 3,
        verdict_topics()["customs"].name: 3,
        CLEARANCE_RESULTS.name: 3,
        JOIN_STATE.name: 3,
    }, refused
    details = " ".join(f["detail"] for f in refused)
    assert "unsigned" in details and f"unknown signing key '{STRANGER}'" in details
    assert "belongs to ciq, not customs" in details and "belongs to port, not aggregator" in details
    others = [f for f in findings if f["kind"] != "signature refused"]
    assert others == [], others  # the real declaration verifies clean; no forgery counted
