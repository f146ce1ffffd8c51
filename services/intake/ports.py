"""The intake's ports: what its use cases (``service``) need from Kafka and the database.

The adapters (Kafka producer, read model, idempotency store) are injected into
``service.IntakeService``; the in-memory implementations below are real, simple ones for
unit tests and single-process use.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from singlewindow.events import DeclarationSubmitted, DeclarationWithdrawn

Published = DeclarationSubmitted | DeclarationWithdrawn  # what the intake writes


class PublishUnavailable(Exception):
    """Kafka did not acknowledge the event in time: nothing may be promised to the trader."""


class ReadModelUnavailable(Exception):
    """The read model (status database) could not answer."""


class IdempotencyUnavailable(Exception):
    """The idempotency store could not answer."""


@dataclass(frozen=True)
class Claim:
    """What the intake records for a subject's Idempotency-Key before it publishes.

    The ids and ``submitted_at`` are kept so that a republish writes the same event;
    ``published`` turns True only after Kafka acknowledged it. A claim that is not known to be
    published is published again by the next request with the key (same declaration and
    event ids: downstream is idempotent by id), so a claim can never stand for an event that
    is not in Kafka.
    """

    body_hash: str
    declaration_id: str
    event_id: str
    submitted_at: datetime
    published: bool = False
    version: int | None = None  # the declaration version an amendment or withdrawal names


class Publisher(Protocol):
    async def publish(self, event: Published) -> None:
        """Return only once Kafka acknowledged the event; raise PublishUnavailable otherwise."""
        ...


class ReadModel(Protocol):
    async def get(self, declaration_id: str) -> dict[str, Any] | None:
        """The read-model document of a declaration (``singlewindow.readmodel``), or None if
        there is none or it holds no declaration (verdicts of a never-submitted id)."""
        ...

    async def statuses(self, ids: Collection[str]) -> dict[str, str]:
        """The status of each of these ids the read model holds (one query for many)."""
        ...


class IdempotencyStore(Protocol):
    """Claims by store key: the caller scopes keys by subject (``ids.scoped_key``)."""

    async def claim(self, key: str, claim: Claim) -> Claim:
        """Record ``claim`` if the key is new; return the claim the key holds (this one or the
        first). Raise IdempotencyUnavailable when the store cannot answer."""
        ...

    async def mark_published(self, key: str) -> None:
        """Kafka acknowledged the key's event: later requests answer without publishing."""
        ...

    async def find(self, key: str) -> Claim | None:
        """The claim the key holds, if any (nothing is recorded)."""
        ...


class InMemoryPublisher:
    """Keeps the published events; ``fail_with`` makes the next publishes raise."""

    def __init__(self) -> None:
        self.events: list[Published] = []
        self.fail_with: Exception | None = None

    async def publish(self, event: Published) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.events.append(event)


class InMemoryReadModel:
    """Read-model documents by ``_id``; ``queries`` counts statuses calls."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.queries = 0

    def put(self, document: dict[str, Any]) -> None:
        self.documents[document["_id"]] = document

    def set_status(self, declaration_id: str, status: str) -> None:
        self.documents[declaration_id] = {**self.documents[declaration_id], "status": status}

    async def get(self, declaration_id: str) -> dict[str, Any] | None:
        document = self.documents.get(declaration_id)
        return document if document and document.get("declaration") else None

    async def statuses(self, ids: Collection[str]) -> dict[str, str]:
        self.queries += 1
        return {i: self.documents[i]["status"] for i in ids if i in self.documents}


class InMemoryIdempotencyStore:
    """Claims by key, for one process (a restart forgets them)."""

    def __init__(self) -> None:
        self.claims: dict[str, Claim] = {}

    async def claim(self, key: str, claim: Claim) -> Claim:
        return self.claims.setdefault(key, claim)

    async def mark_published(self, key: str) -> None:
        self.claims[key] = replace(self.claims[key], published=True)

    async def find(self, key: str) -> Claim | None:
        return self.claims.get(key)
