"""The topic catalog: every topic of the platform, its key, value event and retention.

The verdict topics derive from the agency registry (:func:`catalog`). One writer per topic
(``writer``). Every declaration-keyed topic has the same partition
count, so all events about one declaration share a partition number (co-partitioning).
Topics auditors rely on never delete (``retention_ms=-1``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from singlewindow.events import (
    AgencyVerdict,
    ClearanceResult,
    DeclarationSubmitted,
    DeclarationWithdrawn,
    Event,
    GateOut,
    InspectionFinding,
    JoinState,
    PaymentConfirmed,
)
from singlewindow.registry import AgencyEntry, AgencyRegistry, agency_registry

NEVER = -1
SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    """One Kafka topic as the platform uses it."""

    name: str
    writer: str
    event: type[Event] | None  # the event of its values (None: raw bytes, the dead letters)
    doc: str
    key: str = "declaration_id"
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int = NEVER
    max_message_bytes: int | None = None  # None: the broker's message.max.bytes

    @property
    def value_schema(self) -> str | None:
        """The Avro full name of its values (None for raw bytes)."""
        return None if self.event is None else self.event.AVRO_NAME

    def configs(self) -> dict[str, str]:
        """Topic-level configs for the admin API."""
        configs: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.cleanup_policy == "delete":
            configs["retention.ms"] = str(self.retention_ms)
        if self.max_message_bytes is not None:
            configs["max.message.bytes"] = str(self.max_message_bytes)
        return configs


DECLARATIONS_SUBMITTED = Topic(
    "declarations.submitted",
    "intake",
    DeclarationSubmitted,
    "Declarations accepted at the door, with the set of agencies that must rule.",
)
DECLARATIONS_WITHDRAWN = Topic(
    "declarations.withdrawn",
    "intake",
    DeclarationWithdrawn,
    "Traders' withdrawals (撤单) of declarations not yet released.",
)
PAYMENTS_CONFIRMED = Topic(
    "payments.confirmed",
    "bank",
    PaymentConfirmed,
    "The bank's confirmations of duties paid or guaranteed against a payment notice.",
)
INSPECTION_FINDINGS = Topic(
    "inspections.findings",
    "inspection",
    InspectionFinding,
    "Inspectors' findings at the joint inspection (一次查验), each against the one inspection "
    "order of a declaration version, recorded at the inspection station.",
)
GATE_OUT = Topic(
    "gate.out",
    "gate",
    GateOut,
    "The port's gate-outs (卡口放行): goods that left the port under a release, each confirmed "
    "by a gate officer and naming the release result the gate relied on.",
)
CLEARANCE_RESULTS = Topic(
    "clearance.results",
    "aggregator",
    ClearanceResult,
    "Every step of every declaration's life, in order: the consolidated answer, the payment "
    "notice, the release; one result per step.",
)
JOIN_STATE = Topic(
    "aggregator.join-state",
    "aggregator",
    JoinState,
    "The aggregator's join state per declaration (compacted changelog), written in the same "
    "transaction as the results and input offsets; restored on every partition assignment.",
    cleanup_policy="compact",
)
DEAD_LETTERS = Topic(
    "deadletters",
    "any consumer",
    None,
    "Messages a consumer could not decode or validate: original key, value and headers, "
    "plus provenance headers (source topic, partition, offset, service, error, time); an "
    "original too large to fit is truncated, with its length and SHA-256 in headers.",
    # stated, so that a cluster with a lower default cannot refuse the letters the SDK
    # bounds below this (Settings.dead_letter_max_bytes)
    max_message_bytes=1_048_588,
)


def verdict_topic(agency: AgencyEntry) -> Topic:
    """The verdict topic of a registered agency: only that agency writes it."""
    return Topic(
        agency.topic,
        agency.principal,
        AgencyVerdict,
        f"Verdicts of {agency.name}" + (f" ({agency.name_zh})." if agency.name_zh else "."),
    )


def verdict_topics(registry: AgencyRegistry | None = None) -> dict[str, Topic]:
    """Agency code -> its verdict topic, for every registered agency."""
    return {a.code: verdict_topic(a) for a in registry or agency_registry()}


def inputs(registry: AgencyRegistry | None = None) -> tuple[str, ...]:
    """The topics a join reads: the declarations, every agency's verdicts, the withdrawals,
    the payments and the inspection findings."""
    return (
        DECLARATIONS_SUBMITTED.name,
        *(t.name for t in verdict_topics(registry).values()),
        DECLARATIONS_WITHDRAWN.name,
        PAYMENTS_CONFIRMED.name,
        INSPECTION_FINDINGS.name,
    )


def projected(registry: AgencyRegistry | None = None) -> tuple[str, ...]:
    """The topics the read model folds (the projector reads them, the audit rebuilds from
    them): the join's inputs, the results and the gate-outs."""
    return (*inputs(registry), CLEARANCE_RESULTS.name, GATE_OUT.name)


def catalog(registry: AgencyRegistry | None = None) -> tuple[Topic, ...]:
    """Every topic of the platform with the agencies of ``registry`` (default: this
    process's registry)."""
    return (
        DECLARATIONS_SUBMITTED,
        *verdict_topics(registry).values(),
        DECLARATIONS_WITHDRAWN,
        PAYMENTS_CONFIRMED,
        INSPECTION_FINDINGS,
        CLEARANCE_RESULTS,
        GATE_OUT,
        JOIN_STATE,
        DEAD_LETTERS,
    )


def by_name(name: str, registry: AgencyRegistry | None = None) -> Topic:
    """The catalog entry of a topic; KeyError for a topic the platform does not know."""
    for topic in catalog(registry):
        if topic.name == name:
            return topic
    raise KeyError(f"unknown topic {name!r}")


def events_by_topic(
    names: Iterable[str] | None = None, registry: AgencyRegistry | None = None
) -> dict[str, type[Event]]:
    """Topic name -> the event of its values, for the topics ``names`` (default: every topic
    that carries events)."""
    wanted = None if names is None else set(names)
    return {
        t.name: t.event
        for t in catalog(registry)
        if t.event is not None and (wanted is None or t.name in wanted)
    }
