"""The aggregator's join: any arrival order, duplicates ignored, precedence, deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import permutations

from hypothesis import given
from hypothesis import strategies as st

from services.aggregator.join import (
    CLOCK_SLACK,
    EARLIEST,
    LATEST,
    admit,
    check,
    decided_at,
    due,
    expire,
    fold,
    stale,
    step,
    tick,
)
from services.aggregator.table import JoinTable
from singlewindow.events import (
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
RETENTION = timedelta(days=7)
KEPT = RETENTION + CLOCK_SLACK
ALL = ("customs", "ciq", "port")
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
Event = DeclarationSubmitted | AgencyVerdict


def run(events: list[Event]) -> tuple[JoinState, list[ClearanceResult]]:
    state, results = fold(events, DEADLINE)
    assert state is not None
    return state, results


def verdict(agency: str, decision: Decision, *checks: str, at: int = 1) -> AgencyVerdict:
    return factories.verdict(
        agency=agency,
        decision=decision,
        checks=tuple(InspectionCheck(agency=agency, check=c, item=1) for c in checks),
        total_duties=Decimal("99.50") if agency == "customs" else Decimal("0"),
        decided_at=factories.T0 + timedelta(seconds=at),
    )


def submitted(*agencies: str) -> DeclarationSubmitted:
    return factories.declaration(required_agencies=agencies)


def declared_at(at: datetime) -> DeclarationSubmitted:
    """A submission at any instant, unvalidated: what an SDK that checks no range decodes."""
    return submitted(*ALL).model_copy(update={"submitted_at": at})


def ruled_at(agency: str, at: datetime) -> AgencyVerdict:
    """A verdict at any instant, unvalidated."""
    return factories.verdict(agency=agency).model_copy(update={"decided_at": at})


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
        verdict("customs", Decision.INSPECT, "UNIT_VALUE"),
        verdict("ciq", Decision.CLEAR),
        verdict("port", Decision.INSPECT, "DG_SEGREGATION", at=3),
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
            verdict("customs", Decision.INSPECT, "UNIT_VALUE", "RANDOM_SAMPLE"),
            verdict("ciq", Decision.INSPECT, "QUARANTINE_SAMPLE"),
            verdict("port", Decision.CLEAR),
        ]
    )
    order = results[0].inspection
    assert order is not None
    assert {(c.agency, c.check) for c in order.checks} == {
        ("customs", "UNIT_VALUE"),
        ("customs", "RANDOM_SAMPLE"),
        ("ciq", "QUARANTINE_SAMPLE"),
    }


def test_waits_for_exactly_the_required_set() -> None:
    state, results = run([submitted("customs"), verdict("port", Decision.REJECT)])
    assert results == [] and state.missing == ("customs",)
    _, results = run(
        [
            submitted("customs"),
            verdict("port", Decision.REJECT),
            verdict("customs", Decision.CLEAR),
        ]
    )
    assert results[0].status is ClearanceStatus.RELEASED  # port was not asked
    assert [d.agency for d in results[0].decisions] == ["customs"]


def test_deadline_times_out_naming_the_missing_agencies_then_nothing_more() -> None:
    state, _ = run([submitted(*ALL), verdict("ciq", Decision.CLEAR)])
    assert expire(state, factories.T0 + DEADLINE - timedelta(milliseconds=1))[1] == []
    state, results = expire(state, factories.T0 + DEADLINE)
    assert results[0].status is ClearanceStatus.TIMED_OUT
    assert results[0].missing_agencies == ("customs", "port")
    assert results[0].decided_at == factories.T0 + DEADLINE
    for late in (verdict("customs", Decision.CLEAR), verdict("port", Decision.CLEAR)):
        state, out = step(state, late, DEADLINE)
        assert out == []
    assert expire(state, factories.T0 + 2 * DEADLINE)[1] == []


def test_verdicts_before_the_declaration_wait_and_never_time_out_alone() -> None:
    state, results = run([verdict("customs", Decision.CLEAR)])
    assert results == [] and state.deadline is None
    assert expire(state, factories.T0 + 100 * DEADLINE)[1] == []


# --- totality: every decodable event, every instant ---------------------------------------


def test_a_submission_at_the_end_of_time_is_refused_and_step_does_not_raise() -> None:
    hostile = declared_at(END_OF_TIME)
    assert "outside" in (check(hostile, DEADLINE) or "")
    assert step(None, hostile, DEADLINE) == (None, [])
    state, _ = run([verdict("customs", Decision.CLEAR)])
    assert step(state, hostile, DEADLINE) == (state, [])  # ignored, the join waits on


def test_event_times_and_their_deadlines_must_lie_in_the_sane_range() -> None:
    for at, ok in [
        (EARLIEST - timedelta(milliseconds=1), False),
        (EARLIEST, True),
        (LATEST - DEADLINE - timedelta(milliseconds=1), True),
        (LATEST - DEADLINE, False),  # its deadline, or timeout, would be out of range
        (datetime(1970, 1, 1, tzinfo=UTC), False),
    ]:
        assert (check(declared_at(at), DEADLINE) is None) is ok, at
        assert (check(ruled_at("port", at), DEADLINE) is None) is ok, at


def test_a_deadline_that_does_not_fit_a_datetime_is_refused() -> None:
    event = declared_at(LATEST - timedelta(days=1))
    assert "outside" in (check(event, timedelta(days=10**6)) or "")
    assert step(None, event, timedelta(days=10**6)) == (None, [])


instants = st.datetimes(timezones=st.just(UTC))


@given(
    st.lists(st.tuples(st.integers(0, 3), instants), min_size=1, max_size=6),
    instants,
    st.sampled_from([DEADLINE, timedelta(days=10**5)]),
)
def test_step_due_and_tick_never_raise(
    events: list[tuple[int, datetime]], now: datetime, deadline_after: timedelta
) -> None:
    inputs: list[Event] = []
    for kind, at in events:
        if kind == 0:
            inputs.append(declared_at(at))
        else:
            inputs.append(ruled_at(ALL[kind - 1], at))
    state, results = fold(inputs, deadline_after)
    assert len(results) <= 1
    if state is not None:
        due(state, RETENTION)
        tick(state, now, RETENTION)


# --- staleness: a late duplicate submission never decides twice ---------------------------


def test_a_submission_older_than_the_retention_is_stale_a_verdict_never() -> None:
    event = factories.declaration()
    assert stale(event, factories.T0 + RETENTION - timedelta(milliseconds=1), RETENTION) is None
    assert "stale" in (stale(event, factories.T0 + RETENTION, RETENTION) or "")
    assert stale(factories.verdict(), factories.T0 + 100 * RETENTION, RETENTION) is None
    assert admit(event, factories.T0 + RETENTION, DEADLINE, RETENTION) is not None
    hostile = declared_at(END_OF_TIME)
    assert "outside" in (admit(hostile, factories.T0, DEADLINE, RETENTION) or "")


@given(st.permutations(range(4)), st.integers(0, 3), st.integers(-3600, 3600))
def test_once_a_state_is_dropped_its_declaration_is_stale(
    order: list[int], late: int, skew_s: int
) -> None:
    """Whatever the order and the agencies' clocks (decided before or after the submission),
    a duplicate submission arriving after the state was dropped is refused as stale."""
    submission = submitted(*ALL)
    events: list[Event] = [
        submission,
        *(verdict(a, Decision.CLEAR, at=max(1, skew_s + 60 * i)) for i, a in enumerate(ALL)),
    ]
    inputs = [events[i] for i in order][: late + 1]
    state, _ = run(inputs)
    now = due(state, RETENTION)
    dropped: JoinState | None = state
    while dropped is not None:  # tick until the state is gone, as the service does
        now = max(now, due(dropped, RETENTION))
        dropped, _ = tick(dropped, now, RETENTION)
    if submission in inputs:
        assert stale(submission, now, RETENTION) is not None


# --- orphans: verdicts for no declaration expire, without a result -----------------------


def test_an_orphan_is_dropped_after_its_window_without_a_result() -> None:
    state, _ = run([verdict("port", Decision.CLEAR, at=5), verdict("ciq", Decision.CLEAR)])
    window_end = factories.T0 + timedelta(seconds=1) + KEPT  # from the earliest verdict
    assert due(state, RETENTION) == window_end
    assert tick(state, window_end - timedelta(milliseconds=1), RETENTION) == (state, [])
    assert tick(state, window_end, RETENTION) == (None, [])


def test_a_declaration_within_the_orphan_window_still_joins() -> None:
    state, _ = run([verdict(a, Decision.CLEAR) for a in ALL])
    latest_admitted = factories.T0 + RETENTION - timedelta(milliseconds=1)
    assert latest_admitted < due(state, RETENTION)  # the orphan outlives its declaration's
    assert tick(state, latest_admitted, RETENTION) == (state, [])
    assert admit(submitted(*ALL), latest_admitted, DEADLINE, RETENTION) is None
    state, results = step(state, submitted(*ALL), DEADLINE)
    assert [r.status for r in results] == [ClearanceStatus.RELEASED]


# --- retention: decided states are dropped, undecided ones time out first -----------------


def test_a_decided_state_is_dropped_after_its_retention() -> None:
    state, (result,) = run([submitted("customs"), verdict("customs", Decision.CLEAR)])
    assert decided_at(state) == result.decided_at
    assert due(state, RETENTION) == result.decided_at + KEPT
    assert tick(state, result.decided_at + KEPT - timedelta(milliseconds=1), RETENTION) == (
        state,
        [],
    )
    assert tick(state, result.decided_at + KEPT, RETENTION) == (None, [])


def test_a_timeout_is_kept_for_the_retention_from_its_deadline() -> None:
    state, _ = run([submitted(*ALL)])
    assert due(state, RETENTION) == factories.T0 + DEADLINE
    timed_out, (result,) = tick(state, factories.T0 + DEADLINE, RETENTION)
    assert timed_out is not None and result.status is ClearanceStatus.TIMED_OUT
    assert decided_at(timed_out) == result.decided_at == factories.T0 + DEADLINE
    assert due(timed_out, RETENTION) == factories.T0 + DEADLINE + KEPT


def test_after_a_long_outage_a_timeout_is_decided_and_dropped_in_one_tick() -> None:
    state, _ = run([submitted(*ALL)])
    dropped, results = tick(state, factories.T0 + 2 * RETENTION, RETENTION)
    assert dropped is None
    assert [r.status for r in results] == [ClearanceStatus.TIMED_OUT]


def test_states_step_never_writes_are_settled_at_once() -> None:
    empty = JoinState(declaration_id="D-EMPTY")
    assert tick(empty, EARLIEST, RETENTION) == (None, [])
    no_deadline = factories.join_state(deadline=None)
    assert tick(no_deadline, EARLIEST, RETENTION) == (None, [])


# --- the index: a tick examines what is due, not what is kept ----------------------------


def decided_table(n: int) -> JoinTable:
    """``n`` decided states well within their retention, plus three undecided ones."""
    states = [factories.join_state(f"D-{i}", decided=ClearanceStatus.RELEASED) for i in range(n)]
    waiting = [
        factories.join_state(f"W-{i}", deadline=factories.T0 + timedelta(seconds=i))
        for i in range(3)
    ]
    return JoinTable(RETENTION, [*states, *waiting])


def test_a_tick_examines_the_due_states_whatever_the_number_of_decided_ones() -> None:
    examined = []
    for n in (10, 1_000, 10_000):
        table = decided_table(n)
        assert table.expired(factories.T0 - timedelta(seconds=1)) == ({}, [])
        assert table.examined == 0  # nothing due: only the head of the index was looked at
        changes, results = table.expired(factories.T0 + timedelta(seconds=2))
        assert sorted(changes) == ["W-0", "W-1", "W-2"] and len(results) == 3
        examined.append(table.examined)
    assert examined == [3, 3, 3]


def test_the_table_applies_committed_changes_and_skips_superseded_entries() -> None:
    table = JoinTable(RETENTION)
    state, _ = run([submitted(*ALL)])
    table.apply({state.declaration_id: state})
    state, (result,) = run([submitted(*ALL), *(verdict(a, Decision.CLEAR) for a in ALL)])
    table.apply({state.declaration_id: state})  # decided before its deadline
    assert table.expired(factories.T0 + DEADLINE) == ({}, [])  # the deadline entry is stale
    assert table.examined == 1
    changes, results = table.expired(result.decided_at + KEPT)
    assert changes == {state.declaration_id: None} and results == []
    table.apply(changes)
    assert len(table) == 0 and table.next_due() is None


def test_a_state_whose_due_time_comes_back_is_settled_once() -> None:
    table = JoinTable(RETENTION)
    events = [
        verdict("customs", Decision.CLEAR, at=5),
        submitted("customs", "port"),
        verdict("port", Decision.CLEAR, at=1),
    ]
    state = None
    for event in events:  # orphan (due v+kept), declared (deadline), decided (v+kept again)
        state, _ = step(state, event, DEADLINE)
        assert state is not None
        table.apply({state.declaration_id: state})
    assert state is not None and state.decided is ClearanceStatus.RELEASED
    changes, _ = table.expired(END_OF_TIME)
    assert changes == {state.declaration_id: None}
    assert table.examined == 3  # two entries of the same due time, one settled


def test_a_tick_settles_at_most_its_limit_and_the_rest_next_time() -> None:
    table = decided_table(0)
    changes, _ = table.expired(factories.T0 + DEADLINE, limit=2)
    assert len(changes) == 2
    table.apply(changes)
    changes, _ = table.expired(factories.T0 + DEADLINE, limit=2)
    assert list(changes) == ["W-2"]


def test_live_states_are_bounded_by_the_retention_not_the_history() -> None:
    """What a restore reads once the changelog is compacted: about rate x retention states,
    whether the aggregator has run for ten days or for forty."""
    live = []
    for days in (10, 40):
        table = JoinTable(RETENTION)
        for day in range(days):
            now = factories.T0 + timedelta(days=day)
            for i in range(5):
                key = f"D-{day}-{i}"
                state = factories.join_state(
                    key,
                    submitted_at=now,
                    deadline=now + DEADLINE,
                    verdicts=(factories.verdict(key, decided_at=now),),
                    decided=ClearanceStatus.RELEASED,
                )
                table.apply({key: state})
            table.apply(table.expired(now)[0])
        live.append(len(table))
    assert live[0] == live[1] == 5 * (RETENTION.days + 1)  # a week, and today
