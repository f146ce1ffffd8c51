"""The SDK's one reader, read_to_end, on singlewindow.testing.FakeBroker's consumers."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from singlewindow.kafka.reader import read_to_end
from singlewindow.testing import FakeBroker

TOPIC = "t"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


async def filled(partitions: int = 2, each: int = 5) -> FakeBroker:
    broker = FakeBroker(partitions=partitions)
    for n in range(each):
        for p in range(partitions):
            await broker.publish(TOPIC, f"{p}/{n}".encode(), key=b"k", partition=p)
    return broker


async def test_every_record_to_the_end_in_batches_of_one_partition_in_offset_order() -> None:
    broker = await filled()
    consumer = broker.reader()
    await consumer.start()
    batches = [batch async for batch in read_to_end(consumer, [P0, P1])]
    for batch in batches:
        assert len({r.partition for r in batch}) == 1
        assert [r.offset for r in batch] == sorted(r.offset for r in batch)
    values = sorted(r.value for batch in batches for r in batch)
    assert values == sorted(f"{p}/{n}".encode() for p in range(2) for n in range(5))


async def test_the_end_is_taken_when_the_read_starts() -> None:
    broker = await filled()
    consumer = broker.reader()
    consumer.max_poll_records = 2
    await consumer.start()
    read = []
    async for batch in read_to_end(consumer, [P0, P1]):
        read += batch
        await broker.publish(TOPIC, b"later", key=b"k", partition=batch[0].partition)
    assert len(read) == 10
    assert b"later" not in {r.value for r in read}


async def test_from_given_offsets_to_given_ends() -> None:
    broker = await filled()
    consumer = broker.reader()
    await consumer.start()
    read = [
        r
        async for batch in read_to_end(consumer, [P0, P1], start={P0: 1, P1: 4}, end={P0: 3, P1: 4})
        for r in batch
    ]
    assert [r.value for r in read] == [b"0/1", b"0/2"]


async def test_from_the_committed_offsets_and_nothing_left_returns_at_once() -> None:
    broker = await filled()
    broker.commit("redrive", {P0: 5, P1: 3})
    consumer = broker.reader("redrive")
    await consumer.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    nothing = [b async for b in read_to_end(consumer, [P0], start="committed", timeout_ms=5000)]
    assert nothing == []
    assert loop.time() - started < 1
    rest = [r async for b in read_to_end(consumer, [P1], start="committed") for r in b]
    assert [r.value for r in rest] == [b"1/3", b"1/4"]


async def test_an_empty_partition_is_not_waited_on() -> None:
    broker = FakeBroker(partitions=2)
    consumer = broker.reader()
    await consumer.start()
    async with asyncio.timeout(1):
        assert [b async for b in read_to_end(consumer, [P0, P1], timeout_ms=5000)] == []
