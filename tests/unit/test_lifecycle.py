"""The life of a versioned declaration after its first answer (services.aggregator.join and
.payment): payment notice, late interest, release, amendments, withdrawal, escalation.

Figures are computed by hand. The car of tests/unit/test_taxes.py: duty 24,795.00, consumption
tax 10,005.00, VAT 26,013.00, in all 60,813.00 CNY. The notice is issued at T0 =
2026-11-27T08:30:15Z, 16:30 on 27 November in China: due by 12 December (15 days, the day of
issue not counted). Late interest (滞纳金): 0.05 % of the amount a day from the day after the due
date to the day of payment, both included, to the fen; under 50 CNY it is not collected.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import permutations

import pytest

from services.aggregator import payment
from services.aggregator.join import expire, fold, step, tick
from singlewindow.events import (
    FINAL_STATUSES,
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    JoinState,
    PaymentKind,
    TaxKind,
    TaxTotal,
)
from tests import factories

T0 = factories.T0
DEADLINE = timedelta(seconds=120)
RETENTION = timedelta(days=30)
ALL = ("customs", "ciq", "port")
CAR = (
    TaxTotal(kind=TaxKind.DUTY, assessed=Decimal("24795.00"), collected=Decimal("24795.00")),
    TaxTotal(
        kind=TaxKind.CONSUMPTION_TAX, assessed=Decimal("10005.00"), collected=Decimal("10005.00")
    ),
    TaxTotal(kind=TaxKind.VAT, assessed=Decimal("26013.00"), collected=Decimal("26013.00")),
)


def china(day: int, month: int = 12, hour: int = 10) -> datetime:
    """``hour`` o'clock on a day in China (UTC+8), as UTC."""
    return datetime(2026, month, day, hour, tzinfo=UTC) - timedelta(hours=8)


def declared(
    version: int = 1, at: int = 0, agencies: tuple[str, ...] = ALL
) -> DeclarationSubmitted:
    return factories.declaration(
        version=version,
        required_agencies=agencies,
        submitted_at=T0 + timedelta(seconds=at),
        event_id=f"E{version}",
    )


def ruled(
    agency: str,
    decision: Decision = Decision.CLEAR,
    version: int = 1,
    at: int = 1,
    taxes: tuple[TaxTotal, ...] = (),
) -> AgencyVerdict:
    return factories.verdict(
        agency=agency,
        decision=decision,
        declaration_version=version,
        decided_at=T0 + timedelta(seconds=at),
        verdict_id=f"V-{agency}-v{version}",
        tax_totals=taxes,
        total_duties=sum((t.assessed for t in taxes), Decimal("0")),
    )


def cleared(
    version: int = 1, taxes: tuple[TaxTotal, ...] = CAR, at: int = 1
) -> list[AgencyVerdict]:
    return [ruled(a, version=version, at=at, taxes=taxes if a == "customs" else ()) for a in ALL]


def run(events: list[object]) -> tuple[JoinState, list[ClearanceResult]]:
    state, results = fold(events, DEADLINE)  # type: ignore[arg-type]
    assert state is not None
    return state, results


def statuses(results: list[ClearanceResult]) -> list[tuple[int, ClearanceStatus]]:
    return [(r.sequence, r.status) for r in results]


def notice_of(events: list[object]) -> str:
    _, results = run(events)
    assert results[-1].payment_notice is not None
    return results[-1].payment_notice.notice_id


# -- the notice ------------------------------------------------------------------------------


def test_cleared_with_taxes_awaits_payment_with_a_notice_due_in_15_days() -> None:
    state, results = run([declared(), *cleared()])
    [result] = results
    assert result.status is ClearanceStatus.AWAITING_PAYMENT
    assert (result.version, result.sequence) == (1, 1)
    notice = result.payment_notice
    assert notice is not None
    assert notice.amount == Decimal("60813.00") == notice.outstanding
    assert [t.kind for t in notice.taxes] == [
        TaxKind.DUTY,
        TaxKind.CONSUMPTION_TAX,
        TaxKind.VAT,
    ]
    assert notice.issued_at == result.decided_at == T0 + timedelta(seconds=1)
    # issued 27 November in China, + 15 days: a Saturday, but the notice was issued before
    # payment.WORKDAYS_FROM, when the last day was not moved off rest days
    assert notice.due_by == date(2026, 12, 12)
    assert state.decided is None and state.notice == notice  # not final: payment is due


def test_nothing_collected_is_released_at_once() -> None:
    waived = (TaxTotal(kind=TaxKind.VAT, assessed=Decimal("43.74"), collected=Decimal("0.00")),)
    state, results = run([declared(), *cleared(taxes=waived)])
    assert statuses(results) == [(1, ClearanceStatus.RELEASED)]
    assert results[0].payment_notice is None and state.decided is ClearanceStatus.RELEASED


def test_a_notice_is_due_by_the_15th_day_in_china_not_in_utc() -> None:
    # 2026-11-30T17:00Z is 1 December, 01:00, in China: due by 16 December
    issued = datetime(2026, 11, 30, 17, tzinfo=UTC)
    due = payment.notice("D-1", 1, (ruled("customs", taxes=CAR),), issued)
    assert due is not None and due.due_by == date(2026, 12, 16)


@pytest.mark.parametrize(
    ("issued", "due"),
    [
        # 5 December + 15 = 20 December, a Sunday: Monday 21 December
        (date(2026, 12, 5), date(2026, 12, 21)),
        # 17 December + 15 = 1 January 2027, New Year's Day, fixed by the Regulations on
        # National Holidays though the 2027 notice is not published on 17 December 2026; then
        # the weekend: Monday 4 January
        (date(2026, 12, 17), date(2027, 1, 4)),
        # 1 December + 15 = 16 December, a Wednesday: as it falls
        (date(2026, 12, 1), date(2026, 12, 16)),
        # before WORKDAYS_FROM: 27 November + 15 = 12 December, a Saturday, as it fell then
        (date(2026, 11, 27), date(2026, 12, 12)),
    ],
)
def test_a_due_date_on_a_rest_day_or_a_holiday_moves_to_the_next_working_day(
    issued: date, due: date
) -> None:
    # the holidays themselves (a due date on 5 October 2026 would move to 8 October): see
    # tests/unit/test_workdays.py
    assert payment.due_by(issued) == due


def test_interest_counts_from_the_moved_due_date() -> None:
    # issued 5 December 2026 in China: due by 21 December (20 December is a Sunday). Paid 31
    # December: 10 days late (22..31 December), 60,813.00 x 0.05 % x 10 = 304.065 -> 304.07;
    # paid 21 December: in time, though 20 December (the fifteenth day) has passed
    notice = payment.notice("D-1", 1, (ruled("customs", taxes=CAR),), china(5))
    assert notice is not None and notice.due_by == date(2026, 12, 21)
    in_time = factories.payment(
        "D-1", notice.notice_id, amount=Decimal("60813.00"), paid_at=china(21)
    )
    settled, _ = payment.settle(notice, (in_time,))
    assert settled is not None
    assert (settled.days_late, settled.late_interest) == (0, Decimal("0.00"))
    late = factories.payment("D-1", notice.notice_id, amount=Decimal("61117.07"), paid_at=china(31))
    settled, _ = payment.settle(notice, (late,))
    assert settled is not None
    assert (settled.days_late, settled.late_interest) == (10, Decimal("304.07"))


# -- payment, interest, guarantee ------------------------------------------------------------


def test_paid_in_full_on_the_due_date_is_released_without_interest() -> None:
    events: list[object] = [declared(), *cleared()]
    paid = factories.payment(
        notice_id=notice_of(events), amount=Decimal("60813.00"), paid_at=china(12, hour=23)
    )
    state, results = run([*events, paid])
    assert statuses(results) == [
        (1, ClearanceStatus.AWAITING_PAYMENT),
        (2, ClearanceStatus.RELEASED),
    ]
    released = results[1]
    assert released.settlement is not None
    assert released.settlement.kind is PaymentKind.PAYMENT
    assert (released.settlement.days_late, released.settlement.late_interest) == (0, Decimal("0"))
    assert released.settlement.payment_ids == (paid.payment_id,)
    assert released.decided_at == paid.paid_at and released.version == 1
    assert state.decided is ClearanceStatus.RELEASED


def test_paid_ten_days_late_owes_interest_and_is_released_when_it_is_paid() -> None:
    """Due by 12 December; paid on 22 December (China): 13th..22nd = 10 days late.
    60,813.00 x 0.0005 x 10 = 304.065 -> 304.07 (half up, to the fen)."""
    events: list[object] = [declared(), *cleared()]
    notice = notice_of(events)
    first = factories.payment(
        payment_id="P1", notice_id=notice, amount=Decimal("60813.00"), paid_at=china(22)
    )
    _, results = run([*events, first])
    owed = results[-1]
    assert owed.status is ClearanceStatus.AWAITING_PAYMENT and owed.sequence == 2
    assert owed.payment_notice is not None
    assert owed.payment_notice.outstanding == Decimal("304.07")
    rest = factories.payment(
        payment_id="P2", notice_id=notice, amount=Decimal("304.07"), paid_at=china(22, hour=15)
    )
    _, results = run([*events, first, rest])
    released = results[-1]
    assert (released.sequence, released.status) == (3, ClearanceStatus.RELEASED)
    assert released.settlement is not None
    assert released.settlement.days_late == 10
    assert released.settlement.late_interest == Decimal("304.07")
    assert released.settlement.paid == Decimal("61117.07")  # 60,813.00 + 304.07
    assert released.settlement.payment_ids == ("P1", "P2")


def test_interest_is_on_the_tax_paid_late_never_on_the_interest() -> None:
    """60,813.00 paid on 22 December (10 days late: 304.07 owed), the interest only on 23
    December: the interest does not accrue, 304.07 settles it."""
    events: list[object] = [declared(), *cleared()]
    notice = notice_of(events)
    pays = [
        factories.payment(
            payment_id="P1", notice_id=notice, amount=Decimal("60813.00"), paid_at=china(22)
        ),
        factories.payment(
            payment_id="P2", notice_id=notice, amount=Decimal("304.07"), paid_at=china(23)
        ),
    ]
    _, results = run([*events, *pays])
    released = results[-1]
    assert released.status is ClearanceStatus.RELEASED and released.settlement is not None
    assert released.settlement.late_interest == Decimal("304.07")
    assert released.settlement.days_late == 10


def test_tax_paid_in_time_accrues_nothing_and_the_rest_only_for_its_own_days() -> None:
    """60,000.00 paid on 10 December (in time), 813.00 on 9 January: 28 days late (13 to 31
    December, 19; 1 to 9 January, 9): 813.00 x 0.0005 x 28 = 11.382 -> 11.38, under 50 CNY:
    nothing is collected."""
    events: list[object] = [declared(), *cleared()]
    notice = notice_of(events)
    pays = [
        factories.payment(
            payment_id="P1", notice_id=notice, amount=Decimal("60000.00"), paid_at=china(10)
        ),
        factories.payment(
            payment_id="P2",
            notice_id=notice,
            amount=Decimal("813.00"),
            paid_at=datetime(2027, 1, 9, 2, tzinfo=UTC),
        ),
    ]
    _, results = run([*events, *pays])
    released = results[-1]
    assert released.status is ClearanceStatus.RELEASED and released.settlement is not None
    assert released.settlement.late_interest == Decimal("0.00")
    assert released.settlement.days_late == 28


def test_tax_still_unpaid_accrues_to_the_latest_value_date() -> None:
    """30,000.00 paid on 22 December, 10 days late: 30,000.00 x 0.0005 x 10 = 150.00, and the
    30,813.00 still unpaid 30,813.00 x 0.0005 x 10 = 154.065: 304.065 -> 304.07 so far.
    Outstanding 60,813.00 + 304.07 - 30,000.00 = 31,117.07."""
    events: list[object] = [declared(), *cleared()]
    part = factories.payment(
        notice_id=notice_of(events), amount=Decimal("30000.00"), paid_at=china(22)
    )
    _, results = run([*events, part])
    assert results[-1].payment_notice is not None
    assert results[-1].payment_notice.outstanding == Decimal("31117.07")


def test_value_dates_count_in_their_own_order_and_never_before_the_notice() -> None:
    """Read first: 60,000.00 dated 27 December (15 days late); then 813.00 dated 1 December
    (in time). By value date the 813.00 came first; the 60,000.00 was 15 days late:
    60,000.00 x 0.0005 x 15 = 450.00 outstanding. A backdated payment escapes nothing."""
    events: list[object] = [declared(), *cleared()]
    notice = notice_of(events)
    pays = [
        factories.payment(
            payment_id="P1", notice_id=notice, amount=Decimal("60000.00"), paid_at=china(27)
        ),
        factories.payment(
            payment_id="P2", notice_id=notice, amount=Decimal("813.00"), paid_at=china(1)
        ),
    ]
    _, results = run([*events, *pays])
    assert results[-1].status is ClearanceStatus.AWAITING_PAYMENT
    assert results[-1].payment_notice is not None
    assert results[-1].payment_notice.outstanding == Decimal("450.00")
    # dated before the notice was issued: counted from the issue, in time
    early = factories.payment(
        notice_id=notice, amount=Decimal("60813.00"), paid_at=T0 - timedelta(days=30)
    )
    _, results = run([*events, early])
    assert results[-1].settlement is not None and results[-1].settlement.days_late == 0


def test_interest_under_50_cny_is_not_collected() -> None:
    """9,000.00 x 0.0005 x 10 = 45.00: under 50, not collected."""
    assert payment.late_interest(Decimal("9000.00"), 10) == Decimal("0.00")
    assert payment.late_interest(Decimal("10000.00"), 10) == Decimal("50.00")  # 50 is collected
    assert payment.days_late(date(2026, 12, 12), china(12, hour=23)) == 0
    assert payment.days_late(date(2026, 12, 12), china(13, hour=0)) == 1


def test_a_bank_guarantee_for_the_amount_secures_the_release() -> None:
    events: list[object] = [declared(), *cleared()]
    guarantee = factories.payment(
        notice_id=notice_of(events),
        kind=PaymentKind.BANK_GUARANTEE,
        amount=Decimal("60813.00"),
        paid_at=china(1),
    )
    _, results = run([*events, guarantee])
    assert results[-1].status is ClearanceStatus.RELEASED
    assert results[-1].settlement is not None
    assert results[-1].settlement.kind is PaymentKind.BANK_GUARANTEE


def test_a_short_payment_leaves_the_rest_outstanding_and_a_redelivery_counts_once() -> None:
    events: list[object] = [declared(), *cleared()]
    part = factories.payment(
        notice_id=notice_of(events), amount=Decimal("60000.00"), paid_at=china(1)
    )
    _, results = run([*events, part, part])
    assert statuses(results) == [
        (1, ClearanceStatus.AWAITING_PAYMENT),
        (2, ClearanceStatus.AWAITING_PAYMENT),
    ]
    assert results[-1].payment_notice is not None
    assert results[-1].payment_notice.outstanding == Decimal("813.00")


def test_a_payment_on_another_notice_changes_nothing() -> None:
    events: list[object] = [declared(), *cleared()]
    stray = factories.payment(notice_id=payment.notice_id("D-0001", 2), amount=Decimal("60813.00"))
    _, results = run([*events, stray])
    assert statuses(results) == [(1, ClearanceStatus.AWAITING_PAYMENT)]


# -- amendment -------------------------------------------------------------------------------


def test_an_amendment_is_assessed_afresh_and_the_result_names_its_version() -> None:
    held = [ruled("customs", Decision.HOLD), ruled("ciq"), ruled("port")]
    amended = [declared(version=2, at=60), *cleared(version=2, taxes=(), at=61)]
    _, results = run([declared(), *held, *amended])
    assert [(r.sequence, r.version, r.status) for r in results] == [
        (1, 1, ClearanceStatus.HELD),
        (2, 2, ClearanceStatus.RELEASED),
    ]
    assert {d.verdict_id for d in results[1].decisions} == {f"V-{a}-v2" for a in ALL}
    assert results[0].result_id != results[1].result_id


def test_verdicts_on_a_superseded_version_no_longer_count() -> None:
    """Version 2 arrives before customs ruled on version 1: customs' late verdict on 1 does
    not complete version 2."""
    events = [declared(), ruled("ciq"), ruled("port"), declared(version=2, at=5), ruled("customs")]
    state, results = run(events)
    assert results == [] and state.missing == ALL


def test_a_verdict_on_the_new_version_may_come_before_the_amendment() -> None:
    early = [ruled(a, version=2, at=61) for a in ALL]
    _, results = run([declared(), *early, declared(version=2, at=60)])
    assert statuses(results) == [(1, ClearanceStatus.RELEASED)] and results[0].version == 2


def test_an_older_or_repeated_version_is_ignored() -> None:
    events = [declared(version=2, at=60), declared(version=1), declared(version=2, at=60)]
    state, _ = run(events)
    assert state.version == 2 and state.submitted_at == T0 + timedelta(seconds=60)


def test_an_amendment_while_payment_is_due_replaces_the_notice() -> None:
    smaller = (TaxTotal(kind=TaxKind.VAT, assessed=Decimal("130.00"), collected=Decimal("130.00")),)
    events: list[object] = [
        declared(),
        *cleared(),
        declared(version=2, at=60),
        *cleared(2, smaller, 61),
    ]
    _, results = run(events)
    assert statuses(results) == [
        (1, ClearanceStatus.AWAITING_PAYMENT),
        (2, ClearanceStatus.AWAITING_PAYMENT),
    ]
    first, second = (r.payment_notice for r in results)
    assert first is not None and second is not None
    assert second.notice_id != first.notice_id and second.amount == Decimal("130.00")
    old = factories.payment(notice_id=first.notice_id, amount=Decimal("60813.00"))
    _, after = run([*events, old])
    assert after == results  # the old notice is no longer due


# -- withdrawal ------------------------------------------------------------------------------


def test_a_withdrawal_ends_the_life_with_withdrawn_and_nothing_counts_after() -> None:
    events: list[object] = [declared(), ruled("customs", Decision.HOLD), factories.withdrawal()]
    state, results = run([*events, ruled("ciq"), ruled("port"), declared(version=2, at=90)])
    assert statuses(results) == [(1, ClearanceStatus.WITHDRAWN)]
    assert state.decided is ClearanceStatus.WITHDRAWN
    assert results[0].decided_at == factories.withdrawal().withdrawn_at


def test_a_withdrawal_read_before_its_declaration_applies_when_the_declaration_comes() -> None:
    state, results = run([factories.withdrawal()])
    assert results == [] and state.decided is None
    _, results = run([factories.withdrawal(), declared()])
    assert statuses(results) == [(1, ClearanceStatus.WITHDRAWN)]


def test_a_released_declaration_cannot_be_withdrawn() -> None:
    events: list[object] = [declared(), *cleared(taxes=())]
    _, results = run([*events, factories.withdrawal()])
    assert statuses(results) == [(1, ClearanceStatus.RELEASED)]


# -- escalation and the late verdict ---------------------------------------------------------


def test_a_missing_agency_is_escalated_at_the_deadline_and_its_late_verdict_decides() -> None:
    state, results = run([declared(), ruled("customs", taxes=()), ruled("ciq")])
    assert results == []
    state, escalated = expire(state, T0 + DEADLINE)
    [timed_out] = escalated
    assert timed_out.status is ClearanceStatus.TIMED_OUT and timed_out.missing_agencies == ("port",)
    assert state.decided is None and state.deadline is None
    assert expire(state, T0 + DEADLINE * 2) == (state, [])  # escalated once
    state2, late = step(state, ruled("port", at=300), DEADLINE)
    assert statuses(late) == [(2, ClearanceStatus.RELEASED)]
    assert late[0].decided_at == T0 + timedelta(seconds=300)
    assert state2 is not None and state2.decided is ClearanceStatus.RELEASED


def test_a_life_that_has_not_ended_is_kept_however_long_then_dropped_once_final() -> None:
    """Held, then nothing for a day more than the retention: the state is kept (were it
    dropped, documents lodged then would start a second life numbered from step 1). Their
    version is step 2; once released, the state goes after its retention."""
    state, _ = run([declared(), ruled("customs", Decision.HOLD), ruled("ciq"), ruled("port")])
    later = T0 + RETENTION + timedelta(days=1)
    assert tick(state, later, RETENTION) == (state, [])
    amended = [
        declared(version=2, at=int((later - T0).total_seconds())),
        *cleared(2, taxes=(), at=int((later - T0).total_seconds()) + 1),
    ]
    after, results = fold_from(state, amended)
    assert statuses(results) == [(2, ClearanceStatus.RELEASED)]
    gone, nothing = tick(after, later + RETENTION + timedelta(days=1), RETENTION)
    assert gone is None and nothing == []


def test_an_escalated_life_is_kept_for_its_late_verdict() -> None:
    state, _ = run([declared(), ruled("customs")])
    state, _ = tick(state, T0 + DEADLINE, RETENTION)  # escalated
    assert state is not None and state.last_status is ClearanceStatus.TIMED_OUT
    assert tick(state, T0 + RETENTION * 2, RETENTION) == (state, [])


def test_a_withdrawal_read_before_its_declaration_survives_the_clock() -> None:
    alone, _ = run([factories.withdrawal()])
    kept, _ = tick(alone, factories.withdrawal().withdrawn_at + timedelta(days=1), RETENTION)
    assert kept is not None
    _, results = fold_from(kept, [declared(), *cleared()])
    assert statuses(results) == [(1, ClearanceStatus.WITHDRAWN)]


def test_a_payment_on_no_notice_leaves_no_state_behind() -> None:
    state, results = step(None, factories.payment(), DEADLINE)
    assert (state, results) == (None, [])


def fold_from(state: JoinState, events: list[object]) -> tuple[JoinState, list[ClearanceResult]]:
    results: list[ClearanceResult] = []
    for event in events:
        after, out = step(state, event, DEADLINE)  # type: ignore[arg-type]
        assert after is not None
        state, results = after, results + out
    return state, results


# -- every order -----------------------------------------------------------------------------


def test_every_arrival_order_gives_the_same_steps() -> None:
    """The declaration, its three verdicts and a withdrawal that comes after the last
    verdict in time, in all 120 orders: either the answer then WITHDRAWN, or WITHDRAWN alone
    when the withdrawal is read first; never anything else, and never two of a step."""
    events: list[object] = [declared(), *cleared(taxes=()), factories.withdrawal()]
    seen = set()
    for order in permutations(events):
        _, results = run(list(order))
        seen.add(tuple(r.status for r in results))
        assert [r.sequence for r in results] == list(range(1, len(results) + 1))
        assert sum(r.status in FINAL_STATUSES for r in results) == 1
    assert seen == {(ClearanceStatus.RELEASED,), (ClearanceStatus.WITHDRAWN,)}


def test_the_verdicts_in_any_order_give_one_identical_answer() -> None:
    events: list[object] = [declared(), *cleared()]
    answers = {tuple(run(list(order))[1]) for order in permutations(events)}
    assert len(answers) == 1


def test_a_state_with_a_notice_and_payments_round_trips_the_changelog() -> None:
    events: list[object] = [declared(), *cleared()]
    part = factories.payment(notice_id=notice_of(events), amount=Decimal("1.00"))
    state, results = run([*events, part, factories.withdrawal()])
    assert JoinState.from_avro(state.to_avro()) == state
    for result in results:
        assert ClearanceResult.from_avro(result.to_avro()) == result
