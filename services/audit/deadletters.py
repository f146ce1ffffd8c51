"""The dead-letter topic: what failed, why, and re-driving it to its source after a fix.

Re-driving produces the original key, value and headers (provenance headers removed, a
``sw-redriven-from`` header added) to the source topic, then commits the dead letter's offset
in the ``deadletters-redrive`` consumer group: each dead letter is re-driven once. A letter
that is not the whole original (cut to fit the broker's size limit, see
:mod:`singlewindow.kafka.deadletter`) is never re-driven: the original is on its source
topic at the provenance offset, and the letter's digests identify it.
"""

from __future__ import annotations

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
from singlewindow.kafka.headers import Headers, header
from singlewindow.kafka.producer import new_producer
from singlewindow.kafka.reader import read_topic, topic_partitions
from singlewindow.settings import Settings
from singlewindow.topics import DEAD_LETTERS

REDRIVE_GROUP = "deadletters-redrive"
PROVENANCE = "sw-dlq-"


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


async def dead_letters(settings: Settings) -> list[DeadLetter]:
    return [DeadLetter.of(r) for r in await read_topic(settings, DEAD_LETTERS.name)]


async def redrive(
    settings: Settings, dry_run: bool = False, skipped: list[DeadLetter] | None = None
) -> list[DeadLetter]:
    """Re-drive, in order, every dead letter not re-driven before.

    One source record dead-lettered by several services is re-driven once. A letter whose
    source topic no longer exists cannot go back, nor can an incomplete one (the original is
    still on its source topic): it is passed over (and appended to ``skipped``) so that it
    does not hold back the letters after it.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
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
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        for tp in partitions:
            while await consumer.position(tp) < end[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    letter = DeadLetter.of(record)
                    source = (letter.source_topic, letter.source_partition, letter.source_offset)
                    unsendable = letter.source_topic not in existing or letter.incomplete
                    if unsendable or source in seen:
                        if skipped is not None and unsendable:
                            skipped.append(letter)
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
                                ("sw-redriven-from", origin.encode()),
                            ],
                        )
                        await consumer.commit({tp: record.offset + 1})
                    done.append(letter)
    finally:
        await producer.stop()
        await consumer.stop()
    return done


def describe_time(letter: DeadLetter) -> str:
    try:
        return datetime.fromisoformat(letter.time).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return letter.time
