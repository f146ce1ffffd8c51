"""The MongoDB-protocol database, written and read through AsyncMongoClient."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

pytestmark = pytest.mark.integration


async def test_write_and_read_back(database: AsyncDatabase[dict[str, Any]]) -> None:
    at = datetime(2026, 11, 27, 8, 0, 0, 123000, tzinfo=UTC)
    await database.declarations.insert_one(
        {"_id": "D-1", "status": "SUBMITTED", "at": at, "duties": str(Decimal("12.30"))}
    )
    doc = await database.declarations.find_one({"_id": "D-1"})
    assert doc is not None
    assert doc["status"] == "SUBMITTED"
    assert doc["at"] == at
    assert Decimal(doc["duties"]) == Decimal("12.30")  # exact, as a decimal string


async def test_single_document_upsert_is_idempotent(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    for _ in range(3):
        await database.declarations.update_one(
            {"_id": "D-2"},
            {"$set": {"status": "RELEASED"}, "$addToSet": {"events": "E-1"}},
            upsert=True,
        )
    assert await database.declarations.count_documents({}) == 1
    doc = await database.declarations.find_one({"_id": "D-2"})
    assert doc == {"_id": "D-2", "status": "RELEASED", "events": ["E-1"]}


async def test_unique_index_rejects_a_duplicate(database: AsyncDatabase[dict[str, Any]]) -> None:
    await database.verdicts.create_index("verdict_id", unique=True)
    await database.verdicts.insert_one({"verdict_id": "V-1", "agency": "customs"})
    with pytest.raises(DuplicateKeyError):
        await database.verdicts.insert_one({"verdict_id": "V-1", "agency": "ciq"})
    assert await database.verdicts.count_documents({"verdict_id": "V-1"}) == 1
