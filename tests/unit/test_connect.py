"""Services wait for Kafka at start (singlewindow/kafka/connect.py): against an address where
nothing listens they keep retrying, without raising, until asked to stop."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from aiokafka.errors import KafkaConnectionError

from singlewindow.kafka.admin import admin_client
from singlewindow.kafka.connect import start_client
from singlewindow.kafka.consumer import ConsumerService, Record
from singlewindow.kafka.producer import EventProducer, PublishTimeout
from singlewindow.settings import Settings


def closed_port() -> int:
    """A local port nothing listens on (connections to it are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def nowhere() -> Settings:
    return Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{closed_port()}", kafka_request_timeout_ms=1000
    )


async def ignore(record: Record) -> None:
    """A handler that is never called here."""


async def test_a_consumer_service_waits_for_kafka_until_stopped(
    nowhere: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "singlewindow.kafka.connect")
    service = ConsumerService(
        "test-start", ["t"], "test-start", nowhere, ignore, EventProducer(nowhere, "test-start")
    )
    starting = asyncio.create_task(service.start())
    await asyncio.sleep(3)
    assert not starting.done(), "start gave up (or raised) while Kafka was away"
    retries = [r for r in caplog.records if "Kafka not reachable" in r.getMessage()]
    assert len(retries) >= 2
    assert all("KafkaConnectionError" in r.getMessage() for r in retries)
    await service.stop()
    await asyncio.wait_for(starting, 5)  # returns, does not raise
    await asyncio.wait_for(service.run(), 5)  # and the loop ends at once, cleanly


async def test_an_event_producer_waits_for_kafka_until_stopped(nowhere: Settings) -> None:
    producer = EventProducer(nowhere, "test-start", timeout_s=2)
    stopping = asyncio.Event()
    starting = asyncio.create_task(producer.start(stopping))
    await asyncio.sleep(2)
    assert not starting.done()
    stopping.set()
    await asyncio.wait_for(starting, 5)
    with pytest.raises(PublishTimeout):  # a send still starts it lazily, within its bound
        await producer.send("t", b"k", b"v", [])
    await producer.stop()


class Flaky:
    """A client whose first ``failures`` instances cannot start."""

    made = 0

    def __init__(self, failures: int) -> None:
        Flaky.made += 1
        self.number, self.failures = Flaky.made, failures
        self.started = self.stopped = False

    async def start(self) -> None:
        if self.number <= self.failures:
            raise ConnectionRefusedError("nobody home")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


async def test_every_attempt_gets_a_fresh_client_and_failures_are_closed() -> None:
    Flaky.made = 0
    made: list[Flaky] = []

    def make() -> Flaky:
        made.append(Flaky(failures=3))
        return made[-1]

    client = await start_client(make, "test", max_backoff_s=0.01)
    assert client is made[-1] and client.started and len(made) == 4
    assert all(c.stopped and not c.started for c in made[:-1])


async def test_a_hung_attempt_is_bounded() -> None:
    class Hangs(Flaky):
        async def start(self) -> None:
            if self.number == 1:
                await asyncio.sleep(3600)
            await super().start()

    Flaky.made = 0
    client = await start_client(lambda: Hangs(0), "test", attempt_timeout_s=0.2)
    assert client is not None and client.number == 2


async def test_a_stop_abandons_the_attempt_in_hand() -> None:
    class Hangs(Flaky):
        async def start(self) -> None:
            await asyncio.sleep(3600)

    Flaky.made = 0
    stopping = asyncio.Event()
    clients: list[Hangs] = []

    def make() -> Hangs:
        clients.append(Hangs(0))
        return clients[-1]

    starting = asyncio.create_task(start_client(make, "test", stopping))
    await asyncio.sleep(0.2)
    stopping.set()
    assert await asyncio.wait_for(starting, 1) is None
    assert [c.stopped for c in clients] == [True]


async def test_an_admin_client_retries_until_its_timeout_then_raises(nowhere: Settings) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(KafkaConnectionError):
        await admin_client(nowhere, ready_timeout=1.5)
    assert 1.5 <= loop.time() - started < 10
