"""The init container of every Deployment (``python -m singlewindow.kafka.admin
wait-for-topics``): it waits for exactly the topics its principal uses, until each exists with
the catalog's partition count and a leader on every partition, and never names a topic in a
metadata request (which would let a broker that auto-creates topics create it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from singlewindow.kafka import admin
from singlewindow.kafka.admin import Leaders, topics_used, unready, wait_for_topics
from singlewindow.security import principal
from singlewindow.settings import Settings
from singlewindow.topics import DECLARATIONS_SUBMITTED, catalog


def as_principal(name: str | None) -> Settings:
    if name is None:
        return Settings(kafka_security_protocol="PLAINTEXT")
    return Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username=name,
        kafka_sasl_password="x",
    )


def test_a_service_waits_for_the_topics_its_principal_uses() -> None:
    assert topics_used(as_principal("customs")) == [
        DECLARATIONS_SUBMITTED.name,
        "verdicts.customs",
        "deadletters",
    ]
    intake = principal("intake")
    assert topics_used(as_principal("intake")) == list(intake.writes)
    aggregator = principal("aggregator")
    assert set(topics_used(as_principal("aggregator"))) == {*aggregator.reads, *aggregator.writes}
    everything = [t.name for t in catalog()]
    assert topics_used(as_principal(None)) == everything
    assert topics_used(as_principal("admin")) == everything


def test_what_keeps_topics_from_being_ready_is_named() -> None:
    wanted = ["a", "b", "c", "d"]
    leaders = {"a": [0, 1, 2], "b": [0, 1], "c": [0, -1, 2], "x": [0]}
    assert unready(wanted, 3, leaders) == [
        "b: 2 partitions, the catalog needs 3",
        "c: a partition without a leader",
        "d: missing",
    ]
    assert unready(["a"], 3, leaders) == []


async def test_the_wait_ends_when_the_topics_appear() -> None:
    states: list[Leaders] = [{}, {"a": [-1, 0]}, {"a": [1, 0]}]
    asked = []

    async def leaders() -> Leaders:
        asked.append(len(asked))
        return states[min(len(asked) - 1, len(states) - 1)]

    await asyncio.wait_for(wait_for_topics(["a"], 2, leaders, poll_s=0), 10)
    assert len(asked) == 3


async def test_the_wait_times_out_naming_what_is_missing() -> None:
    async def leaders() -> Leaders:
        return {"a": [0]}

    with pytest.raises(TimeoutError, match="b: missing"):
        await wait_for_topics(["a", "b"], 1, leaders, poll_s=0, timeout_s=0)


def test_the_command_line_refuses_anything_else() -> None:
    assert admin.main([]) == 2
    assert admin.main(["create-topics"]) == 2


def test_the_local_broker_creates_no_topic_either() -> None:
    # aiokafka asks brokers to auto-create every topic it names: only the broker can refuse
    properties = Path(__file__).resolve().parents[2] / "deploy" / "local" / "server.properties"
    assert "auto.create.topics.enable=false" in properties.read_text().splitlines()
