"""The real broker: version, catalog topics, produce/consume, transactions."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from singlewindow import events as ev
from singlewindow.kafka.admin import (
    admin_client,
    broker_api_versions,
    is_kafka_4_or_later,
    topic_configs,
)
from singlewindow.kafka.options import kafka_options
from singlewindow.kafka.reader import Isolation, read_topic
from singlewindow.settings import Settings
from singlewindow.topics import catalog
from tests import factories

pytestmark = pytest.mark.integration


async def read_all(
    settings: Settings, topic: str, isolation_level: Isolation = "read_uncommitted"
) -> list[tuple[bytes | None, bytes | None]]:
    return [(r.key, r.value) for r in await read_topic(settings, topic, isolation_level)]


async def test_broker_is_kafka_4(settings: Settings) -> None:
    versions = await broker_api_versions(settings)
    assert is_kafka_4_or_later(versions), f"Fetch versions {versions[1]}: not a Kafka 4 broker"


async def test_catalog_topics_exist_co_partitioned_and_never_delete(settings: Settings) -> None:
    admin = await admin_client(settings, ready_timeout=30)
    try:
        described = await admin.describe_topics([t.name for t in catalog()])
    finally:
        await admin.close()
    assert {d["topic"] for d in described} == {t.name for t in catalog()}
    assert {len(d["partitions"]) for d in described} == {settings.topic_partitions}
    configs = await topic_configs(settings, [t.name for t in catalog()])
    for topic in catalog():
        assert configs[topic.name]["cleanup.policy"] == topic.cleanup_policy
        if topic.cleanup_policy == "delete":
            assert configs[topic.name]["retention.ms"] == "-1", topic.name


async def test_produce_and_consume_an_event(settings: Settings, scratch_topic: str) -> None:
    event = factories.declaration(f"D-{uuid.uuid4().hex[:8]}")
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        meta = await producer.send_and_wait(scratch_topic, event.to_avro(), key=event.key())
    finally:
        await producer.stop()
    records = await read_all(settings, scratch_topic)
    assert records == [(event.key(), event.to_avro())]
    assert ev.DeclarationSubmitted.from_avro(records[0][1]) == event
    assert meta.offset == 0


async def test_a_transaction_commits_and_aborts(settings: Settings, scratch_topic: str) -> None:
    producer = AIOKafkaProducer(
        **kafka_options(settings),
        transactional_id=f"test-tx-{uuid.uuid4().hex[:8]}",
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(scratch_topic, b"committed", key=b"D-1")
        await producer.begin_transaction()
        await producer.send_and_wait(scratch_topic, b"aborted", key=b"D-1")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(scratch_topic, b"committed too", key=b"D-1")
    finally:
        await producer.stop()
    committed = [v for _, v in await read_all(settings, scratch_topic, "read_committed")]
    assert committed == [b"committed", b"committed too"]
    everything = [v for _, v in await read_all(settings, scratch_topic)]
    assert b"aborted" in everything  # the aborted record is in the log, hidden from readers


async def test_consumer_group_resumes_after_commit(settings: Settings, scratch_topic: str) -> None:
    group = f"test-group-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all")
    await producer.start()
    for i in range(4):
        await producer.send_and_wait(scratch_topic, str(i).encode(), key=b"same-key")
    await producer.stop()

    async def consume(n: int) -> list[bytes]:
        consumer = AIOKafkaConsumer(
            scratch_topic,
            **kafka_options(settings),
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        got: list[bytes] = []
        try:
            async with asyncio.timeout(30):
                async for message in consumer:
                    got.append(message.value or b"")
                    if len(got) == n:
                        await consumer.commit()
                        break
        finally:
            await consumer.stop()
        return got

    assert await consume(2) == [b"0", b"1"]
    assert await consume(2) == [b"2", b"3"]
