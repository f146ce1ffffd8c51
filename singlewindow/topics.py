"""The topic catalog: every topic of the platform, its key, value schema and retention.

One writer per topic (``writer``). Every declaration-keyed topic has the same partition
count, so all events about one declaration share a partition number (co-partitioning).
Topics auditors rely on never delete (``retention_ms=-1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NEVER = -1
SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    """One Kafka topic as the platform uses it."""

    name: str
    writer: str
    value_schema: str | None
    doc: str
    key: str = "declaration_id"
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int = NEVER
    max_message_bytes: int | None = None  # None: the broker's message.max.bytes

    def configs(self) -> dict[str, str]:
        """Topic-level configs for the admin API."""
        configs: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.cleanup_policy == "delete":
            configs["retention.ms"] = str(self.retention_ms)
        if self.max_message_bytes is not None:
            configs["max.message.bytes"] = str(self.max_message_bytes)
        return configs


NS = "cn.singlewindow.events"

DECLARATIONS_SUBMITTED = Topic(
    "declarations.submitted",
    "intake",
    f"{NS}.DeclarationSubmitted",
    "Declarations accepted at the door, with the set of agencies that must rule.",
)
VERDICTS_CUSTOMS = Topic(
    "verdicts.customs",
    "customs",
    f"{NS}.AgencyVerdict",
    "Verdicts of customs (海关).",
)
VERDICTS_CIQ = Topic(
    "verdicts.ciq",
    "ciq",
    f"{NS}.AgencyVerdict",
    "Verdicts of inspection and quarantine.",
)
VERDICTS_PORT = Topic(
    "verdicts.port",
    "port",
    f"{NS}.AgencyVerdict",
    "Verdicts of the port authority.",
)
CLEARANCE_RESULTS = Topic(
    "clearance.results",
    "aggregator",
    f"{NS}.ClearanceResult",
    "One consolidated answer per declaration decision.",
)
JOIN_STATE = Topic(
    "aggregator.join-state",
    "aggregator",
    f"{NS}.JoinState",
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

VERDICT_TOPICS: dict[str, Topic] = {
    "customs": VERDICTS_CUSTOMS,
    "ciq": VERDICTS_CIQ,
    "port": VERDICTS_PORT,
}

CATALOG: tuple[Topic, ...] = (
    DECLARATIONS_SUBMITTED,
    *VERDICT_TOPICS.values(),
    CLEARANCE_RESULTS,
    JOIN_STATE,
    DEAD_LETTERS,
)


def by_name(name: str) -> Topic:
    """The catalog entry of a topic; KeyError for a topic the platform does not know."""
    for topic in CATALOG:
        if topic.name == name:
            return topic
    raise KeyError(f"unknown topic {name!r}")
