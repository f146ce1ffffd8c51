"""Garbage on every input topic: each consumer dead-letters it with provenance, the flow goes
on, and a re-drive puts the original bytes back on their source topic."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from deploy.local.demo_data import sample_declaration_body
from services.audit.deadletters import REDRIVABLE, DeadLetter, Refused, dead_letters, redrive
from singlewindow.avro import encode
from singlewindow.events import AgencyVerdict, DeclarationSubmitted
from singlewindow.kafka.headers import header
from singlewindow.kafka.options import kafka_options
from singlewindow.kafka.reader import key_text, read_topic
from singlewindow.settings import get_settings
from singlewindow.topics import CLEARANCE_RESULTS, DECLARATIONS_SUBMITTED, verdict_topics
from tests import factories
from tests.e2e.checks import trader
from tests.e2e.conftest import Platform
from tests.e2e.test_pipeline import final_status, submit

pytestmark = pytest.mark.e2e

# who consumes each input topic
CONSUMERS = {
    DECLARATIONS_SUBMITTED.name: {"customs", "ciq", "port", "aggregator", "projector"},
    **{t.name: {"aggregator", "projector"} for t in verdict_topics().values()},
    CLEARANCE_RESULTS.name: {"projector", "webhooks"},
}


def poison_kinds(topic: str) -> dict[str, bytes]:
    good = (
        factories.declaration() if topic == DECLARATIONS_SUBMITTED.name else factories.verdict()
    ).to_avro()
    name = good and (
        DeclarationSubmitted if topic == DECLARATIONS_SUBMITTED.name else AgencyVerdict
    )
    invalid = factories.declaration().avro_datum()
    invalid["items"] = []  # well-formed Avro that fails validation
    if name is AgencyVerdict:
        invalid = factories.verdict().avro_datum()
        invalid["decision"] = "CLEAR"
        invalid["declaration_id"] = ""  # a verdict must name its declaration
    return {
        "random bytes": uuid.uuid4().bytes * 3,
        "unknown fingerprint": good[:2] + bytes(8) + good[10:],
        "truncated body": good[: len(good) // 2],
        "fails validation": encode(name.AVRO_NAME, invalid),
    }


async def wait_for_letters(keys: set[str], expected: int) -> list[DeadLetter]:
    settings = get_settings()
    async with asyncio.timeout(120):
        while True:
            letters = [d for d in await dead_letters(settings) if d.key and key_text(d) in keys]
            if len(letters) >= expected:
                return letters
            await asyncio.sleep(1)


async def test_poison_on_every_input_topic(platform: Platform) -> None:
    settings = get_settings()
    run = uuid.uuid4().hex[:8]
    sent: dict[str, tuple[str, str, bytes]] = {}  # key -> topic, kind, payload
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all")
    await producer.start()
    try:
        for topic in CONSUMERS:
            for kind, payload in poison_kinds(topic).items():
                key = f"POISON-{run}-{topic}-{kind.replace(' ', '-')}"
                await producer.send_and_wait(topic, payload, key=key.encode())
                sent[key] = (topic, kind, payload)
    finally:
        await producer.stop()

    expected = sum(len(CONSUMERS[topic]) for topic, _, _ in sent.values())
    letters = await wait_for_letters(set(sent), expected)
    by_key: dict[str, set[str]] = defaultdict(set)
    for letter in letters:
        topic, _kind, payload = sent[key_text(letter)]
        assert letter.value == payload  # the original bytes
        assert letter.source_topic == topic
        assert letter.source_offset >= 0 and letter.error and letter.time
        by_key[key_text(letter)].add(letter.service)
    for key, (topic, kind, _) in sent.items():
        assert by_key[key] == CONSUMERS[topic], (topic, kind)

    # the flow goes on: a declaration submitted now gets its answer
    async with httpx.AsyncClient(base_url=platform.url, timeout=60, headers=trader()) as client:
        answer = await final_status(client, await submit(client, sample_declaration_body(0)))
    assert answer["result"] is not None

    # re-drive: each dead-lettered record of an input topic goes back to it, once; the
    # letters of clearance.results (not an input topic) are refused and reported, not sent
    refused: list[Refused] = []
    redriven = await redrive(settings, skipped=refused)
    ours = [d for d in redriven if d.key and key_text(d) in sent]
    inputs = {key for key, (topic, _, _) in sent.items() if topic in REDRIVABLE}
    assert sorted(key_text(d) for d in ours if d.key) == sorted(inputs)
    assert {key_text(r.letter) for r in refused if r.letter.key and key_text(r.letter) in sent} == (
        set(sent) - inputs
    )
    again = await redrive(settings)  # letters of the re-driven copies, not the same letters
    assert not {(d.partition, d.offset) for d in redriven} & {
        (d.partition, d.offset) for d in again
    }
    back = [
        r
        for r in await read_topic(settings, DECLARATIONS_SUBMITTED.name)
        if r.key and key_text(r) in sent and header(r.headers, "sw-redriven-from")
    ]
    assert len(back) >= 4  # the four kinds sent to declarations.submitted
    assert all(r.value == sent[key_text(r)][2] for r in back)
