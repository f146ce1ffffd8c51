"""The read-model database: any MongoDB-protocol server, through PyMongo's async API.

(``motor`` reached end of life on 2026-05-14; ``AsyncMongoClient`` is its official successor.)
FerretDB has no multi-document transactions and no change streams: every write is a
single-document atomic upsert. FerretDB v1 has no Decimal128 either: money is stored as an
exact decimal string.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from singlewindow.aio import all_settled
from singlewindow.settings import Settings


def mongo_client(settings: Settings, timeout_ms: int = 5000) -> AsyncMongoClient[dict[str, Any]]:
    """A client with bounded timeouts: a database outage is an error, never a hang."""
    return AsyncMongoClient(
        settings.mongodb_url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms * 2,
        tz_aware=True,
    )


async def find_by_ids(
    collection: AsyncCollection[dict[str, Any]],
    ids: Iterable[str],
    projection: dict[str, int] | None = None,
    concurrency: int = 8,
) -> dict[str, dict[str, Any]]:
    """The documents with these ``_id`` values, by id.

    FerretDB v1 (SQLite) pushes down only ``_id`` equality: ``{"_id": {"$in": [...]}}`` scans
    the whole collection, so many indexed point reads are far cheaper than one ``$in``.
    """
    keys = list(dict.fromkeys(ids))
    docs = await all_settled(
        (collection.find_one({"_id": k}, projection) for k in keys), concurrency
    )
    return {k: d for k, d in zip(keys, docs, strict=True) if d is not None}


async def replace_all(
    collection: AsyncCollection[dict[str, Any]],
    docs: dict[str, dict[str, Any]],
    concurrency: int = 8,
) -> None:
    """Upsert each document under its ``_id`` (the key), ``concurrency`` at a time.

    One ``bulk_write`` would be one round trip, but PyMongo reads ``nModified`` from every bulk
    reply and FerretDB v1's replies lack it; concurrent single-document upserts are the next
    best (each is atomic; they touch distinct documents, so their order does not matter).
    """

    async def one(key: str, doc: dict[str, Any]) -> None:
        try:
            await collection.replace_one({"_id": key}, doc, upsert=True)
        except DuplicateKeyError:  # an insert of the same _id won the race: it exists now
            await collection.replace_one({"_id": key}, doc, upsert=True)

    # every write ends before this returns, failed or not: none may land after a later one
    await all_settled((one(k, d) for k, d in docs.items()), concurrency)


async def ping(client: AsyncMongoClient[dict[str, Any]]) -> str:
    """A readiness probe (:meth:`singlewindow.health.Health.probe`): the server answers a
    ``ping`` (the probe's own bound cuts the client's server selection short)."""
    await client.admin.command("ping")
    return "reachable"
