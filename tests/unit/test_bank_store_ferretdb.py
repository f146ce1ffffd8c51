"""The bank's ledger in the database, on a server that updates as FerretDB v1 does.

FerretDB v1.24 (upstream, the SQLite backend the local stack builds) runs an ``update`` as a
query, the filter and the operators applied in Go, then a write of the whole document by its
``_id``, with nothing holding the document between the read and the write
(``internal/handler/msg_update.go``, ``common.UpdateDocument``, ``backends.UpdateAll``). Two
conditional updates of one document at once may then both match the same state, and the last
write wins: the conditions of the ledger's compare-and-set are no guard there. This fake
collection updates so (the read, a yield, the write), with MongoDB's matching of the filters
and operators the store uses.
"""

from __future__ import annotations

import asyncio
import copy
from decimal import Decimal
from typing import Any

from services.bank import ledger
from services.bank.store import MongoGuaranteeStore
from tests.unit.intake_tokens import USCC_A
from tests.unit.test_bank_guarantees import T0

Doc = dict[str, Any]


def _get(doc: Doc, path: str) -> tuple[bool, Any]:
    here: Any = doc
    for part in path.split("."):
        if not isinstance(here, dict) or part not in here:
            return False, None
        here = here[part]
    return True, here


def _set(doc: Doc, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[last] = value


def _matches(doc: Doc, condition: Doc) -> bool:
    for path, want in condition.items():
        found, value = _get(doc, path)
        if isinstance(want, dict) and "$exists" in want:
            if found != want["$exists"]:
                return False
        elif isinstance(want, dict) and "$gte" in want:
            if not found or value < want["$gte"]:
                return False
        elif not found or value != want:
            return False
    return True


class UpdateResult:
    def __init__(self, matched: int) -> None:
        self.matched_count = matched


class FerretV1Collection:
    """find_one, insert_one and update_one as FerretDB v1 runs them."""

    def __init__(self) -> None:
        self.docs: dict[str, Doc] = {}

    async def find_one(self, condition: Doc) -> Doc | None:
        await asyncio.sleep(0)
        doc = self.docs.get(condition["_id"])
        return copy.deepcopy(doc) if doc is not None and _matches(doc, condition) else None

    async def insert_one(self, doc: Doc) -> None:
        await asyncio.sleep(0)
        from pymongo.errors import DuplicateKeyError

        if doc["_id"] in self.docs:
            raise DuplicateKeyError("E11000")
        self.docs[doc["_id"]] = copy.deepcopy(doc)

    async def update_one(self, condition: Doc, update: Doc) -> UpdateResult:
        found = await self.find_one(condition)  # the query
        if found is None:
            return UpdateResult(0)
        await asyncio.sleep(0)  # the operators applied in Go, another command's turn
        for path, by in update.get("$inc", {}).items():
            _set(found, path, _get(found, path)[1] + by)
        for path, value in update.get("$set", {}).items():
            _set(found, path, copy.deepcopy(value))
        await asyncio.sleep(0)
        self.docs[found["_id"]] = found  # UpdateAll: the whole document, by _id
        return UpdateResult(1)


def asked(notice: str, amount: str) -> ledger.DrawAsked:
    return ledger.DrawAsked(f"PAY-{notice}", f"DEC-{notice}", notice, USCC_A, Decimal(amount), T0)


async def test_two_concurrent_draws_never_both_pass_on_a_read_then_write_server() -> None:
    """100,000.00; two draws of 60,000.00 decided on the same ledger at once: one passes."""
    store = MongoGuaranteeStore(FerretV1Collection())  # type: ignore[arg-type]

    async def draw(notice: str) -> bool:
        book = await store.ledger("G", Decimal("100000.00"))
        decision = ledger.decide_draw(book, asked(notice, "60000.00"))
        assert isinstance(decision, ledger.Drawn)
        return await store.record_draw(book, decision.draw)

    await store.ledger("G", Decimal("100000.00"))
    passed = await asyncio.gather(draw("N-1"), draw("N-2"))
    after = await store.ledger("G", Decimal("100000.00"))
    assert sorted(passed) == [False, True]
    assert after.balance == Decimal("40000.00") and after.sequence == 1


async def test_noting_an_entry_published_never_loses_a_draw_recorded_meanwhile() -> None:
    store = MongoGuaranteeStore(FerretV1Collection())  # type: ignore[arg-type]
    book = await store.ledger("G", Decimal("100000.00"))
    first = ledger.decide_draw(book, asked("N-1", "10.00"))
    assert isinstance(first, ledger.Drawn)
    assert await store.record_draw(book, first.draw)
    book = await store.ledger("G", Decimal("100000.00"))
    second = ledger.decide_draw(book, asked("N-2", "20.00"))
    assert isinstance(second, ledger.Drawn)
    _, recorded = await asyncio.gather(
        store.mark_published("G", "N-1", repayment=False), store.record_draw(book, second.draw)
    )
    after = await store.ledger("G", Decimal("100000.00"))
    assert recorded and after.sequence == 2 and set(after.draws) == {"N-1", "N-2"}
    assert after.balance == Decimal("99970.00") and after.draws["N-1"].published
