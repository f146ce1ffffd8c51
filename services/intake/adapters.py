"""The intake's adapters: Kafka for publishing, the read model and the idempotency store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pymongo
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from services.intake.ports import (
    Claim,
    Head,
    IdempotencyUnavailable,
    Page,
    Published,
    PublishUnavailable,
    ReadModelUnavailable,
    head_of,
)
from singlewindow.db import find_by_ids
from singlewindow.events import DeclarationSubmitted
from singlewindow.kafka.producer import EventProducer
from singlewindow.readmodel import apply
from singlewindow.topics import DECLARATIONS_SUBMITTED, DECLARATIONS_WITHDRAWN

Doc = dict[str, Any]
log = logging.getLogger(__name__)
DUPLICATE_KEY = 11000


LIST_TIMEOUT_S = 60.0  # the list's own deadline (MongoReadModel.lodged_by)


class KafkaPublisher:
    """Publishes a declaration (or a withdrawal, on its own topic) and returns only once
    Kafka acknowledged it (acks=all).

    Then, for a declaration's first version, best effort, the :class:`ReadModelSeeder`
    inserts the document the projector would build from the event, so that a status read
    right after the 202 finds it; the projector converges either way, and a database outage
    never fails a submission.
    """

    def __init__(self, producer: EventProducer, read_model: AsyncCollection[Doc]) -> None:
        self.producer, self.seeder = producer, ReadModelSeeder(read_model)

    async def publish(self, event: Published) -> None:
        declared = isinstance(event, DeclarationSubmitted)
        topic = DECLARATIONS_SUBMITTED if declared else DECLARATIONS_WITHDRAWN
        try:
            await self.producer.publish(topic.name, event)
        except Exception as exc:  # anything but an acknowledgement: the trader retries later
            log.warning("publish of %s failed: %r", event.declaration_id, exc)
            raise PublishUnavailable(str(exc)) from exc
        if isinstance(event, DeclarationSubmitted) and (event.version or 1) == 1:
            await self.seeder.insert(event)  # an amendment's document exists: the projector's

    async def close(self) -> None:
        await self.seeder.close()


class ReadModelSeeder:
    """First documents of accepted declarations, inserted together (group commit).

    ``insert`` returns once its document's batch was written, or failed: the requests that
    arrive while a batch is being written share the next one (one ``insert_many`` for all of
    them, not a round trip each). Only when absent (an existing document belongs to the
    projector). Failures are logged, never raised: the projector writes the document anyway.
    """

    def __init__(self, collection: AsyncCollection[Doc], timeout_s: float = 2.0) -> None:
        self.collection, self.timeout_s = collection, timeout_s
        self.pending: list[tuple[Doc, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def insert(self, event: DeclarationSubmitted) -> None:
        try:
            doc = apply(None, event)
        except Exception as exc:  # after the acknowledgement: never fails the 202
            log.warning("read model: no first document for %s: %r", event.declaration_id, exc)
            return
        if self._closing:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((doc, done))
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        await asyncio.shield(done)  # a cancelled request leaves its batch alone

    async def close(self) -> None:
        """Write what is pending (one batch: requests have finished), then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not (self._closing and not self.pending):
            await self._wake.wait()
            self._wake.clear()
            batch, self.pending = self.pending, []
            if batch:
                await self._write([doc for doc, _ in batch])
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _write(self, docs: list[Doc]) -> None:
        try:
            # pymongo's own deadline, not a cancellation: pymongo 4 cancelled while selecting
            # a server (the database restarting) raises RuntimeError("Lock is not acquired")
            with pymongo.timeout(self.timeout_s):
                await self.collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
            if others:
                log.warning(
                    "read model: %s first documents not inserted: %s", len(others), others[0]
                )
        except Exception as exc:  # best effort, after the acknowledgement
            log.warning(
                "read model: %s first documents not inserted (the projector will write them): %r",
                len(docs),
                exc,
            )


class MongoReadModel:
    """The status API's access to the read model the projector maintains (the documents as
    they are: the API decides what a trader may see of them, ``traderview``)."""

    def __init__(self, collection: AsyncCollection[Doc]) -> None:
        self.collection = collection

    async def get(self, declaration_id: str) -> Doc | None:
        try:
            doc = await self.collection.find_one({"_id": declaration_id})
        except PyMongoError as exc:
            raise ReadModelUnavailable(str(exc)) from exc
        if doc is None or doc.get("declaration") is None:
            return None  # verdicts without a declaration (never submitted) are no declaration
        return doc

    async def heads(self, ids: Collection[str]) -> dict[str, Head]:
        try:
            docs = await find_by_ids(self.collection, ids, {"status": 1, "revision": 1})
            return {key: head_of(doc) for key, doc in docs.items()}
        except PyMongoError as exc:
            raise ReadModelUnavailable(str(exc)) from exc

    async def lodged_by(
        self, usccs: Collection[str], status: str | None, limit: int, after: Page | None
    ) -> list[Doc]:
        """One query, newest first. FerretDB v1 (SQLite) pushes down only ``_id`` equality:
        there it scans the collection; on MongoDB an index on (``declaration.declarant.uscc``,
        ``declaration.submitted_at``, ``_id``) serves it."""
        query: Doc = {"declaration.declarant.uscc": {"$in": sorted(usccs)}}
        if status is not None:
            query["status"] = status
        if after is not None:
            at = "declaration.submitted_at"
            query["$or"] = [
                {at: {"$lt": after.submitted_at}},
                {at: after.submitted_at, "_id": {"$lt": after.declaration_id}},
            ]
        order = [("declaration.submitted_at", pymongo.DESCENDING), ("_id", pymongo.DESCENDING)]
        try:
            # FerretDB 1.x sorts the whole collection to answer: measured 9.7 s at 3,103
            # documents, beyond the client's socket timeout (10 s) under load; the query gets
            # a deadline of its own until the list has an index it can use
            with pymongo.timeout(LIST_TIMEOUT_S):
                cursor = self.collection.find(query).sort(order).limit(limit)
                return [doc async for doc in cursor]
        except PyMongoError as exc:
            raise ReadModelUnavailable(str(exc)) from exc


class MongoIdempotencyStore:
    """Idempotency claims as documents with a unique ``_id``: the first claim wins.

    The ``_id`` is the scoped key the API gives (``ids.scoped_key``: subject and key), so
    two subjects' identical keys are two documents.

    A claim is never deleted: an insert whose reply was lost (a timeout) may have happened,
    so the only safe reading of any claim is "publish unless known published".
    """

    def __init__(self, collection: AsyncCollection[Doc]) -> None:
        self.collection = collection

    async def claim(self, key: str, claim: Claim) -> Claim:
        try:
            try:
                await self.collection.insert_one({"_id": key, **asdict(claim)})
                return claim
            except DuplicateKeyError:
                first = await self.collection.find_one({"_id": key})
        except PyMongoError as exc:
            raise IdempotencyUnavailable(str(exc)) from exc
        if first is None:
            raise IdempotencyUnavailable(f"claim of {key!r} vanished")
        return claim_of(first)

    async def find(self, key: str) -> Claim | None:
        try:
            found = await self.collection.find_one({"_id": key})
        except PyMongoError as exc:
            raise IdempotencyUnavailable(str(exc)) from exc
        return None if found is None else claim_of(found)

    async def mark_published(self, key: str) -> None:
        try:
            await self.collection.update_one({"_id": key}, {"$set": {"published": True}})
        except PyMongoError as exc:
            raise IdempotencyUnavailable(str(exc)) from exc


def claim_of(doc: dict[str, Any]) -> Claim:
    """The claim a stored document holds."""
    return Claim(
        body_hash=str(doc["body_hash"]),
        declaration_id=str(doc["declaration_id"]),
        event_id=str(doc.get("event_id") or ""),  # "": the API derives it again
        # a claim recorded before publish states were kept: not known published
        submitted_at=doc.get("submitted_at") or datetime.now(UTC),
        published=bool(doc.get("published")),
        version=doc.get("version"),
    )
