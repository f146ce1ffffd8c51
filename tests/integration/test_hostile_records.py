"""Hostile records on the real broker: each ends in the dead-letter topic, the partition
flows on, and readers return it rather than raise. A service started before Kafka waits."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.producer import message_accumulator
from aiokafka.producer import producer as producer_module
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

from services.audit.log import read_events
from singlewindow.avro import CodecError
from singlewindow.events import DeclarationSubmitted, decode_event
from singlewindow.kafka.consumer import ConsumerService, Record, decode_record
from singlewindow.kafka.deadletter import RAW_HEADER_KEY, TRUNCATED, VALUE_SHA256
from singlewindow.kafka.headers import header
from singlewindow.kafka.options import kafka_options
from singlewindow.kafka.producer import EventProducer
from singlewindow.kafka.reader import read_topic
from singlewindow.kafka.records import header_key_bytes
from singlewindow.settings import Settings
from singlewindow.topics import DEAD_LETTERS
from tests import factories
from tests.unit.test_records import RawKey

pytestmark = pytest.mark.integration

AT_THE_LIMIT = 1_048_400  # accepted by a broker with the default message.max.bytes
HOSTILE_KEY = b"\xff\xfesw-evil"


@contextlib.contextmanager
def raw_header_keys() -> Iterator[None]:
    """Let the producers of this process write :class:`RawKey` header keys as they are."""
    with pytest.MonkeyPatch.context() as patch:
        for module in (message_accumulator, producer_module):
            patch.setattr(module, "DefaultRecordBatchBuilder", _DefaultRecordBatchBuilderPy)
        yield


def key_of(value: bytes) -> bytes:
    try:
        return decode_event(value).key()
    except (CodecError, ValueError):
        return b"same"


async def produce(
    settings: Settings, topic: str, records: list[tuple[bytes, list[tuple[str, bytes]]]]
) -> None:
    """Write ``(value, headers)`` records in this order to partition 0, each keyed by its
    declaration id (``b"same"`` when the value is no event)."""
    producer = AIOKafkaProducer(
        **kafka_options(settings),
        acks="all",
        max_request_size=2 * 1024 * 1024,  # the broker decides what is too big, not we
    )
    await producer.start()
    try:
        for value, headers in records:
            await producer.send_and_wait(
                topic, value, key=key_of(value), partition=0, headers=headers
            )
    finally:
        await producer.stop()


async def consume(settings: Settings, topic: str, group: str, expected: int) -> list[str]:
    """Run a ConsumerService on ``topic`` until it handled ``expected`` declarations, or
    fail after a minute; the declaration ids handled, in order."""
    handled: list[str] = []
    done = asyncio.Event()

    async def handle(record: Record) -> None:
        handled.append(decode_record(DeclarationSubmitted, record).declaration_id)
        if len(handled) == expected:
            done.set()

    service = ConsumerService(
        "test-hostile", [topic], group, settings, handle, EventProducer(settings, "test-hostile")
    )
    await service.start()
    running = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(60):
            await done.wait()
        await asyncio.sleep(1)  # let the loop commit
    finally:
        await service.stop()
        await asyncio.wait_for(running, 30)
    return handled


async def letters_from(settings: Settings, topic: str) -> list[Record]:
    return [
        r
        for r in await read_topic(settings, DEAD_LETTERS.name)
        if header(r.headers, "sw-dlq-source-topic") == topic.encode()
    ]


async def committed(settings: Settings, group: str) -> int:
    admin = AIOKafkaAdminClient(**kafka_options(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(o.offset for tp, o in offsets.items() if isinstance(tp, TopicPartition))


async def test_a_record_at_the_size_limit_is_dead_lettered_cut_to_fit(
    settings: Settings, scratch_topic: str
) -> None:
    group, good = f"test-hostile-{uuid.uuid4().hex[:8]}", f"D-{uuid.uuid4().hex[:8]}"
    big = uuid.uuid4().bytes * (AT_THE_LIMIT // 16)  # not Avro: poison
    await produce(
        settings,
        scratch_topic,
        [(big, [("k", b"big")]), (factories.declaration(good).to_avro(), [])],
    )

    assert await consume(settings, scratch_topic, group, expected=1) == [good]

    [letter] = await letters_from(settings, scratch_topic)
    assert letter.value is not None and big.startswith(letter.value)
    assert 900_000 < len(letter.value) < len(big)
    assert header(letter.headers, TRUNCATED) == str(len(big)).encode()
    assert header(letter.headers, VALUE_SHA256) == hashlib.sha256(big).hexdigest().encode()
    assert header(letter.headers, "sw-dlq-source-offset") == b"0"
    assert header(letter.headers, "k") == b"big"
    assert letter.key == b"same"
    assert await committed(settings, group) == 2


async def test_a_header_key_that_is_not_utf8_is_dead_lettered_and_read(
    settings: Settings, scratch_topic: str
) -> None:
    group = f"test-hostile-{uuid.uuid4().hex[:8]}"
    ids = [f"D-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    values = [factories.declaration(i).to_avro() for i in ids]  # all three valid declarations
    with raw_header_keys():
        await produce(
            settings,
            scratch_topic,
            [
                (values[0], [("k", b"first")]),
                (values[1], [("k", b"hostile"), (RawKey(HOSTILE_KEY), b"v")]),
                (values[2], [("k", b"last")]),
            ],
        )

    assert await consume(settings, scratch_topic, group, expected=2) == [ids[0], ids[2]]

    [letter] = await letters_from(settings, scratch_topic)
    assert letter.value == values[1]  # the whole original
    assert header(letter.headers, "sw-dlq-source-offset") == b"1"
    assert b"not UTF-8" in (header(letter.headers, "sw-dlq-error") or b"")
    assert header(letter.headers, RAW_HEADER_KEY) == b"1:" + HOSTILE_KEY
    assert header(letter.headers, "\\xff\\xfesw-evil") == b"v"
    assert header(letter.headers, "k") == b"hostile"
    assert await committed(settings, group) == 3

    records = await read_topic(settings, scratch_topic)  # the reader returns it
    assert [r.value for r in records] == values
    assert [header_key_bytes(k) for k, _ in records[1].headers] == [b"k", HOSTILE_KEY]
    events = [e async for e in read_events(settings, [scratch_topic])]  # so does the audit's,
    assert [e.event.declaration_id for e in events if e.event] == [ids[0], ids[2]]
    assert "not UTF-8" in (events[1].error or "")  # which refuses it as every consumer does


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def proxy(port: int, target: str) -> AsyncIterator[None]:
    """A TCP proxy on ``port`` to ``target`` (host:port) while the context lasts."""
    host, target_port = target.rsplit(":", 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(target_port))
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(connect, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


async def test_a_service_started_before_kafka_waits_for_it(
    settings: Settings, scratch_topic: str
) -> None:
    port = free_port()
    later = settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{port}"})
    declaration = factories.declaration(f"D-{uuid.uuid4().hex[:8]}")
    handled: list[str] = []
    done = asyncio.Event()

    async def handle(record: Record) -> None:
        handled.append(decode_record(DeclarationSubmitted, record).declaration_id)
        done.set()

    service = ConsumerService(
        "test-late",
        [scratch_topic],
        f"test-late-{uuid.uuid4().hex[:8]}",
        later,
        handle,
        EventProducer(later, "test-late"),
    )
    starting = asyncio.create_task(service.start())
    await asyncio.sleep(3)
    assert not starting.done(), "start gave up (or raised) while Kafka was unreachable"
    async with proxy(port, settings.kafka_bootstrap_servers):
        await asyncio.wait_for(starting, 60)
        running = asyncio.create_task(service.run())
        await produce(settings, scratch_topic, [(declaration.to_avro(), [])])
        try:
            async with asyncio.timeout(60):
                await done.wait()
        finally:
            await service.stop()
            await asyncio.wait_for(running, 30)
    assert handled == [declaration.declaration_id]
