"""singlewindow.testing.FakeBroker: what it does as Kafka does, and the SDK's consume loop
(ConsumerService) on it, as tests/integration/test_consumer.py runs it on the real broker."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import murmur2

from singlewindow.events import DeclarationSubmitted
from singlewindow.kafka.consumer import ConsumerService, Record, decode_record
from singlewindow.kafka.deadletter import TRUNCATED
from singlewindow.kafka.headers import header
from singlewindow.kafka.producer import EventProducer
from singlewindow.settings import Settings
from singlewindow.testing import FakeBroker
from tests import factories

TOPIC = "scratch"


def consumer_service(broker: FakeBroker, handled: list[str], group: str = "g") -> ConsumerService:
    async def handle(record: Record) -> None:
        handled.append(decode_record(DeclarationSubmitted, record).declaration_id)

    settings = Settings()
    producer = EventProducer(settings, "test-consumer", transport=broker)
    return ConsumerService(
        "test-consumer", [TOPIC], group, settings, handle, producer, transport=broker
    )


async def test_a_key_goes_to_the_partition_kafka_clients_choose() -> None:
    broker = FakeBroker(partitions=6)
    for n in range(20):
        key = f"D-{n:04d}".encode()
        record = await broker.publish(TOPIC, b"v", key=key)
        assert record.partition == (murmur2(key) & 0x7FFFFFFF) % 6


async def test_the_consume_loop_dead_letters_poison_and_commits_after_the_work() -> None:
    poison = [b"\x00\xffnot avro", factories.declaration("D-0002").to_avro()[:-5]]
    async with FakeBroker() as broker:
        await broker.publish(TOPIC, factories.declaration("D-0001"), headers=[("k", b"1")])
        for value in poison:
            await broker.publish(TOPIC, value, key=b"D-0002", headers=[("k", b"2")])
        await broker.publish(TOPIC, factories.declaration("D-0003"))
        handled: list[str] = []
        service = consumer_service(broker, handled)
        await broker.start(service)
        await broker.run_until_idle()

    assert handled == ["D-0001", "D-0003"]
    letters = broker.dead_letters()
    assert [r.value for r in letters] == poison
    for letter, offset in zip(letters, (1, 2), strict=True):
        assert letter.key == b"D-0002"
        assert header(letter.headers, "k") == b"2"
        assert header(letter.headers, "sw-dlq-source-offset") == str(offset).encode()
        assert header(letter.headers, "sw-dlq-service") == b"test-consumer"
    assert broker.committed("g") == {TopicPartition(TOPIC, 0): 4}


async def test_a_dead_letter_the_broker_refuses_goes_as_a_minimal_one() -> None:
    """At the broker's size limit, the original fits and its letter (provenance added) does
    not: the loop sends a minimal letter instead (a prefix of the value and its digest)."""
    limit = 20_000
    async with FakeBroker(max_message_bytes=limit) as broker:
        big = await broker.publish(TOPIC, b"\x00" * (limit - 200), key=b"D-0001")
        await broker.start(consumer_service(broker, []))
        await broker.run_until_idle()

    [letter] = broker.dead_letters()
    assert header(letter.headers, TRUNCATED) == str(len(big.value)).encode()
    with pytest.raises(MessageSizeTooLargeError):
        await broker.publish(TOPIC, b"\x00" * limit, key=b"D-0001")


async def test_a_group_shares_partitions_by_range_and_a_leaver_hands_them_over() -> None:
    async with FakeBroker(partitions=3) as broker:
        one, two = consumer_service(broker, []), consumer_service(broker, [])
        await broker.start(one)
        assert one.consumer.assignment() == {TopicPartition(TOPIC, p) for p in range(3)}
        await broker.start(two)
        assert one.consumer.assignment() == {TopicPartition(TOPIC, p) for p in (0, 1)}
        assert two.consumer.assignment() == {TopicPartition(TOPIC, 2)}
        await broker.stop(one)
        assert two.consumer.assignment() == {TopicPartition(TOPIC, p) for p in range(3)}


async def test_run_until_idle_says_what_lags() -> None:
    async with FakeBroker() as broker:
        held = broker.hold("deadletters")
        await broker.start(consumer_service(broker, []))
        await broker.publish(TOPIC, b"poison", key=b"D-0001")
        with pytest.raises(TimeoutError, match=r"g at scratch/0: 0 of 1"):
            await broker.run_until_idle(timeout_s=0.3)
        held.release()
        await broker.run_until_idle()
