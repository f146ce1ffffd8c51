"""The join: a pure state machine ``step(state, event) -> (state, outputs)``.

Per declaration id it collects the submitted declaration (which names the agencies that must
rule) and the verdicts, in any arrival order, ignoring duplicates (keyed by agency, never
counted). When the required set is complete it emits one ClearanceResult; at the deadline
it emits TIMED_OUT naming the missing agencies. After a decision the state stays ``decided``,
so late or duplicate events change nothing: one result per declaration decision.
Precedence: REJECT > HOLD > INSPECT > CLEAR. Deterministic: no clock, no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from singlewindow.events import (
    Agency,
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
AGENCY_ORDER = (Agency.CUSTOMS, Agency.CIQ, Agency.PORT)
STATUS_OF = {
    Decision.REJECT: ClearanceStatus.REJECTED,
    Decision.HOLD: ClearanceStatus.HELD,
    Decision.INSPECT: ClearanceStatus.INSPECTION_REQUIRED,
    Decision.CLEAR: ClearanceStatus.RELEASED,
}


def _order(agency: Agency) -> int:
    return AGENCY_ORDER.index(agency) if agency in AGENCY_ORDER else len(AGENCY_ORDER)


def joint_status(decisions: list[Decision]) -> ClearanceStatus:
    """The consolidated status of a complete set of decisions."""
    return STATUS_OF[combine(decisions)]


def decide(state: JoinState, at: datetime, timed_out: bool = False) -> ClearanceResult:
    """The result for a state: complete, or at its deadline."""
    verdicts = sorted(state.verdicts, key=lambda v: _order(v.agency))
    required = [v for v in verdicts if v.agency in (state.required_agencies or ())]
    if timed_out:
        status = ClearanceStatus.TIMED_OUT
    else:
        status = joint_status([v.decision for v in required])
    inspection = None
    if status is ClearanceStatus.INSPECTION_REQUIRED:
        checks = {
            (c.item or 0, _order(c.agency), c.check): c
            for v in required
            if v.decision is Decision.INSPECT
            for c in v.checks
        }
        inspection = InspectionOrder(
            order_id=str(uuid.uuid5(RESULT_NAMESPACE, f"{state.declaration_id}/inspection")),
            checks=tuple(checks[k] for k in sorted(checks)),
        )
    customs = state.verdict_of(Agency.CUSTOMS)
    return ClearanceResult(
        result_id=str(uuid.uuid5(RESULT_NAMESPACE, f"{state.declaration_id}/result")),
        declaration_id=state.declaration_id,
        status=status,
        decisions=tuple(
            AgencyDecision(agency=v.agency, decision=v.decision, verdict_id=v.verdict_id)
            for v in required
        ),
        missing_agencies=state.missing if timed_out else (),
        inspection=inspection,
        total_duties=customs.total_duties if customs else Decimal("0"),
        decided_at=at,
    )


def step(
    state: JoinState | None,
    event: DeclarationSubmitted | AgencyVerdict,
    deadline_after: timedelta,
) -> tuple[JoinState, list[ClearanceResult]]:
    """Apply one event; the result, if this event completes the required set."""
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
    at = max([state.submitted_at, *(v.decided_at for v in state.verdicts)])
    result = decide(state, at)
    return state.model_copy(update={"decided": result.status}), [result]


def expire(state: JoinState, now: datetime) -> tuple[JoinState, list[ClearanceResult]]:
    """At or after the deadline, an undecided declaration times out."""
    if state.decided is not None or state.deadline is None or now < state.deadline:
        return state, []
    result = decide(state, state.deadline, timed_out=True)
    return state.model_copy(update={"decided": result.status}), [result]


def fold(
    events: Iterable[DeclarationSubmitted | AgencyVerdict], deadline_after: timedelta
) -> tuple[JoinState | None, list[ClearanceResult]]:
    """Every event of one declaration through ``step``, in order: what an auditor recomputes."""
    state: JoinState | None = None
    results: list[ClearanceResult] = []
    for event in events:
        state, out = step(state, event, deadline_after)
        results += out
    return state, results
