"""The projector: every event into the read model, idempotently, at least once."""

from __future__ import annotations

from singlewindow.db import mongo_client
from singlewindow.events import AgencyVerdict, ClearanceResult, DeclarationSubmitted, Event
from singlewindow.kafka.consumer import ConsumerService, Record, decode_record
from singlewindow.kafka.producer import EventProducer
from singlewindow.readmodel import COLLECTION, promotion, updates_for
from singlewindow.settings import Settings
from singlewindow.topics import CLEARANCE_RESULTS, DECLARATIONS_SUBMITTED, VERDICT_TOPICS

NAME = "projector"
KINDS: dict[str, type[Event]] = {
    DECLARATIONS_SUBMITTED.name: DeclarationSubmitted,
    CLEARANCE_RESULTS.name: ClearanceResult,
    **{t.name: AgencyVerdict for t in VERDICT_TOPICS.values()},
}


def projector(settings: Settings) -> ConsumerService:
    """A consumer service that upserts each event into the read model."""
    collection = mongo_client(settings)[settings.mongodb_database][COLLECTION]

    async def handle(record: Record) -> None:
        event = decode_record(KINDS[record.topic], record)
        for query, update, upsert in updates_for(event):
            await collection.update_one(query, update, upsert=upsert)
        doc = await collection.find_one({"_id": event.declaration_id})
        final = promotion(doc) if doc else None
        if final:
            await collection.update_one(final[0], final[1])

    return ConsumerService(NAME, list(KINDS), NAME, settings, handle, EventProducer(settings, NAME))
