"""The aggregator's join: any arrival order, duplicates ignored, precedence, deadlines."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import permutations

from hypothesis import given
from hypothesis import strategies as st

from services.aggregator.join import expire, step
from singlewindow.events import (
    Agency,
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    InspectionCheck,
    JoinState,
)
from tests import factories

DEADLINE = timedelta(seconds=120)
ALL = (Agency.CUSTOMS, Agency.CIQ, Agency.PORT)
Event = DeclarationSubmitted | AgencyVerdict


def run(events: list[Event]) -> tuple[JoinState, list[ClearanceResult]]:
    state, results = None, []
    for event in events:
        state, out = step(state, event, DEADLINE)
        results += out
    assert state is not None
    return state, results


def verdict(agency: Agency, decision: Decision, *checks: str, at: int = 1) -> AgencyVerdict:
    return factories.verdict(
        agency=agency,
        decision=decision,
        checks=tuple(InspectionCheck(agency=agency, check=c, item=1) for c in checks),
        total_duties=Decimal("99.50") if agency is Agency.CUSTOMS else Decimal("0"),
        decided_at=factories.T0 + timedelta(seconds=at),
    )


def submitted(*agencies: Agency) -> DeclarationSubmitted:
    return factories.declaration(required_agencies=agencies)


def test_all_clear_is_released_once_with_duties_from_customs() -> None:
    _, results = run([submitted(*ALL), *(verdict(a, Decision.CLEAR) for a in ALL)])
    assert [r.status for r in results] == [ClearanceStatus.RELEASED]
    assert results[0].total_duties == Decimal("99.50")
    assert [d.agency for d in results[0].decisions] == list(ALL)


@given(st.permutations(range(4)), st.lists(st.integers(0, 3), max_size=6))
def test_any_arrival_order_with_duplicates_gives_one_identical_result(
    order: list[int], dups: list[int]
) -> None:
    events: list[Event] = [
        submitted(*ALL),
        verdict(Agency.CUSTOMS, Decision.INSPECT, "UNIT_VALUE"),
        verdict(Agency.CIQ, Decision.CLEAR),
        verdict(Agency.PORT, Decision.INSPECT, "DG_SEGREGATION", at=3),
    ]
    reference = run(events)[1]
    shuffled = [events[i] for i in order] + [events[i] for i in dups]
    assert run(shuffled)[1] == reference
    assert len(reference) == 1


def test_precedence_reject_over_hold_over_inspect_over_clear() -> None:
    cases = {
        (Decision.REJECT, Decision.HOLD, Decision.INSPECT): ClearanceStatus.REJECTED,
        (Decision.CLEAR, Decision.HOLD, Decision.INSPECT): ClearanceStatus.HELD,
        (Decision.INSPECT, Decision.CLEAR, Decision.CLEAR): ClearanceStatus.INSPECTION_REQUIRED,
        (Decision.CLEAR, Decision.CLEAR, Decision.CLEAR): ClearanceStatus.RELEASED,
    }
    for decisions, expected in cases.items():
        for order in permutations(range(3)):
            events = [verdict(ALL[i], decisions[i]) for i in order]
            _, results = run([submitted(*ALL), *events])
            assert results[0].status is expected, (decisions, order)


def test_several_inspections_become_one_joint_order() -> None:
    _, results = run(
        [
            submitted(*ALL),
            verdict(Agency.CUSTOMS, Decision.INSPECT, "UNIT_VALUE", "RANDOM_SAMPLE"),
            verdict(Agency.CIQ, Decision.INSPECT, "QUARANTINE_SAMPLE"),
            verdict(Agency.PORT, Decision.CLEAR),
        ]
    )
    order = results[0].inspection
    assert order is not None
    assert {(c.agency, c.check) for c in order.checks} == {
        (Agency.CUSTOMS, "UNIT_VALUE"),
        (Agency.CUSTOMS, "RANDOM_SAMPLE"),
        (Agency.CIQ, "QUARANTINE_SAMPLE"),
    }


def test_waits_for_exactly_the_required_set() -> None:
    state, results = run([submitted(Agency.CUSTOMS), verdict(Agency.PORT, Decision.REJECT)])
    assert results == [] and state.missing == (Agency.CUSTOMS,)
    _, results = run(
        [
            submitted(Agency.CUSTOMS),
            verdict(Agency.PORT, Decision.REJECT),
            verdict(Agency.CUSTOMS, Decision.CLEAR),
        ]
    )
    assert results[0].status is ClearanceStatus.RELEASED  # port was not asked
    assert [d.agency for d in results[0].decisions] == [Agency.CUSTOMS]


def test_deadline_times_out_naming_the_missing_agencies_then_nothing_more() -> None:
    state, _ = run([submitted(*ALL), verdict(Agency.CIQ, Decision.CLEAR)])
    assert expire(state, factories.T0 + DEADLINE - timedelta(milliseconds=1))[1] == []
    state, results = expire(state, factories.T0 + DEADLINE)
    assert results[0].status is ClearanceStatus.TIMED_OUT
    assert results[0].missing_agencies == (Agency.CUSTOMS, Agency.PORT)
    assert results[0].decided_at == factories.T0 + DEADLINE
    for late in (verdict(Agency.CUSTOMS, Decision.CLEAR), verdict(Agency.PORT, Decision.CLEAR)):
        state, out = step(state, late, DEADLINE)
        assert out == []
    assert expire(state, factories.T0 + 2 * DEADLINE)[1] == []


def test_verdicts_before_the_declaration_wait_and_never_time_out_alone() -> None:
    state, results = run([verdict(Agency.CUSTOMS, Decision.CLEAR)])
    assert results == [] and state.deadline is None
    assert expire(state, factories.T0 + 100 * DEADLINE)[1] == []
