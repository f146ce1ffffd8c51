"""The intake's ports: what its use cases (``service``) need from Kafka and the database.

The adapters (Kafka producer, read model, idempotency store) are injected into
``service.IntakeService``; the in-memory implementations below are real, simple ones for
unit tests and single-process use.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple, Protocol

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


class Head(NamedTuple):
    """Where a declaration's document is: its status, and its revision (how many times it
    changed: ``singlewindow.readmodel``; 0 for a document written before revisions)."""

    status: str
    revision: int


class Page(NamedTuple):
    """Where a listing goes on: after the declaration lodged at ``submitted_at`` with id
    ``declaration_id`` (the listing is newest first: ``submitted_at``, then the id, down)."""

    submitted_at: str
    declaration_id: str


class ReadModel(Protocol):
    async def get(self, declaration_id: str) -> dict[str, Any] | None:
        """The read-model document of a declaration (``singlewindow.readmodel``), or None if
        there is none or it holds no declaration (verdicts of a never-submitted id)."""
        ...

    async def heads(self, ids: Collection[str]) -> dict[str, Head]:
        """The head of each of these ids the read model holds (one query for many)."""
        ...

    async def lodged_by(
        self, usccs: Collection[str], status: str | None, limit: int, after: Page | None
    ) -> list[dict[str, Any]]:
        """At most ``limit`` documents whose declarant is one of ``usccs`` (in ``status``,
        if given), newest first (the declaration's ``submitted_at``, then ``_id``,
        descending), those after ``after`` only."""
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
    """Read-model documents by ``_id``; ``queries`` counts heads calls."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.queries = 0

    def put(self, document: dict[str, Any]) -> None:
        self.documents[document["_id"]] = document

    def set_status(self, declaration_id: str, status: str) -> None:
        """A change of the document, as the projector makes one: its revision one more."""
        document = self.documents[declaration_id]
        revision = int(document.get("revision") or 0) + 1
        self.documents[declaration_id] = {**document, "status": status, "revision": revision}

    async def get(self, declaration_id: str) -> dict[str, Any] | None:
        document = self.documents.get(declaration_id)
        return document if document and document.get("declaration") else None

    async def heads(self, ids: Collection[str]) -> dict[str, Head]:
        self.queries += 1
        return {i: head_of(self.documents[i]) for i in ids if i in self.documents}

    async def lodged_by(
        self, usccs: Collection[str], status: str | None, limit: int, after: Page | None
    ) -> list[dict[str, Any]]:
        found = [
            (page_of(d), d)
            for d in self.documents.values()
            if d.get("declaration")
            and (d["declaration"].get("declarant") or {}).get("uscc") in usccs
            and (status is None or d.get("status") == status)
        ]
        found.sort(key=lambda row: row[0], reverse=True)
        return [d for page, d in found if after is None or page < after][:limit]


def head_of(document: dict[str, Any]) -> Head:
    """The head of a read-model document."""
    return Head(str(document.get("status")), int(document.get("revision") or 0))


def page_of(document: dict[str, Any]) -> Page:
    """Where a document is in a listing (its declaration's ``submitted_at``, its id)."""
    declared = document.get("declaration") or {}
    return Page(str(declared.get("submitted_at") or ""), str(document["_id"]))


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
