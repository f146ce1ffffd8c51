"""Webhook subscriptions and their deliveries (the outbox), in the database.

Two collections beside the read model:

- ``webhooks``: one document per subscription, ``_id`` its ``WH-`` id; the subject that made
  it and the USCCs its token acted for then, the URL, the events, and what its secret is
  derived from (``key_version``, ``nonce``: :mod:`services.webhooks.signing`), never the
  secret itself;
- ``webhook_deliveries``: the outbox and the delivery log in one. ``_id`` is the delivery id,
  derived from (result id, webhook id) (:func:`delivery_id`), and a delivery is only ever
  inserted when absent, so a redelivered Kafka record never makes a second delivery. A
  delivery is ``pending`` (with ``due``: when it may next be tried), then ``delivered`` or
  ``failed``; ``attempts`` logs every try (when, HTTP status or error, duration), the latest
  :data:`KEPT_ATTEMPTS`.

FerretDB has no multi-document transactions: every write here is one document's. A try is
claimed by moving the delivery's ``due`` past the try's longest duration (a lease) with one
``find_one_and_update``, so two delivery processes never try the same delivery at once, and
one that dies mid-try leaves it to be tried again once the lease ran out (at least once).

:class:`WebhookStore` is the port (the intake's routes and the delivery service use it);
:class:`InMemoryWebhookStore` the real, simple one for unit tests; :class:`MongoWebhookStore`
the database's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

Doc = dict[str, Any]
State = Literal["pending", "delivered", "failed"]
WEBHOOKS = "webhooks"
DELIVERIES = "webhook_deliveries"
KEPT_ATTEMPTS = 20
DUPLICATE_KEY = 11000


class StoreUnavailable(ConnectionError):
    """The database could not answer: an outage (a ConnectionError, so the consume loop waits
    it out like any transient fault and never dead-letters a result for it)."""


def delivery_id(result_id: str, webhook_id: str) -> str:
    """The delivery of one result to one webhook: the same for every copy of the result."""
    digest = hashlib.sha256(f"{result_id}\x00{webhook_id}".encode()).hexdigest()
    return "DLV-" + digest[:32].upper()


@dataclass(frozen=True)
class Subscription:
    webhook_id: str
    subject: str
    usccs: tuple[str, ...]
    url: str
    events: tuple[str, ...]
    key_version: str
    nonce: str  # hex
    created_at: datetime


@dataclass(frozen=True)
class Attempt:
    """One try: when, the HTTP status (None: no answer), the error, how long it took."""

    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class Delivery:
    """One result's status change for one webhook, and what became of it."""

    delivery_id: str
    webhook_id: str
    subject: str
    declaration_id: str
    result_id: str
    status: str
    sequence: int
    version: int | None
    occurred_at: datetime
    created_at: datetime
    event: str = "status"
    state: State = "pending"
    due: datetime | None = None  # pending: when it may be tried next
    tries: int = 0  # tries since it was (re)scheduled: bounded, then failed
    attempts: tuple[Attempt, ...] = ()
    delivered_at: datetime | None = None


class WebhookStore(Protocol):
    async def add_webhook(self, webhook: Subscription) -> None: ...

    async def count_webhooks(self, subject: str) -> int: ...

    async def webhooks_of(self, subject: str) -> list[Subscription]: ...

    async def webhook(self, webhook_id: str) -> Subscription | None: ...

    async def delete_webhook(self, webhook_id: str) -> None: ...

    async def subscribers(self, usccs: Collection[str]) -> list[Subscription]:
        """The subscriptions that act for any of ``usccs`` (one query for a batch)."""
        ...

    async def record(self, deliveries: Sequence[Delivery]) -> None:
        """Insert each delivery unless one with its id exists (idempotent)."""
        ...

    async def delivery(self, delivery_id: str) -> Delivery | None: ...

    async def deliveries_of(self, webhook_id: str, limit: int) -> list[Delivery]:
        """A webhook's latest deliveries, newest first."""
        ...

    async def due(self, now: datetime, limit: int, exclude: Collection[str] = ()) -> list[Delivery]:
        """Pending deliveries due by ``now``, earliest first, but those of the webhooks
        ``exclude`` names (those with no place free)."""
        ...

    async def claim(self, delivery_id: str, now: datetime, lease_until: datetime) -> bool:
        """Take a due pending delivery for one try (its ``due`` moved to ``lease_until``);
        False when it is no longer due (another process took it, or it ended)."""
        ...

    async def finish(self, delivery: Delivery) -> None:
        """Write a try's outcome (state, due, tries, attempts, delivered_at)."""
        ...

    async def reschedule(self, delivery_id: str, now: datetime) -> Delivery | None:
        """Make a delivery pending again, due now, with a fresh budget of tries (the trader's
        redelivery); None when there is no such delivery."""
        ...


# -- documents ---------------------------------------------------------------------------


def webhook_document(webhook: Subscription) -> Doc:
    doc = asdict(webhook)
    doc["_id"] = doc.pop("webhook_id")
    doc["usccs"], doc["events"] = list(webhook.usccs), list(webhook.events)
    return doc


def webhook_of(doc: Doc) -> Subscription:
    return Subscription(
        webhook_id=str(doc["_id"]),
        subject=str(doc["subject"]),
        usccs=tuple(doc.get("usccs") or ()),
        url=str(doc["url"]),
        events=tuple(doc.get("events") or ()),
        key_version=str(doc["key_version"]),
        nonce=str(doc["nonce"]),
        created_at=doc["created_at"],
    )


def delivery_document(delivery: Delivery) -> Doc:
    doc = asdict(delivery)
    doc["_id"] = doc.pop("delivery_id")
    doc["attempts"] = [asdict(a) for a in delivery.attempts]
    return doc


def delivery_of(doc: Doc) -> Delivery:
    data = {k: v for k, v in doc.items() if k != "_id"}
    data["attempts"] = tuple(Attempt(**a) for a in data.get("attempts") or ())
    known = set(Delivery.__dataclass_fields__)
    return Delivery(delivery_id=str(doc["_id"]), **{k: v for k, v in data.items() if k in known})


def with_attempt(delivery: Delivery, attempt: Attempt, **changes: Any) -> Delivery:
    """``delivery`` after ``attempt`` (the log kept to its latest :data:`KEPT_ATTEMPTS`)."""
    attempts = (*delivery.attempts, attempt)[-KEPT_ATTEMPTS:]
    return replace(delivery, attempts=attempts, tries=delivery.tries + 1, **changes)


# -- in memory ---------------------------------------------------------------------------


@dataclass
class InMemoryWebhookStore:
    """Subscriptions and deliveries in dictionaries, for one process (unit tests)."""

    webhooks: dict[str, Subscription] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)

    async def add_webhook(self, webhook: Subscription) -> None:
        self.webhooks[webhook.webhook_id] = webhook

    async def count_webhooks(self, subject: str) -> int:
        return len(await self.webhooks_of(subject))

    async def webhooks_of(self, subject: str) -> list[Subscription]:
        mine = [w for w in self.webhooks.values() if w.subject == subject]
        return sorted(mine, key=lambda w: (w.created_at, w.webhook_id))

    async def webhook(self, webhook_id: str) -> Subscription | None:
        return self.webhooks.get(webhook_id)

    async def delete_webhook(self, webhook_id: str) -> None:
        self.webhooks.pop(webhook_id, None)

    async def subscribers(self, usccs: Collection[str]) -> list[Subscription]:
        wanted = set(usccs)
        return [w for w in self.webhooks.values() if wanted & set(w.usccs)]

    async def record(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            self.deliveries.setdefault(d.delivery_id, d)

    async def delivery(self, delivery_id: str) -> Delivery | None:
        return self.deliveries.get(delivery_id)

    async def deliveries_of(self, webhook_id: str, limit: int) -> list[Delivery]:
        mine = [d for d in self.deliveries.values() if d.webhook_id == webhook_id]
        mine.sort(key=lambda d: (d.created_at, d.delivery_id), reverse=True)
        return mine[:limit]

    async def due(self, now: datetime, limit: int, exclude: Collection[str] = ()) -> list[Delivery]:
        ready = [
            d
            for d in self.deliveries.values()
            if d.state == "pending"
            and d.due is not None
            and d.due <= now
            and d.webhook_id not in exclude
        ]
        return sorted(ready, key=lambda d: (d.due or now, d.delivery_id))[:limit]

    async def claim(self, delivery_id: str, now: datetime, lease_until: datetime) -> bool:
        d = self.deliveries.get(delivery_id)
        if d is None or d.state != "pending" or d.due is None or d.due > now:
            return False
        self.deliveries[delivery_id] = replace(d, due=lease_until)
        return True

    async def finish(self, delivery: Delivery) -> None:
        self.deliveries[delivery.delivery_id] = delivery

    async def reschedule(self, delivery_id: str, now: datetime) -> Delivery | None:
        d = self.deliveries.get(delivery_id)
        if d is None:
            return None
        self.deliveries[delivery_id] = d = replace(d, state="pending", due=now, tries=0)
        return d


# -- the database ------------------------------------------------------------------------


class MongoWebhookStore:
    """The two collections on any MongoDB-protocol server (FerretDB locally)."""

    def __init__(self, webhooks: AsyncCollection[Doc], deliveries: AsyncCollection[Doc]) -> None:
        self.webhooks, self.deliveries = webhooks, deliveries

    async def create_indexes(self) -> None:
        """What the queries use on MongoDB (FerretDB v1 takes them and scans anyway)."""
        try:
            await self.webhooks.create_index([("subject", ASCENDING)])
            await self.webhooks.create_index([("usccs", ASCENDING)])
            await self.deliveries.create_index([("state", ASCENDING), ("due", ASCENDING)])
            await self.deliveries.create_index([("webhook_id", ASCENDING)])
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def add_webhook(self, webhook: Subscription) -> None:
        try:
            await self.webhooks.insert_one(webhook_document(webhook))
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def count_webhooks(self, subject: str) -> int:
        try:
            return await self.webhooks.count_documents({"subject": subject})
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def webhooks_of(self, subject: str) -> list[Subscription]:
        try:
            docs = await self.webhooks.find({"subject": subject}).to_list(None)
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return sorted((webhook_of(d) for d in docs), key=lambda w: (w.created_at, w.webhook_id))

    async def webhook(self, webhook_id: str) -> Subscription | None:
        try:
            doc = await self.webhooks.find_one({"_id": webhook_id})
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return None if doc is None else webhook_of(doc)

    async def delete_webhook(self, webhook_id: str) -> None:
        try:
            await self.webhooks.delete_one({"_id": webhook_id})
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def subscribers(self, usccs: Collection[str]) -> list[Subscription]:
        if not usccs:
            return []
        try:
            docs = await self.webhooks.find({"usccs": {"$in": sorted(usccs)}}).to_list(None)
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return [webhook_of(d) for d in docs]

    async def record(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        try:
            await self.deliveries.insert_many(
                [delivery_document(d) for d in deliveries], ordered=False
            )
        except BulkWriteError as exc:
            others = [
                e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY
            ]
            if others:
                raise StoreUnavailable(
                    f"{len(others)} deliveries not recorded: {others[0]}"
                ) from exc
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def delivery(self, delivery_id: str) -> Delivery | None:
        try:
            doc = await self.deliveries.find_one({"_id": delivery_id})
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return None if doc is None else delivery_of(doc)

    async def deliveries_of(self, webhook_id: str, limit: int) -> list[Delivery]:
        try:
            cursor = self.deliveries.find({"webhook_id": webhook_id})
            docs = await cursor.sort([("created_at", DESCENDING), ("_id", DESCENDING)]).to_list(
                limit
            )
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return [delivery_of(d) for d in docs]

    async def due(self, now: datetime, limit: int, exclude: Collection[str] = ()) -> list[Delivery]:
        query: Doc = {"state": "pending", "due": {"$lte": now}}
        if exclude:
            query["webhook_id"] = {"$nin": sorted(exclude)}
        try:
            cursor = self.deliveries.find(query)
            docs = await cursor.sort([("due", ASCENDING)]).to_list(limit)
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return [delivery_of(d) for d in docs]

    async def claim(self, delivery_id: str, now: datetime, lease_until: datetime) -> bool:
        try:
            taken = await self.deliveries.find_one_and_update(
                {"_id": delivery_id, "state": "pending", "due": {"$lte": now}},
                {"$set": {"due": lease_until}},
                return_document=ReturnDocument.AFTER,
            )
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return taken is not None

    async def finish(self, delivery: Delivery) -> None:
        doc = delivery_document(delivery)
        changes = {k: doc[k] for k in ("state", "due", "tries", "attempts", "delivered_at")}
        try:
            await self.deliveries.update_one({"_id": delivery.delivery_id}, {"$set": changes})
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def reschedule(self, delivery_id: str, now: datetime) -> Delivery | None:
        try:
            doc = await self.deliveries.find_one_and_update(
                {"_id": delivery_id},
                {"$set": {"state": "pending", "due": now, "tries": 0}},
                return_document=ReturnDocument.AFTER,
            )
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return None if doc is None else delivery_of(doc)
