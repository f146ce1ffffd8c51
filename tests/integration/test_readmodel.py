"""The read model on the real database: idempotent, order-tolerant single-document upserts."""

from __future__ import annotations

from itertools import permutations
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from singlewindow.events import Agency, ClearanceStatus, Decision, Event
from singlewindow.readmodel import COLLECTION, promotion, status_view, updates_for
from tests import factories

pytestmark = pytest.mark.integration


async def apply(db: AsyncDatabase[dict[str, Any]], events: list[Event]) -> dict[str, Any]:
    """What the projector does for each event."""
    for event in events:
        for query, update, upsert in updates_for(event):
            await db[COLLECTION].update_one(query, update, upsert=upsert)
        doc = await db[COLLECTION].find_one({"_id": event.declaration_id})
        final = promotion(doc) if doc else None
        if final:
            await db[COLLECTION].update_one(final[0], final[1])
    doc = await db[COLLECTION].find_one({"_id": events[0].declaration_id})
    assert doc is not None
    return doc


async def test_any_order_and_any_replay_give_the_same_document(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    events: list[Event] = [
        factories.declaration("D-RM"),
        factories.verdict("D-RM", Agency.CUSTOMS, Decision.INSPECT),
        factories.verdict("D-RM", Agency.PORT, Decision.CLEAR),
        factories.result("D-RM", status=ClearanceStatus.INSPECTION_REQUIRED),
    ]
    views = []
    for order in list(permutations(range(4)))[::5]:
        await database[COLLECTION].delete_many({})
        doc = await apply(database, [events[i] for i in order] + [events[i] for i in order])
        views.append(status_view(doc))
    assert all(v == views[0] for v in views)
    view = views[0]
    assert view["status"] == "INSPECTION_REQUIRED"
    assert [v["agency"] for v in view["verdicts"]] == ["customs", "port"]
    assert view["result"]["total_duties"] == "1234.56"  # exact decimal string


async def test_status_moves_forward_only(database: AsyncDatabase[dict[str, Any]]) -> None:
    doc = await apply(database, [factories.declaration("D-ST")])
    assert doc["status"] == "SUBMITTED"
    doc = await apply(database, [factories.result("D-ST")])
    assert doc["status"] == "IN_REVIEW"  # the result names a verdict not projected yet
    doc = await apply(database, [factories.verdict("D-ST")])
    assert doc["status"] == "RELEASED"  # a final answer always comes with its verdicts
    doc = await apply(database, [factories.declaration("D-ST"), factories.verdict("D-ST")])
    assert doc["status"] == "RELEASED"  # stale events never demote a final status
