"""General guarantees (总担保) at the bank, and the consolidated payment (汇总征税):
``POST /v1/payments`` with ``kind: GENERAL_GUARANTEE``, ``POST /v1/guarantees/{id}/repayments``
and ``GET /v1/guarantees/{id}`` through the real FastAPI app, the ledger in the in-memory store
(services.bank.store.InMemoryGuaranteeStore, the database's conditions), publishing with the
SDK's EventProducer on the in-memory broker.

Figures by hand. The bank's clock starts at T0 = 2026-11-27T08:30:15.123Z, 16:30 on Friday
27 November in China. Guarantee G-A: 100,000.00 CNY, valid 2026-01-01 to 2026-12-31, held by
USCC_A, consolidated. A draw in November is due, in the consolidated payment, by the fifth
working day of December: Tue 1, Wed 2, Thu 3, Fri 4, Mon 7 -> 7 December (no holidays then;
singlewindow.latepayment). Late interest: 0.05 % a day of the drawn amount from the day
after the due date to the day of repayment, both included, to the fen half up, none under 50.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError

from services.bank import ledger
from services.bank.api import create_app
from services.bank.config import LOCAL_GUARANTEES, BankSettings, local_bank_env
from services.bank.guarantees import (
    Guarantee,
    GuaranteeFileError,
    load_guarantees,
    parse_guarantees,
)
from services.bank.payments import Bank
from services.bank.store import InMemoryGuaranteeStore
from singlewindow.events import ClearanceStatus, PaymentConfirmed, PaymentKind
from singlewindow.kafka.producer import EventProducer
from singlewindow.settings import Settings
from singlewindow.signing import BANK
from singlewindow.testing import FakeBroker
from tests import factories
from tests.unit import test_lifecycle as life
from tests.unit.intake_tokens import USCC_A, USCC_B
from tests.unit.test_bank import ISSUER, SECRET, TOPIC, problem

T0 = factories.T0
G_A = Guarantee.model_validate(
    {
        "guarantee_id": "G-A",
        "holder": USCC_A,
        "amount": "100000.00",
        "valid_from": "2026-01-01",
        "valid_until": "2026-12-31",
        "consolidated": True,
    }
)
G_B = G_A.model_copy(update={"guarantee_id": "G-B", "holder": USCC_B})
G_PLAIN = G_A.model_copy(update={"guarantee_id": "G-PLAIN", "consolidated": False})
GUARANTEES = {g.guarantee_id: g for g in (G_A, G_B, G_PLAIN)}


def china(day: int, month: int = 12, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC) - timedelta(hours=8)


def drawing(notice: str = "N-1", amount: str = "60813.00", **changes: Any) -> dict[str, Any]:
    base = {
        "declaration_id": f"DEC-{notice}",
        "notice_id": notice,
        "amount": amount,
        "kind": "GENERAL_GUARANTEE",
        "guarantee_id": "G-A",
        "payer": USCC_A,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@dataclass
class Counter:
    broker: FakeBroker
    client: httpx.AsyncClient
    store: InMemoryGuaranteeStore
    now: list[datetime]
    bank: Bank

    async def draw(
        self, payment: dict[str, Any], key: str | None = "k-1", auth: dict[str, str] | None = None
    ) -> httpx.Response:
        headers = {} if key is None else {"Idempotency-Key": key}
        headers.update(ISSUER.auth() if auth is None else auth)
        return await self.client.post("/v1/payments", json=payment, headers=headers)

    async def repay(
        self,
        notices: list[str],
        key: str | None = "r-1",
        guarantee: str = "G-A",
        paid_at: datetime | None = None,
        auth: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = {} if key is None else {"Idempotency-Key": key}
        headers.update(ISSUER.auth() if auth is None else auth)
        body: dict[str, Any] = {"notices": notices}
        if paid_at is not None:
            body["paid_at"] = paid_at.isoformat()
        return await self.client.post(
            f"/v1/guarantees/{guarantee}/repayments", json=body, headers=headers
        )

    def confirmed(self) -> list[PaymentConfirmed]:
        return self.broker.events(TOPIC, PaymentConfirmed)

    def balance(self, guarantee: str = "G-A") -> Decimal:
        return self.store.ledgers[guarantee].balance


@asynccontextmanager
async def counter(start: datetime = T0) -> AsyncIterator[Counter]:
    now = [start]
    store = InMemoryGuaranteeStore()
    async with FakeBroker() as broker:
        producer = EventProducer(Settings(), BANK, factories.SIGNING[BANK], transport=broker)
        bank = Bank(
            producer,
            verifier=ISSUER.verifier(),
            id_secret=SECRET,
            clock=lambda: now[0],
            guarantees=GUARANTEES,
            store=store,
        )
        transport = httpx.ASGITransport(create_app(bank), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://bank") as client:
            yield Counter(broker, client, store, now, bank)
        await producer.stop()


# -- draws -----------------------------------------------------------------------------------


async def test_a_draw_is_published_with_its_ledger_entry_and_lowers_the_balance() -> None:
    """100,000.00 - 60,813.00 = 39,187.00 after the first entry."""
    async with counter() as bank:
        response = await bank.draw(drawing())
        assert response.status_code == 202, response.text
        [draw] = bank.confirmed()
        assert bank.balance() == Decimal("39187.00")
    assert response.json()["payment_id"] == draw.payment_id
    assert draw.kind is PaymentKind.GENERAL_GUARANTEE
    assert (draw.guarantee_id, draw.ledger_sequence) == ("G-A", 1)
    assert draw.guarantee_amount == Decimal("100000.00")
    assert draw.balance_after == Decimal("39187.00")
    assert draw.amount == Decimal("60813.00") and draw.payer == USCC_A
    assert draw.paid_at == T0 and draw.late_interest is None
    assert draw.signature is not None and draw.signature.key_id.startswith("bank")


async def test_a_draw_needs_an_idempotency_key() -> None:
    """Recorded before it is published: a retry without the key would draw twice."""
    async with counter() as bank:
        document = problem(await bank.draw(drawing(), key=None), 422)
        assert bank.confirmed() == [] and "G-A" not in bank.store.ledgers
    assert document["type"].endswith("idempotency-key-required")


async def test_a_retry_publishes_the_recorded_draw_and_draws_once() -> None:
    async with counter() as bank:
        first = await bank.draw(drawing())
        bank.now[0] = T0 + timedelta(minutes=10)  # the retry's clock: the recorded date stays
        again = await bank.draw(drawing())
        assert first.json() == again.json()
        one, two = bank.confirmed()
        assert bank.balance() == Decimal("39187.00")  # drawn once
        assert bank.store.ledgers["G-A"].sequence == 1
    assert one.unsigned() == two.unsigned()  # the same entry, published again (signed anew)


async def test_kafka_down_after_the_debit_is_503_and_the_retry_publishes_the_same_draw() -> None:
    async with counter() as bank:
        bank.broker.fail(TOPIC, KafkaConnectionError())
        down = await bank.draw(drawing())
        assert problem(down, 503)["type"].endswith("publish")
        assert down.headers["Retry-After"]
        assert bank.balance() == Decimal("39187.00")  # recorded: the debit stands
        retried = await bank.draw(drawing())
        assert retried.status_code == 202
        [draw] = bank.confirmed()
        assert draw.ledger_sequence == 1 and bank.balance() == Decimal("39187.00")


async def test_a_draw_over_the_balance_is_409_and_changes_nothing() -> None:
    """After 60,813.00, 39,187.00 is left: 39,187.01 is refused, 39,187.00 passes (to 0.00)."""
    async with counter() as bank:
        await bank.draw(drawing())
        over = await bank.draw(drawing("N-2", "39187.01"), key="k-2")
        document = problem(over, 409)
        assert document["type"].endswith("guarantee-exhausted")
        assert bank.balance() == Decimal("39187.00") and len(bank.confirmed()) == 1
        exact = await bank.draw(drawing("N-2", "39187.00"), key="k-3")
        assert exact.status_code == 202
        assert bank.balance() == Decimal("0.00")
        assert bank.confirmed()[-1].ledger_sequence == 2


async def test_two_concurrent_draws_never_both_pass() -> None:
    """60,000.00 twice on 100,000.00: one 202 (40,000.00 left), one 409, whatever the order."""
    async with counter() as bank:
        answers = await asyncio.gather(
            bank.draw(drawing("N-1", "60000.00"), key="k-1"),
            bank.draw(drawing("N-2", "60000.00"), key="k-2"),
        )
        assert sorted(a.status_code for a in answers) == [202, 409]
        assert bank.balance() == Decimal("40000.00")
        [draw] = bank.confirmed()
        assert draw.ledger_sequence == 1 and draw.balance_after == Decimal("40000.00")


async def test_concurrent_draws_that_fit_take_consecutive_sequences() -> None:
    """Four draws of 10,000.00 at once: 60,000.00 left, entries 1 to 4, each balance after
    following from the one before."""
    async with counter() as bank:
        answers = await asyncio.gather(
            *(bank.draw(drawing(f"N-{i}", "10000.00"), key=f"k-{i}") for i in range(4))
        )
        assert [a.status_code for a in answers] == [202] * 4
        entries = sorted(bank.confirmed(), key=lambda e: e.ledger_sequence or 0)
    assert [e.ledger_sequence for e in entries] == [1, 2, 3, 4]
    assert [e.balance_after for e in entries] == [
        Decimal("90000.00"),
        Decimal("80000.00"),
        Decimal("70000.00"),
        Decimal("60000.00"),
    ]


async def test_another_draw_on_a_drawn_notice_is_409() -> None:
    async with counter() as bank:
        await bank.draw(drawing())
        document = problem(await bank.draw(drawing(), key="k-other"), 409)
        assert bank.balance() == Decimal("39187.00")
    assert document["type"].endswith("notice-drawn")


async def test_only_the_holder_draws_and_an_unknown_guarantee_looks_the_same() -> None:
    async with counter() as bank:
        others = problem(await bank.draw(drawing(guarantee_id="G-B")), 403)
        unknown = problem(await bank.draw(drawing(guarantee_id="G-NONE")), 403)
        not_payer = problem(await bank.draw(drawing(payer=USCC_B, guarantee_id="G-B")), 403)
        assert bank.confirmed() == [] and bank.store.ledgers == {}
    assert others["type"] == unknown["type"] and others["type"].endswith("not-your-guarantee")
    assert not_payer["type"].endswith("not-your-payer")


async def test_a_value_date_outside_the_validity_is_422() -> None:
    """Valid to 31 December 2026 (China time): 1 January 2027 00:30 in China is 31 December
    16:30 UTC, already outside (the bank's clock at 16:28 UTC)."""
    async with counter(start=datetime(2026, 12, 31, 16, 28, tzinfo=UTC)) as bank:
        late = drawing(paid_at="2027-01-01T00:30:00+08:00")
        document = problem(await bank.draw(late), 422)
        assert bank.confirmed() == []
        inside = drawing(paid_at="2026-12-31T23:59:00+08:00")
        assert (await bank.draw(inside, key="k-2")).status_code == 202
    assert document["type"].endswith("guarantee-not-valid")


@pytest.mark.parametrize(
    "changes",
    [
        {"guarantee_id": None},  # GENERAL_GUARANTEE without one
        {"kind": "PAYMENT"},  # a guarantee id on a payment
        {"kind": "CONSOLIDATED_PAYMENT"},  # repayments have their own door
        {"guarantee_id": ""},
        {"guarantee_id": "G" * 65},
    ],
)
async def test_an_inconsistent_guarantee_field_is_422(changes: dict[str, Any]) -> None:
    async with counter() as bank:
        body = drawing()
        body.update(changes)
        problem(await bank.draw({k: v for k, v in body.items() if v is not None}), 422)
        assert bank.confirmed() == []


async def test_the_store_down_is_503_and_nothing_is_published() -> None:
    async with counter() as bank:
        bank.store.down = True
        document = problem(await bank.draw(drawing()), 503)
        assert bank.confirmed() == []
    assert document["type"].endswith("ledger")


async def test_the_draw_secures_the_notice_in_the_join() -> None:
    """What the bank confirms is what the join releases on: the car's 60,813.00 drawn."""
    events: list[object] = [life.declared(), *life.cleared()]
    notice = life.notice_of(events)
    async with counter() as bank:
        body = drawing(notice, "60813.00", declaration_id="D-0001")
        assert (await bank.draw(body)).status_code == 202
        [draw] = bank.confirmed()
    _, results = life.run([*events, draw])
    assert results[-1].status is ClearanceStatus.RELEASED
    assert results[-1].settlement is not None
    assert results[-1].settlement.kind is PaymentKind.GENERAL_GUARANTEE


# -- consolidated repayment (汇总征税) -------------------------------------------------------


async def test_a_repayment_in_time_restores_the_balance_without_interest() -> None:
    """Drawn 27 November, due by 7 December; repaid 3 December: 0 days late, no interest.
    Balance 39,187.00 + 60,813.00 = 100,000.00; the repayment is entry 2."""
    async with counter() as bank:
        await bank.draw(drawing())
        bank.now[0] = china(3)
        response = await bank.repay(["N-1"])
        assert response.status_code == 202, response.text
        _, repaid = bank.confirmed()
        assert bank.balance() == Decimal("100000.00")
    assert repaid.kind is PaymentKind.CONSOLIDATED_PAYMENT
    assert repaid.declaration_id == "DEC-N-1" and repaid.notice_id == "N-1"
    assert repaid.amount == Decimal("60813.00") and repaid.late_interest == Decimal("0.00")
    assert (repaid.ledger_sequence, repaid.balance_after) == (2, Decimal("100000.00"))
    answer = response.json()
    assert answer["balance_after"] == "100000.00"
    [line] = answer["repayments"]
    assert line["payment_id"] == repaid.payment_id
    assert (line["due_by"], line["late_interest"]) == ("2026-12-07", "0.00")


async def test_a_late_repayment_pays_interest_on_the_drawn_amount() -> None:
    """Due by 7 December, repaid 17 December: 8 to 17 December, 10 days late.
    60,813.00 x 0.0005 x 10 = 304.065 -> 304.07 (half up); the balance restored is the drawn
    60,813.00 (the interest is the customs', not the guarantee's)."""
    async with counter() as bank:
        await bank.draw(drawing())
        bank.now[0] = china(17) + timedelta(minutes=30)
        response = await bank.repay(["N-1"], paid_at=china(17))
        assert response.status_code == 202, response.text
        repaid = bank.confirmed()[-1]
        assert bank.balance() == Decimal("100000.00")
    assert repaid.late_interest == Decimal("304.07")


async def test_late_interest_under_50_cny_is_not_collected() -> None:
    """9,000.00 drawn, repaid 17 December, 10 days late: 9,000.00 x 0.0005 x 10 = 45.00 < 50."""
    async with counter() as bank:
        await bank.draw(drawing(amount="9000.00"))
        bank.now[0] = china(17)
        await bank.repay(["N-1"])
        assert bank.confirmed()[-1].late_interest == Decimal("0.00")


async def test_several_notices_in_one_repayment_are_consecutive_entries() -> None:
    """Draws 10,000.00 (N-1) and 20,000.00 (N-2): 70,000.00 left. Repaid N-2 then N-1:
    entries 3 (90,000.00) and 4 (100,000.00), in the order asked."""
    async with counter() as bank:
        await bank.draw(drawing("N-1", "10000.00"), key="k-1")
        await bank.draw(drawing("N-2", "20000.00"), key="k-2")
        bank.now[0] = china(2)
        assert (await bank.repay(["N-2", "N-1"])).status_code == 202
        three, four = bank.confirmed()[2:]
    assert (three.notice_id, three.ledger_sequence, three.balance_after) == (
        "N-2",
        3,
        Decimal("90000.00"),
    )
    assert (four.notice_id, four.ledger_sequence, four.balance_after) == (
        "N-1",
        4,
        Decimal("100000.00"),
    )
    assert three.payment_id != four.payment_id


async def test_a_repayment_retry_publishes_the_same_entries_and_restores_once() -> None:
    async with counter() as bank:
        await bank.draw(drawing())
        bank.now[0] = china(2)
        bank.broker.fail(TOPIC, KafkaConnectionError())
        problem(await bank.repay(["N-1"]), 503)
        assert bank.balance() == Decimal("100000.00")  # recorded
        again = await bank.repay(["N-1"])
        assert again.status_code == 202
        entries = bank.confirmed()
        assert [e.ledger_sequence for e in entries] == [1, 2]
        assert bank.balance() == Decimal("100000.00")


async def test_a_repayment_of_a_notice_not_drawn_or_repaid_already_is_409() -> None:
    async with counter() as bank:
        await bank.draw(drawing())
        bank.now[0] = china(2)
        never = problem(await bank.repay(["N-9"]), 409)
        assert (await bank.repay(["N-1"])).status_code == 202
        twice = problem(await bank.repay(["N-1"], key="r-2"), 409)
        assert bank.balance() == Decimal("100000.00") and len(bank.confirmed()) == 2
    assert never["type"].endswith("notice-not-drawn")
    assert twice["type"].endswith("notice-repaid")


async def test_a_repayment_needs_the_holder_a_consolidated_guarantee_and_a_key() -> None:
    async with counter() as bank:
        others = problem(await bank.repay(["N-1"], guarantee="G-B"), 403)
        unknown = problem(await bank.repay(["N-1"], guarantee="G-NONE"), 403)
        plain = problem(await bank.repay(["N-1"], guarantee="G-PLAIN"), 409)
        keyless = problem(await bank.repay(["N-1"], key=None), 422)
        twice = problem(await bank.repay(["N-1", "N-1"]), 422)
        empty = problem(await bank.repay([]), 422)
    assert others["type"] == unknown["type"] and others["type"].endswith("not-your-guarantee")
    assert plain["type"].endswith("not-consolidated")
    assert keyless["type"].endswith("idempotency-key-required")
    assert twice["type"].endswith("invalid-repayment") and empty["status"] == 422


async def test_the_holder_sees_the_balance_and_the_draws_to_repay() -> None:
    async with counter() as bank:
        await bank.draw(drawing())
        response = await bank.client.get("/v1/guarantees/G-A", headers=ISSUER.auth())
        assert response.status_code == 200, response.text
        others = problem(await bank.client.get("/v1/guarantees/G-B", headers=ISSUER.auth()), 403)
    view = response.json()
    assert (view["balance"], view["ledger_sequence"], view["consolidated"]) == (
        "39187.00",
        1,
        True,
    )
    [draw] = view["outstanding"]
    assert (draw["notice_id"], draw["amount"], draw["due_by"]) == (
        "N-1",
        "60813.00",
        "2026-12-07",
    )
    assert others["type"].endswith("not-your-guarantee")


# -- the ledger's decisions (pure) -----------------------------------------------------------


def asked(notice: str, amount: str, payment_id: str = "PAY-1") -> ledger.DrawAsked:
    return ledger.DrawAsked(payment_id, f"DEC-{notice}", notice, USCC_A, Decimal(amount), T0)


def test_decide_draw() -> None:
    """100.00 issued: 60.00 passes (40.00 after, entry 1); 40.01 more is exhausted; 40.00
    passes (0.00, entry 2); the first again is a retry; another id on N-1 is refused."""
    book = ledger.Ledger.issued("G", Decimal("100.00"))
    first = ledger.decide_draw(book, asked("N-1", "60.00"))
    assert isinstance(first, ledger.Drawn)
    assert (first.draw.sequence, first.draw.balance_after) == (1, Decimal("40.00"))
    book = ledger.after_draw(book, first.draw)
    assert ledger.decide_draw(book, asked("N-2", "40.01", "PAY-2")) == ledger.Exhausted(
        Decimal("40.00")
    )
    last = ledger.decide_draw(book, asked("N-2", "40.00", "PAY-2"))
    assert isinstance(last, ledger.Drawn) and last.draw.balance_after == Decimal("0.00")
    assert ledger.decide_draw(book, asked("N-1", "60.00")) == ledger.AlreadyDrawn(first.draw)
    assert ledger.decide_draw(book, asked("N-1", "1.00", "PAY-9")) == ledger.NoticeDrawn("PAY-1")


def test_decide_repayment() -> None:
    """Drawn 60.00 on 27 November (due 7 December), repaid 8 December: 1 day late, 60.00 x
    0.0005 = 0.03, under 50: 0.00. Balance 40.00 + 60.00 = 100.00, entry 2."""
    book = ledger.Ledger.issued("G", Decimal("100.00"))
    drawn = ledger.decide_draw(book, asked("N-1", "60.00"))
    assert isinstance(drawn, ledger.Drawn)
    book = ledger.after_draw(book, drawn.draw)
    decision = ledger.decide_repayment(book, ["N-1"], ["PAY-R"], china(8))
    assert isinstance(decision, ledger.Repaid)
    [draw] = decision.draws
    assert draw.repayment == ledger.Repayment(
        "PAY-R", china(8), 2, Decimal("100.00"), date(2026, 12, 7), Decimal("0.00")
    )
    assert ledger.decide_repayment(book, ["N-2"], ["PAY-R"], china(8)) == ledger.NotDrawn("N-2")
    book = ledger.after_repayment(book, decision.draws)
    assert book.balance == Decimal("100.00") and book.sequence == 2
    again = ledger.decide_repayment(book, ["N-1"], ["PAY-R"], china(9))
    assert again == ledger.AlreadyRepaid(decision.draws)
    other = ledger.decide_repayment(book, ["N-1"], ["PAY-S"], china(9))
    assert other == ledger.RepaidBefore("N-1")


def test_fen_are_exact() -> None:
    assert ledger.to_fen(Decimal("60813.07")) == 6081307
    assert ledger.from_fen(6081307) == Decimal("60813.07")
    with pytest.raises(ValueError):
        ledger.to_fen(Decimal("0.001"))


# -- the guarantees file ---------------------------------------------------------------------


def test_the_local_guarantees_file_gives_the_demo_trader_a_consolidated_guarantee() -> None:
    guarantees = load_guarantees(LOCAL_GUARANTEES)
    demo = guarantees["G-DEMO-XIAMEN-2026"]
    assert demo.holder == "91350100M000100Y43" and demo.consolidated  # the laptops' importer
    assert local_bank_env()["BANK_GUARANTEES_FILE"] == str(LOCAL_GUARANTEES)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "not JSON"),
        ('{"guarantees": [], "more": 1}', "more"),
        ('{"guarantees": [{"guarantee_id": "G"}]}', "holder"),
        (
            json.dumps(
                {"guarantees": [{**G_A.model_dump(mode="json"), "amount": 5000}]},
            ),
            "amount",
        ),
        (
            json.dumps({"guarantees": [{**G_A.model_dump(mode="json"), "holder": USCC_A[:-1]}]}),
            "holder",
        ),
        (
            json.dumps(
                {"guarantees": [{**G_A.model_dump(mode="json"), "valid_until": "2025-12-31"}]}
            ),
            "valid_until",
        ),
        (json.dumps({"guarantees": [G_A.model_dump(mode="json")] * 2}), "twice"),
        (json.dumps({"guarantees": [{**G_A.model_dump(mode="json"), "amount": "0.00"}]}), "0"),
    ],
)
def test_an_invalid_guarantees_file_is_refused_naming_what(text: str, says: str) -> None:
    with pytest.raises(GuaranteeFileError, match=says):
        parse_guarantees(text)


def test_the_setting_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"guarantees": [G_A.model_dump(mode="json")]}))
    monkeypatch.setenv("BANK_GUARANTEES_FILE", str(path))
    own = BankSettings(jwt_issuer="i", jwt_audience="a", jwks_file=path, id_secret="s" * 32)
    assert load_guarantees(own.guarantees_file) == {"G-A": G_A}
    assert own.database == "singlewindow_bank"
    assert load_guarantees(None) == {}
    with pytest.raises(GuaranteeFileError, match="BANK_GUARANTEES_FILE"):
        load_guarantees(tmp_path / "missing.json")
