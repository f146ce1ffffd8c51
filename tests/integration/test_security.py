"""The secured broker of the local stack: who gets in, and what each principal may do.

Runs against the stack that ``make up`` started (its credentials are in
``var/credentials/``; ``SW_LOCAL_VAR`` moves them): skipped for a Kafka of your own.
Records written to catalog topics here are harmless: declarations and verdicts with ids of
their own (as the other integration tests write), dead letters naming a topic that is no
input (never re-driven), and the aggregator's writes in transactions it aborts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from pydantic import SecretStr

from deploy.local.components import VAR, Kafka, _credentials_refused
from deploy.local.trust import LocalTrust
from singlewindow.events import Event
from singlewindow.kafka.acls import alter_scram_users, binding, describe_acls
from singlewindow.kafka.admin import admin_client
from singlewindow.kafka.consumer import group_consumer
from singlewindow.kafka.options import kafka_options
from singlewindow.kafka.producer import new_producer
from singlewindow.kafka.reader import read_topic
from singlewindow.security import ADMIN, AUDIT, Principal, acls, principal, principals
from singlewindow.settings import Settings
from singlewindow.topics import (
    CLEARANCE_RESULTS,
    DEAD_LETTERS,
    DECLARATIONS_SUBMITTED,
    JOIN_STATE,
    Topic,
    catalog,
    verdict_topics,
)
from tests import factories

TRUST = LocalTrust(VAR)
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not TRUST.credentials_file(ADMIN).exists(),
        reason=f"no local stack credentials in {TRUST.credentials}: not the local stack",
    ),
]
REFUSED = (KafkaConnectionError, KafkaError, OSError, TimeoutError)
PRODUCERS = [p for p in principals() if p.writes and p.transactional_id_prefix is None]
CONSUMERS = [p for p in principals() if p.group is not None]


def as_(name: str) -> Settings:
    """Settings that connect to the local stack as principal ``name``."""
    return TRUST.settings(name)


@pytest.fixture(scope="module", autouse=True)
def the_same_broker(settings: Settings) -> None:
    if settings.kafka_bootstrap_servers != as_(ADMIN).kafka_bootstrap_servers:
        pytest.skip("the tests' broker is not the local stack's")


async def connects(settings: Settings) -> list[str]:
    """The topics ``settings`` sees; raises when the broker does not let it in."""
    admin = AIOKafkaAdminClient(**kafka_options(settings), request_timeout_ms=5000)
    try:
        async with asyncio.timeout(60):
            await admin.start()
            topics: list[str] = await admin.list_topics()
            return topics
    finally:
        await admin.close()


@asynccontextmanager
async def producer(settings: Settings, **options: object) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(**kafka_options(settings), acks="all", **options)
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


def harmless(topic: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """A record for ``topic`` that changes nothing anyone relies on: (key, value, headers)."""
    declaration_id = f"SEC-{uuid.uuid4().hex[:12]}"
    event: Event
    if topic == DECLARATIONS_SUBMITTED.name:
        event = factories.declaration(declaration_id)
    elif topic in {t.name for t in verdict_topics().values()}:
        agency = next(a for a, t in verdict_topics().items() if t.name == topic)
        event = factories.verdict(declaration_id, agency=agency)
    elif topic == CLEARANCE_RESULTS.name:
        event = factories.result(declaration_id)
    elif topic == JOIN_STATE.name:
        event = factories.join_state(declaration_id)
    else:  # a dead letter of a topic that is no input: never re-driven
        provenance = [("sw-dlq-source-topic", b"test.security"), ("sw-dlq-service", b"test")]
        return declaration_id.encode(), b"security test: not a dead letter", provenance
    return event.key(), event.to_avro(), []


# -- who gets in -----------------------------------------------------------------------------


async def test_each_principal_gets_in_with_its_password_and_sees_only_its_topics() -> None:
    for p in principals():
        visible = set(await connects(as_(p.name)))
        if p.super_user:
            assert {t.name for t in catalog()} <= visible
        else:
            assert visible == {*p.reads, *p.writes, *p.describes}, p.name


async def test_a_plaintext_client_is_refused() -> None:
    with pytest.raises(REFUSED):
        await connects(as_(ADMIN).model_copy(update={"kafka_security_protocol": "PLAINTEXT"}))


async def test_a_wrong_password_is_refused() -> None:
    wrong = as_(ADMIN).model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    with pytest.raises(REFUSED):
        await connects(wrong)


async def test_the_stack_tells_refused_credentials_from_a_broker_not_there() -> None:
    """What ``Kafka.start`` restarts a broker for: its own admin refused while TLS works."""
    admin = as_(ADMIN)
    assert await _credentials_refused(admin) is False
    wrong = admin.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    assert await _credentials_refused(wrong) is True
    nowhere = admin.model_copy(update={"kafka_bootstrap_servers": "localhost:9"})
    assert await _credentials_refused(nowhere) is False


@pytest.mark.skipif(not Kafka().running(), reason="the local stack's own listener")
async def test_the_stack_writes_the_scram_users_again_as_the_broker_itself() -> None:
    """The repair of a broker that lost its SCRAM users: over the mutual-TLS loopback
    listener, as the broker's certificate; every principal still gets in afterwards."""
    assert await asyncio.to_thread(Kafka().repair, "a test asked") is True
    for name in (ADMIN, AUDIT, "customs"):
        assert await _credentials_refused(as_(name)) is False


async def test_an_unknown_user_is_refused() -> None:
    nobody = as_(ADMIN).model_copy(update={"kafka_sasl_username": f"nobody-{uuid.uuid4().hex}"})
    with pytest.raises(REFUSED):
        await connects(nobody)


async def test_a_client_that_does_not_trust_the_stacks_ca_is_refused() -> None:
    with pytest.raises(REFUSED):
        await connects(as_(ADMIN).model_copy(update={"kafka_ssl_cafile": None}))


async def test_the_controller_listener_takes_no_client_without_the_brokers_certificate() -> None:
    host, port = as_(ADMIN).kafka_bootstrap_servers.rsplit(":", 1)
    controller = as_(ADMIN).model_copy(
        update={
            "kafka_security_protocol": "SSL",  # the CA trusted, no client certificate
            "kafka_bootstrap_servers": f"{host}:{int(port) + 1}",
        }
    )
    with pytest.raises(REFUSED):
        await connects(controller)


async def test_a_scram_user_added_later_gets_in_and_is_allowed_nothing() -> None:
    name, password = f"test-user-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = await admin_client(as_(ADMIN))
    try:
        await alter_scram_users(admin, {name: password})
        try:
            newcomer = as_(AUDIT).model_copy(
                update={"kafka_sasl_username": name, "kafka_sasl_password": SecretStr(password)}
            )
            assert await connects(newcomer) == []  # no ACL: it sees no topic at all
        finally:
            await alter_scram_users(admin, delete=[name])
    finally:
        await admin.close()


async def test_the_brokers_acls_are_exactly_the_declared_ones() -> None:
    admin = await admin_client(as_(ADMIN))
    try:
        held = await describe_acls(admin)
    finally:
        await admin.close()
    assert held == {binding(rule) for rule in acls()}


# -- what each may do ------------------------------------------------------------------------


@pytest.mark.parametrize("p", PRODUCERS, ids=lambda p: p.name)
async def test_each_principal_writes_the_topics_it_owns(p: Principal) -> None:
    client = new_producer(as_(p.name), f"test-{p.name}")  # idempotent, as every service's
    await client.start()
    try:
        for topic in p.writes:
            key, value, headers = harmless(topic)
            await client.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await client.stop()


async def test_the_aggregator_writes_its_topics_in_transactions_under_its_prefix() -> None:
    aggregator = principal("aggregator")
    prefix = aggregator.transactional_id_prefix
    tid = f"{prefix}test-{uuid.uuid4().hex[:8]}"
    async with producer(as_("aggregator"), transactional_id=tid) as client:
        await client.begin_transaction()
        for topic in aggregator.writes:
            key, value, headers = harmless(topic)
            await client.send_and_wait(topic, value, key=key, headers=headers)
        await client.abort_transaction()  # nobody reading read_committed ever sees them
    with pytest.raises(TransactionalIdAuthorizationFailed):
        async with producer(as_("aggregator"), transactional_id=f"other.{uuid.uuid4().hex}"):
            pass


@pytest.mark.parametrize("p", CONSUMERS, ids=lambda p: p.name)
async def test_each_consumer_reads_its_inputs_in_its_own_group(p: Principal) -> None:
    """Joins the service's group, fetches, and commits the offsets the group had (or the
    beginning, which is where a group without offsets starts): nothing moves."""
    assert p.group is not None
    consumer = group_consumer(as_(p.name), p.group, f"test-{p.name}", *p.reads)
    await consumer.start()
    try:
        async with asyncio.timeout(60):
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=500)
        assignment = sorted(consumer.assignment())
        first = await consumer.beginning_offsets(assignment)
        offsets = {}
        for tp in assignment:
            committed = await consumer.committed(tp)
            offsets[tp] = first[tp] if committed is None else committed
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def test_customs_cannot_write_the_ciq_verdicts() -> None:
    key, value, _ = harmless(verdict_topics()["ciq"].name)
    with pytest.raises(TopicAuthorizationFailedError):
        async with producer(as_("customs"), enable_idempotence=True) as client:
            await client.send_and_wait(verdict_topics()["ciq"].name, value, key=key)


async def refused_group(settings: Settings, group: str, topic: str) -> None:
    """Joining ``group`` to read ``topic`` with these settings fails for lack of rights."""
    consumer = group_consumer(settings, group, f"test-{group}", topic)
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            async with asyncio.timeout(60):
                await consumer.start()
                while True:
                    await consumer.getmany(timeout_ms=500)
    finally:
        await consumer.stop()


async def test_customs_cannot_read_in_another_services_group() -> None:
    await refused_group(as_("customs"), "ciq", DECLARATIONS_SUBMITTED.name)


async def test_customs_cannot_read_what_it_does_not_consume() -> None:
    with pytest.raises((TopicAuthorizationFailedError, KeyError)):
        await read_topic(as_("customs"), verdict_topics()["ciq"].name)


async def test_the_intake_cannot_write_results() -> None:
    key, value, _ = harmless(CLEARANCE_RESULTS.name)
    with pytest.raises(TopicAuthorizationFailedError):
        async with producer(as_("intake"), enable_idempotence=True) as client:
            await client.send_and_wait(CLEARANCE_RESULTS.name, value, key=key)


@pytest.mark.parametrize("topic", catalog(), ids=lambda t: t.name)
async def test_the_auditors_read_every_topic_and_write_none(topic: Topic) -> None:
    name = topic.name
    await read_topic(as_(AUDIT), name)
    key, value, headers = harmless(name)
    with pytest.raises(TopicAuthorizationFailedError):
        async with producer(as_(AUDIT)) as client:  # not idempotent: the Produce is refused
            await client.send_and_wait(name, value, key=key, headers=headers)
    with pytest.raises(ClusterAuthorizationFailedError):  # idempotent: refused before that
        async with producer(as_(AUDIT), enable_idempotence=True) as client:
            await client.send_and_wait(name, value, key=key, headers=headers)


async def test_the_auditors_have_no_group() -> None:
    await refused_group(as_(AUDIT), AUDIT, DEAD_LETTERS.name)


async def test_redrive_writes_back_only_to_input_topics() -> None:
    for topic in (CLEARANCE_RESULTS.name, JOIN_STATE.name, DEAD_LETTERS.name):
        key, value, _ = harmless(topic)
        with pytest.raises(TopicAuthorizationFailedError):
            async with producer(as_("redrive"), enable_idempotence=True) as client:
                await client.send_and_wait(topic, value, key=key)
