"""The projector: every event into the read model, idempotently, at least once.

A whole fetched batch is folded at once: one read of the documents it touches, the pure
``readmodel.apply`` for each event, one bulk write of the changed documents. If the batch
cannot be written (a poison record, a write conflict), the consume loop falls back to one
record at a time, so only the culprit is dead-lettered.
"""

from __future__ import annotations

from pymongo import ReplaceOne

from singlewindow.db import find_by_ids, mongo_client
from singlewindow.events import AgencyVerdict, ClearanceResult, DeclarationSubmitted, Event
from singlewindow.kafka.consumer import ConsumerService, Record, decode_record
from singlewindow.kafka.producer import EventProducer
from singlewindow.readmodel import COLLECTION, Doc, apply
from singlewindow.settings import Settings
from singlewindow.topics import CLEARANCE_RESULTS, DECLARATIONS_SUBMITTED, VERDICT_TOPICS

NAME = "projector"
# FerretDB v1 (SQLite) holds one pooled connection per statement of an update command until
# the command ends; at 100 statements its pool is exhausted and the command deadlocks.
BULK_LIMIT = 32
KINDS: dict[str, type[Event]] = {
    DECLARATIONS_SUBMITTED.name: DeclarationSubmitted,
    CLEARANCE_RESULTS.name: ClearanceResult,
    **{t.name: AgencyVerdict for t in VERDICT_TOPICS.values()},
}


def projector(settings: Settings) -> ConsumerService:
    """A consumer service that folds events into the read model."""
    collection = mongo_client(settings)[settings.mongodb_database][COLLECTION]

    async def handle_batch(records: list[Record]) -> None:
        events = [decode_record(KINDS[r.topic], r) for r in records]
        docs: dict[str, Doc] = await find_by_ids(collection, (e.declaration_id for e in events))
        changed: dict[str, Doc] = {}
        for event in events:
            key = event.declaration_id
            doc = apply(docs.get(key), event)
            if doc != docs.get(key):
                docs[key] = changed[key] = doc
        writes = [ReplaceOne({"_id": k}, d, upsert=True) for k, d in changed.items()]
        for start in range(0, len(writes), BULK_LIMIT):
            await collection.bulk_write(writes[start : start + BULK_LIMIT], ordered=False)

    async def handle(record: Record) -> None:
        await handle_batch([record])

    return ConsumerService(
        NAME,
        list(KINDS),
        NAME,
        settings,
        handle,
        EventProducer(settings, NAME),
        handle_batch=handle_batch,
    )
