"""The read model on the real database: the projector's fold, written as single-document
replaces, converges whatever the order and however often events are replayed."""

from __future__ import annotations

from itertools import permutations
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.intake.adapters import MongoReadModel
from singlewindow.events import ClearanceStatus, Decision, Event
from singlewindow.readmodel import COLLECTION, apply, content_of, status_view
from tests import factories

pytestmark = pytest.mark.integration


async def project(db: AsyncDatabase[dict[str, Any]], events: list[Event]) -> dict[str, Any]:
    """What the projector does: read, fold, replace."""
    for event in events:
        doc = await db[COLLECTION].find_one({"_id": event.declaration_id})
        new = apply(doc, event)
        if new != doc:
            await db[COLLECTION].replace_one({"_id": event.declaration_id}, new, upsert=True)
    doc = await db[COLLECTION].find_one({"_id": events[0].declaration_id})
    assert doc is not None
    return doc


async def test_any_order_and_any_replay_give_the_same_document(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    events: list[Event] = [
        factories.declaration("D-RM"),
        factories.verdict("D-RM", "customs", Decision.INSPECT, verdict_id="V1"),
        factories.verdict("D-RM", "port", Decision.CLEAR),
        factories.result("D-RM", status=ClearanceStatus.INSPECTION_REQUIRED),
    ]
    docs = []
    for order in list(permutations(range(4)))[::5]:
        await database[COLLECTION].delete_many({})
        docs.append(await project(database, [events[i] for i in order] * 2))
    assert all(content_of(d) == content_of(docs[0]) for d in docs)
    view = status_view(docs[0])
    assert view["status"] == "INSPECTION_REQUIRED"
    assert [v["agency"] for v in view["verdicts"]] == ["customs", "port"]
    assert view["result"]["total_duties"] == "1234.56"  # exact decimal string


async def test_status_moves_forward_only(database: AsyncDatabase[dict[str, Any]]) -> None:
    doc = await project(database, [factories.declaration("D-ST")])
    assert doc["status"] == "SUBMITTED"
    doc = await project(database, [factories.result("D-ST")])
    assert doc["status"] == "IN_REVIEW"  # the result names a verdict not projected yet
    doc = await project(database, [factories.verdict("D-ST", verdict_id="V1")])
    assert doc["status"] == "RELEASED"  # a final answer always comes with its verdicts
    late = factories.verdict("D-ST", decision=Decision.REJECT, verdict_id="V1")
    doc = await project(database, [factories.declaration("D-ST"), late])
    assert doc["status"] == "RELEASED"  # stale events never demote a final status
    assert doc["verdicts"]["customs"]["decision"] == "CLEAR"  # the first verdict stays


async def test_verdicts_without_a_declaration_are_no_declaration_to_the_status_api(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """A verdict for a declaration nobody submitted makes a document, but the trader-facing
    status answers 404 for it until (unless) the declaration itself is projected."""
    read_model = MongoReadModel(database[COLLECTION])
    await project(database, [factories.verdict("D-ORPHAN", verdict_id="V9")])
    assert await read_model.get("D-ORPHAN") is None
    await project(database, [factories.declaration("D-ORPHAN")])
    view = await read_model.get("D-ORPHAN")
    assert view is not None and view["status"] == "IN_REVIEW"
