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

Versioned declarations (see "The life of a versioned declaration" in
:mod:`services.aggregator.join`) are checked step by step. Each verdict is recomputed from the
declaration version it names and stamped with that version
(:func:`singlewindow.verdicts.on_version`), as the agency SDK does; a verdict on a version
never declared is a finding, and so is a result naming one. Every version's routing is
checked. The aggregator writes one result per step, numbered 1..n: a gap or a repeated number
is a finding. The order in which the aggregator
read its input topics relative to one another is not recorded (only each topic's own order
is), so the whole sequence of steps is *not* recomputed; each step is checked on its own
justification instead, always through the join's own functions:

- the consolidated answer of a version (the first result deciding it: HELD,
  INSPECTION_REQUIRED, REJECTED, AWAITING_PAYMENT or RELEASED without settlement) is what the
  join gives that version's declaration and verdicts, numbered as recorded, its notice
  included (a HELD on customs' price query carries the security notice the join issues,
  :func:`services.aggregator.payment.security_notice`);
- a later step of the version (AWAITING_PAYMENT again, or RELEASED with a settlement) is what
  the join gives the payments on the version's notice, deduplicated, in the payments topic's
  order: the k-th of some first k of them must give exactly the recorded step (a release that
  no such prefix settles is a release without payment or guarantee);
- a release under guarantee pending a price consultation (担保放行 pending 价格磋商):
  CONDITIONALLY_RELEASED with ``valuation_pending`` after a HELD carrying a security notice is
  what the join gives the payments on that notice, as above (only a bank guarantee covering
  it gives a step): none covering it, a *release without payment or guarantee*; one covering
  it, yet not this step (the mark dropped, another settlement), *result contradicts payments*.
  A step of a version that is no change after release marked ``valuation_pending`` when the
  version's answer is no HELD carrying a security notice (one awaiting payment, an inspection
  order) is a *result contradicts verdicts*;
- after an inspection order (the version's answer INSPECTION_REQUIRED, whose order is the one
  the join gives its verdicts), each step rests on the inspectors' findings against that order
  (inspections.findings) and the payments on the version's notice: from the state the
  recorded steps before it leave, some first findings and payments, then one more, must make
  the join write exactly the recorded step (see :class:`Inspected`). Findings recorded after
  the step's time do not count (a step on a payment is dated by its value date: once every
  agency named had recorded, a later laboratory result or re-inspection may have been read
  before it). What a step that is not so justified is: SANCTIONED, REMEDIATION_REQUIRED or
  RECALLED naming another sanction than the findings give (*sanction contradicts findings*);
  a notice or a release before every agency the order names had recorded, while a fault was
  still to be put right, or released outright while a laboratory result was awaited (*release
  before the inspection is complete*); a release that no payment or guarantee on the notice
  settles (*release without payment or guarantee*, as without an inspection); otherwise
  (a finding the log does not hold, a conditional release without samples) *result
  contradicts findings*;
- every finding answers an order of its declaration: an INSPECTION_REQUIRED result on the
  version it names, whose order names its agency (*inspection outcome without an order*:
  the join ignores it);
- WITHDRAWN rests on a recorded withdrawal, at its time; a TIMED_OUT escalation before the
  version's answer is at the version's deadline and names the agencies that had not ruled by
  then; one after its inspection order (the order's escalation, ``inspection_after``: the
  aggregator's ``AGGREGATOR_INSPECTION_DEADLINE_SECONDS``) is the step right after the order
  (once: any later step rests on a complete order), at the order's deadline, carrying the
  order, and names, in the order's agency order, every agency the order names whose finding
  was not recorded before the deadline, and no other but one whose finding, recorded in time,
  the aggregator may have read after its clock ticked (:meth:`Inspected.escalation`);
- a change after release (a version marked ``after_release``, 报关单修改和撤销管理办法) is
  routed to customs alone (:func:`services.intake.routing.route_after_release`); its answer
  (SUPPLEMENTARY_PAYMENT_DUE, RELEASED with or without a refund, AMENDMENT_REFUSED) is what the
  join gives its declaration and verdicts from the release in force before it, and its later
  steps what the join gives the payments on its supplementary notice, as for any notice. The
  release in force is the latest RELEASED step before the answer, with its version's verdicts
  (what that release levied), or the latest conditional release pending the goods'
  valuation: the change then lodges the value agreed, assessed from nothing levied (its
  supplementary notice asks for all its duties, the answer and its steps marked
  ``valuation_pending`` until RELEASED), and customs' refusal of it is CONDITIONALLY_RELEASED
  again, on the change (never AMENDMENT_REFUSED), after which another value may follow. The
  join answers a change with the step right after the release in force (but for refusals of
  changes in between: the release stands): a change answered after any other step (a second
  value lodged while the duties of the first are due) has no answer. A release that no
  payment on the supplementary notice settles, or a RELEASED answer where the join gives a
  supplementary notice, is a *release without payment or guarantee*;
- no result comes after a final one (*result after a final result*), but for the steps of a
  change after release after a release (RELEASED, AMENDMENT_REFUSED): any other step after a
  release (one on a version not marked, or not higher than the release's) is a *result after
  a release*, as is any step but the laboratory's after a conditional release awaiting it, or,
  after one pending the goods' valuation, any step but those of a change after release higher
  than its version (the value lodged); and none names
  a version lower than an earlier step's
  (a result for a superseded version: once the join has decided version n, it never
  decides an older one). A result on version n decided after version n+1 was submitted is
  not a finding: the join may rightly have read the old version's last verdict first.

A life not ended whose latest version has every verdict yet no answer is a *missing result*,
but for an amendment (not marked) once the goods were out: one that raced a release under
guarantee (the guarantee read first), which the join ignores.

A declaration without versions is checked exactly as before: its life ends at its one result.

The general guarantees' ledgers are folded from the payments topic alone, each in its own
sequence order (:mod:`services.audit.guarantees`); a consolidated repayment is no payment of
a notice, as in the join.
"""

from __future__ import annotations

import inspect
import pkgutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from services.aggregator import inspection, join, payment
from services.audit.guarantees import verify_ledgers
from services.customs.sampling import Keyring
from services.intake.routing import route, route_after_release, table_of_version
from singlewindow.events import (
    FINAL_STATUSES,
    RELEASED_STATUSES,
    REOPENABLE,
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    DeclarationSubmitted,
    DeclarationWithdrawn,
    Event,
    GateOut,
    InspectionFinding,
    InspectionOrder,
    JoinState,
    PaymentConfirmed,
    PaymentKind,
    PaymentNotice,
    Sanction,
    Settlement,
)
from singlewindow.reference import in_force
from singlewindow.registry import AgencyRegistry, agency_registry
from singlewindow.verdicts import on_version

SAMPLING_NOT_CHECKED = "sampling not checked"
AFTER_CONDITIONAL_RELEASE = frozenset({ClearanceStatus.RELEASED, ClearanceStatus.RECALLED})


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
    withdrawals: int = 0
    payments: int = 0
    inspection_findings: int = 0
    gate_outs: int = 0
    ledger_entries: int = 0  # general guarantees' draws and repayments (services.audit.guarantees)

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
    withdrawals: Iterable[DeclarationWithdrawn] = (),
    payments: Iterable[PaymentConfirmed] = (),
    inspection_findings: Iterable[InspectionFinding] = (),
    gate_outs: Iterable[GateOut] = (),
    inspection_after: timedelta | None = join.INSPECTION_DEADLINE,
    ledger: Iterable[PaymentConfirmed] | None = None,
) -> Report:
    """Everything that does not add up, in log order of the inputs.

    ``rules`` defaults to :func:`recomputers` without sampling keys. ``withdrawals``,
    ``payments`` and ``inspection_findings`` are the events of declarations.withdrawn,
    payments.confirmed and inspections.findings, each in its topic's order: the later steps
    of versioned declarations rest on them. ``gate_outs`` (gate.out) are each checked against
    the release they name (:func:`verify_gate_outs`). ``inspection_after``: the aggregator's
    inspection deadline (None: it had none), what an order's escalation is checked against.
    ``ledger``: the general guarantees'
    entries to fold (:mod:`services.audit.guarantees`; by default those among ``payments``):
    a guarantee's ledger spans declarations, so a window's verification passes the whole log's.
    """
    rules = recomputers() if rules is None else rules
    report = Report()
    payments = list(payments)
    declared: dict[str, dict[int | None, DeclarationSubmitted]] = defaultdict(dict)
    for declaration in declarations:  # the first of each version
        declared[declaration.declaration_id].setdefault(declaration.version, declaration)
    ruled = _by_declaration(verdicts)
    answered = _by_declaration(results)
    withdrawn = _by_declaration(withdrawals)
    paid = _by_declaration(payments)
    inspected = _by_declaration(inspection_findings)
    report.declarations = len(declared)
    report.verdicts = sum(len(v) for v in ruled.values())
    report.results = sum(len(r) for r in answered.values())
    report.withdrawals = sum(len(w) for w in withdrawn.values())
    report.payments = sum(len(p) for p in paid.values())
    report.inspection_findings = sum(len(f) for f in inspected.values())

    for key in sorted(set(ruled) | set(answered) | set(withdrawn) | set(paid) | set(inspected)):
        if key not in declared:
            report.add("unknown declaration", key, "verdicts or results for no declaration")
    for key, versions in declared.items():
        for declaration in versions.values():
            _verify_routing(report, declaration)
        _verify_verdicts(report, key, versions, ruled[key], rules)
        _verify_orders(report, key, inspected[key], answered[key])
        if set(versions) == {None}:  # a declaration without versions: as before versions
            _verify_result(report, versions[None], ruled[key], answered[key], deadline_after)
        else:
            _verify_life(
                report,
                key,
                {v: d for v, d in versions.items() if v is not None},
                Lodged(ruled[key], answered[key], withdrawn[key], paid[key], inspected[key]),
                deadline_after,
                inspection_after,
            )
    verify_gate_outs(report, answered, gate_outs)
    entries = payments if ledger is None else ledger
    report.ledger_entries = verify_ledgers(report.add, entries, answered)
    return report


E = TypeVar("E", bound=Event)


def _by_declaration(events: Iterable[E]) -> defaultdict[str, list[E]]:
    grouped: defaultdict[str, list[E]] = defaultdict(list)
    for event in events:
        grouped[event.declaration_id].append(event)
    return grouped


def _verify_routing(report: Report, declaration: DeclarationSubmitted) -> None:
    key = declaration.declaration_id
    try:
        table = table_of_version(declaration.routing_version)
    except LookupError as exc:
        report.add("unknown routing table", key, str(exc))
        return
    if declaration.after_release:  # a change after release: customs' approval alone
        expected, _ = route_after_release(table)
    else:
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
    key: str,
    versions: Mapping[int | None, DeclarationSubmitted],
    verdicts: list[AgencyVerdict],
    rules: Mapping[str, Recompute],
) -> None:
    """Each verdict recomputed from the declaration version it names (None: the declaration
    without versions), stamped with that version as the agency SDK stamps it."""
    for verdict in verdicts:
        declaration = versions.get(verdict.declaration_version)
        if declaration is None:
            report.add(
                "verdict on an undeclared version",
                key,
                f"{verdict.agency} ruled on {_version(verdict.declaration_version)}, "
                f"declared: {', '.join(_version(v) for v in versions)}",
            )
            continue
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
        again = on_version(expected.verdict, declaration.version)
        if again != verdict.unsigned():
            report.add("verdict mismatch", key, _difference(verdict, again))
        elif expected.unchecked is not None:
            report.note(SAMPLING_NOT_CHECKED, key, expected.unchecked)


def _version(version: int | None) -> str:
    return "no version" if version is None else f"version {version}"


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
        if not _timed_out_as_recorded(declaration, verdicts, actual, deadline_after):
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


def _timed_out_as_recorded(
    declaration: DeclarationSubmitted,
    verdicts: list[AgencyVerdict],
    result: ClearanceResult,
    deadline_after: timedelta,
) -> bool:
    """Whether a TIMED_OUT result is at the declaration's deadline and names (at least) the
    agencies that had not ruled by then, and only agencies that were asked."""
    deadline = declaration.submitted_at + deadline_after
    in_time = {v.agency for v in verdicts if v.decided_at < deadline}
    expected_missing = tuple(a for a in declaration.required_agencies if a not in in_time)
    return (
        result.decided_at == deadline
        and result.inspection is None  # an order's escalation comes after the order
        and set(result.missing_agencies) <= set(declaration.required_agencies)
        and set(result.missing_agencies) >= set(expected_missing)
    )


# -- the life of a versioned declaration --------------------------------------------------------

# the statuses of a consolidated answer (and RELEASED, when it carries no settlement)
ANSWERS = frozenset(
    {
        ClearanceStatus.HELD,
        ClearanceStatus.INSPECTION_REQUIRED,
        ClearanceStatus.REJECTED,
        ClearanceStatus.AWAITING_PAYMENT,
        # customs' answer to a change after release
        ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE,
        ClearanceStatus.AMENDMENT_REFUSED,
    }
)


def _answers(result: ClearanceResult, change: bool = False) -> bool:
    """Whether a result can be a version's consolidated answer (``change``: the version is a
    change after release, which customs may refuse while the goods wait for their valuation:
    CONDITIONALLY_RELEASED again)."""
    return (
        result.status in ANSWERS
        or (result.status is ClearanceStatus.RELEASED and result.settlement is None)
        or (change and result.status is ClearanceStatus.CONDITIONALLY_RELEASED)
    )


@dataclass(frozen=True)
class Lodged:
    """What the log holds about one declaration besides its versions, each in log order."""

    verdicts: list[AgencyVerdict]
    results: list[ClearanceResult]
    withdrawals: list[DeclarationWithdrawn]
    payments: list[PaymentConfirmed]
    findings: list[InspectionFinding] = field(default_factory=list)  # the inspectors'


@dataclass(frozen=True)
class Answer:
    """A version's consolidated answer as the join gives it (None: its verdicts do not
    complete it), and the join's state right after it."""

    result: ClearanceResult | None
    state: JoinState


def _on(version: int, verdicts: list[AgencyVerdict]) -> list[AgencyVerdict]:
    """The verdicts the join counts for a version (one naming none counts for version 1)."""
    return [v for v in verdicts if (v.declaration_version or 1) == version]


def _not_ruled(declaration: DeclarationSubmitted, verdicts: list[AgencyVerdict]) -> list[str]:
    """The agencies asked on this version without a verdict on it."""
    assert declaration.version is not None
    ruled = {v.agency for v in _on(declaration.version, verdicts)}
    return [str(a) for a in declaration.required_agencies if a not in ruled]


def _answer(
    declaration: DeclarationSubmitted,
    verdicts: list[AgencyVerdict],
    sequence: int,
    deadline_after: timedelta,
) -> Answer:
    """The join's consolidated answer to one version, numbered ``sequence``: its declaration
    then every verdict through ``join.step``, from a state that has taken ``sequence - 1``
    steps (the join itself ignores the verdicts on other versions, and duplicates)."""
    state = JoinState(declaration_id=declaration.declaration_id, sequence=sequence - 1)
    return _first_step(state, [declaration, *verdicts], deadline_after)


def _first_step(state: JoinState, events: list[join.Input], deadline_after: timedelta) -> Answer:
    """The first step the join takes from ``state`` on ``events`` in turn, and the state then
    (no step: the state after them all)."""
    for event in events:
        after, out = join.step(state, event, deadline_after)
        assert after is not None  # step only returns None from a None state
        state = after
        if out:
            return Answer(out[0], state)
    return Answer(None, state)


def _paid_step(
    answer: Answer, payments: list[PaymentConfirmed], deadline_after: timedelta
) -> Callable[[ClearanceResult], bool]:
    """Whether a later step of a version (after its consolidated answer) is what the join
    gives the first k payments on the version's notice, for some k: the k-th gives it, the
    steps the first k give numbered on from the answer's (a payment on a notice gives a step
    each, AWAITING_PAYMENT again or the release; on a security notice, only the guarantee
    that covers it does)."""
    mine = _on_notice(answer, payments)

    def steps(sequence: int, paying: list[PaymentConfirmed]) -> list[list[ClearanceResult]]:
        """The steps each payment gives in turn, from the answer's state numbered ``sequence``."""
        state: JoinState | None = answer.state.model_copy(update={"sequence": sequence})
        out: list[list[ClearanceResult]] = []
        for p in paying:
            state, given = join.step(state, p, deadline_after)
            out.append(given)
        return out

    def justified(recorded: ClearanceResult) -> bool:
        counted = steps(answer.state.sequence, mine)
        for k in range(1, len(mine) + 1):
            before = sum(len(given) for given in counted[:k])
            if not counted[k - 1] or recorded.sequence < before:
                continue
            again = steps(recorded.sequence - before, mine[:k])[-1]
            if again[-1] == recorded.unsigned():
                return True
        return False

    return justified


def _on_notice(answer: Answer, payments: list[PaymentConfirmed]) -> list[PaymentConfirmed]:
    """The payments on the notice of a version's answer that the join counts, in the payments
    topic's order: the bank's redeliveries once, and no consolidated repayment (none if the
    answer carries no notice)."""
    notice = answer.result.payment_notice if answer.result is not None else None
    if notice is None:
        return []
    return _once(
        (
            p
            for p in payments
            if p.notice_id == notice.notice_id and p.kind is not PaymentKind.CONSOLIDATED_PAYMENT
        ),
        lambda p: p.payment_id,
    )


def _verify_life(
    report: Report,
    key: str,
    versions: Mapping[int, DeclarationSubmitted],
    lodged: Lodged,
    deadline_after: timedelta,
    inspection_after: timedelta | None = join.INSPECTION_DEADLINE,
) -> None:
    """Every step of a versioned declaration, each on its own justification."""
    results = sorted(lodged.results, key=lambda r: r.sequence)
    latest = versions[max(versions)]
    ends = [r.sequence for r in results if r.status in FINAL_STATUSES]
    changing = latest.after_release and not any(r.version == latest.version for r in results)
    if not ends or changing:
        _verify_pending(report, latest, lodged, deadline_after)
    if not results:
        return
    _verify_steps(report, key, results, ends, versions)
    _verify_after_release(report, key, results, versions)

    for version, declaration in sorted(versions.items()):
        mine = [r for r in results if r.version == version]
        change = declaration.after_release
        first = min((r.sequence for r in mine if _answers(r, change)), default=None)
        if declaration.after_release:
            answer = _changed(declaration, versions, lodged, results, first, deadline_after)
        else:
            answer = _answer(declaration, lodged.verdicts, first or 1, deadline_after)
        paid = _paid_step(answer, lodged.payments, deadline_after)
        inspected = _inspected(answer, mine, lodged, deadline_after, inspection_after)
        if first is not None and answer.result is None:
            for agency in _not_ruled(declaration, lodged.verdicts):
                report.add(
                    "missing verdict",
                    key,
                    f"{agency} never ruled on version {version}, yet it was answered",
                )
        for recorded in mine:
            problem = _step_problem(
                recorded, first, answer, paid, declaration, lodged, deadline_after, inspected
            )
            if problem is not None:
                report.add(problem[0], key, f"step {recorded.sequence}: {problem[1]}")

    for recorded in results:
        named = recorded.version
        if named is None or named not in versions:
            report.add(
                "result on an undeclared version",
                key,
                f"step {recorded.sequence} ({recorded.status}) names "
                f"{_version(recorded.version)}, declared: {', '.join(map(str, versions))}",
            )
            continue
        newer = [r for r in results if r.sequence < recorded.sequence and (r.version or 0) > named]
        if newer:
            report.add(
                "result for a superseded version",
                key,
                f"step {recorded.sequence} ({recorded.status}) on version {recorded.version} "
                f"after step {newer[0].sequence} had decided version {newer[0].version}",
            )


def _changed(
    declaration: DeclarationSubmitted,
    versions: Mapping[int, DeclarationSubmitted],
    lodged: Lodged,
    results: list[ClearanceResult],
    first: int | None,
    deadline_after: timedelta,
) -> Answer:
    """The join's answer to a change after release, numbered ``first``: its declaration then
    every verdict through ``join.step``, from the state the release in force before it leaves.
    That is the latest RELEASED step before it (its version, and that version's verdicts, once
    each: what the release levied), or the latest conditional release pending the goods'
    valuation (``valuation_pending``: released under guarantee, nothing levied yet, the value
    lodged as a change; customs' refusal of one leaves it standing, on the refused version).
    No release before it, or a step between it and the answer but a refusal of a change (the
    release stands): no answer (the join takes no change of a life not released, and answers
    a change it takes with its next step)."""
    sequence = first or 1 + max((r.sequence for r in results), default=0)
    release = next(
        (r for r in reversed(results) if r.sequence < sequence and _in_force(r)),
        None,
    )
    base = None if release is None or release.version is None else versions.get(release.version)
    if (
        release is None
        or base is None
        or base.version is None
        or any(
            release.sequence < r.sequence < sequence
            and r.status is not ClearanceStatus.AMENDMENT_REFUSED  # the release stands
            for r in results
        )
    ):
        return Answer(None, JoinState(declaration_id=declaration.declaration_id))
    once: dict[str, AgencyVerdict] = {}
    for verdict in _on(base.version, lodged.verdicts):  # a redelivery counts once, as in the join
        once.setdefault(str(verdict.agency), verdict)
    state = JoinState(
        declaration_id=declaration.declaration_id,
        required_agencies=base.required_agencies,
        submitted_at=base.submitted_at,
        verdicts=tuple(once.values()),
        version=base.version,
        sequence=sequence - 1,
        last_status=release.status,
        assessed=True,
        last_event_at=release.decided_at,
    )
    if release.status is ClearanceStatus.RELEASED:
        state = state.model_copy(update={"decided": ClearanceStatus.RELEASED, "cleared": True})
    else:  # released under guarantee: nothing levied (JoinState.levied is empty)
        state = state.model_copy(
            update={"valuation_pending": True, "after_release": base.after_release}
        )
    return _first_step(state, [declaration, *lodged.verdicts], deadline_after)


def _in_force(result: ClearanceResult) -> bool:
    """Whether a step is a release a change after release is assessed against: RELEASED, or a
    conditional release pending the goods' valuation (a change lodges their value)."""
    return result.status is ClearanceStatus.RELEASED or (
        result.status is ClearanceStatus.CONDITIONALLY_RELEASED and result.valuation_pending
    )


def _verify_after_release(
    report: Report,
    key: str,
    results: list[ClearanceResult],
    versions: Mapping[int, DeclarationSubmitted],
) -> None:
    """After a release (RELEASED, AMENDMENT_REFUSED), only the steps of a change after
    release: each later step names a version marked ``after_release``, higher than the
    version of the latest such release before it."""
    for recorded in results:
        release = next(
            (
                r
                for r in reversed(results)
                if r.sequence < recorded.sequence and r.status in REOPENABLE
            ),
            None,
        )
        if release is None:
            continue
        declared = versions.get(recorded.version or 0)
        if (
            declared is None
            or not declared.after_release
            or (recorded.version or 0) <= (release.version or 0)
        ):
            report.add(
                "result after a release",
                key,
                f"step {recorded.sequence} ({recorded.status}) on {_version(recorded.version)} "
                f"after the release of step {release.sequence} (version {release.version}), "
                "and not on a change after release",
            )


def _verify_orders(
    report: Report, key: str, findings: list[InspectionFinding], results: list[ClearanceResult]
) -> None:
    """Every inspector's finding answers an inspection order the declaration was given: the
    order of an INSPECTION_REQUIRED result on the version it names, by an agency the order
    names (the join ignores any other finding). A redelivered finding is reported once."""
    orders = {
        (r.version, r.inspection.order_id): r.inspection
        for r in results
        if r.status is ClearanceStatus.INSPECTION_REQUIRED and r.inspection is not None
    }
    seen: set[str] = set()
    for finding in findings:
        if finding.finding_id in seen:
            continue
        seen.add(finding.finding_id)
        order = orders.get((finding.version, finding.order_id))
        what = f"finding {finding.finding_id} of {finding.agency} ({finding.outcome})"
        if order is None:
            report.add(
                "inspection outcome without an order",
                key,
                f"{what} against order {finding.order_id} of version {finding.version}: "
                "no inspection of that version was ordered so",
            )
        elif finding.agency not in inspection.agencies(order):
            named = ", ".join(inspection.agencies(order))
            report.add(
                "inspection outcome without an order",
                key,
                f"{what}: order {order.order_id} names {named}, not {finding.agency}",
            )


def _verify_pending(
    report: Report, latest: DeclarationSubmitted, lodged: Lodged, deadline_after: timedelta
) -> None:
    """A life that has not ended: a result is missing if nothing at all was answered, if its
    latest version has all its verdicts yet no answer, or if it was withdrawn."""
    key = latest.declaration_id
    if not lodged.results:
        missing = _not_ruled(latest, lodged.verdicts)
        report.add(
            "missing result",
            key,
            f"no result; no verdict on version {latest.version} from {missing or 'none'}",
        )
        return
    answered = any(
        r.version == latest.version and _answers(r, latest.after_release) for r in lodged.results
    )
    released = any(r.status in RELEASED_STATUSES for r in lodged.results)
    # an amendment (not marked) read once the goods were out, on condition (a guarantee pending
    # their valuation may have been read first): the join ignores it, nothing is missing
    raced = released and not latest.after_release
    if not answered and not raced and not _not_ruled(latest, lodged.verdicts):
        report.add("missing result", key, f"version {latest.version} has every verdict, no answer")
    ordered = [r for r in lodged.results if r.status is ClearanceStatus.INSPECTION_REQUIRED]
    standing = [
        w
        for w in lodged.withdrawals
        if join.check(w, deadline_after) is None
        # asked once the inspection was ordered: refused while it was unfinished (the order
        # in which the aggregator read the withdrawal and the findings is not recorded, so
        # any such withdrawal may have been read while it was). Whatever version it names:
        # the join takes no version after the order, and the intake names the version the
        # trader saw, which may be an amendment that raced the order
        and not any(r.decided_at <= w.withdrawn_at for r in ordered)
    ]
    if not released and standing:
        # (once the goods are out, conditionally, a withdrawal changes nothing)
        report.add("missing result", key, "withdrawal requested, yet neither withdrawn nor ended")


def _verify_steps(
    report: Report,
    key: str,
    results: list[ClearanceResult],
    ends: list[int],
    versions: Mapping[int, DeclarationSubmitted],
) -> None:
    """The steps are numbered 1..n once each, and none comes after the end of the life, nor
    after a conditional release but the laboratory's (release or recall) or, while the goods
    wait for their valuation, the steps of a change after release lodging their value."""
    numbers = Counter(r.sequence for r in results)
    for sequence, count in sorted(numbers.items()):
        if count > 1:
            report.add("duplicate result", key, f"{count} results for step {sequence}")
    gaps = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
    if gaps:
        report.add("missing step", key, f"no result for step(s) {', '.join(map(str, gaps))}")
    ends = [s for s in ends if _status_of(results, s) not in REOPENABLE]
    if ends:
        after = [r for r in results if r.sequence > min(ends)]
        for r in after:
            report.add(
                "result after a final result",
                key,
                f"step {r.sequence} ({r.status}) after step {min(ends)} ended the life",
            )
    out = [r for r in results if r.status is ClearanceStatus.CONDITIONALLY_RELEASED]
    if out:  # after a conditional release only the laboratory speaks: release or recall
        # (then, after the release, a change after release: see _verify_after_release)
        released = min(
            (
                r.sequence
                for r in results
                if r.sequence > out[0].sequence and r.status in REOPENABLE
            ),
            default=None,
        )
        for r in results:
            if released is not None and r.sequence > released:
                continue
            standing = [c for c in out if c.sequence < r.sequence]
            if not standing or _after_conditional_release(r, standing[-1], versions):
                continue
            report.add(
                "result after a release",
                key,
                f"step {r.sequence} ({r.status}) on {_version(r.version)} after the conditional "
                f"release of step {standing[-1].sequence}"
                + (
                    ", and not on a change lodging the value"
                    if standing[-1].valuation_pending
                    else ""
                ),
            )


def _after_conditional_release(
    recorded: ClearanceResult,
    standing: ClearanceResult,
    versions: Mapping[int, DeclarationSubmitted],
) -> bool:
    """Whether a step may follow the conditional release ``standing``: the laboratory's
    (RELEASED, RECALLED) after one awaiting its result; after one pending the goods' valuation
    (担保放行 pending 价格磋商), a step of a change after release (a version marked
    ``after_release``, higher than the release's) lodging their value."""
    if not standing.valuation_pending:
        return recorded.status in AFTER_CONDITIONAL_RELEASE
    declared = versions.get(recorded.version or 0)
    return (
        declared is not None
        and declared.after_release
        and (recorded.version or 0) > (standing.version or 0)
    )


def _status_of(results: list[ClearanceResult], sequence: int) -> ClearanceStatus:
    """The status of the (first) step numbered ``sequence``."""
    return next(r.status for r in results if r.sequence == sequence)


# the steps a payment on a version's notice (or supplementary notice) may give
PAYING = frozenset(
    {
        ClearanceStatus.RELEASED,
        ClearanceStatus.AWAITING_PAYMENT,
        ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE,
    }
)


def _step_problem(
    recorded: ClearanceResult,
    first: int | None,
    answer: Answer,
    paid: Callable[[ClearanceResult], bool],
    declaration: DeclarationSubmitted,
    lodged: Lodged,
    deadline_after: timedelta,
    inspected: Inspected | None = None,
) -> tuple[str, str] | None:
    """What is wrong with one step of a version (kind, detail), or None."""
    expected = answer.result
    status = recorded.status
    change = declaration.after_release
    if _answers(recorded, change) and recorded.sequence == first:  # the consolidated answer
        if expected is None:
            return "result contradicts verdicts", f"recorded {status}, recomputed no answer"
        if status is ClearanceStatus.RELEASED and expected.payment_notice is not None:
            return (
                "release without payment or guarantee",
                f"released at once, yet notice {expected.payment_notice.notice_id} was due "
                f"for {expected.payment_notice.amount} CNY",
            )
        if recorded.unsigned() != expected:
            return (
                "result contradicts verdicts",
                f"recorded {status}, recomputed {expected.status}"
                + ("" if status is not expected.status else " (with other details)"),
            )
        return None
    if recorded.valuation_pending and not change and not _securable(expected):
        return (
            "result contradicts verdicts",
            f"{status} pending the goods' valuation, yet version {declaration.version} was "
            f"{'never answered' if expected is None else f'answered {expected.status}'} "
            "naming no security a guarantee could cover",
        )
    if status is ClearanceStatus.TIMED_OUT:
        if inspected is not None and first is not None and recorded.sequence > first:
            return inspected.escalation(recorded)  # the inspection order's
        verdicts = _on(recorded.version or 1, lodged.verdicts)
        if first is not None and recorded.sequence > first:
            return "result contradicts verdicts", "escalated after its answer"
        if declaration.after_release:  # customs approves it in its own time (join._take)
            return "result contradicts verdicts", "a change after release has no deadline"
        if not _timed_out_as_recorded(declaration, verdicts, recorded, deadline_after):
            return "result contradicts verdicts", "timeout not as recorded"
        return None
    if status is ClearanceStatus.WITHDRAWN:
        if not lodged.withdrawals:
            return "withdrawn without a request", "no withdrawal was recorded"
        if recorded.decided_at not in {w.withdrawn_at for w in lodged.withdrawals}:
            return (
                "withdrawn without a request",
                f"withdrawn at {recorded.decided_at.isoformat()}, when no request was made",
            )
        return None
    if inspected is not None and first is not None and recorded.sequence > first:
        return inspected.problem(recorded)  # a step after the inspection order
    if status is ClearanceStatus.CONDITIONALLY_RELEASED and not change and _securable(expected):
        return _secured_problem(recorded, answer, paid, lodged.payments)
    # a later step: AWAITING_PAYMENT (or SUPPLEMENTARY_PAYMENT_DUE) again, RELEASED with a
    # settlement, or a second answer
    if status in PAYING:
        if expected is None or expected.payment_notice is None:
            return (
                "result contradicts verdicts",
                f"{status} after the answer, yet the version "
                f"{'was never answered' if expected is None else f'was {expected.status}'}",
            )
        if paid(recorded):
            return None
        if status is ClearanceStatus.RELEASED:
            return (
                "release without payment or guarantee",
                f"no payment or guarantee on notice {expected.payment_notice.notice_id} "
                "settles it as recorded",
            )
        return (
            "result contradicts payments",
            f"the payments on notice {expected.payment_notice.notice_id} give no such step",
        )
    return "result contradicts verdicts", f"version answered again: {status}"


def _securable(answer: ClearanceResult | None) -> bool:
    """Whether a version's answer is a HELD a guarantee may release pending the goods'
    valuation: one carrying the security notice the join issues (customs' price query)."""
    return (
        answer is not None
        and answer.status is ClearanceStatus.HELD
        and answer.payment_notice is not None
    )


def _secured_problem(
    recorded: ClearanceResult,
    answer: Answer,
    paid: Callable[[ClearanceResult], bool],
    payments: list[PaymentConfirmed],
) -> tuple[str, str] | None:
    """What is wrong with the conditional release of a HELD version pending the goods'
    valuation (担保放行 pending 价格磋商), or None: it must be what the join gives the first
    payments on the version's security notice, the last a bank guarantee covering it
    (:func:`services.aggregator.payment.secure`). None that covers it: a *release without
    payment or guarantee*; one that does, yet not this step: *result contradicts payments*."""
    if paid(recorded):
        return None
    assert answer.result is not None and answer.result.payment_notice is not None
    notice = answer.result.payment_notice
    mine = _on_notice(answer, payments)
    if not any(payment.secure(notice, tuple(mine[:k]))[0] for k in range(1, len(mine) + 1)):
        return (
            "release without payment or guarantee",
            f"released on condition pending the goods' valuation, yet no bank guarantee on "
            f"security notice {notice.notice_id} covers its {notice.amount} CNY",
        )
    return (
        "result contradicts payments",
        f"the guarantee on security notice {notice.notice_id} gives no such step",
    )


# -- the steps after an inspection order -------------------------------------------------------

# the steps that impose the sanction the findings give
SANCTIONS = frozenset(
    {
        ClearanceStatus.SANCTIONED,
        ClearanceStatus.REMEDIATION_REQUIRED,
        ClearanceStatus.RECALLED,
    }
)
# the steps that clear a version after its inspection: its payment notice, or a release
CLEARING = frozenset({ClearanceStatus.AWAITING_PAYMENT, *RELEASED_STATUSES})


def _once(events: Iterable[E], key: Callable[[E], str]) -> list[E]:
    """The events in log order, a redelivered one (same id) counted once, as the join does."""
    first: dict[str, E] = {}
    for event in events:
        first.setdefault(key(event), event)
    return list(first.values())


def _inspected(
    answer: Answer,
    steps: list[ClearanceResult],
    lodged: Lodged,
    deadline_after: timedelta,
    inspection_after: timedelta | None = join.INSPECTION_DEADLINE,
) -> Inspected | None:
    """What the steps after a version's inspection order rest on, if its answer (as the join
    gives it) is INSPECTION_REQUIRED."""
    ordered = answer.result
    if ordered is None or ordered.inspection is None or ordered.version is None:
        return None
    order = ordered.inspection
    notice = payment.notice_id(ordered.declaration_id, ordered.version)
    return Inspected(
        answer.state,
        order,
        _once(
            (f for f in lodged.findings if inspection.answers(order, ordered.version, f)),
            lambda f: f.finding_id,
        ),
        _once(
            (
                p
                for p in lodged.payments
                if p.notice_id == notice and p.kind is not PaymentKind.CONSOLIDATED_PAYMENT
            ),
            lambda p: p.payment_id,
        ),
        sorted((r for r in steps if r.sequence > ordered.sequence), key=lambda r: r.sequence),
        {f.finding_id for f in lodged.findings},
        deadline_after,
        join.inspection_deadline(ordered.decided_at, inspection_after),
    )


@dataclass(frozen=True)
class Inspected:
    """A version after its inspection order: the join's state right after the order, the
    findings against it (by agencies it names, once each, in the findings topic's order),
    the payments on the version's notice (once each, in the payments topic's order), the
    recorded steps after the order, and the ids of every finding of the declaration.

    Each step is checked on its own justification. The join reads each topic in its order,
    but the two topics' order relative to one another is not recorded, so a step is
    justified when, from the state the recorded steps before it leave (their last status,
    whether the version was cleared and when its notice was issued), some first i findings
    and first k payments, then the next finding or payment, make ``join.step`` write exactly
    the recorded step (:meth:`justified`). A finding recorded after the step's time cannot
    justify it, but for a step on a payment, dated by its value date: once every agency the
    order names had recorded, a later laboratory result or re-inspection may have been read
    before the payment.
    """

    ordered: JoinState
    order: InspectionOrder
    findings: list[InspectionFinding]
    payments: list[PaymentConfirmed]
    steps: list[ClearanceResult]
    known: set[str]
    deadline_after: timedelta
    deadline: datetime | None = None  # the order's (None: the aggregator set it none)

    def before(self, recorded: ClearanceResult) -> JoinState:
        """The join's state just before ``recorded``, as the recorded steps before it leave it:
        their last status, and the notice of the first that cleared the version (the join
        issues it then, once)."""
        prior = [r for r in self.steps if r.sequence < recorded.sequence]
        clearing = next((r for r in prior if r.status in CLEARING), None)
        notice = None
        if clearing is not None:
            notice = self._notice(clearing)
        return self.ordered.model_copy(
            update={
                "sequence": recorded.sequence - 1,
                "last_status": prior[-1].status if prior else self.ordered.last_status,
                "cleared": clearing is not None,
                "notice": notice,
            }
        )

    def _notice(self, clearing: ClearanceResult) -> PaymentNotice | None:
        """The notice the join issues when ``clearing`` clears the version."""
        assert self.ordered.version is not None
        return payment.notice(
            self.ordered.declaration_id,
            self.ordered.version,
            self.ordered.current,
            clearing.decided_at,
        )

    def cutoff(self, state: JoinState, recorded: ClearanceResult) -> datetime:
        """The latest time a finding that justifies ``recorded`` can have been recorded."""
        if state.notice is not None and state.notice.issued_at > recorded.decided_at:
            return state.notice.issued_at
        return recorded.decided_at

    def justified(self, recorded: ClearanceResult) -> bool:
        """Whether some first findings and payments, then one more, give ``recorded``: a
        finding (the step is at its time), among the findings recorded by then; or a payment
        on the notice (the step is at its value date), once every agency the order names had
        recorded by then (or by the notice's issue), the findings recorded later, a
        laboratory's result or a re-inspection the aggregator read before the payment,
        included: the join dates that step by the payment alone."""
        state = self.before(recorded)
        cutoff = self.cutoff(state, recorded)
        expected = [recorded.unsigned()]

        def gives(event: join.Input, i: int, k: int, findings: list[InspectionFinding]) -> bool:
            before = state.model_copy(
                update={"findings": tuple(findings[:i]), "payments": tuple(self.payments[:k])}
            )
            return join.step(before, event, self.deadline_after)[1] == expected

        by_then = [f for f in self.findings if f.recorded_at <= cutoff]
        if state.notice is None:  # the join counts no payment before its notice
            return any(gives(f, i, 0, by_then) for i, f in enumerate(by_then))
        if any(
            gives(f, i, k, by_then)
            for i, f in enumerate(by_then)
            for k in range(len(self.payments) + 1)
        ):
            return True
        if not inspection.outcome(self.order, tuple(by_then)).complete:
            return False
        return any(
            gives(p, i, k, self.findings)
            for k, p in enumerate(self.payments)
            for i in range(len(self.findings) + 1)
        )

    def escalation(self, recorded: ClearanceResult) -> tuple[str, str] | None:
        """What is wrong with the order's escalation (TIMED_OUT after it), or None: it must be
        what ``join.expire`` gives at the order's deadline, the step right after the order,
        from the findings recorded before the deadline by the agencies it does not name (an
        agency it names may have recorded in time, its finding read after the clock ticked;
        one it does not name must have)."""
        order = self.order.order_id
        if self.deadline is None:
            return "result contradicts findings", f"escalated, yet order {order} has no deadline"
        prior = [r for r in self.steps if r.sequence < recorded.sequence]
        if prior:
            return (
                "result contradicts findings",
                f"order {order} escalated after step {prior[-1].sequence} ({prior[-1].status}): "
                "an order is escalated once, and only while it is incomplete",
            )
        named = set(recorded.missing_agencies)
        read = tuple(
            f for f in self.findings if f.recorded_at < self.deadline and f.agency not in named
        )
        state = self.before(recorded).model_copy(
            update={"findings": read, "deadline": self.deadline}
        )
        if join.expire(state, self.deadline)[1] == [recorded.unsigned()]:
            return None
        if recorded.decided_at != self.deadline:
            return (
                "result contradicts findings",
                f"order {order} escalated at {recorded.decided_at.isoformat()}, its deadline "
                f"is {self.deadline.isoformat()}",
            )
        late = inspection.missing(self.order, tuple(self.findings), self.deadline)
        names = ", ".join(recorded.missing_agencies) or "no agency"
        if not set(late) <= named or not named <= set(inspection.agencies(self.order)):
            return (
                "result contradicts findings",
                f"order {order} escalated naming {names}; the order names "
                f"{', '.join(inspection.agencies(self.order))}, and by its deadline "
                f"{', '.join(late) or 'none of them'} had recorded no finding",
            )
        return "result contradicts findings", f"order {order} escalated naming {names}, not so"

    def problem(self, recorded: ClearanceResult) -> tuple[str, str] | None:
        """What is wrong with a step after the inspection order (kind, detail), or None."""
        if self.justified(recorded):
            return None
        status = recorded.status
        state = self.before(recorded)
        cutoff = self.cutoff(state, recorded)
        recorded_by = tuple(f for f in self.findings if f.recorded_at <= cutoff)
        by_then = inspection.outcome(self.order, recorded_by)
        if status in SANCTIONS:
            given = _sanction(by_then.sanction) if by_then.complete else "an incomplete order"
            return (
                "sanction contradicts findings",
                f"{status} with {_sanction(recorded.sanction)}; the findings on order "
                f"{self.order.order_id} recorded by {cutoff.isoformat()} give {given}",
            )
        if status not in CLEARING:
            return "result contradicts verdicts", f"version answered again: {status}"
        waiting = self._waiting(recorded_by, status, on_payment=state.notice is not None)
        if waiting is not None:
            return (
                "release before the inspection is complete",
                f"{status} at {recorded.decided_at.isoformat()}, when {waiting}",
            )
        unknown = [i for i in recorded.finding_ids if i not in self.known]
        if unknown:
            return (
                "result contradicts findings",
                f"{status} names finding(s) {', '.join(unknown)}, which the log does not hold",
            )
        if status is ClearanceStatus.CONDITIONALLY_RELEASED and not by_then.sampled:
            return "result contradicts findings", f"{status}, yet no samples were awaited"
        unpaid = self._unpaid(state, recorded)
        if unpaid is not None:
            return "release without payment or guarantee", unpaid
        if status is ClearanceStatus.AWAITING_PAYMENT and state.notice is not None:
            return (
                "result contradicts payments",
                f"the payments on notice {state.notice.notice_id} give no such step",
            )
        return "result contradicts findings", f"the findings give no such {status}"

    def _waiting(
        self, findings: tuple[InspectionFinding, ...], status: ClearanceStatus, on_payment: bool
    ) -> str | None:
        """What a notice or a release had still to wait for, given the findings recorded by
        then (None: nothing): an agency's finding, a fault put right, a laboratory's result.
        A step that may rest on a payment (``on_payment``) may count later findings, once
        every agency had recorded (:meth:`justified`)."""
        order = self.order.order_id
        found = inspection.outcome(self.order, findings)
        if not found.complete:
            recorded = inspection.latest(self.order, findings)
            absent = [a for a in inspection.agencies(self.order) if a not in recorded]
            return f"{', '.join(absent)} had recorded no finding on order {order}"
        if on_payment:
            found = inspection.outcome(self.order, tuple(self.findings))
        if found.sanction is not None:
            return f"{_sanction(found.sanction)} was still to be put right"
        if status is ClearanceStatus.RELEASED and found.sampled:
            return f"the laboratory's result on the samples of order {order} was still awaited"
        return None

    def _unpaid(self, state: JoinState, recorded: ClearanceResult) -> str | None:
        """Why a release after the inspection is not settled (None: it is, or it need not
        be): the notice issued when the version was cleared (or by this step) must be settled
        by some first payments on it, as recorded, unless a release before settled it."""
        if recorded.status not in RELEASED_STATUSES:
            return None
        prior = [r for r in self.steps if r.sequence < recorded.sequence]
        if any(r.status in RELEASED_STATUSES for r in prior):
            return None  # settled at the conditional release
        notice = state.notice or self._notice(recorded)
        if notice is None:
            return None  # nothing collected
        settlements: list[Settlement | None] = [
            payment.settle(notice, tuple(self.payments[:k]))[0]
            for k in range(1, len(self.payments) + 1)
        ]
        if recorded.settlement is not None and recorded.settlement in settlements:
            return None
        return (
            f"{recorded.status} after the inspection, yet no payment or guarantee on notice "
            f"{notice.notice_id} ({notice.amount} CNY) settles it as recorded"
        )


def _sanction(sanction: Sanction | None) -> str:
    if sanction is None:
        return "no sanction"
    return f"{sanction.measure} by {sanction.agency} (finding {sanction.finding_id})"


def _difference(actual: AgencyVerdict, expected: AgencyVerdict) -> str:
    a = actual.model_dump(mode="json", exclude={"signature"})
    e = expected.model_dump(mode="json", exclude={"signature"})
    fields = [name for name in a if a[name] != e[name]]
    return f"{actual.agency}: " + ", ".join(
        f"{name} recorded {a[name]!r:.60} recomputed {e[name]!r:.60}" for name in fields
    )


def verify_gate_outs(
    report: Report, answered: Mapping[str, list[ClearanceResult]], gate_outs: Iterable[GateOut]
) -> None:
    """The port's gate-outs (gate.out): goods leave the port only under a release.

    Each gate-out names the result it relied on (``result_id``): it must be a RELEASED or
    CONDITIONALLY_RELEASED result of the same declaration (``answered``: its results), and
    the goods must have passed (``passed_at``) no earlier than that result was decided (the
    clocks of the gate and of the services whose events date a result may disagree by up to
    ``join.CLOCK_SLACK``), and not after a later step recalled them; otherwise it is a
    *gate-out without release*. A recall after the goods left is no finding (they left under
    the release standing then), nor are several gate-outs under one release (several
    vehicles); one container out twice is (*container out twice*). Copies of one gate-out (a
    redelivery, the retry of the same Idempotency-Key) are counted and reported once."""
    seen: set[tuple[str, str, str, datetime]] = set()
    out_under: dict[tuple[str, str], str] = {}  # (declaration, container) -> gate-out id
    for out in gate_outs:
        report.gate_outs += 1
        copy = (out.declaration_id, out.gate_out_id, out.result_id, out.passed_at)
        if copy in seen:
            continue
        seen.add(copy)
        problem = _gate_out_problem(out, answered.get(out.declaration_id) or [])
        if problem is not None:
            report.add("gate-out without release", out.declaration_id, problem)
        for container in out.containers:
            first = out_under.setdefault((out.declaration_id, container), out.gate_out_id)
            if first != out.gate_out_id:
                report.add(
                    "container out twice",
                    out.declaration_id,
                    f"{container} left under gate-out {first} and again under {out.gate_out_id}",
                )


def _gate_out_problem(out: GateOut, results: list[ClearanceResult]) -> str | None:
    """Why ``out`` rests on no release of its declaration's ``results`` (None: it does)."""
    what = f"gate-out {out.gate_out_id} at gate {out.gate} ({out.vehicle})"
    relied = next((r for r in results if r.result_id == out.result_id), None)
    if relied is None:
        return f"{what} names result {out.result_id}, which is no result of the declaration"
    step = f"result {relied.result_id} (step {relied.sequence}, {relied.status})"
    if relied.status not in RELEASED_STATUSES:
        return f"{what} relied on {step}, which is no release"
    if out.passed_at + join.CLOCK_SLACK < relied.decided_at:
        return (
            f"{what} passed at {out.passed_at.isoformat()}, before {step} was decided at "
            f"{relied.decided_at.isoformat()}"
        )
    recalled = next(
        (
            r
            for r in results
            if r.sequence > relied.sequence
            and r.status not in RELEASED_STATUSES
            and r.decided_at + join.CLOCK_SLACK <= out.passed_at
        ),
        None,
    )
    if recalled is not None:
        return (
            f"{what} passed at {out.passed_at.isoformat()}, after step {recalled.sequence} "
            f"({recalled.status}) withdrew {step} at {recalled.decided_at.isoformat()}"
        )
    return None
