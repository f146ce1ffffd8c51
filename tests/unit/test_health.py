"""Liveness and readiness: the model (singlewindow.health) driven by fakes, the consume loop
reporting into it on the in-memory broker, and the ops server answering over a real local
socket (singlewindow.ops)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CONTENT_TYPE_LATEST

from services.aggregator import tasks
from services.aggregator.service import LOOP, Aggregator
from services.aggregator.tasks import Task
from singlewindow.agency import agency_service
from singlewindow.events import AgencyVerdict, DeclarationSubmitted
from singlewindow.health import Health, NotReady
from singlewindow.kafka.consumer import ConsumerService, Fill, Record
from singlewindow.kafka.watch import IDLE
from singlewindow.ops import OpsServer
from singlewindow.settings import Settings
from singlewindow.testing import FakeBroker, FakeConsumer
from singlewindow.topics import DECLARATIONS_SUBMITTED
from tests import factories

CUSTOMS = "customs"
INTAKE = factories.SIGNING["intake"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def checks(body: dict[str, object]) -> dict[str, tuple[bool, str]]:
    found = body["checks"]
    assert isinstance(found, dict)
    return {name: (c["ok"], c["detail"]) for name, c in found.items()}


# --- the model ------------------------------------------------------------------------------


async def test_a_process_without_parts_is_live_and_ready() -> None:
    health = Health("x")
    assert health.live() == (True, {"status": "live", "loops": {}})
    assert await health.ready() == (True, {"status": "ready", "checks": {}})


def test_a_loop_silent_for_the_stall_time_is_hung_and_one_that_ended_is_not() -> None:
    clock = Clock()
    health = Health("x", stall_s=60, clock=clock)
    health.progress("consume")
    clock.now += 59
    assert health.live()[0]
    clock.now += 1
    live, body = health.live()
    assert not live
    assert body == {"status": "hung", "loops": {"consume": {"ok": False, "silent_seconds": 60}}}
    health.progress("consume")  # it moves again
    assert health.live()[0]
    clock.now += 600
    health.ended("consume")  # stopped on purpose: silence is no hang
    assert health.live()[0]


async def test_readiness_names_every_part_that_is_not_ready() -> None:
    health = Health("x")
    partitions = health.check("partitions")
    ok, body = await health.ready()
    assert not ok and checks(body) == {"partitions": (False, "not started")}
    partitions.set(True, "3 partitions assigned")

    async def database_down() -> None:
        raise ConnectionRefusedError("connection refused")

    health.probe("database", database_down)
    ok, body = await health.ready()
    assert not ok and body["status"] == "not ready"
    assert checks(body) == {
        "database": (False, "ConnectionRefusedError: connection refused"),
        "partitions": (True, "3 partitions assigned"),
    }


async def test_a_probe_is_bounded_and_its_answer_reused_for_its_ttl() -> None:
    clock = Clock()
    health = Health("x", clock=clock)
    asked: list[str] = []
    hang = asyncio.Event()

    async def kafka() -> str:
        asked.append("kafka")
        if hang.is_set():
            await asyncio.sleep(3600)
        return "connected"

    health.probe("kafka", kafka, timeout_s=0.05, ttl_s=5)
    assert (await health.ready())[0]
    clock.now += 4
    await asyncio.gather(health.ready(), health.ready())
    assert asked == ["kafka"]  # within the ttl: the answer reused
    hang.set()
    clock.now += 1
    ok, body = await health.ready()  # the broker no longer answers: bounded, not ready
    assert not ok and checks(body) == {"kafka": (False, "no answer within 0.05s")}
    assert asked == ["kafka", "kafka"]


async def test_a_probe_saying_why_it_is_not_ready() -> None:
    health = Health("x", clock=Clock())

    async def connecting() -> None:
        raise NotReady("connecting")

    health.probe("kafka", connecting)
    assert checks((await health.ready())[1]) == {"kafka": (False, "connecting")}


# --- the consume loop reporting into it -----------------------------------------------------


@pytest.fixture
def settings() -> Settings:
    return factories.with_keys(Settings(), CUSTOMS)


def rule(declaration: DeclarationSubmitted, now: object) -> AgencyVerdict:
    return factories.verdict(declaration.declaration_id, CUSTOMS)


def customs(settings: Settings, broker: FakeBroker, health: Health) -> ConsumerService:
    return agency_service(CUSTOMS, rule, settings, transport=broker, health=health)  # type: ignore[arg-type]


class Unreachable(FakeBroker):
    """A broker no consumer reaches: every start fails as aiokafka's does."""

    def consumer(
        self,
        settings: Settings,
        group_id: str,
        client_id: str,
        topics: Sequence[str],
        fill: Fill | None = None,
        listener: object = None,
    ) -> FakeConsumer:
        consumer = super().consumer(settings, group_id, client_id, topics, fill)

        async def refuse() -> None:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")

        consumer.start = refuse  # type: ignore[method-assign]
        return consumer


async def test_a_consumer_not_started_is_not_ready(settings: Settings) -> None:
    health = Health(CUSTOMS)
    async with FakeBroker() as broker:
        customs(settings, broker, health)
        ok, body = await health.ready()
    assert not ok
    assert checks(body) == {
        "kafka": (False, "not started"),
        "partitions": (False, "no assignment yet"),
    }
    assert health.live()[0]  # no loop runs yet: none hangs


async def test_a_consumer_waiting_for_kafka_is_connecting_and_live(settings: Settings) -> None:
    health = Health(CUSTOMS, stall_s=0.001)
    async with Unreachable() as broker:
        service = customs(settings, broker, health)
        starting = asyncio.create_task(service.start())
        await asyncio.sleep(0)  # the start begins (and retries for as long as it takes)
        ok, body = await health.ready()
        await service.stop()
        await asyncio.wait_for(starting, 5)
    assert not ok and checks(body)["kafka"] == (False, "connecting")
    assert health.live()[0]  # waiting for Kafka is no hang: restarting would not help


async def test_a_member_with_partitions_is_ready_and_its_loop_live(settings: Settings) -> None:
    health = Health(CUSTOMS)
    async with FakeBroker(partitions=2) as broker:
        await broker.start(customs(settings, broker, health))
        await broker.publish(DECLARATIONS_SUBMITTED.name, factories.declaration(), signer=INTAKE)
        await broker.run_until_idle()
        ok, body = await health.ready()
        live, liveness = health.live()
    assert ok, body
    assert checks(body) == {
        "kafka": (True, "connected"),
        "partitions": (True, "2 partitions assigned"),
    }
    assert live and liveness["loops"]["consume"]["ok"]
    assert health.loops == {}  # stopped: the loop ended, its silence is no hang


async def test_a_member_the_group_has_no_partition_for_is_an_idle_ready_standby(
    settings: Settings,
) -> None:
    first, second = Health(CUSTOMS), Health(CUSTOMS)
    async with FakeBroker(partitions=1) as broker:
        await broker.start(customs(settings, broker, first))
        await broker.start(customs(settings, broker, second))
        await broker.publish(DECLARATIONS_SUBMITTED.name, factories.declaration(), signer=INTAKE)
        await broker.run_until_idle()
        # the standby hears of its (empty) assignment within its first poll
        await broker.until(lambda: second.checks["partitions"].ok, 5, "the standby assigned")
        answers = [await h.ready() for h in (first, second)]
    assert [ok for ok, _ in answers] == [True, True]
    assert checks(answers[0][1])["partitions"] == (True, "1 partitions assigned")
    assert checks(answers[1][1])["partitions"] == (True, IDLE)


async def test_a_consumer_whose_database_is_down_is_not_ready(settings: Settings) -> None:
    health = Health(CUSTOMS)

    async def ping() -> None:
        raise TimeoutError  # as a ping that got no answer within its bound

    health.probe("database", ping)
    async with FakeBroker() as broker:
        await broker.start(customs(settings, broker, health))
        await broker.run_until_idle()
        ok, body = await health.ready()
    assert not ok
    assert checks(body)["database"] == (False, "no answer within 3s")
    assert checks(body)["kafka"] == (True, "connected")


# --- the ops server over a real socket ------------------------------------------------------


@asynccontextmanager
async def ops(health: Health) -> AsyncIterator[httpx.AsyncClient]:
    server = OpsServer(health, 0, host="127.0.0.1")  # an ephemeral port
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            yield client
    finally:
        await server.stop()


async def test_the_ops_server_answers_liveness_readiness_and_metrics() -> None:
    clock = Clock()
    health = Health("ops-test", stall_s=60, clock=clock)
    health.check("partitions").set(True, "1 partitions assigned")
    health.progress("consume")
    async with ops(health) as client:
        livez, readyz, metrics = [await client.get(p) for p in ("/livez", "/readyz", "/metrics")]
        missing = await client.get("/nothing")
        posted = await client.post("/readyz")
    assert (livez.status_code, livez.headers["content-type"]) == (200, "application/json")
    assert livez.json()["status"] == "live"
    assert readyz.status_code == 200 and readyz.json()["status"] == "ready"
    assert metrics.status_code == 200
    assert metrics.headers["content-type"] == CONTENT_TYPE_LATEST  # the text format
    assert 'singlewindow_ready{service="ops-test"} 1.0' in metrics.text
    assert "process_cpu_seconds_total" in metrics.text
    assert (missing.status_code, posted.status_code) == (404, 405)


async def test_the_ops_server_answers_503_naming_what_is_not_ready_or_hung() -> None:
    clock = Clock()
    health = Health("ops-test-down", stall_s=60, clock=clock)

    async def kafka() -> None:
        raise NotReady("connecting")

    health.probe("kafka", kafka)
    health.progress("consume")
    clock.now += 61
    async with ops(health) as client:
        livez, readyz = await client.get("/livez"), await client.get("/readyz")
        metrics = await client.get("/metrics")
    assert livez.status_code == 503 and livez.json()["loops"]["consume"]["ok"] is False
    assert readyz.status_code == 503
    assert readyz.json() == {
        "status": "not ready",
        "checks": {"kafka": {"ok": False, "detail": "connecting"}},
    }
    assert 'singlewindow_ready{service="ops-test-down"} 0.0' in metrics.text


async def test_the_ops_server_drops_a_request_that_never_ends_and_keeps_answering() -> None:
    async with ops(Health("ops-test-slow")) as client:
        port = int(str(client.base_url).rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n")  # no end of head
        await writer.drain()
        answered = await client.get("/livez")  # meanwhile, another caller is answered
        writer.write(b"X-Huge: " + b"x" * 10_000 + b"\r\n\r\n")  # beyond the head's bound
        await writer.drain()
        closed = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert answered.status_code == 200
    assert closed == b""  # nothing answered: the connection closed


# --- the aggregator opening its tasks ---------------------------------------------------------


class Opened:
    """A task's transactional producer that starts at once (InitProducerId answered)."""

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def aggregator(health: Health) -> Aggregator:
    keys = factories.service_keys("aggregator")
    return Aggregator(Settings(), timedelta(seconds=60), keys=keys, health=health)


async def test_an_aggregator_restoring_a_long_changelog_stays_live(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Restoring a task's join states can take minutes (a large changelog, a busy node): a
    restart would only start it over, every time."""
    clock = Clock()
    health = Health("aggregator", stall_s=60, clock=clock)
    joining = aggregator(health)
    monkeypatch.setattr(Task, "new_producer", lambda self: Opened())

    async def changelog(*args: object, progress: Callable[[], None] | None = None) -> list[Record]:
        for _ in range(10):  # ten fetches, half a minute each
            clock.now += 30
            if progress is not None:
                progress()
        return []

    monkeypatch.setattr(tasks, "read_partition", changelog)
    health.progress(LOOP)  # the loop's iteration that opens the task
    await joining.open_task(0)
    assert 0 in joining.tasks
    live, body = health.live()
    assert live, body


async def test_an_aggregator_whose_transaction_coordinator_is_away_retries_and_stays_live(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiokafka retries InitProducerId for as long as the transaction coordinator is away:
    the task's start is bounded, and retried, and retrying is no hang."""
    clock = Clock()
    health = Health("aggregator", stall_s=60, clock=clock)
    joining = aggregator(health)
    starts: list[object] = []

    class CoordinatorAway(Opened):
        async def start(self) -> None:
            starts.append(self)
            if len(starts) == 1:  # away for minutes, then back
                clock.now += 200
                await asyncio.Event().wait()

    async def changelog(*args: object, **kwargs: object) -> list[Record]:
        return []

    monkeypatch.setattr(Task, "new_producer", lambda self: CoordinatorAway())
    monkeypatch.setattr(tasks, "START_TIMEOUT_S", 0.01)
    monkeypatch.setattr(tasks, "read_partition", changelog)
    health.progress(LOOP)
    await asyncio.wait_for(joining.open_task(0), 10)
    assert len(starts) == 2 and 0 in joining.tasks
    live, body = health.live()
    assert live, body
