"""What the aggregator measures of the join, read off its steps (pure: states, events and
results in, ``(label, seconds)`` out; the service observes them once the transaction that
wrote the step committed, so a reopened task does not count twice what it redoes).

Both latencies are in event time, from the version's ``submitted_at``: a replay, a restart or
a backlog does not distort them, and an auditor can recompute them from the topics.

- :func:`first_answers`: ``singlewindow_submit_to_final_seconds{status}``, to the version's
  *first* consolidated result (its ``decided_at``): the joint answer once every agency asked
  has ruled, a TIMED_OUT escalation at the deadline, or a withdrawal before either. Later
  steps of the version (payment, inspection, the late verdicts after an escalation) are not
  its first answer.
- :func:`verdict_latencies`: ``singlewindow_verdict_latency_seconds{agency}``, to each
  verdict on the version being decided, once the join has both (a verdict read before its
  declaration is measured when the declaration is read).

A negative difference (an agency's clock behind the intake's) counts as zero.
"""

from __future__ import annotations

from datetime import datetime

from services.aggregator.join import Input
from singlewindow.events import AgencyVerdict, ClearanceResult, DeclarationSubmitted, JoinState

Observation = tuple[str, float]  # (label, seconds)


def seconds(since: datetime, until: datetime) -> float:
    return max((until - since).total_seconds(), 0.0)


def unanswered(before: JoinState | None, version: int | None) -> bool:
    """Whether ``version`` had no result yet in the state ``before`` a step."""
    if before is None or before.submitted_at is None or before.version != version:
        return True  # the step itself took the version (or the declaration)
    if version is None:
        return before.decided is None  # without versions: its one result
    # a version is answered once assessed; escalated (no deadline left) it was answered with
    # TIMED_OUT; a change after release has no deadline and is answered once assessed
    return not before.assessed and (before.deadline is not None or before.after_release)


def first_answers(
    before: JoinState | None, after: JoinState | None, results: list[ClearanceResult]
) -> list[Observation]:
    """The version's first consolidated result among ``results`` of one step (a tick's too),
    with its submit-to-final time; nothing when the version was answered before."""
    state = after or before
    if not results or state is None or state.submitted_at is None:
        return []
    result = results[0]
    if result.version != state.version or not unanswered(before, state.version):
        return []
    return [(result.status.value, seconds(state.submitted_at, result.decided_at))]


def verdict_latencies(
    before: JoinState | None, after: JoinState | None, event: Input
) -> list[Observation]:
    """The verdicts on the version being decided that this step brought together with its
    declaration, each with its time since the submission."""
    if after is None or after is before or after.submitted_at is None:
        return []  # nothing taken (a duplicate, a superseded version), or no declaration yet
    if isinstance(event, AgencyVerdict):
        if (event.declaration_version or 1) != (after.version or 1):
            return []  # on a version not taken yet: measured when it is
        return [(event.agency, seconds(after.submitted_at, event.decided_at))]
    if isinstance(event, DeclarationSubmitted) and after.submitted_at == event.submitted_at:
        taken = before is None or before.submitted_at is None or before.version != after.version
        if not taken:
            return []  # not the step that took this version
        return [(v.agency, seconds(after.submitted_at, v.decided_at)) for v in after.current]
    return []
