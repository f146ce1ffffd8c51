"""A draw on a general guarantee (总担保) in the join, and the consolidated repayment (汇总征税)
the join ignores (services.aggregator.join and .payment).

The car of tests/unit/test_lifecycle.py: 60,813.00 CNY due by 12 December 2026.
"""

from __future__ import annotations

from decimal import Decimal

from singlewindow.events import ClearanceStatus, PaymentConfirmed, PaymentKind
from tests import factories
from tests.unit.test_lifecycle import china, cleared, declared, notice_of, run, statuses

GUARANTEE = Decimal("500000.00")


def drawn(notice: str, amount: str, sequence: int = 1, **changes: object) -> PaymentConfirmed:
    """A draw of ``amount`` on guarantee G-1 (500,000.00): balance after = 500,000.00 - it."""
    fields: dict[str, object] = {
        "payment_id": f"PAY-draw-{sequence}",
        "kind": PaymentKind.GENERAL_GUARANTEE,
        "amount": Decimal(amount),
        "paid_at": china(1),
        "guarantee_id": "G-1",
        "guarantee_amount": GUARANTEE,
        "ledger_sequence": sequence,
        "balance_after": GUARANTEE - Decimal(amount),
        **changes,
    }
    return factories.payment(notice_id=notice, **fields)


def repaid(notice: str, amount: str, sequence: int = 2) -> PaymentConfirmed:
    return factories.payment(
        notice_id=notice,
        payment_id=f"PAY-repay-{sequence}",
        kind=PaymentKind.CONSOLIDATED_PAYMENT,
        amount=Decimal(amount),
        paid_at=china(30),
        guarantee_id="G-1",
        guarantee_amount=GUARANTEE,
        ledger_sequence=sequence,
        balance_after=GUARANTEE,
        late_interest=Decimal("0.00"),
    )


def test_a_draw_for_the_amount_secures_the_release_as_a_general_guarantee() -> None:
    events: list[object] = [declared(), *cleared()]
    draw = drawn(notice_of(events), "60813.00")
    _, results = run([*events, draw, draw])  # the redelivery counts once
    assert statuses(results) == [
        (1, ClearanceStatus.AWAITING_PAYMENT),
        (2, ClearanceStatus.RELEASED),
    ]
    settlement = results[-1].settlement
    assert settlement is not None
    assert settlement.kind is PaymentKind.GENERAL_GUARANTEE
    assert settlement.payment_ids == (draw.payment_id,)
    assert settlement.paid == Decimal("60813.00")
    assert settlement.late_interest == Decimal("0.00")
    assert results[-1].payment_notice is not None
    assert results[-1].payment_notice.outstanding == Decimal("0.00")


def test_a_draw_for_less_secures_nothing_and_pays_nothing() -> None:
    """60,000.00 drawn on a notice of 60,813.00: still AWAITING_PAYMENT, 60,813.00
    outstanding (a guarantee for less is no part payment); a payment of the whole then
    settles it (the draw stays on the ledger until its holder repays it)."""
    events: list[object] = [declared(), *cleared()]
    notice = notice_of(events)
    _, results = run([*events, drawn(notice, "60000.00")])
    assert statuses(results)[-1] == (2, ClearanceStatus.AWAITING_PAYMENT)
    assert results[-1].payment_notice is not None
    assert results[-1].payment_notice.outstanding == Decimal("60813.00")
    paid = factories.payment(notice_id=notice, amount=Decimal("60813.00"), paid_at=china(2))
    _, results = run([*events, drawn(notice, "60000.00"), paid])
    assert results[-1].status is ClearanceStatus.RELEASED
    assert results[-1].settlement is not None
    assert results[-1].settlement.kind is PaymentKind.PAYMENT


def test_a_consolidated_repayment_is_ignored_before_and_after_the_release() -> None:
    events: list[object] = [declared(), *cleared()]
    notice = notice_of(events)
    before, results = run([*events, repaid(notice, "60813.00")])
    assert statuses(results) == [(1, ClearanceStatus.AWAITING_PAYMENT)]
    assert before.payments == ()
    released = [*events, drawn(notice, "60813.00")]
    state, results = run(released)
    after, again = run([*released, repaid(notice, "60813.00")])
    assert again == results and after.payments == state.payments
