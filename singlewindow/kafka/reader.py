"""Read partitions from a position to their end: :func:`read_to_end`, the one reader.

Auditors' tools, the re-drive of dead letters, the aggregator's restore and the tests all read
this way: a consumer with the partitions assigned (no group membership, so live consumers
are untouched), from the beginning, a position, or its group's committed offsets, up to the
end offsets at the start of the read (for ``read_committed``, the last stable offsets).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from singlewindow.kafka.options import kafka_options
from singlewindow.settings import Settings

Isolation = Literal["read_committed", "read_uncommitted"]
# where a read starts: the beginning, an offset per partition, or the consumer's own position
# (its group's committed offsets, else its ``auto_offset_reset``)
Start = Literal["beginning", "committed"] | Mapping[TopicPartition, int]


def key_text(record: ConsumerRecord) -> str | None:
    """A record's key as text, for tools that match keys against declaration ids. Anyone
    allowed to produce can write a key that is not UTF-8: its bytes are replaced (U+FFFD), so
    it never equals an id, and never raises."""
    return None if record.key is None else bytes(record.key).decode("utf-8", "replace")


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of a topic, asked of the broker; KeyError when it does not exist."""
    await consumer._client.force_metadata_update()  # aiokafka has no public call for this
    numbers = consumer.partitions_for_topic(topic) or set()
    if not numbers:
        raise KeyError(f"topic {topic!r} does not exist")
    return [TopicPartition(topic, p) for p in sorted(numbers)]


@asynccontextmanager
async def reader(
    settings: Settings, isolation_level: Isolation = "read_committed", **options: Any
) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer outside any group (no commits), for :func:`read_to_end`;
    ``options`` are more aiokafka consumer settings (a larger fetch, say)."""
    consumer = AIOKafkaConsumer(
        **kafka_options(settings),
        isolation_level=isolation_level,
        enable_auto_commit=False,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        **options,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def read_to_end(
    consumer: AIOKafkaConsumer,
    partitions: Sequence[TopicPartition],
    start: Start = "beginning",
    end: Mapping[TopicPartition, int] | None = None,
    timeout_ms: int = 1000,
    progress: Callable[[], None] | None = None,
) -> AsyncIterator[list[ConsumerRecord]]:
    """The records of ``partitions`` from ``start`` up to ``end`` (excluded; by default the
    end offsets when the read starts), in the batches they are fetched in: each batch is
    records of one partition, in offset order.

    ``consumer`` (started) is assigned ``partitions``, replacing what it had; records
    appended after ``end`` are not read. A partition whose ``end`` is at or before its start
    yields nothing, at once. ``progress()`` is called after every fetch, an empty one too (a
    broker away): a long read is no hang (the aggregator's liveness, a restore of minutes).
    """
    partitions = list(partitions)
    consumer.assign(partitions)
    if start == "beginning":
        await consumer.seek_to_beginning(*partitions)
    elif start != "committed":
        for tp in partitions:
            consumer.seek(tp, start[tp])
    stop = dict(end) if end is not None else await consumer.end_offsets(partitions)
    pending = {tp for tp in partitions if await consumer.position(tp) < stop[tp]}
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=timeout_ms)
        if progress is not None:
            progress()
        for tp, records in batch.items():
            wanted = [r for r in records if r.offset < stop[tp]]
            if wanted:
                yield wanted
        pending = {tp for tp in pending if await consumer.position(tp) < stop[tp]}


async def read_topic(
    settings: Settings, topic: str, isolation_level: Isolation = "read_committed"
) -> list[ConsumerRecord]:
    """Every record of ``topic`` up to its end at the time of the call."""
    async with reader(settings, isolation_level) as consumer:
        partitions = await topic_partitions(consumer, topic)
        return [r async for batch in read_to_end(consumer, partitions) for r in batch]


async def read_partition(
    settings: Settings,
    tp: TopicPartition,
    isolation_level: Isolation = "read_committed",
    progress: Callable[[], None] | None = None,
) -> list[ConsumerRecord]:
    """Every record of one partition up to its end (the last stable offset when committed);
    ``progress()`` after every fetch (:func:`read_to_end`)."""
    async with reader(settings, isolation_level) as consumer:
        return [r async for batch in read_to_end(consumer, [tp], progress=progress) for r in batch]
