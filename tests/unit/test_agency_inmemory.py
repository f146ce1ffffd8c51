"""An agency service in memory: the SDK's own consume loop (agency_service, ConsumerService,
EventProducer) run against singlewindow.testing.FakeBroker instead of Kafka. Routing, not
routed, a verdict that does not match, poison and commits; tests/integration has the same
on the real broker."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from singlewindow.agency import agency_service
from singlewindow.events import AgencyVerdict, DeclarationSubmitted
from singlewindow.kafka.consumer import ConsumerService, decode_signed
from singlewindow.kafka.headers import PRODUCER, TRACEPARENT, header
from singlewindow.settings import Settings
from singlewindow.signing import SigningKey
from singlewindow.testing import FakeBroker
from singlewindow.topics import DECLARATIONS_SUBMITTED, verdict_topics
from tests import factories

CUSTOMS = "customs"
DECLARATIONS = DECLARATIONS_SUBMITTED.name
VERDICTS = verdict_topics()[CUSTOMS].name
INTAKE = factories.SIGNING["intake"]  # the test key the registry has for the intake
FIRST = TopicPartition(DECLARATIONS, 0)


@pytest.fixture
def settings() -> Settings:
    """The customs service's test signing key and the test key registry."""
    return factories.with_keys(Settings(), CUSTOMS)


def rule(declaration: DeclarationSubmitted, now: datetime) -> AgencyVerdict:
    return factories.verdict(declaration.declaration_id, CUSTOMS, decided_at=now)


def customs(settings: Settings, broker: FakeBroker, assess: object = rule) -> ConsumerService:
    return agency_service(CUSTOMS, assess, settings, transport=broker)  # type: ignore[arg-type]


def messages(outcome: str, topic: str = DECLARATIONS) -> float:
    labels = {"service": CUSTOMS, "topic": topic, "outcome": outcome}
    return REGISTRY.get_sample_value("singlewindow_messages_total", labels) or 0.0


def verdicts(broker: FakeBroker) -> list[AgencyVerdict]:
    """The verdicts on the customs topic, each signed by the customs service's key."""
    return [decode_signed(AgencyVerdict, r, factories.REGISTRY) for r in broker.records(VERDICTS)]


def provenance(letter: object, name: str) -> str:
    value = header(letter.headers, f"sw-dlq-{name}")  # type: ignore[attr-defined]
    assert value is not None, f"no sw-dlq-{name}"
    return value.decode()


async def test_a_routed_declaration_gets_a_signed_verdict_on_the_agency_topic(
    settings: Settings,
) -> None:
    async with FakeBroker() as broker:
        service = customs(settings, broker)
        await broker.start(service)
        sent = await broker.publish(DECLARATIONS, factories.declaration("D-0001"), signer=INTAKE)
        await broker.run_until_idle()

    [record] = broker.records(VERDICTS)
    [verdict] = verdicts(broker)
    assert (verdict.declaration_id, verdict.agency, verdict.verdict_id) == (
        "D-0001",
        CUSTOMS,
        "V-D-0001-customs",
    )
    assert record.key == b"D-0001"
    assert header(record.headers, PRODUCER) == b"customs"
    parent, child = header(sent.headers, TRACEPARENT), header(record.headers, TRACEPARENT)
    assert parent and child and parent.split(b"-")[1] == child.split(b"-")[1]  # one trace
    assert broker.committed(service.group_id) == {FIRST: 1}
    assert broker.dead_letters() == []


async def test_a_declaration_not_routed_to_the_agency_gets_no_verdict_but_is_committed(
    settings: Settings,
) -> None:
    not_routed = messages("not_routed")
    async with FakeBroker() as broker:
        service = customs(settings, broker)
        await broker.start(service)
        port_only = factories.declaration("D-0001", required_agencies=("port",))
        await broker.publish(DECLARATIONS, port_only, signer=INTAKE)
        await broker.run_until_idle()

    assert broker.records(VERDICTS) == []
    assert broker.dead_letters() == []
    assert broker.committed(service.group_id) == {FIRST: 1}
    assert messages("not_routed") == not_routed + 1


@pytest.mark.parametrize(
    "wrong",
    [{"declaration_id": "D-9999"}, {"agency": "port", "verdict_id": "V-D-0001-port"}],
    ids=["another declaration", "another agency"],
)
async def test_a_verdict_that_does_not_match_is_dead_lettered_and_the_partition_flows(
    settings: Settings, wrong: dict[str, str]
) -> None:
    def assess(declaration: DeclarationSubmitted, now: datetime) -> AgencyVerdict:
        verdict = rule(declaration, now)
        if declaration.declaration_id == "D-0001":
            return verdict.model_copy(update=wrong)
        return verdict

    dead_lettered = messages("dead_lettered")
    async with FakeBroker() as broker:
        service = customs(settings, broker, assess)
        # both before the start: fetched in one batch, which fails, then one by one
        bad = await broker.publish(DECLARATIONS, factories.declaration("D-0001"), signer=INTAKE)
        await broker.publish(DECLARATIONS, factories.declaration("D-0002"), signer=INTAKE)
        await broker.start(service)
        await broker.run_until_idle()
        await broker.publish(DECLARATIONS, factories.declaration("D-0003"), signer=INTAKE)
        await broker.run_until_idle()

    assert [v.declaration_id for v in verdicts(broker)] == ["D-0002", "D-0003"]
    [letter] = broker.dead_letters()
    assert (letter.key, letter.value) == (bad.key, bad.value)
    assert provenance(letter, "source-topic") == DECLARATIONS
    assert provenance(letter, "source-partition") == "0"
    assert provenance(letter, "source-offset") == "0"
    assert provenance(letter, "service") == CUSTOMS
    assert provenance(letter, "error").startswith("ValueError: assess returned a verdict for")
    assert header(letter.headers, TRACEPARENT) == header(bad.headers, TRACEPARENT)  # kept
    assert broker.committed(service.group_id) == {FIRST: 3}
    assert messages("dead_lettered") == dead_lettered + 1


POISON = {
    "undecodable bytes": {"value": b"\x00\xffnot avro at all", "key": b"D-0001"},
    "unsigned": {"value": factories.declaration("D-0001")},
    "signed by another service": {
        "value": factories.declaration("D-0001"),
        "signer": factories.SIGNING["customs"],
    },
    "forged, an unregistered key under the intake's key id": {
        "value": factories.declaration("D-0001"),
        "signer": SigningKey.generate(INTAKE.key_id),
    },
    "a header key that is not UTF-8": {
        "value": factories.declaration("D-0001"),
        "signer": INTAKE,
        "headers": [(b"\xff\xfekey", b"v")],
    },
}


@pytest.mark.parametrize("poison", POISON.values(), ids=POISON.keys())
async def test_poison_is_dead_lettered_with_its_reason_and_the_partition_flows(
    settings: Settings, poison: dict[str, object]
) -> None:
    async with FakeBroker() as broker:
        service = customs(settings, broker)
        await broker.start(service)
        sent = await broker.publish(DECLARATIONS, **poison)  # type: ignore[arg-type]
        await broker.publish(DECLARATIONS, factories.declaration("D-0002"), signer=INTAKE)
        await broker.run_until_idle()

    assert [v.declaration_id for v in verdicts(broker)] == ["D-0002"]
    [letter] = broker.dead_letters()
    assert letter.value == sent.value
    assert provenance(letter, "source-offset") == "0"
    assert provenance(letter, "error").startswith("PoisonMessage: ")
    assert broker.committed(service.group_id) == {FIRST: 2}


async def test_a_header_key_that_is_not_utf8_travels_in_the_dead_letter(
    settings: Settings,
) -> None:
    async with FakeBroker() as broker:
        await broker.start(customs(settings, broker))
        await broker.publish(DECLARATIONS, **POISON["a header key that is not UTF-8"])  # type: ignore[arg-type]
        await broker.run_until_idle()

    [letter] = broker.dead_letters()
    assert "is not UTF-8" in provenance(letter, "error")
    assert header(letter.headers, "sw-dlq-raw-header-key") == b"0:\xff\xfekey"
    assert header(letter.headers, "\\xff\\xfekey") == b"v"  # readable, its value kept


async def test_offsets_are_committed_only_once_the_verdict_is_acknowledged(
    settings: Settings,
) -> None:
    async with FakeBroker() as broker:
        service = customs(settings, broker)
        held = broker.hold(VERDICTS)
        await broker.start(service)
        await broker.publish(DECLARATIONS, factories.declaration("D-0001"), signer=INTAKE)
        await held.reached()
        await asyncio.sleep(0.05)  # ample time to commit, were the loop not waiting
        assert broker.committed(service.group_id) == {}
        assert broker.records(VERDICTS) == []
        held.release()
        await broker.run_until_idle()

    assert [v.declaration_id for v in verdicts(broker)] == ["D-0001"]
    assert broker.committed(service.group_id) == {FIRST: 1}


async def test_a_transient_fault_of_the_verdict_topic_is_waited_out(settings: Settings) -> None:
    async with FakeBroker() as broker:
        service = customs(settings, broker)
        broker.fail(VERDICTS, KafkaConnectionError("broker away"), KafkaConnectionError("still"))
        await broker.start(service)
        await broker.publish(DECLARATIONS, factories.declaration("D-0001"), signer=INTAKE)
        await broker.run_until_idle()

    assert [v.declaration_id for v in verdicts(broker)] == ["D-0001"]
    assert broker.dead_letters() == []
    assert broker.committed(service.group_id) == {FIRST: 1}


async def test_a_restarted_service_resumes_from_its_committed_offsets(settings: Settings) -> None:
    async with FakeBroker() as broker:
        first = customs(settings, broker)
        await broker.start(first)
        await broker.publish(DECLARATIONS, factories.declaration("D-0001"), signer=INTAKE)
        await broker.run_until_idle()
        await broker.stop(first)
        await broker.publish(DECLARATIONS, factories.declaration("D-0002"), signer=INTAKE)
        second = customs(settings, broker)
        await broker.start(second)
        await broker.run_until_idle()

    assert [v.declaration_id for v in verdicts(broker)] == ["D-0001", "D-0002"]
    assert broker.committed(second.group_id) == {FIRST: 2}


async def test_instances_share_the_partitions_and_every_declaration_is_ruled_once(
    settings: Settings,
) -> None:
    async with FakeBroker(partitions=4) as broker:
        instances = [customs(settings, broker) for _ in range(2)]
        for instance in instances:
            await broker.start(instance)
        assert [len(i.consumer.assignment()) for i in instances] == [2, 2]
        ids = [f"D-{n:04d}" for n in range(40)]
        for declaration_id in ids:
            declaration = factories.declaration(declaration_id)
            await broker.publish(DECLARATIONS, declaration, signer=INTAKE)
        await broker.run_until_idle()

    assert sorted(v.declaration_id for v in verdicts(broker)) == ids
    for record in broker.records(VERDICTS):  # co-partitioned: a verdict beside its declaration
        [declaration] = [r for r in broker.records(DECLARATIONS) if r.key == record.key]
        assert record.partition == declaration.partition
    committed = broker.committed(instances[0].group_id)
    assert sum(committed.values()) == len(ids)
