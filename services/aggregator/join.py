"""The join: a pure state machine ``step(state, event) -> (state, outputs)``.

Two kinds of declaration go through it. A declaration *without versions* (lodged before
amendments existed: ``version`` null) ends at its first result, as described below. A
*versioned* declaration (see "The life of a versioned declaration" at the end of this text)
goes on: payment, amendments, withdrawal, a late verdict after an escalation.

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

The life of a versioned declaration (one result per step, numbered by ``sequence``):

- when every agency asked has ruled on the current version, the consolidated answer:
  REJECTED (final), HELD, INSPECTION_REQUIRED, or, when all cleared, AWAITING_PAYMENT with a
  payment notice if customs collects anything (:mod:`services.aggregator.payment`), else
  RELEASED (final);
- INSPECTION_REQUIRED carries the version's one inspection order; each agency it names records
  its findings against it at the inspection station, and once all have, the findings decide
  (:mod:`services.aggregator.inspection`): SANCTIONED (final), REMEDIATION_REQUIRED until
  the fault is put right, or on to duties and release as if every agency had cleared, the
  release conditional (CONDITIONALLY_RELEASED) while a laboratory result is awaited, which
  then confirms it (RELEASED) or recalls the goods (RECALLED, final);
- a payment or guarantee that settles the notice releases it (RELEASED with its settlement);
  one that does not gives AWAITING_PAYMENT again with what is still outstanding; a draw on a
  general guarantee secures it as a bank guarantee does, and a consolidated repayment to
  that guarantee (汇总征税) is no payment of the notice: ignored, before release or after;
- an amendment (a DeclarationSubmitted with a higher version) starts the assessment of that
  version afresh: verdicts on older versions no longer count, and neither does an older
  notice; an older or repeated version is ignored, and so is any once the version has an
  inspection order (one inspection) or the goods are released;
- a withdrawal ends it with WITHDRAWN (once its declaration is seen; not once released, nor
  when asked while an inspection ordered is not finished: the customs rules on changing and
  withdrawing declarations refuse it then);
- at the deadline, a version still missing verdicts is escalated: TIMED_OUT names the missing
  agencies, and the version is decided when they rule;
- at the inspection deadline (the order's time + ``inspection_after``), an order still missing
  the findings of an agency it names is escalated once: TIMED_OUT (at that deadline, as the
  verdicts' escalation is at theirs) names the agencies that had recorded no finding on it
  by then, in the order's agency order, and carries the order again (the trader and the
  agencies still see what is to be inspected); the findings recorded later still complete
  the order and decide as before, and a withdrawal is still refused while it is unfinished.
  An order completed in time clears the deadline, and REMEDIATION_REQUIRED (a fault to put
  right, waiting on one agency's re-inspection) has no deadline of its own.
- after release, a change only with customs' approval (报关单修改和撤销管理办法,
  :mod:`services.aggregator.afterrelease`): a version marked ``after_release`` (the intake
  routes it to customs alone) reopens a life RELEASED (or AMENDMENT_REFUSED, where the release
  before stands). Customs' CLEAR approves it: SUPPLEMENTARY_PAYMENT_DUE with a supplementary
  notice when it collects more than the release in force levied (RELEASED once it is
  settled), RELEASED with the ``refund`` when less, RELEASED when the same; any other
  decision refuses it (AMENDMENT_REFUSED). It has no deadline (nothing waits at the port).
  An ordinary amendment read after the release, one that raced it, is still ignored: the
  mark, not the state, tells a change after release, so an amendment the trader lodged for
  all agencies never becomes a request to customs alone.

Final states (RELEASED, REJECTED, WITHDRAWN, SANCTIONED, RECALLED, AMENDMENT_REFUSED) ignore
every later event but a change after release of a released life (RELEASED,
AMENDMENT_REFUSED) and the verdicts on it.
Every result's time is the time of the events it rests on, never the clock: for the
consolidated answer the latest time of the version's declaration and verdicts, after the
inspection the latest time of the findings that count, whatever their arrival order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.aggregator import afterrelease, inspection, payment
from singlewindow.events import (
    EARLIEST,
    FINAL_STATUSES,
    LATEST,
    RELEASED_STATUSES,
    REOPENABLE,
    AgencyDecision,
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    DeclarationWithdrawn,
    InspectionCheck,
    InspectionFinding,
    InspectionOrder,
    JoinState,
    PaymentConfirmed,
    PaymentKind,
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
SPAN = f"[{EARLIEST:%Y-%m-%d}, {LATEST:%Y-%m-%d})"  # formatted once: check runs per event
# how long an inspection order waits for every agency's findings before it is escalated (the
# aggregator's default, AGGREGATOR_INSPECTION_DEADLINE_SECONDS; an auditor's too)
INSPECTION_DEADLINE = timedelta(days=2)
# how far two aggregator instances' clocks may disagree: states are kept this much longer
# than the retention, so a stale submission is recognised whichever instance sees it
CLOCK_SLACK = timedelta(minutes=5)

Input = (
    DeclarationSubmitted
    | AgencyVerdict
    | DeclarationWithdrawn
    | PaymentConfirmed
    | InspectionFinding
)


def _plus(at: datetime, delta: timedelta) -> datetime:
    """``at + delta``, or the end of time where that does not fit: never raises."""
    try:
        return at + delta
    except OverflowError:
        return END_OF_TIME


TIME_FIELD = {
    DeclarationSubmitted: "submitted_at",
    AgencyVerdict: "decided_at",
    DeclarationWithdrawn: "withdrawn_at",
    PaymentConfirmed: "paid_at",
    InspectionFinding: "recorded_at",
}


def event_time(event: Input) -> datetime:
    """When the event happened: a declaration's submission, a verdict's decision, a
    withdrawal's acceptance, a payment's value date, a finding's recording."""
    at: datetime = getattr(event, TIME_FIELD[type(event)])
    return at


def check(event: Input, deadline_after: timedelta) -> str | None:
    """Why no join can take this event, or None. Pure and independent of the clock, so the
    live join and an auditor's ``fold`` agree on it."""
    name = TIME_FIELD[type(event)]
    at = event_time(event)
    if not EARLIEST <= at < LATEST:
        return f"{name} {at.isoformat()} outside {SPAN}"
    if _plus(at, deadline_after) >= LATEST:  # a deadline (or timeout) beyond the range
        return f"{name} {at.isoformat()} + deadline {deadline_after} outside {SPAN}"
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


def _id(state: JoinState, what: str, sequence: int | None = None) -> str:
    """A deterministic id: as before versions for a declaration without them."""
    name = f"{state.declaration_id}/{what}"
    if state.version is not None:
        name += f"/{sequence}" if sequence is not None else f"/v{state.version}"
    return str(uuid.uuid5(RESULT_NAMESPACE, name))


def order_id(declaration_id: str, version: int) -> str:
    """The id of the one inspection order a declaration version can have (deterministic: the
    inspection station refuses a finding whose order, declaration and version disagree)."""
    return str(uuid.uuid5(RESULT_NAMESPACE, f"{declaration_id}/inspection/v{version}"))


def decide(state: JoinState, at: datetime, timed_out: bool = False) -> ClearanceResult:
    """The result for a state: complete, or at its deadline."""
    order = {agency: i for i, agency in enumerate(state.required_agencies or ())}
    required = sorted(
        (v for v in state.current if v.agency in order), key=lambda v: order[v.agency]
    )
    if timed_out:
        status = ClearanceStatus.TIMED_OUT
    else:
        status = joint_status([v.decision for v in required])
    inspection = None
    if status is ClearanceStatus.INSPECTION_REQUIRED:
        inspecting = [v for v in required if v.decision is Decision.INSPECT]
        if state.version is not None:  # the order names exactly the agencies that inspect
            inspecting = [_own_checks(v) for v in inspecting]
        checks = {
            (c.item or 0, order.get(c.agency, len(order)), c.check): c
            for v in inspecting
            for c in v.checks
        }
        inspection = InspectionOrder(
            order_id=_id(state, "inspection")
            if state.version is None
            else order_id(state.declaration_id, state.version),
            checks=tuple(checks[k] for k in sorted(checks)),
        )
    sequence = state.steps + 1
    return ClearanceResult(
        result_id=_id(state, "result", sequence),
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
        version=state.version,
        sequence=sequence,
        valuation_pending=state.valuation_pending and status is not ClearanceStatus.RELEASED,
    )


GENERIC_CHECK = "INSPECTION"


def _own_checks(verdict: AgencyVerdict) -> AgencyVerdict:
    """An INSPECT verdict with its own checks only, and a generic one if it named none: each
    agency named in an order records its findings, so an order must name exactly the agencies
    that asked for it (an SDK agency's verdict could name none, or another's)."""
    own = tuple(c for c in verdict.checks if c.agency == verdict.agency)
    if not own:
        own = (InspectionCheck(agency=verdict.agency, check=GENERIC_CHECK),)
    if own == verdict.checks:
        return verdict
    return verdict.model_copy(update={"checks": own})


def _latest(state: JoinState) -> datetime:
    """The latest time of the current version's declaration and verdicts, whatever the
    arrival order (EARLIEST if none)."""
    times = (state.submitted_at, *(v.decided_at for v in state.current))
    return max((t for t in times if t is not None), default=EARLIEST)


def decided_at(state: JoinState) -> datetime | None:
    """When a decided state was decided (its result's ``decided_at``), derived from the state
    alone: the deadline for a timeout, else the latest event time. None while undecided."""
    if state.decided is None:
        return None
    if state.version is not None:
        return state.last_event_at
    if state.decided is ClearanceStatus.TIMED_OUT and state.deadline is not None:
        return state.deadline
    return _latest(state)


def step(
    state: JoinState | None,
    event: Input,
    deadline_after: timedelta,
    inspection_after: timedelta | None = None,
) -> tuple[JoinState | None, list[ClearanceResult]]:
    """Apply one event; the result, if this event completes the required set. An event that
    fails ``check`` changes nothing (the state is returned as given, None included).

    ``inspection_after``: how long an inspection order waits for its findings before it is
    escalated (None: for ever). It only sets the order's deadline in the state, which
    ``tick`` reads; what ``step`` writes never depends on it."""
    if check(event, deadline_after) is not None:
        return state, []
    fresh = state is None
    state = state or JoinState(declaration_id=event.declaration_id)
    if state.decided is not None:
        return _released_life(state, event)
    if _versioned(state, event):
        after, results = _live(state, event, deadline_after, inspection_after)
        if fresh and not results and after == JoinState(declaration_id=event.declaration_id):
            return None, []  # an event that changed nothing leaves no state behind
        return after, results
    if isinstance(event, DeclarationWithdrawn | PaymentConfirmed | InspectionFinding):
        return state, []  # a declaration without versions has no life after its result
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


def _versioned(state: JoinState, event: Input) -> bool:
    """Whether the event belongs to the life of a versioned declaration."""
    if isinstance(event, DeclarationSubmitted):
        return event.version is not None
    if isinstance(event, DeclarationWithdrawn | PaymentConfirmed | InspectionFinding):
        return True
    return state.version is not None or event.declaration_version is not None


def _seen(state: JoinState, event: Input) -> JoinState:
    at = event_time(event)
    if state.last_event_at is not None and state.last_event_at >= at:
        return state
    return state.model_copy(update={"last_event_at": at})


def _take(
    state: JoinState, event: DeclarationSubmitted, deadline_after: timedelta | None
) -> JoinState:
    """The state once ``event``'s version is the one assessed, afresh (no deadline: a change
    after release, which customs approves in its own time)."""
    assert event.version is not None
    return state.model_copy(
        update={
            "version": event.version,
            "required_agencies": tuple(event.required_agencies),
            "submitted_at": event.submitted_at,
            "deadline": None if deadline_after is None else event.submitted_at + deadline_after,
            "assessed": False,
            "notice": None,
            "payments": (),
            "order": None,
            "findings": (),
            "cleared": False,
            # the verdicts on this version or a later one may have come first
            "verdicts": tuple(
                v for v in state.verdicts if (v.declaration_version or 1) >= event.version
            ),
        }
    )


def _released_life(state: JoinState, event: Input) -> tuple[JoinState, list[ClearanceResult]]:
    """A decided state. A versioned life released for good (RELEASED, or AMENDMENT_REFUSED:
    :data:`REOPENABLE`) takes a change after release (a version marked ``after_release``,
    higher than its own), and keeps the verdicts on a higher version, which may be read
    before it; every other event, and every event of any other decided state, changes nothing.

    The change is assessed against what the release in force levied
    (:mod:`services.aggregator.afterrelease`): the released version's verdicts' collection, or,
    after a refused change, what the refused change was assessed against."""
    if state.version is None or state.decided not in REOPENABLE:
        return state, []
    if isinstance(event, AgencyVerdict):
        version = event.declaration_version or 1
        if version <= state.version or any(
            v.agency == event.agency and (v.declaration_version or 1) == version
            for v in state.verdicts
        ):
            return state, []  # on the version released (or older), or a duplicate
        # seen, as in a life going on: the answer it may give is dated by it, and the life is
        # kept from it (whichever of the change and its verdict is read first)
        return _seen(state.model_copy(update={"verdicts": (*state.verdicts, event)}), event), []
    if (
        not isinstance(event, DeclarationSubmitted)
        or not event.after_release
        or (event.version or 0) <= state.version
    ):
        return state, []
    before = state
    levied = (
        afterrelease.levied(state.current)
        if state.decided is ClearanceStatus.RELEASED
        else state.levied
    )
    state = state.model_copy(update={"decided": None, "after_release": True, "levied": levied})
    state = _seen(_take(state, event, None), event)
    return _advance(state, event, before, None)  # no order after release: no deadline


def _live(
    state: JoinState, event: Input, deadline_after: timedelta, inspection_after: timedelta | None
) -> tuple[JoinState | None, list[ClearanceResult]]:
    """One event in the life of a versioned declaration (see the module's text)."""
    before = state
    if isinstance(event, DeclarationSubmitted):
        assert event.version is not None
        if state.submitted_at is not None and (state.version or 0) >= event.version:
            return state, []  # a repeated or superseded version
        if event.after_release:
            if not _open_to_change(state):
                # a change after release of a life not released (the intake lodges none),
                # or once customs answered the change before it
                return state, []
            # it replaces the change still assessed, or lodges the value for customs'
            # valuation of goods released under guarantee
            state = _take(state.model_copy(update={"after_release": True}), event, None)
        elif _closed_to_versions(state):
            return state, []
        else:
            state = _take(state, event, deadline_after)
    elif isinstance(event, AgencyVerdict):
        version = event.declaration_version or 1
        if any(
            v.agency == event.agency and (v.declaration_version or 1) == version
            for v in state.verdicts
        ):
            return state, []  # a duplicate verdict: ignored, not counted
        if state.submitted_at is not None and version < (state.version or 1):
            return state, []  # on a superseded version: no longer counts
        closed = _closed_to_versions(state) and not _open_to_change(state)
        if version > (state.version or 1) and closed:
            return state, []  # on a version the join will never take
        state = state.model_copy(update={"verdicts": (*state.verdicts, event)})
    elif isinstance(event, DeclarationWithdrawn):
        if state.withdrawal is not None or state.last_status in RELEASED_STATUSES:
            return state, []  # a second withdrawal, or the goods are out
        if _inspecting(state) and event.withdrawn_at >= _latest(state):
            # asked once the inspection was ordered and while it is not finished: refused
            # (报关单修改和撤销管理办法; the intake refuses it too). Asked before the order,
            # and read only now, it stands.
            return state, []
        state = state.model_copy(update={"withdrawal": event})
    elif isinstance(event, InspectionFinding):
        if not inspection.answers(state.order, state.version, event):
            return state, []  # no such order (another version's, or never issued)
        kept = inspection.keep(state.findings, event)
        if kept is None:
            return state, []  # a redelivery, or superseded already
        state = state.model_copy(update={"findings": kept})
    else:
        if state.last_status in RELEASED_STATUSES and not _supplementary_due(state):
            return state, []  # settled at the (conditional) release: nothing more is due
        if event.kind is PaymentKind.CONSOLIDATED_PAYMENT:
            return state, []  # restores a general guarantee: it pays no notice
        if any(p.payment_id == event.payment_id for p in state.payments):
            return state, []  # the bank's redelivery
        if state.notice is None or event.notice_id != state.notice.notice_id:
            return state, []  # no such notice due (superseded, or not issued)
        state = state.model_copy(update={"payments": (*state.payments, event)})
    state = _seen(state, event)
    state, results = _advance(state, event, before, inspection_after)
    return (state if state != before else before), results


# the statuses of an unfinished inspection: TIMED_OUT after an order is its escalation
INSPECTING = frozenset(
    {
        ClearanceStatus.INSPECTION_REQUIRED,
        ClearanceStatus.REMEDIATION_REQUIRED,
        ClearanceStatus.TIMED_OUT,
    }
)


def _inspecting(state: JoinState) -> bool:
    """Whether an inspection ordered on the current version is not finished (its order's
    time is the version's consolidated answer's, :func:`_latest`)."""
    return state.order is not None and state.last_status in INSPECTING


def _closed_to_versions(state: JoinState) -> bool:
    """Whether no new version can be taken any more: the goods are out, or inspected (one
    inspection: no amendment after the order; the intake refuses it too, and a change then
    needs customs' approval)."""
    return state.last_status in RELEASED_STATUSES or state.order is not None


def _replaceable(state: JoinState) -> bool:
    """Whether a change after release is assessed, not answered yet: a later change replaces
    it (and a verdict on that one may be read before it)."""
    return state.after_release and not state.assessed


def _consulting(state: JoinState) -> bool:
    """Whether goods released under guarantee wait for the value customs approves (价格磋商):
    the trader lodges it as a change after release, and may again after a refusal."""
    return state.valuation_pending and state.last_status is ClearanceStatus.CONDITIONALLY_RELEASED


def _open_to_change(state: JoinState) -> bool:
    """Whether a change after release is taken in a life going on: one replacing the change
    still assessed, or the value lodged for customs' valuation."""
    return _replaceable(state) or _consulting(state)


def _supplementary_due(state: JoinState) -> bool:
    """Whether the supplementary notice of a change after release is still to be paid."""
    return state.last_status is ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE


def _emit(state: JoinState, result: ClearanceResult) -> JoinState:
    """The state after emitting ``result``: its step counted, final if its status is (a
    release ends a change after release: what it levied is its verdicts' again)."""
    update: dict[str, object] = {"sequence": result.sequence, "last_status": result.status}
    if result.status in FINAL_STATUSES:
        update["decided"] = result.status
    if result.status is ClearanceStatus.RELEASED:
        update.update(after_release=False, levied=(), valuation_pending=False)
    return state.model_copy(update=update)


def _advance(
    state: JoinState, event: Input, before: JoinState, inspection_after: timedelta | None
) -> tuple[JoinState, list[ClearanceResult]]:
    """The step an event completes, if any (``before``: the state before the event)."""
    if state.submitted_at is None:
        return state, []  # nothing is decided before the declaration is seen
    if state.withdrawal is not None:
        result = _step(state, ClearanceStatus.WITHDRAWN, event_time(state.withdrawal))
        return _emit(state, result), [result]
    if not state.assessed:
        if state.missing:
            return state, []
        result = decide(state, _latest(state))
        state = state.model_copy(update={"assessed": True, "deadline": None})
        if state.after_release:
            return _changed(state, result)
        if result.status is ClearanceStatus.RELEASED:
            return _clear(state, result.decided_at, ())
        if result.status is ClearanceStatus.INSPECTION_REQUIRED:
            state = state.model_copy(
                update={
                    "order": result.inspection,
                    "deadline": inspection_deadline(result.decided_at, inspection_after),
                }
            )
        if result.status is ClearanceStatus.HELD:
            assert state.version is not None  # a versioned life
            security = payment.security_notice(
                state.declaration_id, state.version, state.current, result.decided_at
            )
            state = state.model_copy(update={"notice": security})
            result = result.model_copy(update={"payment_notice": security})
        return _emit(state, result), [result]
    if isinstance(event, InspectionFinding) and state.order is not None:
        return _inspected(state, event, before)
    if isinstance(event, PaymentConfirmed) and state.notice is not None:
        if state.last_status is ClearanceStatus.HELD:
            return _secured(state, event)
        settlement, owed = payment.settle(state.notice, state.payments)
        state = state.model_copy(update={"notice": owed})
        found = _found(state)
        if found is not None and found.sanction is not None:
            return state, []  # paid while a fault is put right: released once it is
        waiting = (
            ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE
            if state.after_release
            else ClearanceStatus.AWAITING_PAYMENT
        )
        status = _released(found) if settlement else waiting
        # as of the payment, and of the findings it rests on (a laboratory result read first)
        at = max(event.paid_at, found.at) if found and found.at else event.paid_at
        result = _step(state, status, at).model_copy(
            update={
                "payment_notice": owed,
                "settlement": settlement,
                "finding_ids": found.finding_ids if found else (),
            }
        )
        return _emit(state, result), [result]
    return state, []


def _secured(state: JoinState, event: PaymentConfirmed) -> tuple[JoinState, list[ClearanceResult]]:
    """A guarantee on the security notice of a HELD version: one that covers it releases the
    goods on condition, pending customs' valuation (CONDITIONALLY_RELEASED with
    ``valuation_pending``): nothing is levied yet, and the value the trader then lodges as a
    change decides the duties (:func:`_changed`). Anything else changes nothing."""
    assert state.notice is not None
    settlement, owed = payment.secure(state.notice, state.payments)
    if settlement is None:
        return state, []
    state = state.model_copy(update={"notice": None, "valuation_pending": True, "levied": ()})
    result = _step(state, ClearanceStatus.CONDITIONALLY_RELEASED, event.paid_at).model_copy(
        update={"payment_notice": owed, "settlement": settlement}
    )
    return _emit(state, result), [result]


def _changed(state: JoinState, answer: ClearanceResult) -> tuple[JoinState, list[ClearanceResult]]:
    """Customs' answer to a change after release (:mod:`services.aggregator.afterrelease`):
    CLEAR approves it (a supplementary notice when it collects more than the release in force
    levied, a refund when less, else released as it is); REJECT, HOLD or INSPECT refuse it
    (AMENDMENT_REFUSED, naming customs' decision; the release in force stands)."""
    assert state.version is not None
    if answer.status is not ClearanceStatus.RELEASED:
        status = (
            ClearanceStatus.CONDITIONALLY_RELEASED
            if state.valuation_pending
            else ClearanceStatus.AMENDMENT_REFUSED
        )
        refused = answer.model_copy(update={"status": status, "inspection": None})
        return _emit(state, refused), [refused]
    due = afterrelease.supplementary(
        state.declaration_id, state.version, state.levied, state.current, answer.decided_at
    )
    state = state.model_copy(update={"cleared": True, "notice": due})
    if due is not None:
        result = answer.model_copy(
            update={
                "status": ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE,
                "payment_notice": due,
                "valuation_pending": state.valuation_pending,
            }
        )
    else:
        result = answer.model_copy(
            update={
                "refund": afterrelease.refund(state.levied, state.current),
                "valuation_pending": False,
            }
        )
    return _emit(state, result), [result]


def _found(state: JoinState) -> inspection.Outcome | None:
    """The outcome of the current version's inspection, if one was ordered."""
    return None if state.order is None else inspection.outcome(state.order, state.findings)


def _released(found: inspection.Outcome | None) -> ClearanceStatus:
    """Release, conditional while a laboratory result is awaited."""
    if found is not None and found.sampled:
        return ClearanceStatus.CONDITIONALLY_RELEASED
    return ClearanceStatus.RELEASED


def _clear(
    state: JoinState, at: datetime, finding_ids: tuple[str, ...]
) -> tuple[JoinState, list[ClearanceResult]]:
    """The version passed its checks (every agency cleared, the inspection found nothing
    against it): its payment notice, issued once, if customs collects anything; release
    once the duties are settled (at once when nothing is collected)."""
    if not state.cleared:
        assert state.version is not None
        due = payment.notice(state.declaration_id, state.version, state.current, at)
        state = state.model_copy(update={"cleared": True, "notice": due})
    settlement, owed = None, state.notice
    if state.notice is not None:
        settlement, owed = payment.settle(state.notice, state.payments)
        state = state.model_copy(update={"notice": owed})
    settled = state.notice is None or settlement is not None
    status = _released(_found(state)) if settled else ClearanceStatus.AWAITING_PAYMENT
    result = _step(state, status, at).model_copy(
        update={"payment_notice": owed, "settlement": settlement, "finding_ids": finding_ids}
    )
    return _emit(state, result), [result]


def _inspected(
    state: JoinState, finding: InspectionFinding, before: JoinState
) -> tuple[JoinState, list[ClearanceResult]]:
    """The step a finding against the order completes, if any (see
    :mod:`services.aggregator.inspection`)."""
    order = state.order
    assert order is not None
    found = inspection.outcome(order, state.findings)
    if not found.complete:
        return state, []
    assert found.at is not None
    state = state.model_copy(update={"deadline": None})  # every agency has recorded
    at = found.at  # the findings' latest time, whatever their arrival order
    if found.sanction is not None:
        if state.last_status is ClearanceStatus.CONDITIONALLY_RELEASED:
            status = ClearanceStatus.RECALLED
        elif found.terminal:
            status = ClearanceStatus.SANCTIONED
        else:
            status = ClearanceStatus.REMEDIATION_REQUIRED
            earlier = inspection.outcome(order, before.findings)
            if state.last_status is status and earlier.sanction == found.sanction:
                return state, []  # another agency's finding: the same fault still to put right
        result = _step(state, status, at).model_copy(
            update={"sanction": found.sanction, "finding_ids": found.finding_ids}
        )
        return _emit(state, result), [result]
    if not state.cleared or state.last_status is ClearanceStatus.REMEDIATION_REQUIRED:
        return _clear(state, at, found.finding_ids)
    if state.last_status is ClearanceStatus.CONDITIONALLY_RELEASED and not found.sampled:
        result = _step(state, ClearanceStatus.RELEASED, at).model_copy(
            update={"finding_ids": found.finding_ids}
        )
        return _emit(state, result), [result]
    return state, []  # a laboratory result before the duties are settled: nothing to say yet


def inspection_deadline(
    ordered_at: datetime, inspection_after: timedelta | None
) -> datetime | None:
    """When an order issued at ``ordered_at`` is escalated if an agency it names has not
    recorded (None: never). A deadline at or beyond ``LATEST``, which no result could carry,
    is none: an order given in the last days of the range (in 2199) waits for ever."""
    if inspection_after is None:
        return None
    at = _plus(ordered_at, inspection_after)
    return at if at < LATEST else None


def _step(state: JoinState, status: ClearanceStatus, at: datetime) -> ClearanceResult:
    """A later step of the current version: its consolidated decisions, a new status."""
    result = decide(state, at)
    return result.model_copy(
        update={
            "status": status,
            "inspection": None,
            "valuation_pending": state.valuation_pending and status is not ClearanceStatus.RELEASED,
        }
    )


def expire(state: JoinState, now: datetime) -> tuple[JoinState, list[ClearanceResult]]:
    """At or after the deadline, an undecided declaration times out: for good without
    versions; a versioned one is escalated, and decided when the missing agencies rule; an
    inspection order is escalated, and decided when the missing agencies record."""
    if state.decided is not None or state.deadline is None or now < state.deadline:
        return state, []
    if state.order is not None:
        return _overdue(state, state.deadline)
    result = decide(state, state.deadline, timed_out=True)
    if state.version is not None:
        return _emit(state.model_copy(update={"deadline": None}), result), [result]
    return state.model_copy(update={"decided": result.status}), [result]


def _overdue(state: JoinState, deadline: datetime) -> tuple[JoinState, list[ClearanceResult]]:
    """The escalation of an inspection order at its deadline: TIMED_OUT at the deadline,
    naming the agencies the order names whose finding on it (their latest read, as
    everywhere) was not recorded before it: a finding recorded later, though read already,
    does not count, so the names depend on the findings' times, not on when the clock
    ticked. It carries the order again. Once: the deadline is cleared."""
    order = state.order
    assert order is not None
    state = state.model_copy(update={"deadline": None})
    missing = inspection.missing(order, state.findings, deadline)
    if not missing:  # complete (a deadline never outlives that): nothing to escalate
        return state, []
    result = _step(state, ClearanceStatus.TIMED_OUT, deadline).model_copy(
        update={"missing_agencies": missing, "inspection": order}
    )
    return _emit(state, result), [result]


def due(state: JoinState, retention: timedelta) -> datetime:
    """When ``tick`` next has something to do with this state (never raises):

    - undecided with its declaration: the deadline (its verdicts', or its inspection
      order's once ordered);
    - an orphan (verdicts or a withdrawal, no declaration): the earliest of their times +
      retention + slack;
    - decided: its ``decided_at`` + retention + slack (a versioned one: its last event's);
    - a versioned life that has not ended, past its deadline: never. It is kept until it
      ends, however long the trader takes: were it dropped, a later amendment or payment
      would start a second life under the same id (its steps numbered from 1 again);
    - anything ``step`` never writes (empty, or declared without a deadline): at once.
    """
    kept = retention + CLOCK_SLACK
    if state.version is not None:
        if state.decided is None:  # a life going on: its deadline, else kept until it ends
            return state.deadline or END_OF_TIME
        return _plus(state.last_event_at or EARLIEST, kept)
    if state.decided is not None:
        return _plus(decided_at(state) or EARLIEST, kept)
    if state.submitted_at is not None:
        return state.deadline or EARLIEST
    early = [v.decided_at for v in state.verdicts]
    if state.withdrawal is not None:  # a withdrawal read before its declaration
        early.append(state.withdrawal.withdrawn_at)
    if early:
        return _plus(min(early), kept)
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
        if state.version is not None:  # escalated: kept for the late verdict
            return state, results
        if now < due(state, retention):
            return state, results
    return None, results


def fold(
    events: Iterable[Input], deadline_after: timedelta, inspection_after: timedelta | None = None
) -> tuple[JoinState | None, list[ClearanceResult]]:
    """Every event of one declaration through ``step``, in order: what an auditor recomputes."""
    state: JoinState | None = None
    results: list[ClearanceResult] = []
    for event in events:
        state, out = step(state, event, deadline_after, inspection_after)
        results += out
    return state, results
