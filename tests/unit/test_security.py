"""The one declaration of who may do what on Kafka (singlewindow/security.py), and what is
derived from it: the broker's ACL bindings and the Strimzi KafkaUsers
(deploy/k8s/base/kafka-users.yaml), checked against the KafkaUser CRD's schema."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.k8s import kafka_users, manifests, yamltext
from deploy.local.launcher import services
from deploy.local.run import procfile
from services.aggregator.service import Aggregator
from services.aggregator.tasks import NAME as AGGREGATOR
from services.aggregator.tasks import Task
from services.audit.deadletters import REDRIVABLE, REDRIVE_GROUP
from services.projector.service import NAME as PROJECTOR
from services.webhooks.config import WebhooksSettings
from services.webhooks.service import NAME as WEBHOOKS
from services.webhooks.service import webhooks_process
from services.webhooks.signing import parse_keys
from singlewindow.agency import agency_service
from singlewindow.health import Health
from singlewindow.kafka.acls import binding
from singlewindow.registry import agency_registry
from singlewindow.security import (
    ADMIN,
    AUDIT,
    AUTOSCALER,
    REDRIVE,
    Acl,
    Operation,
    acls,
    inputs,
    principal,
    principals,
    super_users,
)
from singlewindow.settings import Settings
from singlewindow.topics import DEAD_LETTERS, by_name, catalog
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
CRD = json.loads((ROOT / "tests" / "data" / "strimzi-kafkauser-v1.schema.json").read_text())
CONSUMER_SERVICES = {"customs", "ciq", "port", "aggregator", "projector", "webhooks"}  # loops


def procfile_services() -> set[str]:
    names = set()
    for line in procfile().splitlines():  # what `make run` starts
        if line.strip() and not line.startswith("#"):
            names.add(line.split(":", 1)[0].strip())
    return names


def writers(topic: str) -> set[str]:
    return {p.name for p in principals() if topic in p.writes}


def test_every_service_has_a_principal_and_so_have_the_auditors_and_the_admin() -> None:
    declared = {p.name for p in principals()}
    assert len(declared) == len(principals()), "a principal declared twice"
    assert procfile_services() <= declared
    assert set(services()) <= declared
    assert declared == {*services(), AUDIT, REDRIVE, AUTOSCALER, ADMIN}


@pytest.mark.parametrize("topic", catalog(), ids=lambda t: t.name)
def test_each_topic_is_written_by_its_catalog_writer_only(topic: Any) -> None:
    if topic.name == DEAD_LETTERS.name:  # "any consumer": every consume loop, nobody else
        assert topic.writer == "any consumer"
        assert writers(topic.name) == CONSUMER_SERVICES
    elif topic.name in inputs():  # and re-driving a dead letter puts it back where it was
        assert writers(topic.name) == {topic.writer, REDRIVE}
    else:
        assert writers(topic.name) == {topic.writer}


def test_every_topic_a_principal_names_is_in_the_catalog() -> None:
    for p in principals():
        for topic in (*p.reads, *p.writes):
            by_name(topic)  # KeyError otherwise


def test_each_consumer_group_is_its_services_own() -> None:
    groups = {p.name: p.group for p in principals() if p.group is not None}
    assert len(set(groups.values())) == len(groups), "two principals share a group"
    assert groups == {**{s: s for s in CONSUMER_SERVICES}, REDRIVE: REDRIVE_GROUP}


async def test_the_services_use_the_groups_and_transactional_ids_declared() -> None:
    settings = Settings()
    for agency in ("customs", "ciq", "port"):
        own = factories.with_keys(settings, str(agency))
        service = agency_service(agency, lambda d, now: factories.verdict(), own)
        assert service.group_id == principal(str(agency)).group
        assert principal(str(agency)).reads == tuple(service.topics)
    assert principal(PROJECTOR).group == PROJECTOR
    webhooks = webhooks_process(
        factories.with_keys(settings),
        WebhooksSettings(),
        parse_keys("k:" + "11" * 32, "test"),
        Health(WEBHOOKS),
    )
    assert principal(WEBHOOKS).group == webhooks.consumer.group_id == WEBHOOKS
    assert principal(WEBHOOKS).reads == tuple(webhooks.consumer.topics)
    keys = factories.service_keys(AGGREGATOR)
    aggregator = Aggregator(settings, timedelta(seconds=60), keys=keys)
    assert principal(AGGREGATOR).group == aggregator.group
    prefix = principal(AGGREGATOR).transactional_id_prefix
    assert prefix is not None
    for partition in range(settings.topic_partitions):
        task = Task(settings, aggregator.group, partition, timedelta(days=1), keys)
        tid = task.transactional_id
        assert tid.startswith(prefix)


def test_the_auditors_read_everything_and_write_nothing_with_no_group() -> None:
    audit = principal(AUDIT)
    assert set(audit.reads) == {t.name for t in catalog()}
    assert audit.writes == () and audit.group is None and audit.transactional_id_prefix is None
    assert {a.operation for a in audit.acls()} == {Operation.READ, Operation.DESCRIBE}


def test_redrive_reads_dead_letters_and_writes_only_the_input_topics() -> None:
    redrive = principal(REDRIVE)
    assert redrive.reads == (DEAD_LETTERS.name,)
    assert set(redrive.writes) == set(inputs()) == set(REDRIVABLE)


def test_only_the_admin_is_a_super_user_and_it_needs_no_acl() -> None:
    assert super_users() == [ADMIN]
    assert principal(ADMIN).acls() == ()


def test_no_rule_grants_more_than_reading_writing_and_describing() -> None:
    for rule in acls():
        assert rule.operation in {Operation.READ, Operation.WRITE, Operation.DESCRIBE}
        assert rule.resource_type != "cluster", "no IdempotentWrite: Kafka >= 2.8 needs none"
        if rule.pattern == "prefix":
            assert (rule.principal, rule.resource_type, rule.name) == (
                AGGREGATOR,
                "transactionalId",
                "aggregator.",
            )


def test_acls_become_broker_bindings_with_kafkas_codes() -> None:
    rule = Acl("customs", "topic", "verdicts.customs", "literal", Operation.WRITE)
    assert tuple(binding(rule)) == (2, "verdicts.customs", 3, "User:customs", "*", 4, 3)
    prefix = Acl("aggregator", "transactionalId", "aggregator.", "prefix", Operation.DESCRIBE)
    assert tuple(binding(prefix)) == (5, "aggregator.", 4, "User:aggregator", "*", 8, 3)


# -- Strimzi -------------------------------------------------------------------------------


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Where ``value`` breaks an OpenAPI v3 (structural) schema: types, required properties,
    enums, minimums; a property the schema does not name is an error too (Kubernetes would
    silently prune it)."""
    kind = schema.get("type")
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        properties = schema.get("properties", {})
        errors += [f"{path}: {r} missing" for r in schema.get("required", []) if r not in value]
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], f"{path}.{key}")
            elif "additionalProperties" in schema:
                errors += schema_errors(item, schema["additionalProperties"], f"{path}.{key}")
            elif properties:
                errors.append(f"{path}: unknown property {key!r}")
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{path}: not an array"]
        for i, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), f"{path}[{i}]")
    elif kind == "string" and not isinstance(value, str):
        errors.append(f"{path}: not a string")
    elif kind == "integer" and not (isinstance(value, int) and not isinstance(value, bool)):
        errors.append(f"{path}: not an integer")
    elif kind == "boolean" and not isinstance(value, bool):
        errors.append(f"{path}: not a boolean")
    minimum = schema.get("minimum")
    if kind == "integer" and minimum is not None and isinstance(value, int) and value < minimum:
        errors.append(f"{path}: below {minimum}")
    return errors


def test_the_validator_finds_what_the_crd_forbids() -> None:
    user = kafka_users.kafka_user(principal("customs"))
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Fly"]
    user["spec"]["authentication"]["tipe"] = "x"
    del user["spec"]["authorization"]["type"]
    errors = schema_errors(user, CRD["openAPIV3Schema"])
    assert len(errors) == 3, errors


def test_the_committed_kafka_users_are_the_generators_output() -> None:
    committed = kafka_users.OUTPUT.read_text()
    assert committed == kafka_users.render(kafka_users.kafka_users()), (
        "deploy/k8s/base/kafka-users.yaml is out of date: python -m deploy.k8s.kafka_users"
    )


@pytest.mark.parametrize("p", principals(), ids=lambda p: p.name)
def test_each_kafka_user_fits_the_crd_and_grants_exactly_the_declared_acls(p: Any) -> None:
    user = kafka_users.kafka_user(p)
    assert schema_errors(user, CRD["openAPIV3Schema"]) == []
    assert user["apiVersion"] == f"{CRD['group']}/{CRD['version']}"
    assert user["kind"] == CRD["kind"]
    assert user["metadata"]["name"] == p.name
    assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
    granted = set()
    for rule in user["spec"].get("authorization", {}).get("acls", []):
        resource = rule["resource"]
        assert rule.get("type", "allow") == "allow" and rule["host"] == "*"
        for op in rule["operations"]:
            granted.add(
                Acl(p.name, resource["type"], resource["name"], resource["patternType"], op)
            )
    assert granted == set(p.acls())
    assert ("authorization" in user["spec"]) != p.super_user


def test_the_kafka_users_yaml_quotes_what_yaml_would_misread() -> None:
    assert yamltext.scalar("*") == '"*"'
    assert yamltext.scalar("on") == '"on"'
    assert yamltext.scalar("aggregator.") == "aggregator."
    assert yamltext.scalar("12") == '"12"'


def k8s_deployments() -> dict[str, dict[str, Any]]:
    """The generated Deployments (deploy/k8s/base/services.yaml), by name."""
    docs = manifests.services_file(agency_registry())
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}


def k8s_env(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_each_deployment_connects_as_its_own_principal() -> None:
    deployments = k8s_deployments()
    for service in services():
        env = k8s_env(deployments[service])
        assert env["KAFKA_SASL_USERNAME"] == service
        assert env["KAFKA_SASL_PASSWORD"] == {"secretKeyRef": {"name": service, "key": "password"}}


def test_each_deployment_signs_with_its_own_key_and_verifies_with_the_registry() -> None:
    (config,) = [d for d in manifests.services_file(agency_registry()) if d["kind"] == "ConfigMap"]
    assert config["data"]["KEY_REGISTRY_FILE"] == "/etc/singlewindow/keys/registry.json"
    deployments = k8s_deployments()
    for service in services():
        deployment = deployments[service]
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["key-registry"]["configMap"] == {"name": "singlewindow-key-registry"}
        signs = service not in ("projector", "webhooks")  # they publish no event
        assert ("signing-key" in volumes) is signs, service
        if signs:
            assert volumes["signing-key"]["secret"]["secretName"] == f"{service}-signing-key"
            assert k8s_env(deployment)["SIGNING_KEY_ID"] == {
                "secretKeyRef": {"name": f"{service}-signing-key", "key": "key-id"}
            }
