"""audit verify folds each general guarantee's ledger from payments.confirmed
(services.audit.guarantees): every finding, computed by hand.

The life of tests/unit/test_verify.py: D-0001 held on version 1, amended, version 2's notice
48,350.36 CNY. Its duties are drawn on guarantee G-1 (100,000.00 CNY) at T0 + 1 h, 27 November
2026 in China (T0 = 2026-11-27T08:30:15Z): balance 100,000.00 - 48,350.36 = 51,649.64, entry 1.
Due in the consolidated payment by the fifth working day of December: Tue 1, Wed 2, Thu 3,
Fri 4, Mon 7 -> 7 December.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.aggregator import payment
from services.audit import cli
from singlewindow.events import ClearanceStatus, PaymentConfirmed, PaymentKind
from tests import factories
from tests.unit.test_audit_cli import logged
from tests.unit.test_verify import ID, Life, folded, kinds, lodged, ruled_on

AMOUNT = Decimal("100000.00")
DUE = Decimal("48350.36")


def china(day: int, month: int = 12, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC) - timedelta(hours=8)


def entry(
    kind: PaymentKind,
    payment_id: str,
    sequence: int,
    balance_after: str,
    amount: Decimal = DUE,
    notice: str | None = None,
    paid_at: datetime | None = None,
    **changes: object,
) -> PaymentConfirmed:
    fields: dict[str, object] = {
        "notice_id": notice or payment.notice_id(ID, 2),
        "payment_id": payment_id,
        "kind": kind,
        "amount": amount,
        "paid_at": paid_at or factories.T0 + timedelta(hours=1),
        "guarantee_id": "G-1",
        "guarantee_amount": AMOUNT,
        "ledger_sequence": sequence,
        "balance_after": Decimal(balance_after),
    }
    if kind is PaymentKind.CONSOLIDATED_PAYMENT:
        fields["late_interest"] = Decimal("0.00")
    return factories.payment(ID, **{**fields, **changes})


DRAW = entry(PaymentKind.GENERAL_GUARANTEE, "PAY-D1", 1, "51649.64")
# repaid 3 December, in time: 51,649.64 + 48,350.36 = 100,000.00, entry 2
REPAID = entry(PaymentKind.CONSOLIDATED_PAYMENT, "PAY-R1", 2, "100000.00", paid_at=china(3))


def drawn_life(*more: PaymentConfirmed) -> Life:
    v1, v2 = lodged(1), lodged(2, at=60)
    return folded([v1, ruled_on(v1), v2, ruled_on(v2, 61), DRAW, *more])


def test_a_draw_releases_and_its_repayment_verifies_clean() -> None:
    life = drawn_life(REPAID, DRAW)  # the draw redelivered: counted once
    assert life.results[-1].status is ClearanceStatus.RELEASED
    assert life.results[-1].settlement is not None
    assert life.results[-1].settlement.kind is PaymentKind.GENERAL_GUARANTEE
    report = life.verify()
    assert kinds(report) == [] and report.ledger_entries == 2


def test_a_gap_in_the_sequence_is_a_draw_never_published() -> None:
    """Entry 1 (a draw of 1,000.00 on another notice: 99,000.00) is not on the topic; the
    draw of the notice is entry 2 (99,000.00 - 48,350.36 = 50,649.64)."""
    second = entry(PaymentKind.GENERAL_GUARANTEE, "PAY-D2", 2, "50649.64")
    v1, v2 = lodged(1), lodged(2, at=60)
    life = folded([v1, ruled_on(v1), v2, ruled_on(v2, 61), second])
    report = life.verify()
    assert kinds(report) == ["ledger gap"]
    assert "entries 1 were never published" in report.findings[0].detail


def test_a_balance_that_does_not_follow_from_the_entries() -> None:
    """100,000.00 - 48,350.36 = 51,649.64, not the 61,649.64 recorded."""
    wrong = entry(PaymentKind.GENERAL_GUARANTEE, "PAY-D1", 1, "61649.64")
    report = drawn_life().verify(payments=[wrong])
    assert kinds(report) == ["ledger balance does not follow"]
    assert "51649.64 CNY, not the 61649.64 recorded" in report.findings[0].detail


def test_a_draw_over_the_balance() -> None:
    """A guarantee of 40,000.00 cannot cover 48,350.36: the balance would be -8,350.36."""
    over = entry(
        PaymentKind.GENERAL_GUARANTEE,
        "PAY-D1",
        1,
        "0.00",
        guarantee_amount=Decimal("40000.00"),
    )
    report = drawn_life().verify(payments=[over])
    assert kinds(report) == ["draw over the balance", "ledger balance does not follow"]
    assert "draws 48350.36 CNY with 40000.00 CNY left" in report.findings[0].detail


def test_a_repayment_of_a_notice_never_drawn_and_one_repaid_twice() -> None:
    never = entry(
        PaymentKind.CONSOLIDATED_PAYMENT,
        "PAY-R9",
        2,
        "100000.00",
        amount=Decimal("1000.00"),
        notice="N-never",
    )
    # 51,649.64 + 1,000.00 = 52,649.64 would follow, but the notice was never drawn
    never = never.model_copy(update={"balance_after": Decimal("52649.64")})
    report = drawn_life().verify(payments=[DRAW, never])
    assert kinds(report) == ["repayment of a notice never drawn"]
    # repaid at entry 2 (100,000.00) and again at entry 3 (148,350.36)
    again = entry(PaymentKind.CONSOLIDATED_PAYMENT, "PAY-R2", 3, "148350.36", paid_at=china(4))
    report = drawn_life().verify(payments=[DRAW, REPAID, again])
    assert kinds(report) == ["notice repaid twice"]


def test_a_repeated_sequence_number() -> None:
    twin = entry(PaymentKind.CONSOLIDATED_PAYMENT, "PAY-R2", 2, "100000.00", paid_at=china(3))
    report = drawn_life().verify(payments=[DRAW, REPAID, twin])
    assert kinds(report) == ["ledger sequence repeated"]


def test_late_interest_on_a_repayment_is_recomputed() -> None:
    """Repaid 17 December: 8 to 17 December, 10 days late; 48,350.36 x 0.0005 x 10 =
    241.7518 -> 241.75 CNY. Recorded 0.00: a finding; 241.75: clean."""
    late = REPAID.model_copy(update={"paid_at": china(17)})
    report = drawn_life().verify(payments=[DRAW, late])
    assert kinds(report) == ["wrong late interest on a repayment"]
    assert "owes 241.75 CNY of late interest, not 0.00" in report.findings[0].detail
    right = late.model_copy(update={"late_interest": Decimal("241.75")})
    assert kinds(drawn_life().verify(payments=[DRAW, right])) == []


def test_a_repayment_for_another_amount_than_drawn() -> None:
    """48,000.00 repaid of 48,350.36 drawn (51,649.64 + 48,000.00 = 99,649.64 follows)."""
    short = REPAID.model_copy(
        update={"amount": Decimal("48000.00"), "balance_after": Decimal("99649.64")}
    )
    report = drawn_life().verify(payments=[DRAW, short])
    assert kinds(report) == ["repayment differs from its draw"]


def test_a_general_guarantee_settlement_whose_draw_is_not_in_the_ledger() -> None:
    life = drawn_life()
    report = life.verify(payments=[])
    assert kinds(report) == [
        "general guarantee draw not in the ledger",
        "release without payment or guarantee",
    ]


def test_a_consolidated_repayment_is_no_payment_of_the_notice() -> None:
    """A repayment alone (no draw) justifies no release: the join ignores it."""
    life = drawn_life()
    report = life.verify(payments=[REPAID.model_copy(update={"balance_after": AMOUNT})])
    assert "release without payment or guarantee" in kinds(report)
    assert "repayment of a notice never drawn" in kinds(report)


def test_a_windowed_verify_folds_the_whole_ledger() -> None:
    """D-0001's draw (entry 1) was submitted before the window; another declaration's draw,
    entry 2, in it (51,649.64 - 1,000.00 = 50,649.64): the window's verification folds both
    entries, so entry 1 is no gap."""
    inside = factories.T0 + timedelta(days=1)
    later = factories.declaration(declaration_id="D-0002", submitted_at=inside)
    second = entry(PaymentKind.GENERAL_GUARANTEE, "PAY-D2", 2, "50649.64", Decimal("1000.00"))
    second = second.model_copy(update={"declaration_id": "D-0002", "notice_id": "N-2"})
    events = [
        logged(lodged(2)),
        logged(DRAW),
        replace(logged(later), timestamp=inside),
        replace(logged(second), timestamp=inside),
    ]
    window = cli.select_window(events, inside - timedelta(hours=1), None, factories.REGISTRY)
    assert [p.payment_id for p in window.payments] == ["PAY-D2"]
    assert [p.payment_id for p in window.ledger] == ["PAY-D1", "PAY-D2"]
    report = cli.verify_window(
        events, inside - timedelta(hours=1), None, timedelta(seconds=120), None, factories.REGISTRY
    )
    assert "ledger gap" not in kinds(report) and report.ledger_entries == 2
