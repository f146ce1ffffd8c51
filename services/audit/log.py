"""Reading the event log as an auditor: manual assignment, no group, no commits,
``read_committed``, so live consumers are untouched. Positions are ``beginning``, an offset
(applied to every partition) or an ISO-8601 time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from singlewindow.avro import CodecError
from singlewindow.events import (
    Event,
    decode_event,
)
from singlewindow.kafka.consumer import refusal
from singlewindow.kafka.reader import read_to_end, reader, topic_partitions
from singlewindow.settings import Settings
from singlewindow.topics import events_by_topic, projected

# what the projector folds (the inputs, the results, the gate-outs): the rebuild folds the same
AUDITED: dict[str, type[Event]] = events_by_topic(projected())


@dataclass(frozen=True)
class Position:
    """Where to start or stop reading: the beginning, an offset, or a time."""

    offset: int | None = None
    time: datetime | None = None

    @classmethod
    def parse(cls, text: str) -> Position:
        if text == "beginning":
            return cls(offset=0)
        if text.isdigit():
            return cls(offset=int(text))
        moment = datetime.fromisoformat(text)
        return cls(time=moment if moment.tzinfo else moment.replace(tzinfo=UTC))


@dataclass(frozen=True)
class LoggedEvent:
    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: str | None
    event: Event | None
    error: str | None = None
    payload: bytes = field(default=b"", repr=False)  # as recorded: what signatures cover

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp.isoformat(timespec="milliseconds"),
            "key": self.key,
            "type": type(self.event).__name__ if self.event else None,
            "event": self.event.model_dump(mode="json") if self.event else None,
            "error": self.error,
        }


def decode(topic: str, record: Any) -> LoggedEvent:
    event, error = None, None
    try:
        if record.value is None:
            raise ValueError("no value (a tombstone)")
        event = decode_event(record.value)
        error = refusal(record, event)  # what every consumer refuses is no event here either
    except (CodecError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        event = None
    return LoggedEvent(
        topic,
        record.partition,
        record.offset,
        datetime.fromtimestamp(record.timestamp / 1000, UTC),
        record.key.decode(errors="replace") if record.key else None,
        event,
        error,
        record.value or b"",
    )


async def read_events(
    settings: Settings,
    topics: list[str],
    start: Position = Position(offset=0),
    end: Position | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AsyncIterator[LoggedEvent]:
    """Decoded events of ``topics`` from ``start`` to ``end`` (or the current end)."""
    async with reader(settings, max_partition_fetch_bytes=4 * 1024 * 1024) as consumer:
        partitions: list[TopicPartition] = []
        for topic in topics:
            partitions += await topic_partitions(consumer, topic)
        consumer.assign(partitions)
        first, last = (
            await consumer.beginning_offsets(partitions),
            await consumer.end_offsets(partitions),
        )
        begin = await _resolve(consumer, partitions, start, first, last)
        stop = last if end is None else await _resolve(consumer, partitions, end, first, last)
        total = sum(max(stop[tp] - begin[tp], 0) for tp in partitions)
        done = 0
        async for records in read_to_end(consumer, partitions, start=begin, end=stop):
            for record in records:
                yield decode(record.topic, record)
            done += len(records)
            if progress:
                progress(min(done, total), total)


async def _resolve(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    position: Position,
    first: dict[TopicPartition, int],
    last: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    if position.time is None:
        offset = position.offset or 0
        return {tp: min(max(offset, first[tp]), last[tp]) for tp in partitions}
    millis = int(position.time.timestamp() * 1000)
    found = await consumer.offsets_for_times({tp: millis for tp in partitions})
    return {tp: found[tp].offset if found[tp] else last[tp] for tp in partitions}
