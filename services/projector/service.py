"""The projector: every event into the read model, idempotently, at least once.

A whole fetched batch is folded at once: one read of each document it touches, the pure
``readmodel.apply`` for each event, one replace of each changed document (concurrently). If
the batch cannot be written (a poison record, a write conflict), the consume loop falls back
to one record at a time, so only the culprit is dead-lettered.
"""

from __future__ import annotations

from singlewindow.db import find_by_ids, mongo_client, ping, replace_all
from singlewindow.events import Event
from singlewindow.health import Health
from singlewindow.kafka.consumer import ConsumerService, Fill, Record, decode_signed
from singlewindow.kafka.producer import EventProducer
from singlewindow.readmodel import COLLECTION, Doc, apply
from singlewindow.settings import Settings
from singlewindow.signing import registry_file
from singlewindow.topics import events_by_topic, projected

NAME = "projector"
# the join's inputs, its results and the port's gate-outs
KINDS: dict[str, type[Event]] = events_by_topic(projected())


def projector(
    settings: Settings, fetch_max_wait_ms: int = 250, health: Health | None = None
) -> ConsumerService:
    """A consumer service that folds signed events into the read model (an event whose
    signature the key registry refuses is dead-lettered, never projected); ready when its
    database answers too.

    It is off the critical path (a declaration is final once its result is on the results
    topic), so it lets the broker hold its fetches longer than the agencies and the
    aggregator do: the read model lags by up to ``fetch_max_wait_ms``, and the events of a
    declaration that arrive within it are written to the database once."""
    client = mongo_client(settings)
    collection = client[settings.mongodb_database][COLLECTION]
    health = health or Health(NAME)
    health.probe("database", lambda: ping(client))
    keys = registry_file(settings)

    async def handle_batch(records: list[Record]) -> None:
        events = [decode_signed(KINDS[r.topic], r, keys) for r in records]
        docs: dict[str, Doc] = await find_by_ids(collection, (e.declaration_id for e in events))
        changed: dict[str, Doc] = {}
        for event in events:
            key = event.declaration_id
            doc = apply(docs.get(key), event)
            if doc != docs.get(key):
                docs[key] = changed[key] = doc
        await replace_all(collection, changed)

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
        fill=Fill(max_wait_ms=fetch_max_wait_ms, min_bytes=256 * 1024),
        health=health,
    )
