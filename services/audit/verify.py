"""Verification: recompute every decision from the recorded events (pure, no I/O).

Every verdict is recomputed from its recorded declaration with the rules and reference-data
version it names; every result from its recorded verdicts with the aggregator's pure join.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.aggregator import join
from services.ciq import reference as ciq_reference
from services.ciq import rules as ciq_rules
from services.customs import reference as customs_reference
from services.customs import rules as customs_rules
from services.port import reference as port_reference
from services.port import rules as port_rules
from singlewindow.events import (
    Agency,
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    DeclarationSubmitted,
)

Recompute = Callable[[DeclarationSubmitted, str, datetime], AgencyVerdict]


def _agency(assess: Callable[..., AgencyVerdict], load: Callable[[str], Any]) -> Recompute:
    return lambda declaration, version, now: assess(declaration, load(version), now)


RULES: dict[Agency, Recompute] = {
    Agency.CUSTOMS: _agency(customs_rules.assess, customs_reference.load_reference),
    Agency.CIQ: _agency(ciq_rules.assess, ciq_reference.load_reference),
    Agency.PORT: _agency(port_rules.assess, port_reference.load_reference),
}


@dataclass(frozen=True)
class Finding:
    kind: str
    declaration_id: str
    detail: str


@dataclass
class Report:
    declarations: int = 0
    verdicts: int = 0
    results: int = 0
    findings: list[Finding] = field(default_factory=list)

    def add(self, kind: str, declaration_id: str, detail: str) -> None:
        self.findings.append(Finding(kind, declaration_id, detail))


def verify(
    declarations: Iterable[DeclarationSubmitted],
    verdicts: Iterable[AgencyVerdict],
    results: Iterable[ClearanceResult],
    deadline_after: timedelta,
    rules: dict[Agency, Recompute] = RULES,
) -> Report:
    """Everything that does not add up, in log order of the inputs."""
    report = Report()
    declared: dict[str, DeclarationSubmitted] = {}
    for declaration in declarations:
        declared.setdefault(declaration.declaration_id, declaration)
    ruled: dict[str, list[AgencyVerdict]] = defaultdict(list)
    for verdict in verdicts:
        ruled[verdict.declaration_id].append(verdict)
    answered: dict[str, list[ClearanceResult]] = defaultdict(list)
    for result in results:
        answered[result.declaration_id].append(result)
    report.declarations = len(declared)
    report.verdicts = sum(len(v) for v in ruled.values())
    report.results = sum(len(r) for r in answered.values())

    for key in sorted(set(ruled) | set(answered)):
        if key not in declared:
            report.add("unknown declaration", key, "verdicts or results for no declaration")
    for key, declaration in declared.items():
        _verify_verdicts(report, declaration, ruled[key], rules)
        _verify_result(report, declaration, ruled[key], answered[key], deadline_after)
    return report


def _verify_verdicts(
    report: Report,
    declaration: DeclarationSubmitted,
    verdicts: list[AgencyVerdict],
    rules: dict[Agency, Recompute],
) -> None:
    key = declaration.declaration_id
    for verdict in verdicts:
        if verdict.agency not in declaration.required_agencies:
            report.add("verdict not asked for", key, f"{verdict.agency} was not routed")
        recompute = rules.get(verdict.agency)
        if recompute is None:
            report.add("unknown agency", key, str(verdict.agency))
            continue
        try:
            expected = recompute(declaration, verdict.rules_version, verdict.decided_at)
        except Exception as exc:
            report.add("verdict not recomputable", key, f"{verdict.agency}: {exc}")
            continue
        if expected != verdict:
            report.add("verdict mismatch", key, _difference(verdict, expected))


def _verify_result(
    report: Report,
    declaration: DeclarationSubmitted,
    verdicts: list[AgencyVerdict],
    results: list[ClearanceResult],
    deadline_after: timedelta,
) -> None:
    key = declaration.declaration_id
    if len(results) > 1:
        report.add("duplicate result", key, f"{len(results)} results")
    if not results:
        missing = [
            a for a in declaration.required_agencies if a not in {v.agency for v in verdicts}
        ]
        report.add("missing result", key, f"no result; no verdict from {missing or 'none'}")
        return
    actual = results[0]
    if actual.status is ClearanceStatus.TIMED_OUT:
        deadline = declaration.submitted_at + deadline_after
        in_time = {v.agency for v in verdicts if v.decided_at < deadline}
        expected_missing = tuple(a for a in declaration.required_agencies if a not in in_time)
        if (
            actual.decided_at != deadline
            or not set(actual.missing_agencies) <= set(declaration.required_agencies)
            or not set(actual.missing_agencies) >= set(expected_missing)
        ):
            report.add("result contradicts verdicts", key, "timeout not as recorded")
        return
    for agency in declaration.required_agencies:
        if agency not in {v.agency for v in verdicts}:
            report.add("missing verdict", key, f"{agency} never ruled, yet a result exists")
    _, expected = join.fold([declaration, *verdicts], deadline_after)
    for recorded in results:
        if expected[:1] != [recorded]:
            report.add(
                "result contradicts verdicts",
                key,
                f"recorded {recorded.status}, recomputed "
                f"{expected[0].status if expected else 'no result'}",
            )


def _difference(actual: AgencyVerdict, expected: AgencyVerdict) -> str:
    a, e = actual.model_dump(mode="json"), expected.model_dump(mode="json")
    fields = [name for name in a if a[name] != e[name]]
    return f"{actual.agency}: " + ", ".join(
        f"{name} recorded {a[name]!r:.60} recomputed {e[name]!r:.60}" for name in fields
    )
