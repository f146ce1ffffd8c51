"""The joint inspection in the join (services.aggregator.join and .inspection): one order per
declaration version, each agency's findings against it, then release, a sanction, a
remediation or a conditional release that a laboratory result confirms or recalls.

The car of tests/unit/test_lifecycle.py collects 60,813.00 CNY (duty 24,795.00, consumption
tax 10,005.00, VAT 26,013.00). Customs and CIQ both order checks here; the port clears.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import permutations

from services.aggregator.inspection import outcome
from singlewindow.events import (
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    FindingOutcome,
    InspectionCheck,
    InspectionFinding,
    Measure,
    Reason,
    TaxKind,
    TaxTotal,
)
from tests import factories
from tests.unit.test_lifecycle import CAR, T0, declared, run, statuses

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
    from services.aggregator.join import step

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
