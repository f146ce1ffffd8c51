"""Where the bank keeps its guarantees' ledgers: the port, an in-memory store (tests, the
fakes style of ``services.intake.ports``) and the database's (FerretDB or MongoDB through
PyMongo's async API, collection ``guarantees``).

One document per guarantee, and every change to it is one conditional single-document
update (FerretDB has no multi-document transactions, and needs none here): a draw is
recorded only if the document is still at the ledger sequence the decision was made on,
the balance still covers it and the notice has no draw yet, and in the same update the
balance and the sequence are incremented and the draw recorded with its own sequence and
balance after. Two concurrent draws can never both pass: the second finds the sequence moved,
reads the ledger again and decides again (``services.bank.payments``). On MongoDB the update
is atomic; FerretDB v1 reads, then writes the whole document, and nothing holds it between:
the store therefore never runs two updates of one guarantee at once, and only one bank
process may write the ledgers (its Deployment: one replica, replaced by ``Recreate``).
Pinning the sequence (not only ``balance >= amount``) is what lets the update write the
entry's own number and balance, which a retry must publish again unchanged.

The document (money in fen, exact integers)::

    {"_id": guarantee_id, "amount_fen": ..., "balance_fen": ..., "sequence": n,
     "draws": {"N<sha-256 of the notice id, 32 hex>": {"payment_id", "declaration_id",
               "notice_id", "payer", "amount_fen", "paid_at", "sequence", "balance_after_fen",
               "published" (once Kafka acknowledged it),
               "repayment": {"payment_id", "paid_at", "sequence", "balance_after_fen",
                             "due_by", "late_interest_fen", "published"}  (once repaid)}}}

An entry is recorded before it is published; ``published`` is set once Kafka acknowledged it.
One recorded and never published (the bank stopped in between, and the client never retried)
is published by the bank's sweep (``Bank.publish_pending``): every debit is seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import defaultdict
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
    """The ledgers in the bank's database (collection ``guarantees``)."""

    def __init__(self, collection: AsyncCollection[Doc], timeout_s: float = 5.0) -> None:
        self.collection, self.timeout_s = collection, timeout_s
        self._writing: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def ledger(self, guarantee_id: str, amount: Decimal) -> Ledger:
        try:
            with pymongo.timeout(self.timeout_s):
                doc = await self.collection.find_one({"_id": guarantee_id})
                if doc is None:
                    issued = {
                        "_id": guarantee_id,
                        "amount_fen": Int64(to_fen(amount)),
                        "balance_fen": Int64(to_fen(amount)),
                        "sequence": Int64(0),
                        "draws": {},
                    }
                    with contextlib.suppress(DuplicateKeyError):  # another request opened it
                        await self.collection.insert_one(issued)
                    doc = await self.collection.find_one({"_id": guarantee_id})
        except PyMongoError as exc:
            raise LedgerUnavailable(str(exc)) from exc
        if doc is None:  # pragma: no cover - deleted between the insert and the read
            raise LedgerUnavailable(f"the ledger of {guarantee_id} vanished")
        return ledger_of(doc)

    async def record_draw(self, before: Ledger, draw: Draw) -> bool:
        key = f"draws.{notice_key(draw.notice_id)}"
        fen = to_fen(draw.amount)
        return await self._update(
            {
                "_id": before.guarantee_id,
                "sequence": before.sequence,
                "balance_fen": {"$gte": fen},
                key: {"$exists": False},
            },
            {
                "$inc": {"balance_fen": Int64(-fen), "sequence": Int64(1)},
                "$set": {key: draw_doc(draw)},
            },
        )

    async def record_repayment(self, before: Ledger, draws: Sequence[Draw]) -> bool:
        condition: Doc = {"_id": before.guarantee_id, "sequence": before.sequence}
        changes: Doc = {}
        for draw in draws:
            assert draw.repayment is not None
            key = f"draws.{notice_key(draw.notice_id)}.repayment"
            condition[key] = {"$exists": False}
            changes[key] = repayment_doc(draw.repayment)
        restored = sum(to_fen(d.amount) for d in draws)
        return await self._update(
            condition,
            {
                "$inc": {"balance_fen": Int64(restored), "sequence": Int64(len(draws))},
                "$set": changes,
            },
        )

    async def find(self, guarantee_id: str) -> Ledger | None:
        try:
            with pymongo.timeout(self.timeout_s):
                doc = await self.collection.find_one({"_id": guarantee_id})
        except PyMongoError as exc:
            raise LedgerUnavailable(str(exc)) from exc
        return None if doc is None else ledger_of(doc)

    async def mark_published(self, guarantee_id: str, notice_id: str, repayment: bool) -> None:
        key = f"draws.{notice_key(notice_id)}" + (".repayment" if repayment else "")
        await self._update(
            {"_id": guarantee_id, key: {"$exists": True}}, {"$set": {f"{key}.published": True}}
        )

    async def _update(self, condition: Doc, update: Doc) -> bool:
        """One conditional update of a guarantee's document, never two at once from this
        process: FerretDB v1 runs an update as a read, then a write of the whole document
        by its ``_id``, with nothing holding the document in between, so two conditional
        updates at once could both match and the last write win (a draw passed twice, or
        lost). Hence one bank process writes the ledgers (``replicas: 1``, ``Recreate``)."""
        async with self._writing[condition["_id"]]:
            try:
                with pymongo.timeout(self.timeout_s):
                    result = await self.collection.update_one(condition, update)
            except PyMongoError as exc:
                raise LedgerUnavailable(str(exc)) from exc
        return result.matched_count == 1


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
            published=bool(entry.get("published", False)),
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
                    published=bool(paid.get("published", False)),
                ),
            )
        draws[draw.notice_id] = draw
    return Ledger(
        guarantee_id=doc["_id"],
        amount=from_fen(doc["amount_fen"]),
        balance=from_fen(doc["balance_fen"]),
        sequence=int(doc["sequence"]),
        draws=draws,
    )
