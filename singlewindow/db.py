"""The read-model database: any MongoDB-protocol server, through PyMongo's async API.

(``motor`` reached end of life on 2026-05-14; ``AsyncMongoClient`` is its official successor.)
FerretDB has no multi-document transactions and no change streams: every write is a
single-document atomic upsert. FerretDB v1 has no Decimal128 either: money is stored as an
exact decimal string.
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

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
