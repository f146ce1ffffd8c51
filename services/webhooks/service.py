"""The webhook delivery service: the consume loop that fills the outbox
(:mod:`services.webhooks.outbox`) and the delivery loop that empties it
(:mod:`services.webhooks.deliverer`), in one process, as two loops that share only the
database.

It consumes ``clearance.results`` (every step of every declaration: each is a status change)
in its own group as its own principal ``webhooks``, which may read that topic and write dead
letters, nothing else; the results are signed by the aggregator, and one whose signature the
key registry refuses is dead-lettered, never delivered. The delivery loop starts before
Kafka answers: deliveries already in the outbox go out while the broker is away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

import httpx
from pymongo.asynchronous.collection import AsyncCollection

from services.intake.schema import DeclarationStatus
from services.intake.traderview import trader_view
from services.webhooks.config import WebhooksSettings
from services.webhooks.deliverer import Deliverer, utcnow
from services.webhooks.outbox import record_results
from services.webhooks.signing import WebhookKeys
from services.webhooks.store import DELIVERIES, WEBHOOKS, MongoWebhookStore, WebhookStore
from singlewindow.db import find_by_ids, mongo_client, ping
from singlewindow.events import ClearanceResult
from singlewindow.health import Health
from singlewindow.kafka.consumer import ConsumerService, Fill, Record, decode_signed
from singlewindow.kafka.producer import EventProducer
from singlewindow.readmodel import COLLECTION
from singlewindow.settings import Settings
from singlewindow.signing import Verifier, registry_file
from singlewindow.topics import CLEARANCE_RESULTS

NAME = "webhooks"
Doc = dict[str, Any]


def view_of(document: Doc | None) -> Doc | None:
    """The body ``GET /v1/declarations/{id}`` answers for a read-model document (None for
    none): the same model, the same unset fields left out."""
    if document is None or document.get("declaration") is None:
        return None
    status = DeclarationStatus.model_validate(trader_view(document))
    return status.model_dump(mode="json", exclude_unset=True)


class ReadModelDeclarations:
    """The read model as the webhooks read it: declarants by id, and trader views."""

    def __init__(self, collection: AsyncCollection[Doc]) -> None:
        self.collection = collection

    async def documents(
        self, ids: Collection[str], fields: Iterable[str] | None = None
    ) -> dict[str, Doc]:
        projection = None if fields is None else dict.fromkeys(fields, 1)
        return await find_by_ids(self.collection, ids, projection)

    async def view(self, declaration_id: str) -> Doc | None:
        return view_of(await self.collection.find_one({"_id": declaration_id}))


def results_handler(
    store: WebhookStore, declarations: Any, keys: Verifier, clock: Any = utcnow
) -> Any:
    """The consume loop's batch handler: decode (signatures checked), record the outbox."""

    async def handle_batch(records: list[Record]) -> None:
        results = [decode_signed(ClearanceResult, r, keys) for r in records]
        now: datetime = clock()
        await record_results(results, store, declarations, now)

    return handle_batch


class WebhooksProcess:
    """The two loops as one ``runtime.Service``."""

    def __init__(self, consumer: ConsumerService, deliverer: Deliverer, closing: Any) -> None:
        self.consumer, self.deliverer, self.closing = consumer, deliverer, closing
        self._delivering: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._delivering = asyncio.create_task(self.deliverer.run())
        await self.consumer.start()

    async def run(self) -> None:
        try:
            await self.consumer.run()
        finally:
            self.deliverer.stop()
            if self._delivering is not None:
                await self._delivering
            for close in self.closing:
                await close()

    async def stop(self) -> None:
        self.deliverer.stop()
        await self.consumer.stop()


def webhooks_process(
    settings: Settings, own: WebhooksSettings, keys: WebhookKeys, health: Health
) -> WebhooksProcess:
    """The service over Kafka, the database and the Internet; ready when Kafka and the
    database answer."""
    client = mongo_client(settings)
    database = client[settings.mongodb_database]
    health.probe("database", lambda: ping(client))
    store = MongoWebhookStore(database[WEBHOOKS], database[DELIVERIES])
    declarations = ReadModelDeclarations(database[COLLECTION])
    handle_batch = results_handler(store, declarations, registry_file(settings))

    async def handle(record: Record) -> None:
        await handle_batch([record])

    consumer = ConsumerService(
        NAME,
        [CLEARANCE_RESULTS.name],
        NAME,
        settings,
        handle,
        EventProducer(settings, NAME),
        handle_batch=handle_batch,
        fill=Fill(max_wait_ms=250, min_bytes=64 * 1024),
        health=health,
    )
    options = own.options()
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(options.timeout_s),
        follow_redirects=False,
        trust_env=False,  # no proxy from the environment unless the deployment sets one here
        limits=httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=32),
    )
    deliverer = Deliverer(
        store, keys, declarations.view, http, own.policy(), options, health=health
    )

    return WebhooksProcess(consumer, deliverer, (http.aclose, client.close))
