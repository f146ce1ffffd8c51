"""Changes after release, with customs' approval (报关单修改和撤销管理办法), in the join
(services.aggregator.join and .afterrelease): supplementary notice (补税), refund (退税), no
change, refusal; any arrival order, duplicates.

Figures are computed by hand. The car of tests/unit/test_lifecycle.py, customs value
165,300.00 CNY: duty 15 % = 24,795.00; consumption tax 5 % on (165,300 + 24,795) / 0.95 =
200,100.00, 10,005.00; VAT 13 % on 200,100.00, 26,013.00; in all 60,813.00, paid at release.

The price was declared 10,000.00 CNY too low (customs value 175,300.00): duty 26,295.00;
consumption tax on (175,300 + 26,295) / 0.95 = 212,205.263..., 10,610.26; VAT 13 % on
175,300 + 26,295 + 10,610.26 = 212,205.26, 27,586.68 (27,586.6838); in all 64,491.94. The
supplementary notice is for 64,491.94 - 60,813.00 = 3,678.94 (duty 1,500.00, consumption tax
605.26, VAT 1,573.68).

10,000.00 CNY too high (customs value 155,300.00): duty 23,295.00; consumption tax on
(155,300 + 23,295) / 0.95 = 187,994.736..., 9,399.74; VAT 13 % on 187,994.74, 24,439.32
(24,439.3162); in all 57,134.06: a refund of 60,813.00 - 57,134.06 = 3,678.94.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import permutations

import pytest

from services.aggregator import afterrelease, payment
from services.aggregator.join import END_OF_TIME, due, step, tick
from singlewindow.events import (
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    JoinState,
    TaxKind,
    TaxTotal,
)
from tests import factories
from tests.unit.test_lifecycle import (
    ALL,
    CAR,
    DEADLINE,
    RETENTION,
    T0,
    china,
    cleared,
    declared,
    fold_from,
    ruled,
    run,
)


def taxes(duty: str, consumption: str, vat: str) -> tuple[TaxTotal, ...]:
    return tuple(
        TaxTotal(kind=kind, assessed=Decimal(amount), collected=Decimal(amount))
        for kind, amount in (
            (TaxKind.DUTY, duty),
            (TaxKind.CONSUMPTION_TAX, consumption),
            (TaxKind.VAT, vat),
        )
    )


MORE = taxes("26295.00", "10610.26", "27586.68")  # 64,491.94
LESS = taxes("23295.00", "9399.74", "24439.32")  # 57,134.06
# approved on 10 December, 10:00 in China: the supplementary notice is due by 25 December
APPROVED_AT = china(10)


def released() -> list[object]:
    """Version 1 of the car, cleared by every agency, its 60,813.00 paid in time: RELEASED."""
    events: list[object] = [declared(), *cleared()]
    _, results = run(events)
    assert results[-1].payment_notice is not None
    notice = results[-1].payment_notice.notice_id
    return [*events, factories.payment(notice_id=notice, amount=Decimal("60813.00"))]


def change(version: int = 2, at: int = 600) -> DeclarationSubmitted:
    """A change after release: routed to customs alone, marked ``after_release``."""
    return declared(version=version, at=at, agencies=("customs",)).model_copy(
        update={"after_release": True}
    )


def approval(
    collected: tuple[TaxTotal, ...] = MORE,
    version: int = 2,
    decision: Decision = Decision.CLEAR,
) -> AgencyVerdict:
    """Customs' verdict on the change, on 10 December in China."""
    verdict = ruled("customs", decision, version=version, taxes=collected)
    return verdict.model_copy(update={"decided_at": APPROVED_AT})


def steps(results: list[ClearanceResult]) -> list[tuple[int, int | None, ClearanceStatus]]:
    return [(r.sequence, r.version, r.status) for r in results]


def test_a_change_that_collects_more_gives_a_supplementary_notice_then_release_once_paid() -> None:
    state, results = run([*released(), change(), approval()])
    assert steps(results)[1:] == [
        (2, 1, ClearanceStatus.RELEASED),
        (3, 2, ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE),
    ]
    due_now = results[-1]
    notice = due_now.payment_notice
    assert notice is not None and due_now.refund is None
    assert notice.amount == Decimal("3678.94") == notice.outstanding  # 64,491.94 - 60,813.00
    assert [(t.kind, t.collected) for t in notice.taxes] == [
        (TaxKind.DUTY, Decimal("1500.00")),
        (TaxKind.CONSUMPTION_TAX, Decimal("605.26")),
        (TaxKind.VAT, Decimal("1573.68")),
    ]
    assert notice.notice_id == payment.notice_id("D-0001", 2)  # its own notice, per version
    assert notice.issued_at == due_now.decided_at == APPROVED_AT
    assert notice.due_by == date(2026, 12, 25)  # 15 days, the day of issue not counted
    assert [d.agency for d in due_now.decisions] == ["customs"]
    assert state.decided is None and state.after_release  # the life goes on: duty is due
    paid = factories.payment(
        payment_id="P-supp",
        notice_id=notice.notice_id,
        amount=Decimal("3678.94"),
        paid_at=china(20),
    )
    state, results = run([*released(), change(), approval(), paid])
    assert steps(results)[-1] == (4, 2, ClearanceStatus.RELEASED)
    assert results[-1].settlement is not None
    assert results[-1].settlement.payment_ids == ("P-supp",)
    assert results[-1].settlement.late_interest == Decimal("0.00")
    assert state.decided is ClearanceStatus.RELEASED and not state.after_release


def test_a_supplementary_notice_paid_late_owes_interest_as_any_notice() -> None:
    """Due by 25 December; paid on 24 January (China): 26 December..24 January = 30 days late.
    3,678.94 x 0.0005 x 30 = 55.1841 -> 55.18, at least 50: collected."""
    events = [*released(), change(), approval()]
    notice = payment.notice_id("D-0001", 2)
    late = factories.payment(
        payment_id="P-late",
        notice_id=notice,
        amount=Decimal("3678.94"),
        paid_at=china(24, month=1) + timedelta(days=365),
    )
    _, results = run([*events, late])
    assert steps(results)[-1] == (4, 2, ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE)
    assert results[-1].payment_notice is not None
    assert results[-1].payment_notice.outstanding == Decimal("55.18")
    rest = late.model_copy(
        update={"payment_id": "P-rest", "amount": Decimal("55.18"), "paid_at": late.paid_at}
    )
    _, results = run([*events, late, rest])
    assert steps(results)[-1] == (5, 2, ClearanceStatus.RELEASED)
    settlement = results[-1].settlement
    assert settlement is not None
    assert (settlement.days_late, settlement.late_interest) == (30, Decimal("55.18"))
    assert settlement.paid == Decimal("3734.12")  # 3,678.94 + 55.18


def test_a_change_that_collects_less_is_released_naming_the_refund() -> None:
    state, results = run([*released(), change(), approval(LESS)])
    assert steps(results)[-1] == (3, 2, ClearanceStatus.RELEASED)
    assert results[-1].refund == Decimal("3678.94")  # 60,813.00 - 57,134.06
    assert results[-1].payment_notice is None and results[-1].settlement is None
    assert state.decided is ClearanceStatus.RELEASED


def test_a_change_that_collects_the_same_is_released_on_the_new_version() -> None:
    state, results = run([*released(), change(), approval(CAR)])
    assert steps(results)[-1] == (3, 2, ClearanceStatus.RELEASED)
    assert results[-1].refund is None and results[-1].payment_notice is None
    assert state.decided is ClearanceStatus.RELEASED and state.version == 2


@pytest.mark.parametrize("decision", [Decision.REJECT, Decision.HOLD, Decision.INSPECT])
def test_customs_refusal_keeps_the_release_in_force_and_names_its_decision(
    decision: Decision,
) -> None:
    state, results = run([*released(), change(), approval(MORE, decision=decision)])
    refused = results[-1]
    assert steps(results)[-1] == (3, 2, ClearanceStatus.AMENDMENT_REFUSED)
    assert [(d.agency, d.decision) for d in refused.decisions] == [("customs", decision)]
    assert refused.inspection is None and refused.payment_notice is None  # nothing at the port
    assert state.decided is ClearanceStatus.AMENDMENT_REFUSED and state.order is None
    # a payment on the refused version's notice number changes nothing
    stray = factories.payment(notice_id=payment.notice_id("D-0001", 2), amount=Decimal("3678.94"))
    assert step(state, stray, DEADLINE) == (state, [])


def test_after_a_refusal_a_new_change_is_assessed_against_the_release_in_force() -> None:
    """Refused on version 2, then version 3 with the higher price: the supplementary notice is
    still 64,491.94 - 60,813.00 (version 1's levy), not against what version 2 asked."""
    refused = [*released(), change(), approval(LESS, decision=Decision.REJECT)]
    _, results = run([*refused, change(3, 900), approval(MORE, version=3)])
    assert steps(results)[-2:] == [
        (3, 2, ClearanceStatus.AMENDMENT_REFUSED),
        (4, 3, ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE),
    ]
    assert results[-1].payment_notice is not None
    assert results[-1].payment_notice.amount == Decimal("3678.94")
    # after an approved change, the next one is measured against it: back to the car's price
    paid = factories.payment(notice_id=payment.notice_id("D-0001", 3), amount=Decimal("3678.94"))
    _, results = run([*refused, change(3, 900), approval(MORE, version=3), paid])
    assert steps(results)[-1] == (5, 3, ClearanceStatus.RELEASED)
    approved = [*refused, change(3, 900), approval(MORE, version=3), paid]
    _, results = run([*approved, change(4, 1200), approval(CAR, version=4)])
    assert steps(results)[-1] == (6, 4, ClearanceStatus.RELEASED)
    assert results[-1].refund == Decimal("3678.94")


def test_the_levy_before_release_is_what_the_notice_collected_whatever_was_paid() -> None:
    """Interest paid late on the first notice is no tax: the base is what the notice collected."""
    assert afterrelease.total(afterrelease.levied(tuple(cleared()))) == Decimal("60813.00")
    assert afterrelease.refund(CAR, (approval(CAR),)) is None
    notice = afterrelease.supplementary("D-1", 2, CAR, (approval(LESS),), APPROVED_AT)
    assert notice is None


def test_every_arrival_order_of_the_change_and_duplicates_give_the_same_steps() -> None:
    """After the release: the change, customs' verdict on it, a copy of each, a redelivered
    verdict of version 1 and an ordinary amendment that raced the release (ignored), in every
    one of their 720 orders."""
    before = released()
    raced = declared(version=2, at=500)  # an amendment for every agency, not a change after release
    late = [change(), approval(), change(), approval(), cleared()[0], raced]
    outcomes = {tuple(run([*before, *order])[1]) for order in permutations(late)}
    assert len(outcomes) == 1
    [results] = outcomes
    assert [s for _, _, s in steps(list(results))] == [
        ClearanceStatus.AWAITING_PAYMENT,
        ClearanceStatus.RELEASED,
        ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE,
    ]


def test_the_supplementary_payment_and_its_redelivery_count_once() -> None:
    events = [*released(), change(), approval()]
    paid = factories.payment(
        payment_id="P-supp", notice_id=payment.notice_id("D-0001", 2), amount=Decimal("3678.94")
    )
    state, results = run([*events, paid])
    assert run([*events, paid, paid, change(), approval()]) == (state, results)


def test_an_amendment_that_raced_the_release_is_still_ignored() -> None:
    """An ordinary amendment (routed to every agency, not marked) read after the release: the
    trader did not ask customs' approval; nothing changes."""
    state, results = run(released())
    raced = [declared(version=2, at=500), *cleared(2, MORE, 501)]
    after, results = fold_from(state, raced)
    assert results == [] and after.decided is ClearanceStatus.RELEASED and after.version == 1
    # its verdicts are kept, as any on a higher version (they may be a change's, read first)
    assert after.model_copy(update={"verdicts": state.verdicts}) == state
    _, results = fold_from(after, [change(3, 900), approval(LESS, version=3)])
    assert steps(results) == [(3, 3, ClearanceStatus.RELEASED)]


def test_a_change_after_release_of_a_life_not_released_is_ignored() -> None:
    """The intake lodges one only once the release shows: before it (awaiting payment, or a
    fresh state) it is ignored, and leaves no state behind."""
    assert step(None, change(), DEADLINE) == (None, [])
    state, results = run([declared(), *cleared()])
    after, more = fold_from(state, [change(), approval()])
    assert more == [] and steps(results) == [(1, 1, ClearanceStatus.AWAITING_PAYMENT)]
    assert (after.version, after.notice) == (1, state.notice)  # still version 1's notice


def test_no_change_after_a_conditional_release_nor_after_a_final_answer() -> None:
    for status in (
        ClearanceStatus.CONDITIONALLY_RELEASED,
        ClearanceStatus.REJECTED,
        ClearanceStatus.WITHDRAWN,
        ClearanceStatus.SANCTIONED,
        ClearanceStatus.RECALLED,
    ):
        decided = None if status is ClearanceStatus.CONDITIONALLY_RELEASED else status
        state = factories.join_state(
            version=1, sequence=2, last_status=status, decided=decided, assessed=True
        )
        assert fold_from(state, [change(), approval()]) == (state, []), status


def test_a_withdrawal_after_release_is_refused_while_a_change_is_assessed_and_after() -> None:
    assessed, _ = run([*released(), change()])
    withdrawal = factories.withdrawal(version=2, withdrawn_at=T0 + timedelta(seconds=700))
    assert step(assessed, withdrawal, DEADLINE) == (assessed, [])
    due_now, _ = run([*released(), change(), approval()])
    assert step(due_now, withdrawal, DEADLINE) == (due_now, [])


def test_a_second_change_while_the_first_is_assessed_replaces_it_none_once_answered() -> None:
    _, results = run([*released(), change(), change(3, 700), approval(LESS, version=3)])
    assert steps(results)[-1] == (3, 3, ClearanceStatus.RELEASED)
    assert results[-1].refund == Decimal("3678.94")
    _, results = run([*released(), change(), approval(), change(3, 700), approval(LESS, 3)])
    assert steps(results)[-1] == (3, 2, ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE)


def test_a_change_has_no_deadline_and_is_kept_until_customs_answers() -> None:
    assessed, results = run([*released(), change()])
    assert assessed.deadline is None and assessed.decided is None and len(results) == 2
    assert due(assessed, RETENTION) == END_OF_TIME
    assert tick(assessed, T0 + RETENTION * 3, RETENTION) == (assessed, [])
    answered, _ = run([*released(), change(), approval(LESS)])
    assert due(answered, RETENTION) > APPROVED_AT + RETENTION  # kept, then dropped as any


def test_the_verdict_on_the_change_may_come_before_it() -> None:
    state, _ = run([*released(), approval()])
    assert state.decided is ClearanceStatus.RELEASED and len(state.verdicts) == len(ALL) + 1
    _, results = fold_from(state, [change()])
    assert steps(results) == [(3, 2, ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE)]


def test_a_state_written_before_changes_after_release_reads_and_reopens() -> None:
    """A released state without the new fields (their defaults) takes a change as any."""
    state, _ = run(released())
    old = JoinState.model_validate(
        state.model_dump(exclude={"after_release", "levied"}, exclude_defaults=True)
    )
    assert old == state
    _, results = fold_from(old, [change(), approval(LESS)])
    assert results[-1].refund == Decimal("3678.94")


def test_a_supplementary_notice_is_due_on_a_working_day_as_any_notice() -> None:
    """Approved on Saturday 5 December 2026 (China): the fifteenth day, 20 December, is a
    Sunday, so the supplementary notice is due by Monday 21 December, as a notice issued then
    before release would be (payment.due_by, 海关进出口货物征税管理办法): a payment on the 21st
    is in time."""
    saturday = approval().model_copy(update={"decided_at": china(5)})
    _, results = run([*released(), change(), saturday])
    notice = results[-1].payment_notice
    assert notice is not None and results[-1].status is ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE
    assert notice.due_by == date(2026, 12, 21) == payment.due_by(date(2026, 12, 5))
    before_release = payment.notice("D-0001", 2, (saturday,), saturday.decided_at)
    assert before_release is not None and before_release.due_by == notice.due_by


def test_the_state_and_its_retention_do_not_depend_on_what_is_read_first() -> None:
    """Customs' verdict on the change read before the change (the declarations topic lagging):
    the state is the same as in the other order, so the life is kept for the retention from
    customs' answer, not from the change's submission: a later change the intake takes (within
    its window from the answer) still finds it."""
    for verdict in (approval(LESS), approval(MORE), approval(MORE, decision=Decision.REJECT)):
        first, results = run([*released(), change(), verdict])
        second, again = run([*released(), verdict, change()])
        assert (second, again) == (first, results)
        assert due(second, RETENTION) > results[-1].decided_at + RETENTION


def test_a_change_that_replaces_one_still_assessed_is_answered_in_every_arrival_order() -> None:
    """Version 2 asked, then version 3 replacing it before customs answered: customs' verdict
    on version 3 may be read before version 3 itself (even before version 2): in every order
    the join answers version 3, never waits for ever on a verdict it dropped."""
    late = [change(), change(3, 700), approval(LESS, version=3)]
    outcomes = {tuple(run([*released(), *order])[1]) for order in permutations(late)}
    assert len(outcomes) == 1
    [results] = outcomes
    assert steps(list(results))[-1] == (3, 3, ClearanceStatus.RELEASED)
    assert results[-1].refund == Decimal("3678.94")
