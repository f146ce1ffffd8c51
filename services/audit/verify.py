"""Verification: recompute every decision from the recorded events (pure, no I/O).

Every declaration's routing is recomputed from the routing table version it names (a
declaration that skipped an agency, or names no known table, is a finding); every verdict is
recomputed from its recorded declaration with the rules and the reference-data version it
names -- or, for a version chosen by date, the one in force on the declaration's acceptance
date, so that a verdict decided with the wrong month's tariff or rates is a mismatch;
every result from its recorded verdicts with the aggregator's pure join. Signatures are
checked before (:func:`services.audit.cli.verify_window`): only events whose signature the
key registry accepts are recomputed, the others are findings.

Customs' random sample is keyed by a secret (:mod:`services.customs.sampling`): it is redrawn
with the key version the verdict names when the auditor holds that key. Without it, the rest
of the verdict is still recomputed, taking the draw as recorded, and the verdict is listed as
*sampling not checked* (a note, not a finding). A customs verdict naming no key version
predates keyed sampling: its draw was the unkeyed SHA-256 of the declaration id, which anyone
can recompute.
"""

from __future__ import annotations

import inspect
import pkgutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from services.aggregator import join
from services.customs.sampling import Keyring
from services.intake.routing import route, table_of_version
from singlewindow.events import (
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    DeclarationSubmitted,
)
from singlewindow.reference import in_force
from singlewindow.registry import AgencyRegistry, agency_registry

SAMPLING_NOT_CHECKED = "sampling not checked"


@dataclass(frozen=True)
class Recomputed:
    """A recomputed verdict, and what in it could not be checked (None: everything was)."""

    verdict: AgencyVerdict
    unchecked: str | None = None


Recompute = Callable[[DeclarationSubmitted, AgencyVerdict], Recomputed]


def _unsampled(assess: Callable[..., AgencyVerdict], load: Callable[[str], Any]) -> Recompute:
    """The recomputation of an agency that draws no random sample."""

    package = getattr(inspect.getmodule(load), "PACKAGE", None)  # its versions can be dated

    def recompute(declaration: DeclarationSubmitted, recorded: AgencyVerdict) -> Recomputed:
        version = recorded.rules_version
        if isinstance(package, str):
            version = in_force(package, version, declaration.submitted_at)
        return Recomputed(assess(declaration, load(version), recorded.decided_at))

    return recompute


def recomputers(
    keyring: Keyring | None = None, registry: AgencyRegistry | None = None
) -> dict[str, Recompute]:
    """How each registered agency's verdicts are recomputed, as its registry entry declares:
    its ``recompute`` (given ``keyring``, the auditor's sampling keys), else its ``rules`` with
    its ``reference`` of the version a verdict names. An agency that declares neither is
    absent: its verdicts are reported, never trusted; one whose code the auditor's environment
    cannot import is reported "not recomputable", verdict by verdict."""
    found: dict[str, Recompute] = {}
    for agency in registry or agency_registry():
        try:
            if agency.recompute:
                found[agency.code] = partial(pkgutil.resolve_name(agency.recompute), keyring)
            elif agency.rules and agency.reference:
                found[agency.code] = _unsampled(
                    pkgutil.resolve_name(agency.rules), pkgutil.resolve_name(agency.reference)
                )
        except (ImportError, AttributeError, ValueError) as exc:
            found[agency.code] = _unavailable(f"{agency.code}'s rules cannot be loaded: {exc}")
    return found


def _unavailable(why: str) -> Recompute:
    def recompute(declaration: DeclarationSubmitted, recorded: AgencyVerdict) -> Recomputed:
        raise LookupError(why)

    return recompute


@dataclass(frozen=True)
class Finding:
    kind: str
    declaration_id: str
    detail: str


@dataclass
class Report:
    """What was verified: counts, findings (what does not add up), notes (what was not checked)."""

    declarations: int = 0
    verdicts: int = 0
    results: int = 0
    findings: list[Finding] = field(default_factory=list)
    unchecked: list[Finding] = field(default_factory=list)

    def add(self, kind: str, declaration_id: str, detail: str) -> None:
        """A finding: something in the log does not add up."""
        self.findings.append(Finding(kind, declaration_id, detail))

    def note(self, kind: str, declaration_id: str, detail: str) -> None:
        """Something that could not be checked (not a finding)."""
        self.unchecked.append(Finding(kind, declaration_id, detail))

    def counts(self) -> dict[str, int]:
        """The number of findings of each kind, by kind."""
        kinds: dict[str, int] = defaultdict(int)
        for finding in self.findings:
            kinds[finding.kind] += 1
        return dict(sorted(kinds.items()))


def verify(
    declarations: Iterable[DeclarationSubmitted],
    verdicts: Iterable[AgencyVerdict],
    results: Iterable[ClearanceResult],
    deadline_after: timedelta,
    rules: Mapping[str, Recompute] | None = None,
) -> Report:
    """Everything that does not add up, in log order of the inputs.

    ``rules`` defaults to :func:`recomputers` without sampling keys.
    """
    rules = recomputers() if rules is None else rules
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
        _verify_routing(report, declaration)
        _verify_verdicts(report, declaration, ruled[key], rules)
        _verify_result(report, declaration, ruled[key], answered[key], deadline_after)
    return report


def _verify_routing(report: Report, declaration: DeclarationSubmitted) -> None:
    key = declaration.declaration_id
    try:
        table = table_of_version(declaration.routing_version)
    except LookupError as exc:
        report.add("unknown routing table", key, str(exc))
        return
    expected, _ = route(declaration, table)
    if tuple(declaration.required_agencies) != expected:
        report.add(
            "routing mismatch",
            key,
            f"routed to {[str(a) for a in declaration.required_agencies]}, table "
            f"{table.version} routes to {[str(a) for a in expected]}",
        )


def _verify_verdicts(
    report: Report,
    declaration: DeclarationSubmitted,
    verdicts: list[AgencyVerdict],
    rules: Mapping[str, Recompute],
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
            expected = recompute(declaration, verdict)
        except Exception as exc:
            report.add("verdict not recomputable", key, f"{verdict.agency}: {exc}")
            continue
        if expected.verdict != verdict.unsigned():
            report.add("verdict mismatch", key, _difference(verdict, expected.verdict))
        elif expected.unchecked is not None:
            report.note(SAMPLING_NOT_CHECKED, key, expected.unchecked)


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
        if expected[:1] != [recorded.unsigned()]:
            report.add(
                "result contradicts verdicts",
                key,
                f"recorded {recorded.status}, recomputed "
                f"{expected[0].status if expected else 'no result'}",
            )


def _difference(actual: AgencyVerdict, expected: AgencyVerdict) -> str:
    a = actual.model_dump(mode="json", exclude={"signature"})
    e = expected.model_dump(mode="json", exclude={"signature"})
    fields = [name for name in a if a[name] != e[name]]
    return f"{actual.agency}: " + ", ".join(
        f"{name} recorded {a[name]!r:.60} recomputed {e[name]!r:.60}" for name in fields
    )
