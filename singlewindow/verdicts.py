"""What every agency's rules share: verdict ids, decision precedence, rulings, the verdict.

An agency's rules are a pure function ``assess(declaration, reference, now) -> AgencyVerdict``.
Each rule that fires yields a :class:`Ruling` (a decision, a reason with a stable code and,
for an INSPECT, the name of the physical check to order); :func:`build_verdict` turns the
rulings into the verdict. The reference data the rules decide with is read by
:mod:`singlewindow.reference`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from singlewindow.events import (
    AgencyVerdict,
    Charge,
    Decision,
    DeclarationSubmitted,
    DutyLine,
    InspectionCheck,
    Reason,
)

# Fixed for ever: uuid5(NAMESPACE_URL, "https://github.com/singlewindow/verdicts").
VERDICT_NAMESPACE = uuid.UUID("21e1dd17-c7f3-5983-af28-ec4982d604f8")

# Strictest first: the aggregator and every agency combine decisions in this order.
PRECEDENCE: tuple[Decision, ...] = (
    Decision.REJECT,
    Decision.HOLD,
    Decision.INSPECT,
    Decision.CLEAR,
)
_RANK = {decision: rank for rank, decision in enumerate(PRECEDENCE)}


def verdict_id(declaration_id: str, agency: str, rules_version: str) -> str:
    """Deterministic verdict id: a replay of the same declaration and rules gives the same id."""
    return str(uuid.uuid5(VERDICT_NAMESPACE, f"{declaration_id}/{agency}/{rules_version}"))


def on_version(verdict: AgencyVerdict, version: int | None) -> AgencyVerdict:
    """The verdict as given on a declaration ``version`` (unchanged for a declaration without
    versions): it names the version, and its id differs from version to version, so that a
    re-assessment of an amendment is not taken for a redelivery."""
    if version is None:
        return verdict
    return verdict.model_copy(
        update={
            "declaration_version": version,
            "verdict_id": str(
                uuid.uuid5(
                    VERDICT_NAMESPACE,
                    f"{verdict.declaration_id}/{verdict.agency}/{verdict.rules_version}/v{version}",
                )
            ),
        }
    )


def combine(decisions: Iterable[Decision]) -> Decision:
    """The strictest decision (REJECT > HOLD > INSPECT > CLEAR); CLEAR when there is none."""
    return min(decisions, key=_RANK.__getitem__, default=Decision.CLEAR)


def reason(code: str, message: str, item: int | None = None) -> Reason:
    """A reason: stable rule ``code``, human-readable ``message``, goods ``item`` line or None."""
    return Reason(code=code, message=message, item=item)


@dataclass(frozen=True, slots=True)
class Ruling:
    """What one rule that fired rules: a decision, its reason and, for an INSPECT, the check."""

    decision: Decision
    reason: Reason
    check: str | None = None

    @classmethod
    def reject(cls, code: str, message: str, item: int | None = None) -> Ruling:
        return cls(Decision.REJECT, reason(code, message, item))

    @classmethod
    def hold(cls, code: str, message: str, item: int | None = None) -> Ruling:
        return cls(Decision.HOLD, reason(code, message, item))

    @classmethod
    def inspect(cls, code: str, message: str, check: str, item: int | None = None) -> Ruling:
        return cls(Decision.INSPECT, reason(code, message, item), check)

    @classmethod
    def note(cls, code: str, message: str, item: int | None = None) -> Ruling:
        """A reason that asks for nothing (the decision stays what the other rulings make it)."""
        return cls(Decision.CLEAR, reason(code, message, item))


def build_verdict(
    declaration: DeclarationSubmitted,
    agency: str,
    rules_version: str,
    rulings: Sequence[Ruling],
    now: datetime,
    *,
    duties: Sequence[DutyLine] = (),
    total_duties: Decimal = Decimal("0"),
    charges: Sequence[Charge] = (),
) -> AgencyVerdict:
    """The verdict of ``agency`` from the rulings of its rules, in the order they were given.

    The decision is the strictest ruling's (CLEAR with no reasons when nothing fired). Every
    ruling that asks for a check contributes an :class:`InspectionCheck`, even when the final
    decision is stricter, so that a joint inspection can still be ordered; duplicates are
    dropped, first occurrence kept.
    """
    checks: dict[tuple[str, int | None], InspectionCheck] = {}
    for ruling in rulings:
        if ruling.check is not None:
            key = (ruling.check, ruling.reason.item)
            checks.setdefault(
                key, InspectionCheck(agency=agency, check=ruling.check, item=ruling.reason.item)
            )
    return AgencyVerdict(
        declaration_id=declaration.declaration_id,
        verdict_id=verdict_id(declaration.declaration_id, agency, rules_version),
        agency=agency,
        decision=combine(f.decision for f in rulings),
        reasons=tuple(f.reason for f in rulings),
        checks=tuple(checks.values()),
        duties=tuple(duties),
        total_duties=total_duties,
        charges=tuple(charges),
        rules_version=rules_version,
        decided_at=now,
    )
