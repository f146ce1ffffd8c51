"""Who may do what on Kafka: the one declaration of the platform's principals and their ACLs.

Everything else is derived from :func:`principals` (the platform's own, plus one per agency
of the agency registry, :mod:`singlewindow.registry`): the local stack's SCRAM users, its
credentials files and the ACLs it creates (``deploy/local``), and the Strimzi ``KafkaUser``
resources for Kubernetes (``deploy/k8s/base/kafka-users.yaml``, by ``deploy/k8s/kafka_users.py``).

The rules (DESIGN.md 2b):

- one writer per topic: a principal writes only the topics the catalog says it writes
  (:mod:`singlewindow.topics`), plus the dead-letter topic when it runs a consume loop;
- a consumer reads its inputs in its own consumer group, and only that group;
- the aggregator writes its results, its changelog and its dead letters in transactions,
  with transactional ids under its own prefix ``aggregator.``;
- the auditors read everything and write nothing (manual assignment, no group); putting dead
  letters back on the input topics takes the separate ``redrive`` principal;
- ``admin`` is a super user (``super.users``), not a set of ACLs: the stack provisions topics
  and ACLs with it, and the tests use it;
- the autoscaler (KEDA's Kafka scaler on Kubernetes) only describes: the consumer groups'
  committed offsets and their topics' end offsets, which is their lag; it reads no record.

Idempotent producers need no ``IdempotentWrite`` on the cluster: since Kafka 2.8 (KIP-679)
``InitProducerId`` without a transactional id is allowed to any principal that may write
some topic, and every principal that produces here may.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from singlewindow.registry import AgencyEntry, AgencyRegistry, agency_registry
from singlewindow.topics import (
    CLEARANCE_RESULTS,
    DEAD_LETTERS,
    DECLARATIONS_SUBMITTED,
    DECLARATIONS_WITHDRAWN,
    GATE_OUT,
    INSPECTION_FINDINGS,
    JOIN_STATE,
    PAYMENTS_CONFIRMED,
    catalog,
    inputs,
)

ResourceType = Literal["topic", "group", "transactionalId", "cluster"]
PatternType = Literal["literal", "prefix"]
CLUSTER = "kafka-cluster"  # the name Kafka gives the one cluster resource


class Operation(StrEnum):
    """ACL operations, spelt as Strimzi spells them (Kafka's ``AclOperation``)."""

    READ = "Read"
    WRITE = "Write"
    DESCRIBE = "Describe"
    CREATE = "Create"
    DELETE = "Delete"
    ALTER = "Alter"
    DESCRIBE_CONFIGS = "DescribeConfigs"
    ALTER_CONFIGS = "AlterConfigs"
    CLUSTER_ACTION = "ClusterAction"
    IDEMPOTENT_WRITE = "IdempotentWrite"
    ALL = "All"


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW rule: ``principal`` may ``operation`` on the resources the pattern names."""

    principal: str  # the user name; Kafka's principal is ``User:<name>``
    resource_type: ResourceType
    name: str
    pattern: PatternType
    operation: Operation


READ = (Operation.READ, Operation.DESCRIBE)
WRITE = (Operation.WRITE, Operation.DESCRIBE)
GROUP = (Operation.READ, Operation.DESCRIBE)  # join, commit (Read); offsets (Describe)
DESCRIBE = (Operation.DESCRIBE,)  # metadata, end offsets (topics); committed offsets (groups)
TRANSACTIONS = (Operation.WRITE, Operation.DESCRIBE)  # init, add, end (Write); find (Describe)


@dataclass(frozen=True)
class Principal:
    """One Kafka principal of the platform: what it reads and writes, with which group."""

    name: str
    doc: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    group: str | None = None
    transactional_id_prefix: str | None = None
    super_user: bool = False
    describes: tuple[str, ...] = ()  # topics it may only describe (their offsets)
    describes_groups: tuple[str, ...] = ()  # groups whose committed offsets it may fetch

    def acls(self) -> tuple[Acl, ...]:
        """Its ALLOW rules (none for a super user, whom the authorizer never asks for any)."""
        if self.super_user:
            return ()
        grants: list[tuple[ResourceType, str, PatternType, tuple[Operation, ...]]] = [
            *(("topic", topic, "literal", READ) for topic in self.reads),
            *(("topic", topic, "literal", WRITE) for topic in self.writes),
            *(("topic", topic, "literal", DESCRIBE) for topic in self.describes),
            *(("group", group, "literal", DESCRIBE) for group in self.describes_groups),
        ]
        if self.group is not None:
            grants.append(("group", self.group, "literal", GROUP))
        if self.transactional_id_prefix is not None:
            grants.append(("transactionalId", self.transactional_id_prefix, "prefix", TRANSACTIONS))
        rules = {
            Acl(self.name, kind, name, pattern, op)
            for kind, name, pattern, ops in grants
            for op in ops
        }
        return tuple(sorted(rules))


ADMIN = "admin"
AUDIT = "audit"
AUTOSCALER = "autoscaler"
REDRIVE = "redrive"
REDRIVE_GROUP = "deadletters-redrive"  # services.audit.deadletters.REDRIVE_GROUP
WEBHOOKS = "webhooks"  # services.webhooks.service.NAME


def agency_principal(agency: AgencyEntry) -> Principal:
    """A registered agency: reads declarations in its own group, writes its verdicts."""
    return Principal(
        agency.principal,
        f"rules on declarations for {agency.name}",
        reads=(DECLARATIONS_SUBMITTED.name,),
        writes=(agency.topic, DEAD_LETTERS.name),
        group=agency.group,
    )


def principals(registry: AgencyRegistry | None = None) -> tuple[Principal, ...]:
    """Every principal of the platform with the agencies of ``registry`` (default: this
    process's registry)."""
    registry = registry or agency_registry()
    joined = inputs(registry)
    consumers = (
        *(agency_principal(a) for a in registry),
        Principal(
            "aggregator",
            "joins declarations and verdicts into results, transactionally, with its changelog",
            reads=(*joined, JOIN_STATE.name),  # the changelog: restored on every assignment
            writes=(CLEARANCE_RESULTS.name, JOIN_STATE.name, DEAD_LETTERS.name),
            group="aggregator",
            transactional_id_prefix="aggregator.",
        ),
        Principal(
            "projector",
            "folds every event into the read model",
            reads=(*joined, CLEARANCE_RESULTS.name, GATE_OUT.name),
            writes=(DEAD_LETTERS.name,),
            group="projector",
        ),
        Principal(
            WEBHOOKS,
            "turns each result into the deliveries of the traders' webhooks (its outbox in "
            "the database) and posts them; reads the results only",
            reads=(CLEARANCE_RESULTS.name,),
            writes=(DEAD_LETTERS.name,),
            group=WEBHOOKS,
        ),
    )
    return (
        Principal(
            "intake",
            "accepts declarations, amendments and withdrawals at the door and writes them; "
            "consumes nothing",
            writes=(DECLARATIONS_SUBMITTED.name, DECLARATIONS_WITHDRAWN.name),
        ),
        Principal(
            "bank",
            "the payment service: confirms duties paid or guaranteed; consumes nothing",
            writes=(PAYMENTS_CONFIRMED.name,),
        ),
        Principal(
            "inspection",
            "the joint inspection station: records each agency's inspectors' findings against "
            "the one inspection order; consumes nothing",
            writes=(INSPECTION_FINDINGS.name,),
        ),
        Principal(
            "gate",
            "the port's gate system: confirms goods that leave the port under a release; "
            "reads the read model",
            writes=(GATE_OUT.name,),
        ),
        *consumers,
        Principal(
            AUDIT,
            "auditors' tools: replay any topic from any point; read-only, no group",
            reads=tuple(t.name for t in catalog(registry)),
        ),
        Principal(
            REDRIVE,
            "puts dead letters back on the input topic they came from, once (its own group)",
            reads=(DEAD_LETTERS.name,),
            writes=joined,
            group=REDRIVE_GROUP,
        ),
        Principal(
            AUTOSCALER,
            "scales the consumers on their lag (KEDA): describes their groups' committed "
            "offsets and their topics' end offsets; reads no record",
            describes=tuple(dict.fromkeys(t for c in consumers for t in c.reads)),
            describes_groups=tuple(c.group for c in consumers if c.group is not None),
        ),
        Principal(
            ADMIN,
            "the stack itself (topics, ACLs, SCRAM users) and the tests: a super user",
            super_user=True,
        ),
    )


def principal(name: str, registry: AgencyRegistry | None = None) -> Principal:
    """The declared principal called ``name``; KeyError for one the platform does not know."""
    for p in principals(registry):
        if p.name == name:
            return p
    raise KeyError(f"unknown principal {name!r}")


def acls(registry: AgencyRegistry | None = None) -> list[Acl]:
    """Every ACL of the platform, sorted: what the cluster must hold, no more, no less."""
    return sorted(rule for p in principals(registry) for rule in p.acls())


def super_users() -> list[str]:
    """The principals the authorizer lets do anything (``super.users``)."""
    return [p.name for p in principals() if p.super_user]
