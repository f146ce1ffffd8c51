"""The bank's guarantee ledgers in the real MongoDB-protocol database (FerretDB locally):
services.bank.store.MongoGuaranteeStore's chain of snapshots, each claimed by its unique id.

Figures by hand: guarantee G-I of 100,000.00 CNY; a draw of 60,813.00 leaves 39,187.00.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.bank import ledger
from services.bank.api import create_app
from services.bank.payments import Bank
from services.bank.store import COLLECTION, MongoGuaranteeStore
from singlewindow.events import PaymentConfirmed
from singlewindow.kafka.producer import EventProducer
from singlewindow.settings import Settings
from singlewindow.signing import BANK
from singlewindow.testing import FakeBroker
from singlewindow.topics import PAYMENTS_CONFIRMED
from tests import factories
from tests.unit.intake_tokens import USCC_A
from tests.unit.test_bank import ISSUER, SECRET
from tests.unit.test_bank_guarantees import G_A, GUARANTEES

pytestmark = pytest.mark.integration
AMOUNT = Decimal("100000.00")
AT = datetime(2026, 11, 27, 8, 30, 15, 123000, tzinfo=UTC)


def asked(notice: str, amount: str, payment_id: str) -> ledger.DrawAsked:
    return ledger.DrawAsked(payment_id, f"DEC-{notice}", notice, USCC_A, Decimal(amount), AT)


async def test_a_draw_is_recorded_once_and_read_back_exactly(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    store = MongoGuaranteeStore(database[COLLECTION])
    book = await store.ledger("G-I", AMOUNT)
    assert book == ledger.Ledger.issued("G-I", AMOUNT)
    decided = ledger.decide_draw(book, asked("N.1$x", "60813.00", "PAY-1"))  # a dotted id
    assert isinstance(decided, ledger.Drawn)
    assert await store.record_draw(book, decided.draw)
    assert not await store.record_draw(book, decided.draw)  # the ledger moved: refused
    again = await store.ledger("G-I", AMOUNT)
    assert again == ledger.after_draw(book, decided.draw)
    assert again.balance == Decimal("39187.00") and again.sequence == 1
    doc = await database[COLLECTION].find_one({"_id": "G-I@000000000000"})  # after sequence 0
    assert doc is not None and doc["balance_fen"] == 3918700  # exact, in fen
    assert doc["sequence"] == 1


async def test_a_draw_over_the_balance_never_passes_the_database(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """Decided on a stale ledger (100,000.00 left) after 60,813.00 was drawn: the update's
    own conditions refuse 60,000.00 (39,187.00 left)."""
    store = MongoGuaranteeStore(database[COLLECTION])
    book = await store.ledger("G-I", AMOUNT)
    first = ledger.decide_draw(book, asked("N-1", "60813.00", "PAY-1"))
    second = ledger.decide_draw(book, asked("N-2", "60000.00", "PAY-2"))
    assert isinstance(first, ledger.Drawn) and isinstance(second, ledger.Drawn)
    assert await store.record_draw(book, first.draw)
    assert not await store.record_draw(book, second.draw)
    assert (await store.ledger("G-I", AMOUNT)).balance == Decimal("39187.00")


async def test_a_repayment_is_recorded_and_read_back(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    store = MongoGuaranteeStore(database[COLLECTION])
    book = await store.ledger("G-I", AMOUNT)
    drawn = ledger.decide_draw(book, asked("N-1", "60813.00", "PAY-1"))
    assert isinstance(drawn, ledger.Drawn) and await store.record_draw(book, drawn.draw)
    book = await store.ledger("G-I", AMOUNT)
    repaid = ledger.decide_repayment(book, ["N-1"], ["PAY-R"], datetime(2026, 12, 3, tzinfo=UTC))
    assert isinstance(repaid, ledger.Repaid)
    assert await store.record_repayment(book, repaid.draws)
    assert not await store.record_repayment(book, repaid.draws)
    after = await store.ledger("G-I", AMOUNT)
    assert after == ledger.after_repayment(book, repaid.draws)
    assert after.balance == AMOUNT and after.sequence == 2


async def test_concurrent_draws_through_the_bank_never_overdraw(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """Six draws of 30,000.00 at once on 100,000.00: three pass (10,000.00 left), three are
    409, and the published entries are 1, 2, 3 with balances 70,000.00, 40,000.00, 10,000.00."""
    store = MongoGuaranteeStore(database[COLLECTION])
    async with FakeBroker() as broker:
        producer = EventProducer(Settings(), BANK, factories.SIGNING[BANK], transport=broker)
        bank = Bank(
            producer,
            verifier=ISSUER.verifier(),
            id_secret=SECRET,
            clock=lambda: AT,
            guarantees=GUARANTEES,
            store=store,
        )
        transport = httpx.ASGITransport(create_app(bank), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://bank") as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/v1/payments",
                        json={
                            "declaration_id": f"DEC-{i}",
                            "notice_id": f"N-{i}",
                            "amount": "30000.00",
                            "kind": "GENERAL_GUARANTEE",
                            "guarantee_id": G_A.guarantee_id,
                            "payer": USCC_A,
                        },
                        headers={"Idempotency-Key": f"k-{i}", **ISSUER.auth()},
                    )
                    for i in range(6)
                )
            )
        entries = broker.events(PAYMENTS_CONFIRMED.name, PaymentConfirmed)
        await producer.stop()
    assert sorted(a.status_code for a in answers) == [202] * 3 + [409] * 3
    ordered = sorted(entries, key=lambda e: e.ledger_sequence or 0)
    assert [(e.ledger_sequence, e.balance_after) for e in ordered] == [
        (1, Decimal("70000.00")),
        (2, Decimal("40000.00")),
        (3, Decimal("10000.00")),
    ]
    assert (await store.ledger(G_A.guarantee_id, G_A.amount)).balance == Decimal("10000.00")


async def test_an_entry_is_noted_published_without_touching_the_ledger(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """A draw recorded is unpublished until noted (what the bank's sweep publishes); the
    note is a marker of its own, so a draw recorded meanwhile is never overwritten."""
    store = MongoGuaranteeStore(database[COLLECTION])
    book = await store.ledger("G-I", AMOUNT)
    first = ledger.decide_draw(book, asked("N-1", "60813.00", "PAY-1"))
    assert isinstance(first, ledger.Drawn) and await store.record_draw(book, first.draw)
    assert await store.find("G-X") is None  # never used
    recorded = await store.find("G-I")
    assert recorded is not None and ledger.unpublished(recorded) != []
    book = await store.ledger("G-I", AMOUNT)
    second = ledger.decide_draw(book, asked("N-2", "1000.00", "PAY-2"))
    assert isinstance(second, ledger.Drawn)
    await store.mark_published("G-I", "N-1", repayment=False)
    assert await store.record_draw(book, second.draw)  # the note did not move the ledger
    await store.mark_published("G-I", "N-1", repayment=False)  # noted twice: no harm
    after = await store.find("G-I")
    assert after is not None and after.sequence == 2
    assert after.draws["N-1"].published and not after.draws["N-2"].published
    assert after.balance == Decimal("38187.00")  # 100,000.00 - 60,813.00 - 1,000.00
