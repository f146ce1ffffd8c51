"""The join: a pure state machine ``step(state, event) -> (state, outputs)``.

Per declaration id it collects the submitted declaration (which names the agencies that must
rule) and the verdicts, in any arrival order, ignoring duplicates (keyed by agency, never
counted). When the required set is complete it emits one ClearanceResult; at the deadline
it emits TIMED_OUT naming the missing agencies. After a decision the state stays ``decided``,
so late or duplicate events change nothing: one result per declaration decision.
Precedence: REJECT > HOLD > INSPECT > CLEAR. Deterministic: no clock, no I/O (the clock's
reading ``now`` is an argument).

Total and bounded:

- ``check`` names what no join can take: an event time, or the deadline it implies, outside
  ``[EARLIEST, LATEST)``, so no arithmetic overflows and every time a result carries is one
  the events' models accept. ``step`` ignores such an event (it never raises on a decodable
  one); the service dead-letters it before it gets there.
- Every state knows when it next needs the clock (``due``): an undecided declaration at its
  deadline, an orphan (verdicts, no declaration) and a decided state at the end of their
  retention. ``tick`` then times the declaration out, or drops the state (a changelog
  tombstone, never a result).
- Retention is measured in event time: from the decision's ``decided_at`` for a decided
  state, from the earliest verdict for an orphan, plus ``CLOCK_SLACK``. A declaration
  submitted more than the retention before ``now`` is ``stale`` and never joined: its state
  may have been dropped, so joining it again could give a second result: the service
  dead-letters it (visible, re-drivable), never decides it. Since a decision never precedes
  its submission, every dropped state's declaration is stale by then; and as agencies rule
  after the submission (clocks that disagree by up to ``CLOCK_SLACK`` included), an orphan
  is dropped only when its declaration, were it to come, would be stale too: dropping an
  orphan never changes an outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from singlewindow.events import (
    EARLIEST,
    LATEST,
    AgencyDecision,
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    InspectionOrder,
    JoinState,
)
from singlewindow.verdicts import combine

RESULT_NAMESPACE = uuid.UUID("6f1c6a51-5d39-4b8e-9a0e-2b6f0d3c9e41")
STATUS_OF = {
    Decision.REJECT: ClearanceStatus.REJECTED,
    Decision.HOLD: ClearanceStatus.HELD,
    Decision.INSPECT: ClearanceStatus.INSPECTION_REQUIRED,
    Decision.CLEAR: ClearanceStatus.RELEASED,
}
# EARLIEST, LATEST: the range of every instant of the platform (singlewindow.events validates
# it at decoding; checked again here so the join is total): far from datetime.max, so a
# deadline or a retention added to a time in range never overflows
END_OF_TIME = datetime.max.replace(tzinfo=UTC)
# how far two aggregator instances' clocks may disagree: states are kept this much longer
# than the retention, so a stale submission is recognised whichever instance sees it
CLOCK_SLACK = timedelta(minutes=5)

Input = DeclarationSubmitted | AgencyVerdict


def _plus(at: datetime, delta: timedelta) -> datetime:
    """``at + delta``, or the end of time where that does not fit: never raises."""
    try:
        return at + delta
    except OverflowError:
        return END_OF_TIME


def event_time(event: Input) -> datetime:
    """When the event happened: a declaration's submission, a verdict's decision."""
    return event.submitted_at if isinstance(event, DeclarationSubmitted) else event.decided_at


def check(event: Input, deadline_after: timedelta) -> str | None:
    """Why no join can take this event, or None. Pure and independent of the clock, so the
    live join and an auditor's ``fold`` agree on it."""
    name = "submitted_at" if isinstance(event, DeclarationSubmitted) else "decided_at"
    at, span = event_time(event), f"[{EARLIEST:%Y-%m-%d}, {LATEST:%Y-%m-%d})"
    if not EARLIEST <= at < LATEST:
        return f"{name} {at.isoformat()} outside {span}"
    if _plus(at, deadline_after) >= LATEST:  # a deadline (or timeout) beyond the range
        return f"{name} {at.isoformat()} + deadline {deadline_after} outside {span}"
    return None


def stale(event: Input, now: datetime, retention: timedelta) -> str | None:
    """Why a submission is too old to join, or None: submitted ``retention`` or more before
    ``now``, its join may already be decided and dropped, so it is refused (dead-lettered by
    the service) rather than decided a second time. Verdicts are never stale: a late one
    only makes an orphan, which ``tick`` drops."""
    if isinstance(event, DeclarationSubmitted) and _plus(event.submitted_at, retention) <= now:
        return (
            f"stale: submitted_at {event.submitted_at.isoformat()} is older than the "
            f"retention ({retention}) at {now.isoformat()}; its join may have been dropped"
        )
    return None


def admit(
    event: Input, now: datetime, deadline_after: timedelta, retention: timedelta
) -> str | None:
    """Why the aggregator must dead-letter this event rather than join it, or None."""
    return check(event, deadline_after) or stale(event, now, retention)


def joint_status(decisions: list[Decision]) -> ClearanceStatus:
    """The consolidated status of a complete set of decisions."""
    return STATUS_OF[combine(decisions)]


def decide(state: JoinState, at: datetime, timed_out: bool = False) -> ClearanceResult:
    """The result for a state: complete, or at its deadline."""
    order = {agency: i for i, agency in enumerate(state.required_agencies or ())}
    required = sorted(
        (v for v in state.verdicts if v.agency in order), key=lambda v: order[v.agency]
    )
    if timed_out:
        status = ClearanceStatus.TIMED_OUT
    else:
        status = joint_status([v.decision for v in required])
    inspection = None
    if status is ClearanceStatus.INSPECTION_REQUIRED:
        checks = {
            (c.item or 0, order.get(c.agency, len(order)), c.check): c
            for v in required
            if v.decision is Decision.INSPECT
            for c in v.checks
        }
        inspection = InspectionOrder(
            order_id=str(uuid.uuid5(RESULT_NAMESPACE, f"{state.declaration_id}/inspection")),
            checks=tuple(checks[k] for k in sorted(checks)),
        )
    return ClearanceResult(
        result_id=str(uuid.uuid5(RESULT_NAMESPACE, f"{state.declaration_id}/result")),
        declaration_id=state.declaration_id,
        status=status,
        decisions=tuple(
            AgencyDecision(
                agency=v.agency, decision=v.decision, verdict_id=v.verdict_id, charges=v.charges
            )
            for v in required
        ),
        missing_agencies=state.missing if timed_out else (),
        inspection=inspection,
        total_duties=sum((v.total_duties for v in required), Decimal("0")),
        decided_at=at,
    )


def _latest(state: JoinState) -> datetime:
    """The latest event time of a state, whatever the arrival order (EARLIEST if none)."""
    times = (state.submitted_at, *(v.decided_at for v in state.verdicts))
    return max((t for t in times if t is not None), default=EARLIEST)


def decided_at(state: JoinState) -> datetime | None:
    """When a decided state was decided (its result's ``decided_at``), derived from the state
    alone: the deadline for a timeout, else the latest event time. None while undecided."""
    if state.decided is None:
        return None
    if state.decided is ClearanceStatus.TIMED_OUT and state.deadline is not None:
        return state.deadline
    return _latest(state)


def step(
    state: JoinState | None, event: Input, deadline_after: timedelta
) -> tuple[JoinState | None, list[ClearanceResult]]:
    """Apply one event; the result, if this event completes the required set. An event that
    fails ``check`` changes nothing (the state is returned as given, None included)."""
    if check(event, deadline_after) is not None:
        return state, []
    state = state or JoinState(declaration_id=event.declaration_id)
    if state.decided is not None:
        return state, []
    if isinstance(event, DeclarationSubmitted):
        if state.required_agencies is not None:
            return state, []  # a duplicate submission
        state = state.model_copy(
            update={
                "required_agencies": tuple(event.required_agencies),
                "deadline": event.submitted_at + deadline_after,
                "submitted_at": event.submitted_at,
            }
        )
    else:
        if state.verdict_of(event.agency) is not None:
            return state, []  # a duplicate verdict: ignored, not counted
        state = state.model_copy(update={"verdicts": (*state.verdicts, event)})
    if state.submitted_at is None or state.missing:
        return state, []
    # the latest event time, whatever the arrival order: an auditor recomputes the same
    result = decide(state, _latest(state))
    return state.model_copy(update={"decided": result.status}), [result]


def expire(state: JoinState, now: datetime) -> tuple[JoinState, list[ClearanceResult]]:
    """At or after the deadline, an undecided declaration times out."""
    if state.decided is not None or state.deadline is None or now < state.deadline:
        return state, []
    result = decide(state, state.deadline, timed_out=True)
    return state.model_copy(update={"decided": result.status}), [result]


def due(state: JoinState, retention: timedelta) -> datetime:
    """When ``tick`` next has something to do with this state (never raises):

    - undecided with its declaration: the deadline;
    - an orphan (verdicts, no declaration): the earliest verdict's time + retention + slack;
    - decided: its ``decided_at`` + retention + slack;
    - anything ``step`` never writes (empty, or declared without a deadline): at once.
    """
    kept = retention + CLOCK_SLACK
    if state.decided is not None:
        return _plus(decided_at(state) or EARLIEST, kept)
    if state.submitted_at is not None:
        return state.deadline or EARLIEST
    if state.verdicts:
        return _plus(min(v.decided_at for v in state.verdicts), kept)
    return EARLIEST


def tick(
    state: JoinState, now: datetime, retention: timedelta
) -> tuple[JoinState | None, list[ClearanceResult]]:
    """What the clock does to a state at ``now``: nothing before it is ``due``; then an
    undecided declaration times out, and an orphan or a decided state past its retention is
    dropped (None: tombstone it, no result, there is nothing to say about it)."""
    if now < due(state, retention):
        return state, []
    results: list[ClearanceResult] = []
    if state.decided is None and state.deadline is not None:
        state, results = expire(state, now)
        if now < due(state, retention):
            return state, results
    return None, results


def fold(
    events: Iterable[Input], deadline_after: timedelta
) -> tuple[JoinState | None, list[ClearanceResult]]:
    """Every event of one declaration through ``step``, in order: what an auditor recomputes."""
    state: JoinState | None = None
    results: list[ClearanceResult] = []
    for event in events:
        state, out = step(state, event, deadline_after)
        results += out
    return state, results
