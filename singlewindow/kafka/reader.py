"""Read a topic from the beginning to its current end, without a consumer group.

Manual assignment: no group, no commits, so live consumers are untouched. Used by tests and
by auditors' tools.
"""

from __future__ import annotations

from typing import Literal

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from singlewindow.kafka.options import kafka_options
from singlewindow.settings import Settings

Isolation = Literal["read_committed", "read_uncommitted"]


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


async def read_topic(
    settings: Settings, topic: str, isolation_level: Isolation = "read_committed"
) -> list[ConsumerRecord]:
    """Every record of ``topic`` up to its end at the time of the call, partition by partition."""
    return await _read_to_end(settings, isolation_level, topic=topic)


async def read_partition(
    settings: Settings, tp: TopicPartition, isolation_level: Isolation = "read_committed"
) -> list[ConsumerRecord]:
    """Every record of one partition up to its end (the last stable offset when committed)."""
    return await _read_to_end(settings, isolation_level, partition=tp)


async def _read_to_end(
    settings: Settings,
    isolation_level: Isolation,
    topic: str | None = None,
    partition: TopicPartition | None = None,
) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(
        **kafka_options(settings),
        isolation_level=isolation_level,
        enable_auto_commit=False,
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )
    await consumer.start()
    try:
        partitions = [partition] if partition else await topic_partitions(consumer, str(topic))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        pending = {tp for tp in partitions if end[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for messages in batch.values():
                records += messages
            pending = {tp for tp in pending if await consumer.position(tp) < end[tp]}
        return records
    finally:
        await consumer.stop()
