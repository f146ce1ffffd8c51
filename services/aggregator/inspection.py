"""The joint inspection (一次查验): what the findings against one order add up to (pure).

One declaration version has at most one inspection order: the consolidated answer
INSPECTION_REQUIRED merges every agency's checks into it (:func:`services.aggregator.join.decide`).
The goods are presented once; each agency named in the order records its findings against
that order at the inspection station (``services.inspection``), and the order is complete
when every one of them has. Then:

- any finding NON_COMPLIANT: the most severe measure decides (:class:`Measure`'s order:
  seizure, destruction, return, re-labelling, a penalty case; between equal measures the
  order's agency order). Seizure, destruction and return end the life (SANCTIONED); after
  re-labelling under supervision or a settled penalty case, the same agency records again
  on the same order (REMEDIATION_REQUIRED until it does: a re-inspection, not a second
  visit of every agency);
- else any SAMPLED: the goods conform on sight and samples went to the laboratory; they may
  be released conditionally (CONDITIONALLY_RELEASED) once the duties are settled; the
  laboratory's result, a later finding of the same agency, confirms the release (RELEASED)
  or recalls the goods (RECALLED);
- else every finding COMPLIANT: on to duties and release, as a declaration every agency
  cleared.

An agency's latest finding on the order counts: the latest ``recorded_at``, the greater
``finding_id`` between equal times, so that the outcome never depends on the order findings
are read in, and the join keeps only that one per agency (its state stays bounded however many
times an inspector records). A finding on another order, another version or by an agency the
order does not name answers nothing: the join ignores it and ``audit verify`` reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from singlewindow.events import (
    TERMINAL_MEASURES,
    FindingOutcome,
    InspectionFinding,
    InspectionOrder,
    Measure,
    Sanction,
)

SEVERITY = {measure: rank for rank, measure in enumerate(Measure)}


def agencies(order: InspectionOrder) -> tuple[str, ...]:
    """The agencies named in the order, in the order's order, each once."""
    return tuple(dict.fromkeys(str(check.agency) for check in order.checks))


def answers(order: InspectionOrder | None, version: int | None, finding: InspectionFinding) -> bool:
    """Whether ``finding`` is recorded against ``order`` (of declaration ``version``) by an
    agency the order names."""
    return (
        order is not None
        and finding.order_id == order.order_id
        and finding.version == version
        and finding.agency in agencies(order)
    )


def later(finding: InspectionFinding) -> tuple[datetime, str]:
    """What orders one agency's findings on one order: the latest counts."""
    return finding.recorded_at, finding.finding_id


def latest(
    order: InspectionOrder, findings: tuple[InspectionFinding, ...]
) -> dict[str, InspectionFinding]:
    """Each named agency's latest finding on the order (agencies that have not recorded are
    absent)."""
    mine = [f for f in findings if f.order_id == order.order_id]
    found = {str(f.agency): f for f in sorted(mine, key=later)}
    return {agency: found[agency] for agency in agencies(order) if agency in found}


def keep(
    findings: tuple[InspectionFinding, ...], finding: InspectionFinding
) -> tuple[InspectionFinding, ...] | None:
    """The findings to keep once ``finding`` is read: it replaces its agency's, unless that
    one is the same or later (None: nothing changes)."""
    held = next((f for f in findings if f.agency == finding.agency), None)
    if held is not None and later(held) >= later(finding):
        return None
    return (*(f for f in findings if f.agency != finding.agency), finding)


def missing(
    order: InspectionOrder, findings: tuple[InspectionFinding, ...], by: datetime
) -> tuple[str, ...]:
    """The agencies named in the order that had recorded no finding on it before ``by`` (the
    order's deadline), in the order's agency order."""
    recorded = latest(order, tuple(f for f in findings if f.recorded_at < by))
    return tuple(agency for agency in agencies(order) if agency not in recorded)


@dataclass(frozen=True)
class Outcome:
    """What the findings against an order add up to so far."""

    complete: bool  # every agency named has recorded
    sanction: Sanction | None  # the most severe non-compliance, if any
    sampled: bool  # a laboratory result is still awaited (and nothing is non-compliant)
    finding_ids: tuple[str, ...]  # the findings that count, in the order's agency order
    at: datetime | None  # the latest time of those findings (None if none)

    @property
    def terminal(self) -> bool:
        return self.sanction is not None and self.sanction.measure in TERMINAL_MEASURES


def outcome(order: InspectionOrder, findings: tuple[InspectionFinding, ...]) -> Outcome:
    """The outcome of the findings on ``order``."""
    found = latest(order, findings)
    counted = tuple(found.values())
    faults = [f for f in counted if f.outcome is FindingOutcome.NON_COMPLIANT]
    sanction = None
    if faults:
        worst = min(faults, key=lambda f: SEVERITY[f.measure or Measure.PENALTY])
        assert worst.measure is not None
        sanction = Sanction(
            measure=worst.measure,
            agency=worst.agency,
            finding_id=worst.finding_id,
            reasons=worst.reasons,
        )
    return Outcome(
        complete=len(found) == len(agencies(order)),
        sanction=sanction,
        sampled=sanction is None and any(f.outcome is FindingOutcome.SAMPLED for f in counted),
        finding_ids=tuple(f.finding_id for f in counted),
        at=max((f.recorded_at for f in counted), default=None),
    )
