"""The SDK's consume loop on the real broker: poison goes to the dead-letter topic with
provenance, the partition keeps flowing, offsets are committed after the work is done."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from singlewindow.avro import encode
from singlewindow.events import DeclarationSubmitted
from singlewindow.kafka.consumer import ConsumerService, Record, decode_record
from singlewindow.kafka.headers import header
from singlewindow.kafka.options import kafka_options
from singlewindow.kafka.producer import EventProducer
from singlewindow.kafka.reader import read_topic
from singlewindow.settings import Settings
from singlewindow.topics import DEAD_LETTERS
from tests import factories
from tests.integration.test_hostile_records import committed

pytestmark = pytest.mark.integration


def poison_payloads() -> dict[str, bytes]:
    good = factories.declaration().to_avro()
    invalid = factories.declaration().model_dump(mode="python")
    invalid["items"] = []  # well-formed Avro, fails validation (a declaration needs items)
    return {
        "random bytes": b"\x00\xffnot avro at all",
        "unknown fingerprint": good[:2] + b"\x01" * 8 + good[10:],
        "truncated body": good[:-5],
        "fails validation": encode(DeclarationSubmitted.AVRO_NAME, invalid),
    }


async def test_poison_is_dead_lettered_and_the_flow_continues(
    settings: Settings, scratch_topic: str
) -> None:
    group = f"test-consumer-{uuid.uuid4().hex[:8]}"
    ids = [f"D-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    poison = poison_payloads()
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all")
    await producer.start()
    sent = [(ids[0], factories.declaration(ids[0]).to_avro())]
    sent += [(ids[1], payload) for payload in poison.values()]
    sent += [(ids[2], factories.declaration(ids[2]).to_avro())]
    for key, value in sent:  # one partition, in this order, keyed by declaration id
        await producer.send_and_wait(
            scratch_topic, value, key=key.encode(), partition=0, headers=[("k", key.encode())]
        )
    await producer.stop()

    handled: list[str] = []
    done = asyncio.Event()

    async def handle(record: Record) -> None:
        handled.append(decode_record(DeclarationSubmitted, record).declaration_id)
        if len(handled) == 2:
            done.set()

    service = ConsumerService(
        "test-consumer",
        [scratch_topic],
        group,
        settings,
        handle,
        EventProducer(settings, "test-consumer"),
    )
    await service.start()
    running = asyncio.create_task(service.run())
    async with asyncio.timeout(60):
        await done.wait()
    await asyncio.sleep(1)  # let the loop commit the batch
    await service.stop()
    await asyncio.wait_for(running, 30)

    assert handled == [ids[0], ids[2]]
    letters = [
        r
        for r in await read_topic(settings, DEAD_LETTERS.name)
        if header(r.headers, "sw-dlq-source-topic") == scratch_topic.encode()
    ]
    assert [r.value for r in letters] == list(poison.values())
    for letter, offset in zip(letters, range(1, 5), strict=True):
        assert letter.key == ids[1].encode()
        assert header(letter.headers, "k") == ids[1].encode()  # original headers kept
        assert header(letter.headers, "sw-dlq-source-offset") == str(offset).encode()
        assert header(letter.headers, "sw-dlq-service") == b"test-consumer"
        assert header(letter.headers, "sw-dlq-error")
        assert header(letter.headers, "sw-dlq-time")

    assert await committed(settings, group) == 6
