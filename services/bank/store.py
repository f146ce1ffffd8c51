"""Where the bank keeps its guarantees' ledgers: the port, an in-memory store (tests, the
fakes style of ``services.intake.ports``) and the database's (FerretDB or MongoDB through
PyMongo's async API, collection ``guarantees``).

In the database a ledger is a chain of snapshots, one document per change, and a change is
recorded by *inserting* the snapshot after it under the id ``<guarantee id>@<sequence
before>``: the one write that may follow the ledger at sequence n. The database's unique
``_id`` is the compare-and-set: of two changes decided on the same ledger, the second insert
finds the id taken (DuplicateKeyError) and records nothing, and the bank reads the ledger
again and decides again (``services.bank.payments``); a change decided on a ledger that has
moved on claims an id already taken the same way. A ledger is its snapshot of the highest
sequence; none yet: the guarantee as issued.

A conditional ``update_one`` on one document (filter on the sequence and the balance) would
be the usual way, but FerretDB 1.24 does not apply it atomically: six concurrent draws of
30,000.00 on 100,000.00 all passed it (tests/integration/test_bank_ledger.py); a unique key
is enforced by its storage, as the intake's idempotency claims rely on too.

An entry is recorded before it is published, and noted published once Kafka acknowledged it:
a marker document ``{"_id": "<guarantee id>#<draw key>[/repayment]", "published_of":
<guarantee id>}``, inserted (snapshots are never changed). One recorded and never published
(the bank stopped in between, and the client never retried) is published by the bank's
sweep (``Bank.publish_pending``): every debit is seen.

Each snapshot (money in fen, exact integers; the chain is also the bank's own record of every
change)::

    {"_id": "<guarantee id>@<sequence before, 12 digits>", "guarantee_id": ...,
     "amount_fen": ..., "balance_fen": ..., "sequence": n,
     "draws": {"N<sha-256 of the notice id, 32 hex>": {"payment_id", "declaration_id",
               "notice_id", "payer", "amount_fen", "paid_at", "sequence", "balance_after_fen",
               "repayment": {"payment_id", "paid_at", "sequence", "balance_after_fen",
                             "due_by", "late_interest_fen"}  (once repaid)}}}
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

import pymongo
from bson import Int64
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.bank.ledger import (
    Draw,
    Ledger,
    Repayment,
    after_draw,
    after_repayment,
    from_fen,
    to_fen,
)

COLLECTION = "guarantees"
Doc = dict[str, Any]


class LedgerUnavailable(Exception):
    """The ledger's database did not answer (the request is refused 503; nothing changed, or
    the change is recorded and the retry with the same key finds it)."""


class GuaranteeStore(Protocol):
    async def ledger(self, guarantee_id: str, amount: Decimal) -> Ledger:
        """The guarantee's ledger; created as issued (balance = ``amount``) on first use."""
        ...

    async def record_draw(self, before: Ledger, draw: Draw) -> bool:
        """Record ``draw`` if the ledger is still ``before``'s (False: it moved: decide again)."""
        ...

    async def record_repayment(self, before: Ledger, draws: Sequence[Draw]) -> bool:
        """Record ``draws``' repayments if the ledger is still ``before``'s."""
        ...

    async def find(self, guarantee_id: str) -> Ledger | None:
        """The guarantee's ledger, None if it was never used."""
        ...

    async def mark_published(self, guarantee_id: str, notice_id: str, repayment: bool) -> None:
        """Kafka acknowledged the entry of the draw on ``notice_id`` (or its repayment's)."""
        ...


class InMemoryGuaranteeStore:
    """The ledgers in a dict, with the database's conditions (each await yields, so that two
    concurrent requests interleave as they would on the database)."""

    def __init__(self) -> None:
        self.ledgers: dict[str, Ledger] = {}
        self.down = False

    async def _io(self) -> None:
        await asyncio.sleep(0)
        if self.down:
            raise LedgerUnavailable("the database is down")

    async def ledger(self, guarantee_id: str, amount: Decimal) -> Ledger:
        await self._io()
        return self.ledgers.setdefault(guarantee_id, Ledger.issued(guarantee_id, amount))

    async def record_draw(self, before: Ledger, draw: Draw) -> bool:
        await self._io()
        now = self.ledgers[before.guarantee_id]
        if (
            now.sequence != before.sequence
            or now.balance < draw.amount
            or draw.notice_id in now.draws
        ):
            return False
        self.ledgers[before.guarantee_id] = after_draw(now, draw)
        return True

    async def record_repayment(self, before: Ledger, draws: Sequence[Draw]) -> bool:
        await self._io()
        now = self.ledgers[before.guarantee_id]
        if now.sequence != before.sequence or any(
            now.draws[d.notice_id].repayment is not None for d in draws
        ):
            return False
        # as the database's $set of each repayment: the rest of the draw stays as it is now
        kept = [replace(d, published=now.draws[d.notice_id].published) for d in draws]
        self.ledgers[before.guarantee_id] = after_repayment(now, kept)
        return True

    async def find(self, guarantee_id: str) -> Ledger | None:
        await self._io()
        return self.ledgers.get(guarantee_id)

    async def mark_published(self, guarantee_id: str, notice_id: str, repayment: bool) -> None:
        await self._io()
        book = self.ledgers[guarantee_id]
        draw = book.draws[notice_id]
        if repayment:
            assert draw.repayment is not None
            draw = replace(draw, repayment=replace(draw.repayment, published=True))
        else:
            draw = replace(draw, published=True)
        self.ledgers[guarantee_id] = replace(book, draws={**book.draws, notice_id: draw})


def notice_key(notice_id: str) -> str:
    """The draw's field name: a notice id may hold dots or a leading ``$``, a hash never."""
    return "N" + hashlib.sha256(notice_id.encode()).hexdigest()[:32]


class MongoGuaranteeStore:
    """The ledgers in the bank's database (collection ``guarantees``), as chains of snapshots."""

    def __init__(self, collection: AsyncCollection[Doc], timeout_s: float = 5.0) -> None:
        self.collection, self.timeout_s = collection, timeout_s

    async def ledger(self, guarantee_id: str, amount: Decimal) -> Ledger:
        found = await self.find(guarantee_id)
        return Ledger.issued(guarantee_id, amount) if found is None else found

    async def find(self, guarantee_id: str) -> Ledger | None:
        try:
            with pymongo.timeout(self.timeout_s):
                doc = await self.collection.find_one(
                    {"guarantee_id": guarantee_id}, sort=[("sequence", pymongo.DESCENDING)]
                )
                if doc is None:
                    return None
                marks = {
                    str(m["_id"])
                    async for m in self.collection.find(
                        {"published_of": guarantee_id}, projection={"_id": 1}
                    )
                }
        except PyMongoError as exc:
            raise LedgerUnavailable(str(exc)) from exc
        return with_published(ledger_of(doc), marks)

    async def mark_published(self, guarantee_id: str, notice_id: str, repayment: bool) -> None:
        mark = {
            "_id": published_id(guarantee_id, notice_id, repayment),
            "published_of": guarantee_id,
        }
        try:
            with pymongo.timeout(self.timeout_s):
                await self.collection.insert_one(mark)
        except DuplicateKeyError:
            return  # noted already
        except PyMongoError as exc:
            raise LedgerUnavailable(str(exc)) from exc

    async def record_draw(self, before: Ledger, draw: Draw) -> bool:
        if before.balance < draw.amount or draw.notice_id in before.draws:
            return False
        return await self._claim(before, after_draw(before, draw))

    async def record_repayment(self, before: Ledger, draws: Sequence[Draw]) -> bool:
        if any(before.draws[d.notice_id].repayment is not None for d in draws):
            return False
        return await self._claim(before, after_repayment(before, draws))

    async def _claim(self, before: Ledger, after: Ledger) -> bool:
        """Insert the snapshot that follows ``before``: False if another change took its id."""
        try:
            with pymongo.timeout(self.timeout_s):
                await self.collection.insert_one(snapshot_doc(before.sequence, after))
        except DuplicateKeyError:
            return False
        except PyMongoError as exc:
            raise LedgerUnavailable(str(exc)) from exc
        return True


def published_id(guarantee_id: str, notice_id: str, repayment: bool) -> str:
    """The id of the marker that the draw on ``notice_id`` (or its repayment) is published."""
    return f"{guarantee_id}#{notice_key(notice_id)}" + ("/repayment" if repayment else "")


def with_published(book: Ledger, marks: set[str]) -> Ledger:
    """The ledger with each entry noted published as its marker says."""
    draws = {}
    for notice_id, draw in book.draws.items():
        repayment = draw.repayment
        if repayment is not None:
            repayment = replace(
                repayment, published=published_id(book.guarantee_id, notice_id, True) in marks
            )
        draws[notice_id] = replace(
            draw,
            published=published_id(book.guarantee_id, notice_id, False) in marks,
            repayment=repayment,
        )
    return replace(book, draws=draws)


def snapshot_id(guarantee_id: str, sequence_before: int) -> str:
    return f"{guarantee_id}@{sequence_before:012d}"


def snapshot_doc(sequence_before: int, ledger: Ledger) -> Doc:
    """The document of the snapshot ``ledger`` that follows the one at ``sequence_before``."""
    draws: Doc = {}
    for draw in ledger.draws.values():
        entry = draw_doc(draw)
        if draw.repayment is not None:
            entry["repayment"] = repayment_doc(draw.repayment)
        draws[notice_key(draw.notice_id)] = entry
    return {
        "_id": snapshot_id(ledger.guarantee_id, sequence_before),
        "guarantee_id": ledger.guarantee_id,
        "amount_fen": Int64(to_fen(ledger.amount)),
        "balance_fen": Int64(to_fen(ledger.balance)),
        "sequence": Int64(ledger.sequence),
        "draws": draws,
    }


def draw_doc(draw: Draw) -> Doc:
    return {
        "payment_id": draw.payment_id,
        "declaration_id": draw.declaration_id,
        "notice_id": draw.notice_id,
        "payer": draw.payer,
        "amount_fen": Int64(to_fen(draw.amount)),
        "paid_at": draw.paid_at,
        "sequence": Int64(draw.sequence),
        "balance_after_fen": Int64(to_fen(draw.balance_after)),
    }


def repayment_doc(repayment: Repayment) -> Doc:
    return {
        "payment_id": repayment.payment_id,
        "paid_at": repayment.paid_at,
        "sequence": Int64(repayment.sequence),
        "balance_after_fen": Int64(to_fen(repayment.balance_after)),
        "due_by": repayment.due_by.isoformat(),
        "late_interest_fen": Int64(to_fen(repayment.late_interest)),
    }


def ledger_of(doc: Doc) -> Ledger:
    """The ledger a stored document holds."""
    draws = {}
    for entry in doc.get("draws", {}).values():
        draw = Draw(
            payment_id=entry["payment_id"],
            declaration_id=entry["declaration_id"],
            notice_id=entry["notice_id"],
            payer=entry["payer"],
            amount=from_fen(entry["amount_fen"]),
            paid_at=entry["paid_at"],
            sequence=int(entry["sequence"]),
            balance_after=from_fen(entry["balance_after_fen"]),
        )
        paid = entry.get("repayment")
        if paid is not None:
            draw = replace(
                draw,
                repayment=Repayment(
                    payment_id=paid["payment_id"],
                    paid_at=paid["paid_at"],
                    sequence=int(paid["sequence"]),
                    balance_after=from_fen(paid["balance_after_fen"]),
                    due_by=date.fromisoformat(paid["due_by"]),
                    late_interest=from_fen(paid["late_interest_fen"]),
                ),
            )
        draws[draw.notice_id] = draw
    return Ledger(
        guarantee_id=doc["guarantee_id"],
        amount=from_fen(doc["amount_fen"]),
        balance=from_fen(doc["balance_fen"]),
        sequence=int(doc["sequence"]),
        draws=draws,
    )
