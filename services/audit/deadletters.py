"""The dead-letter topic: what failed, why, and re-driving it to its source after a fix.

Re-driving produces the original key, value and headers (provenance headers removed, a
``sw-redriven-from`` header added) to the source topic, then commits the dead letter's offset
in the ``deadletters-redrive`` consumer group: each dead letter is re-driven once. A letter
that is not the whole original (cut to fit the broker's size limit, see
:mod:`singlewindow.kafka.deadletter`) is never re-driven: the original is on its source
topic at the provenance offset, and the letter's digests identify it.

The source topic is a header, which whoever wrote the letter chose: a letter goes back only
to an *input* topic of the platform (:data:`REDRIVABLE`: the submitted declarations and the
agencies' verdicts), never to the results, the aggregator's changelog, the dead-letter topic
itself or a topic the platform does not know. Any other letter is refused and reported.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer

from singlewindow.kafka.consumer import Record
from singlewindow.kafka.deadletter import (
    HEADERS_DROPPED,
    KEY_TRUNCATED,
    TRUNCATED,
    VALUE_SHA256,
    sendable_headers,
)
from singlewindow.kafka.headers import REDRIVEN_FROM, Headers, header
from singlewindow.kafka.options import kafka_options
from singlewindow.kafka.producer import new_producer
from singlewindow.kafka.reader import read_to_end, read_topic, topic_partitions
from singlewindow.settings import Settings
from singlewindow.topics import DEAD_LETTERS, inputs

REDRIVE_GROUP = "deadletters-redrive"
PROVENANCE = "sw-dlq-"
# the topics services consume and that outsiders' messages reach: what a fix can replay
REDRIVABLE: frozenset[str] = frozenset(inputs())


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    source_topic: str
    source_partition: int
    source_offset: int
    service: str
    error: str
    time: str
    key: bytes | None
    value: bytes | None
    headers: Headers

    @classmethod
    def of(cls, record: Record) -> DeadLetter:
        def text(name: str) -> str:
            return (header(record.headers, PROVENANCE + name) or b"").decode(errors="replace")

        return cls(
            record.partition,
            record.offset,
            text("source-topic"),
            int(text("source-partition") or -1),
            int(text("source-offset") or -1),
            text("service"),
            text("error"),
            text("time"),
            record.key,
            record.value,
            list(record.headers or ()),
        )

    def original_headers(self) -> Headers:
        """The original's headers, as a producer can send them."""
        kept, _ = sendable_headers(self.headers)
        return [(k, v) for k, v in kept if not k.startswith(PROVENANCE)]

    @property
    def incomplete(self) -> bool:
        """Whether the letter lacks part of the original (cut to fit the size limit)."""
        return any(
            header(self.headers, name) for name in (TRUNCATED, KEY_TRUNCATED, HEADERS_DROPPED)
        )

    @property
    def value_sha256(self) -> str | None:
        """The digest of the original value, when the letter carries only a prefix of it."""
        digest = header(self.headers, VALUE_SHA256)
        return digest.decode(errors="replace") if digest else None


@dataclass(frozen=True)
class Refused:
    """A dead letter that is not re-driven, and why."""

    letter: DeadLetter
    reason: str


def refusal(letter: DeadLetter, existing: Collection[str]) -> str | None:
    """Why ``letter`` must not be re-driven (None: it may), given the topics that exist."""
    source = letter.source_topic
    if source not in REDRIVABLE:
        allowed = ", ".join(sorted(REDRIVABLE))
        return f"its source topic {source!r} is not an input topic of the platform ({allowed})"
    if letter.incomplete:
        where = f"{source}@{letter.source_partition}/{letter.source_offset}"
        return (
            f"it holds only part of the original, which is at {where}"
            f" (value sha256 {letter.value_sha256})"
        )
    if source not in existing:
        return f"its source topic {source!r} no longer exists"
    return None


async def dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every letter of the dead-letter topic, in partition and offset order."""
    return [DeadLetter.of(r) for r in await read_topic(settings, DEAD_LETTERS.name)]


async def redrive(
    settings: Settings, dry_run: bool = False, skipped: list[Refused] | None = None
) -> list[DeadLetter]:
    """Re-drive, in order, every dead letter not re-driven before.

    One source record dead-lettered by several services is re-driven once. A letter that
    :func:`refusal` refuses (not an input topic, incomplete, its topic gone) is passed over
    and appended to ``skipped`` with the reason, so that it does not hold back the letters
    after it; it is never sent.
    """
    consumer = AIOKafkaConsumer(
        **kafka_options(settings),
        group_id=REDRIVE_GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = new_producer(settings, "deadletters-redrive")
    await consumer.start()
    await producer.start()
    done: list[DeadLetter] = []
    try:
        partitions = await topic_partitions(consumer, DEAD_LETTERS.name)
        existing = set(await consumer.topics())
        seen: set[tuple[str, int, int]] = set()
        end = await consumer.end_offsets(partitions)
        for tp in partitions:  # one after the other, each from its committed offset
            async for records in read_to_end(consumer, [tp], start="committed", end=end):
                for record in records:
                    letter = DeadLetter.of(record)
                    source = (letter.source_topic, letter.source_partition, letter.source_offset)
                    refused = refusal(letter, existing)
                    if refused is not None or source in seen:
                        if skipped is not None and refused is not None:
                            skipped.append(Refused(letter, refused))
                        if not dry_run:
                            await consumer.commit({tp: record.offset + 1})
                        continue
                    seen.add(source)
                    if not dry_run:
                        origin = f"{DEAD_LETTERS.name}/{tp.partition}/{record.offset}"
                        await producer.send_and_wait(
                            letter.source_topic,
                            letter.value,
                            key=letter.key,
                            headers=[
                                *letter.original_headers(),
                                (REDRIVEN_FROM, origin.encode()),
                            ],
                        )
                        await consumer.commit({tp: record.offset + 1})
                    done.append(letter)
    finally:
        await producer.stop()
        await consumer.stop()
    return done


def describe_time(letter: DeadLetter) -> str:
    """The letter's time as ``YYYY-MM-DD HH:MM:SS``, or as written when it is no ISO time."""
    try:
        return datetime.fromisoformat(letter.time).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return letter.time
