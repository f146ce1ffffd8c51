"""The joint inspection in the join (services.aggregator.join and .inspection): one order per
declaration version, each agency's findings against it, then release, a sanction, a
remediation or a conditional release that a laboratory result confirms or recalls.

The car of tests/unit/test_lifecycle.py collects 60,813.00 CNY (duty 24,795.00, consumption
tax 10,005.00, VAT 26,013.00). Customs and CIQ both order checks here; the port clears.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from itertools import permutations

from services.aggregator.inspection import outcome
from services.aggregator.join import END_OF_TIME, due, fold, inspection_deadline, step, tick
from services.aggregator.table import JoinTable
from singlewindow.events import (
    LATEST,
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    FindingOutcome,
    InspectionCheck,
    InspectionFinding,
    JoinState,
    Measure,
    Reason,
    TaxKind,
    TaxTotal,
    decode_event,
)
from tests import factories
from tests.unit.test_lifecycle import CAR, DEADLINE, T0, declared, run, statuses

S = ClearanceStatus
WAIVED = (TaxTotal(kind=TaxKind.VAT, assessed=Decimal("43.74"), collected=Decimal("0.00")),)


def inspect(taxes: tuple[TaxTotal, ...] = CAR) -> list[AgencyVerdict]:
    """Customs orders a unit-value check (and assesses ``taxes``), CIQ a quarantine sample,
    the port clears."""
    return [
        factories.verdict(
            agency="customs",
            decision=Decision.INSPECT,
            checks=(InspectionCheck(agency="customs", check="UNIT_VALUE", item=1),),
            declaration_version=1,
            decided_at=T0 + timedelta(seconds=1),
            verdict_id="V-customs",
            tax_totals=taxes,
            total_duties=sum((t.assessed for t in taxes), Decimal("0")),
        ),
        factories.verdict(
            agency="ciq",
            decision=Decision.INSPECT,
            checks=(InspectionCheck(agency="ciq", check="QUARANTINE_SAMPLE", item=1),),
            declaration_version=1,
            decided_at=T0 + timedelta(seconds=2),
            verdict_id="V-ciq",
        ),
        factories.verdict(agency="port", declaration_version=1, decided_at=T0, verdict_id="V-port"),
    ]


def ordered(taxes: tuple[TaxTotal, ...] = CAR) -> tuple[list[object], str]:
    """The events up to INSPECTION_REQUIRED, and its order's id."""
    events: list[object] = [declared(), *inspect(taxes)]
    _, results = run(events)
    [first] = results
    assert first.status is S.INSPECTION_REQUIRED and first.inspection is not None
    return events, first.inspection.order_id


def found(
    order_id: str,
    agency: str,
    result: FindingOutcome = FindingOutcome.COMPLIANT,
    hours: int = 2,
    **changes: object,
) -> InspectionFinding:
    return factories.finding(
        agency=agency,
        order_id=order_id,
        outcome=result,
        recorded_at=T0 + timedelta(hours=hours),
        finding_id=changes.pop("finding_id", f"F-{agency}-{hours}"),
        **changes,
    )


def fault(order_id: str, agency: str, measure: Measure, hours: int = 2) -> InspectionFinding:
    return found(
        order_id,
        agency,
        FindingOutcome.NON_COMPLIANT,
        hours,
        measure=measure,
        reasons=(Reason(code=f"{agency.upper()}-FAULT", message=str(measure), item=1),),
    )


def pay(notice: ClearanceResult, hours: int = 5) -> object:
    assert notice.payment_notice is not None
    return factories.payment(
        payment_id=f"P-{hours}",
        notice_id=notice.payment_notice.notice_id,
        amount=notice.payment_notice.outstanding,
        paid_at=T0 + timedelta(hours=hours),
    )


def test_one_order_names_every_agencys_checks_and_waits_for_every_agency() -> None:
    events, order = ordered()
    _, results = run([*events, found(order, "customs")])
    assert statuses(results) == [(1, S.INSPECTION_REQUIRED)]  # CIQ has not recorded yet
    inspection = results[0].inspection
    assert inspection is not None
    assert [(c.agency, c.check) for c in inspection.checks] == [
        ("customs", "UNIT_VALUE"),
        ("ciq", "QUARANTINE_SAMPLE"),
    ]


def test_all_compliant_goes_on_to_the_notice_then_release_on_payment() -> None:
    events, order = ordered()
    findings = [found(order, "customs", hours=2), found(order, "ciq", hours=3)]
    _, results = run([*events, *findings])
    assert statuses(results) == [(1, S.INSPECTION_REQUIRED), (2, S.AWAITING_PAYMENT)]
    notice = results[1]
    assert notice.payment_notice is not None
    assert notice.payment_notice.amount == Decimal("60813.00")
    # issued when the inspection was complete: the later finding's time
    assert notice.decided_at == notice.payment_notice.issued_at == T0 + timedelta(hours=3)
    assert notice.finding_ids == ("F-customs-2", "F-ciq-3")
    _, results = run([*events, *findings, pay(notice)])
    released = results[-1]
    assert (released.sequence, released.status) == (3, S.RELEASED)
    assert released.settlement is not None and released.settlement.paid == Decimal("60813.00")
    assert released.finding_ids == ("F-customs-2", "F-ciq-3")


def test_the_findings_arrival_order_does_not_change_the_results() -> None:
    events, order = ordered()
    findings = [found(order, "customs", hours=2), found(order, "ciq", hours=3)]
    answers = {tuple(run([*events, *each])[1]) for each in permutations(findings)}
    assert len(answers) == 1


def test_nothing_collected_and_compliant_is_released_at_once() -> None:
    events, order = ordered(WAIVED)
    state, results = run([*events, found(order, "customs"), found(order, "ciq")])
    assert statuses(results)[-1] == (2, S.RELEASED)
    assert state.decided is S.RELEASED


def test_a_seizure_ends_the_life_and_names_the_agency_and_its_finding() -> None:
    events, order = ordered()
    seized = fault(order, "ciq", Measure.SEIZURE, hours=3)
    state, results = run([*events, found(order, "customs"), seized])
    sanctioned = results[-1]
    assert (sanctioned.sequence, sanctioned.status) == (2, S.SANCTIONED)
    assert sanctioned.sanction is not None
    assert (sanctioned.sanction.measure, sanctioned.sanction.agency) == (Measure.SEIZURE, "ciq")
    assert sanctioned.sanction.finding_id == seized.finding_id
    assert sanctioned.sanction.reasons == seized.reasons
    assert sanctioned.payment_notice is None  # no duties on seized goods
    assert state.decided is S.SANCTIONED
    later = found(order, "ciq", hours=9, finding_id="F-again")
    assert run([*events, found(order, "customs"), seized, later])[1] == results


def test_the_most_severe_measure_decides() -> None:
    """Return (退运) is more severe than re-labelling: SANCTIONED, customs' return."""
    events, order = ordered()
    findings = [fault(order, "customs", Measure.RETURN), fault(order, "ciq", Measure.RELABELLING)]
    _, results = run([*events, *findings])
    assert results[-1].status is S.SANCTIONED
    assert results[-1].sanction is not None
    assert (results[-1].sanction.measure, results[-1].sanction.agency) == (
        Measure.RETURN,
        "customs",
    )


def test_relabelling_waits_for_the_agencys_next_finding_then_duties_and_release() -> None:
    events, order = ordered()
    steps: list[object] = [
        *events,
        fault(order, "ciq", Measure.RELABELLING, hours=2),
        found(order, "customs", hours=3),
    ]
    _, results = run(steps)
    remedy = results[-1]
    assert (remedy.sequence, remedy.status) == (2, S.REMEDIATION_REQUIRED)
    assert remedy.sanction is not None and remedy.sanction.measure is Measure.RELABELLING
    # re-labelled under supervision: CIQ records again on the same order (no second order)
    relabelled = found(order, "ciq", hours=30, finding_id="F-ciq-relabelled")
    _, results = run([*steps, relabelled])
    notice = results[-1]
    assert (notice.sequence, notice.status) == (3, S.AWAITING_PAYMENT)
    assert notice.finding_ids == ("F-customs-3", "F-ciq-relabelled")
    assert notice.decided_at == T0 + timedelta(hours=30)
    _, results = run([*steps, relabelled, pay(notice, hours=31)])
    assert statuses(results)[-1] == (4, S.RELEASED)


def test_another_agencys_finding_does_not_repeat_a_remediation_step() -> None:
    events, order = ordered()
    first = [*events, found(order, "customs", hours=1), fault(order, "ciq", Measure.PENALTY)]
    again = found(order, "customs", hours=4, finding_id="F-customs-again")
    _, before = run(first)
    _, after = run([*first, again])
    assert (
        statuses(after)
        == statuses(before)
        == [
            (1, S.INSPECTION_REQUIRED),
            (2, S.REMEDIATION_REQUIRED),
        ]
    )


def test_samples_give_a_conditional_release_that_the_laboratory_confirms() -> None:
    events, order = ordered(WAIVED)
    sampled = found(order, "ciq", FindingOutcome.SAMPLED, hours=3, samples=("S-1",))
    steps = [*events, found(order, "customs"), sampled]
    state, results = run(steps)
    assert statuses(results)[-1] == (2, S.CONDITIONALLY_RELEASED)
    assert state.decided is None  # not final: the laboratory has not spoken
    lab = found(order, "ciq", hours=50, finding_id="F-lab", lab_result=True)
    state, results = run([*steps, lab])
    confirmed = results[-1]
    assert (confirmed.sequence, confirmed.status) == (3, S.RELEASED)
    assert confirmed.decided_at == T0 + timedelta(hours=50)
    assert confirmed.finding_ids == ("F-customs-2", "F-lab")
    assert state.decided is S.RELEASED


def test_a_failed_laboratory_result_recalls_goods_released_after_payment() -> None:
    events, order = ordered()
    sampled = found(order, "ciq", FindingOutcome.SAMPLED, hours=3, samples=("S-1",))
    steps: list[object] = [*events, found(order, "customs"), sampled]
    _, results = run(steps)
    notice = results[-1]
    assert notice.status is S.AWAITING_PAYMENT
    steps.append(pay(notice))
    _, results = run(steps)
    assert statuses(results)[-1] == (3, S.CONDITIONALLY_RELEASED)
    assert results[-1].settlement is not None
    lab = fault(order, "ciq", Measure.DESTRUCTION, hours=60)
    state, results = run([*steps, lab])
    recalled = results[-1]
    assert (recalled.sequence, recalled.status) == (4, S.RECALLED)
    assert recalled.sanction is not None and recalled.sanction.measure is Measure.DESTRUCTION
    assert state.decided is S.RECALLED


def test_a_laboratory_result_before_payment_makes_the_release_unconditional() -> None:
    events, order = ordered()
    sampled = found(order, "ciq", FindingOutcome.SAMPLED, hours=3, samples=("S-1",))
    steps: list[object] = [*events, found(order, "customs"), sampled]
    _, results = run(steps)
    notice = results[-1]
    lab = found(order, "ciq", hours=4, finding_id="F-lab", lab_result=True)
    _, results = run([*steps, lab])
    assert statuses(results)[-1] == (2, S.AWAITING_PAYMENT)  # nothing new to say yet
    _, results = run([*steps, lab, pay(notice)])
    assert statuses(results)[-1] == (3, S.RELEASED)


def test_a_finding_that_answers_no_order_changes_nothing() -> None:
    events, order = ordered()
    state, results = run(events)
    strays = [
        found("O-other", "customs"),  # another order
        found(order, "customs", version=2, finding_id="F-v2"),  # another version
        found(order, "port", finding_id="F-port"),  # an agency the order does not name
    ]
    for stray in strays:
        assert run([*events, stray]) == (state, results)


def test_a_redelivered_finding_counts_once() -> None:
    events, order = ordered()
    customs = found(order, "customs")
    once = run([*events, customs, found(order, "ciq", hours=3)])
    twice = run([*events, customs, customs, found(order, "ciq", hours=3)])
    assert once == twice


def test_a_finding_before_any_order_leaves_no_state() -> None:
    assert step(None, found("O-1", "customs"), timedelta(seconds=120)) == (None, [])


def test_no_amendment_nor_withdrawal_while_the_inspection_is_unfinished() -> None:
    """One inspection, and the customs rules on changing and withdrawing declarations: once
    the inspection is ordered, neither an amendment nor, until it is finished, a withdrawal;
    a withdrawal asked before the order, read only after it, stands."""
    events, order = ordered()
    state, results = run(events)
    ordered_at = results[0].decided_at  # the consolidated answer's time: T0 + 2 s
    amended = declared(version=2, at=60)
    assert run([*events, amended]) == (state, results)
    late = factories.withdrawal(withdrawn_at=ordered_at)
    assert run([*events, late]) == (state, results)
    remedy = [*events, fault(order, "ciq", Measure.RELABELLING), found(order, "customs")]
    state, results = run(remedy)
    assert statuses(results)[-1] == (2, S.REMEDIATION_REQUIRED)
    assert run([*remedy, factories.withdrawal(withdrawn_at=T0 + timedelta(hours=5))]) == (
        state,
        results,
    )
    early = factories.withdrawal(withdrawn_at=ordered_at - timedelta(milliseconds=1))
    _, results = run([*events, early])
    assert statuses(results)[-1] == (2, S.WITHDRAWN)


def test_a_withdrawal_once_the_inspection_found_nothing_ends_the_life() -> None:
    events, order = ordered()
    steps = [*events, found(order, "customs"), found(order, "ciq", hours=3)]
    withdrawn = factories.withdrawal(withdrawn_at=T0 + timedelta(hours=4))
    _, results = run([*steps, withdrawn])
    assert [s for _, s in statuses(results)] == [
        S.INSPECTION_REQUIRED,
        S.AWAITING_PAYMENT,
        S.WITHDRAWN,
    ]


def test_no_withdrawal_or_amendment_once_conditionally_released() -> None:
    events, order = ordered(WAIVED)
    sampled = found(order, "ciq", FindingOutcome.SAMPLED, hours=3, samples=("S-1",))
    steps = [*events, found(order, "customs"), sampled]
    state, results = run(steps)
    late = [factories.withdrawal(withdrawn_at=T0 + timedelta(hours=4)), declared(version=2)]
    for event in late:
        assert run([*steps, event]) == (state, results)


def test_the_outcome_of_findings_names_what_counts() -> None:
    events, _ = ordered()
    _, results = run(events)
    inspection = results[0].inspection
    assert inspection is not None
    superseded = fault(inspection.order_id, "ciq", Measure.RELABELLING, hours=2)
    latest = found(inspection.order_id, "ciq", hours=5, finding_id="F-ciq-ok")
    so_far = outcome(inspection, (latest, superseded))  # arrival order: the later one first
    assert not so_far.complete and so_far.sanction is None  # the later finding counts
    assert so_far.finding_ids == ("F-ciq-ok",)


def test_an_order_names_exactly_the_agencies_that_inspect() -> None:
    """An SDK agency's INSPECT verdict may name no check, or another agency's: the order
    still names it (a generic check), and never an agency that did not ask, so that the
    agencies named can complete it."""
    bare = factories.verdict(
        agency="port", decision=Decision.INSPECT, declaration_version=1, verdict_id="V-port"
    )
    foreign = factories.verdict(
        agency="ciq",
        decision=Decision.INSPECT,
        checks=(InspectionCheck(agency="customs", check="UNIT_VALUE"),),
        declaration_version=1,
        verdict_id="V-ciq",
    )
    customs = factories.verdict(agency="customs", declaration_version=1, verdict_id="V-cus")
    _, results = run([declared(), customs, bare, foreign])
    order = results[0].inspection
    assert order is not None
    assert [(c.agency, c.check) for c in order.checks] == [
        ("ciq", "INSPECTION"),
        ("port", "INSPECTION"),
    ]
    found_all = [found(order.order_id, "ciq"), found(order.order_id, "port", hours=3)]
    _, results = run([declared(), customs, bare, foreign, *found_all])
    assert statuses(results)[-1] == (2, S.RELEASED)  # nothing collected: released


def test_payments_after_a_conditional_release_change_nothing() -> None:
    events, order = ordered()
    sampled = found(order, "ciq", FindingOutcome.SAMPLED, hours=3, samples=("S-1",))
    steps: list[object] = [*events, found(order, "customs"), sampled]
    _, results = run(steps)
    steps.append(pay(results[-1]))
    state, results = run(steps)
    assert statuses(results)[-1] == (3, S.CONDITIONALLY_RELEASED)
    extra = factories.payment(
        payment_id="P-extra",
        notice_id=results[-1].payment_notice.notice_id,  # type: ignore[union-attr]
        amount=Decimal("1.00"),
        paid_at=T0 + timedelta(hours=6),
    )
    assert run([*steps, extra]) == (state, results)


def test_only_each_agencys_latest_finding_is_kept() -> None:
    """However many times an inspector records, the state holds one finding per agency:
    the latest (the greater id between equal times), whatever the reading order."""
    events, order = ordered()
    many = [fault(order, "ciq", Measure.RELABELLING, hours=h) for h in (2, 3, 4)] + [
        found(order, "ciq", hours=5, finding_id="F-a"),
        found(order, "ciq", hours=5, finding_id="F-b"),
    ]
    states = {run([*events, *each])[0].findings for each in permutations(many)}
    assert len(states) == 1
    [kept] = states
    assert [f.finding_id for f in kept] == ["F-b"]


def test_no_verdict_is_kept_for_a_version_after_the_order() -> None:
    events, _ = ordered()
    state, results = run(events)
    later = factories.verdict(agency="port", declaration_version=2, verdict_id="V-port-2")
    assert run([*events, later]) == (state, results)


# -- the inspection deadline: an agency that never records is escalated ----------------------

INSPECTION = timedelta(days=2)
RETENTION = timedelta(days=60)
LATER = T0 + timedelta(days=3)  # a clock reading past every order's deadline below


def timed(events: list[object]) -> tuple[JoinState, list[ClearanceResult]]:
    """``run`` with the aggregator's inspection deadline."""
    state, results = fold(events, DEADLINE, INSPECTION)  # type: ignore[arg-type]
    assert state is not None
    return state, results


def read(
    state: JoinState, events: list[object], now: datetime = LATER
) -> tuple[JoinState, list[ClearanceResult]]:
    """``events`` read in order from ``state``, the clock ticking at ``now`` where an event is
    the string "tick"."""
    results: list[ClearanceResult] = []
    for event in events:
        if event == "tick":
            after, out = tick(state, now, RETENTION)
        else:
            after, out = step(state, event, DEADLINE, INSPECTION)  # type: ignore[arg-type]
        assert after is not None
        state, results = after, results + out
    return state, results


def test_an_order_an_agency_has_not_answered_is_escalated_once_at_its_deadline() -> None:
    """CIQ never records: two days after the order, TIMED_OUT names CIQ alone (customs has
    recorded), at the deadline, and carries the order again; the clock does nothing more."""
    events, order = ordered()
    state, results = timed([*events, found(order, "customs")])
    deadline = results[0].decided_at + INSPECTION
    assert state.deadline == deadline and due(state, RETENTION) == deadline
    assert tick(state, deadline - timedelta(milliseconds=1), RETENTION) == (state, [])
    escalated_state, escalated = tick(state, deadline, RETENTION)
    [timed_out] = escalated
    assert (timed_out.sequence, timed_out.status) == (2, S.TIMED_OUT)
    assert timed_out.missing_agencies == ("ciq",)
    assert timed_out.decided_at == deadline
    assert timed_out.inspection == results[0].inspection  # the order is still to be inspected
    assert timed_out.version == 1 and timed_out.payment_notice is None
    assert escalated_state is not None and escalated_state.decided is None
    assert due(escalated_state, RETENTION) == END_OF_TIME  # kept until the findings come
    assert tick(escalated_state, deadline + 10 * INSPECTION, RETENTION) == (escalated_state, [])


def test_the_escalation_names_every_silent_agency_in_the_orders_order() -> None:
    events, _ = ordered()
    state, _ = timed(events)
    _, [timed_out] = tick(state, LATER, RETENTION)
    assert timed_out.missing_agencies == ("customs", "ciq")


def test_a_late_finding_still_completes_the_order_and_decides() -> None:
    """After the escalation, CIQ's finding decides exactly as it would have in time: the
    notice, or the sanction."""
    events, order = ordered()
    ordered_state, _ = timed([*events, found(order, "customs")])
    state, _ = tick(ordered_state, LATER, RETENTION)
    assert state is not None
    _, [notice] = step(state, found(order, "ciq", hours=80), DEADLINE, INSPECTION)
    assert (notice.sequence, notice.status) == (3, S.AWAITING_PAYMENT)
    assert notice.finding_ids == ("F-customs-2", "F-ciq-80")
    assert notice.decided_at == T0 + timedelta(hours=80)
    assert notice.payment_notice is not None
    assert notice.payment_notice.amount == Decimal("60813.00")
    _, [seized] = step(state, fault(order, "ciq", Measure.SEIZURE, hours=80), DEADLINE, INSPECTION)
    assert (seized.sequence, seized.status) == (3, S.SANCTIONED)
    assert seized.sanction is not None and seized.sanction.agency == "ciq"


def test_an_order_completed_in_time_is_never_escalated() -> None:
    events, order = ordered()
    state, results = timed([*events, found(order, "customs"), found(order, "ciq", hours=3)])
    assert statuses(results)[-1] == (2, S.AWAITING_PAYMENT)
    assert state.deadline is None
    assert tick(state, LATER, RETENTION) == (state, [])
    _, remedied = timed(
        [*events, fault(order, "ciq", Measure.RELABELLING), found(order, "customs")]
    )
    assert statuses(remedied)[-1] == (2, S.REMEDIATION_REQUIRED)  # out of scope: no deadline


def test_a_finding_recorded_after_the_deadline_does_not_answer_it_though_read_first() -> None:
    """The names depend on the findings' times, not on when the clock ticked: customs
    recorded after the deadline, and the aggregator read it before its tick."""
    events, order = ordered()
    state, _ = timed([*events, found(order, "customs", hours=50)])
    _, [timed_out] = tick(state, LATER, RETENTION)
    assert timed_out.missing_agencies == ("customs", "ciq")


def test_the_escalation_survives_a_restart() -> None:
    """The deadline is in the state: restored from the changelog, the table's clock still
    escalates it, once."""
    events, order = ordered()
    state, results = timed([*events, found(order, "customs")])
    restored = decode_event(state.to_avro())
    assert isinstance(restored, JoinState)
    table = JoinTable(RETENTION, [restored])
    deadline = results[0].decided_at + INSPECTION
    assert table.next_due() == deadline
    assert table.expired(deadline - timedelta(milliseconds=1)) == ({}, [])
    changes, [timed_out] = table.expired(deadline)
    assert timed_out.missing_agencies == ("ciq",) and timed_out.sequence == 2
    table.apply(changes)
    assert table.expired(LATER + 10 * INSPECTION) == ({}, [])


def test_every_reading_order_of_the_findings_and_the_tick_gives_the_same_outcome() -> None:
    """Customs records in time, CIQ after the deadline (a compliant finding, or a seizure):
    whatever order the aggregator reads them in and its clock ticks, the order is decided
    the same; an escalation, when the clock ticks before both are read, is at the deadline
    and names CIQ (even when its finding was read first: it was recorded too late), and
    customs too only if its finding was not read yet."""
    events, order = ordered()
    start, results = timed(events)
    deadline = results[0].decided_at + INSPECTION
    for late in (found(order, "ciq", hours=60), fault(order, "ciq", Measure.SEIZURE, hours=60)):
        outcomes = set()
        for reading in permutations([found(order, "customs"), late, "tick"]):
            _, steps = read(start, list(reading))
            *escalations, decided = steps
            outcomes.add(
                (decided.status, decided.finding_ids, decided.decided_at, decided.sanction)
            )
            assert [s.sequence for s in steps] == list(range(2, len(steps) + 2))
            ticked = reading.index("tick")
            customs_first = ticked > reading.index(found(order, "customs"))
            if ticked < 2:  # the clock ticked while the order was incomplete
                [timed_out] = escalations
                assert timed_out.status is S.TIMED_OUT and timed_out.decided_at == deadline
                named = ("ciq",) if customs_first else ("customs", "ciq")
                assert timed_out.missing_agencies == named
            else:
                assert escalations == []  # the order was complete when the clock ticked
        assert len(outcomes) == 1, outcomes


def test_no_withdrawal_after_the_escalation_one_asked_before_the_order_stands() -> None:
    """The order is still unfinished after its escalation: a withdrawal asked then is
    refused, as before it; one asked before the order, read only now, ends the life."""
    events, order = ordered()
    ordered_state, results = timed([*events, found(order, "customs")])
    state, _ = tick(ordered_state, LATER, RETENTION)
    assert state is not None and state.last_status is S.TIMED_OUT
    asked = factories.withdrawal(withdrawn_at=LATER)
    assert step(state, asked, DEADLINE, INSPECTION) == (state, [])
    early = factories.withdrawal(withdrawn_at=results[0].decided_at - timedelta(milliseconds=1))
    _, [withdrawn] = step(state, early, DEADLINE, INSPECTION)
    assert (withdrawn.sequence, withdrawn.status) == (3, S.WITHDRAWN)


def test_without_an_inspection_deadline_an_order_waits_for_ever() -> None:
    events, order = ordered()
    state, _ = run([*events, found(order, "customs")])  # fold without inspection_after
    assert state.deadline is None and due(state, RETENTION) == END_OF_TIME


def test_an_inspection_deadline_beyond_the_range_is_none() -> None:
    assert inspection_deadline(T0, INSPECTION) == T0 + INSPECTION
    assert inspection_deadline(T0, None) is None
    assert inspection_deadline(LATEST - INSPECTION, INSPECTION) is None
    assert inspection_deadline(LATEST - timedelta(days=1), timedelta(days=10**6)) is None


def test_whatever_the_times_and_the_reading_order_the_late_findings_decide_as_in_time() -> None:
    """Each agency records before or after the deadline, CIQ's finding compliant or a
    seizure; the aggregator reads the two findings and ticks in any order. At most one
    escalation, at the deadline, naming exactly the agencies (in the order's order) whose
    finding was not recorded before it or not read yet; and the deciding step is the one the
    join gives without any deadline, but for its number."""
    events, order = ordered()
    start, results = timed(events)
    deadline = results[0].decided_at + INSPECTION
    for customs_h, ciq_h in [(2, 3), (2, 60), (50, 3), (50, 60)]:
        for ciq in (found(order, "ciq", hours=ciq_h), fault(order, "ciq", Measure.SEIZURE, ciq_h)):
            customs = found(order, "customs", hours=customs_h)
            _, baseline = run([*events, customs, ciq])
            expected = baseline[-1].model_dump(exclude={"result_id", "sequence"})
            for reading in permutations([customs, ciq, "tick"]):
                _, steps = read(start, list(reading))
                *escalations, decided = steps
                assert decided.model_dump(exclude={"result_id", "sequence"}) == expected
                assert decided.sequence == 2 + len(escalations)
                ticked = reading.index("tick")
                silent = tuple(
                    f.agency
                    for f in (customs, ciq)
                    if f.recorded_at >= deadline or reading.index(f) > ticked
                )
                if ticked < 2:  # the order was incomplete when the clock ticked
                    [timed_out] = escalations
                    assert timed_out.decided_at == deadline
                    assert timed_out.missing_agencies == silent, (customs_h, ciq_h, reading)
                else:
                    assert escalations == []
