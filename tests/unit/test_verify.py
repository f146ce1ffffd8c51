"""The auditors' verification, pure: what it must catch and what it must let pass."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from deploy.local.demo_data import sample_declaration_body
from services.aggregator import payment
from services.aggregator.join import INSPECTION_DEADLINE, expire, fold, step, tick
from services.audit.verify import SAMPLING_NOT_CHECKED, Finding, Report, recomputers, verify
from services.ciq import rules as ciq_rules
from services.customs import rules as customs_rules
from services.intake.schema import parse_declaration
from services.port import rules as port_rules
from singlewindow.events import (
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    DeclarationWithdrawn,
    FindingOutcome,
    InspectionFinding,
    InspectionOrder,
    Measure,
    PaymentConfirmed,
    PaymentKind,
    Reason,
    TransportMode,
)
from singlewindow.verdicts import on_version
from tests import factories

DEADLINE = timedelta(seconds=120)
RETENTION = timedelta(days=60)
KEY = factories.sampling_key("test-1")  # test keys, never production ones
KEYS = factories.keyring("test-1")


def ruled(
    declaration: DeclarationSubmitted, agency: str, now: datetime = factories.T0
) -> AgencyVerdict:
    """What the agency's real rules decide, customs drawing under the test key, stamped with
    the declaration's version as the SDK stamps it."""
    if agency == "customs":
        verdict = customs_rules.assess(declaration, customs_rules.load_reference(), now, KEY)
    elif agency == "ciq":
        verdict = ciq_rules.assess(declaration, ciq_rules.load_reference(), now)
    else:
        verdict = port_rules.assess(declaration, port_rules.load_reference(), now)
    return on_version(verdict, declaration.version)


def recorded() -> tuple[DeclarationSubmitted, list[AgencyVerdict], ClearanceResult]:
    """A declaration, the verdicts the real rules give it, the result the join gives them."""
    body = sample_declaration_body(0)
    declaration = parse_declaration(body).to_event(
        declaration_id="D-AUDIT",
        event_id="E-AUDIT",
        submitted_at=factories.T0,
        agencies=("customs", "port"),
        routing_version="routing-2026.11-r2",
    )
    verdicts = [ruled(declaration, a) for a in declaration.required_agencies]
    _, results = fold([declaration, *verdicts], DEADLINE)
    return declaration, verdicts, results[0]


def kinds(report: Report) -> list[str]:
    return sorted(f.kind for f in report.findings)


def test_a_faithful_record_verifies_clean() -> None:
    declaration, verdicts, result = recorded()
    report = verify([declaration], verdicts + verdicts[:1], [result], DEADLINE, recomputers(KEYS))
    assert kinds(report) == [] and report.unchecked == []


def test_a_forged_verdict_is_caught() -> None:
    declaration, verdicts, result = recorded()
    forged = verdicts[0].model_copy(
        update={
            "decision": Decision.REJECT,
            "reasons": (Reason(code="CUS-PROHIBITED", message="x"),),
        }
    )
    assert "verdict mismatch" in kinds(
        verify([declaration], [forged, *verdicts[1:]], [result], DEADLINE)
    )


def test_a_result_contradicting_its_verdicts_is_caught() -> None:
    declaration, verdicts, result = recorded()
    lie = result.model_copy(update={"status": ClearanceStatus.REJECTED})
    assert kinds(verify([declaration], verdicts, [lie], DEADLINE)) == [
        "result contradicts verdicts"
    ]


def test_missing_duplicate_and_orphan_records_are_caught() -> None:
    declaration, verdicts, result = recorded()
    assert "missing result" in kinds(verify([declaration], verdicts, [], DEADLINE))
    assert "duplicate result" in kinds(verify([declaration], verdicts, [result, result], DEADLINE))
    orphan = factories.verdict("D-NOBODY", "customs")
    assert "unknown declaration" in kinds(
        verify([declaration], [*verdicts, orphan], [result], DEADLINE)
    )
    assert "missing verdict" in kinds(verify([declaration], verdicts[:1], [result], DEADLINE))


# --- customs' keyed random sample ------------------------------------------------------------


def customs_declaration(declaration_id: str) -> DeclarationSubmitted:
    """The factory declaration under ``declaration_id``, by air: routed to customs alone."""
    by_air = factories.declaration().consignment.model_copy(
        update={"mode": TransportMode.AIR, "vessel_imo": None, "voyage": None}
    )
    return factories.declaration(declaration_id, consignment=by_air, required_agencies=("customs",))


def sampled_declaration(key: customs_rules.SamplingKey = KEY) -> DeclarationSubmitted:
    """The factory declaration under the first id D-nnnn that ``key`` samples (HMAC by hand)."""
    rate = float(customs_rules.load_reference().random_inspection_rate)
    for n in range(10_000):
        candidate = f"D-{n:04d}"
        mac = hmac.new(key.secret, candidate.encode(), hashlib.sha256).hexdigest()
        if int(mac[:8], 16) / 0xFFFFFFFF < rate:
            return customs_declaration(candidate)
    raise AssertionError("no sampled id")


def customs_only(declaration: DeclarationSubmitted, verdict: AgencyVerdict) -> Report:
    """Verify one customs verdict (and the result its join gives), with the test keys."""
    _, results = fold([declaration, verdict], DEADLINE)
    return verify([declaration], [verdict], results, DEADLINE, recomputers(KEYS))


def test_a_sampled_verdict_is_redrawn_with_the_key_it_names() -> None:
    declaration = sampled_declaration()
    verdict = ruled(declaration, "customs")
    assert verdict.decision is Decision.INSPECT and verdict.sampling_key_version == "test-1"
    report = customs_only(declaration, verdict)
    assert kinds(report) == [] and report.unchecked == []


def test_the_key_version_the_verdict_names_is_used_not_the_current_one() -> None:
    declaration = sampled_declaration()
    verdict = ruled(declaration, "customs")
    rotated = factories.keyring("test-1", "test-2", current="test-2")
    _, results = fold([declaration, verdict], DEADLINE)
    report = verify([declaration], [verdict], results, DEADLINE, recomputers(rotated))
    assert kinds(report) == [] and report.unchecked == []


def test_a_dropped_or_invented_sample_is_caught_with_the_key() -> None:
    declaration = sampled_declaration()
    verdict = ruled(declaration, "customs")
    dropped = verdict.model_copy(update={"decision": Decision.CLEAR, "reasons": (), "checks": ()})
    assert "verdict mismatch" in kinds(customs_only(declaration, dropped))

    clear = ruled(customs_declaration("D-0001"), "customs")  # not sampled under test-1
    invented = ruled(customs_declaration("D-0001"), "customs").model_copy(
        update={
            "decision": Decision.INSPECT,
            "reasons": (Reason(code=customs_rules.RANDOM_SAMPLE, message="x"),),
        }
    )
    assert clear.decision is Decision.CLEAR
    assert "verdict mismatch" in kinds(customs_only(customs_declaration("D-0001"), invented))


def test_a_verdict_claiming_another_key_version_is_caught() -> None:
    declaration = sampled_declaration()
    verdict = ruled(declaration, "customs")
    other = factories.sampling_key("test-2")
    assert not customs_rules.is_sampled(
        declaration.declaration_id, customs_rules.load_reference().random_inspection_rate, other
    )
    relabelled = verdict.model_copy(update={"sampling_key_version": "test-2"})
    rotated = factories.keyring("test-1", "test-2")
    _, results = fold([declaration, verdict], DEADLINE)
    report = verify([declaration], [relabelled], results, DEADLINE, recomputers(rotated))
    assert "verdict mismatch" in kinds(report)


def test_without_the_key_sampling_is_reported_unchecked_not_as_a_finding() -> None:
    declaration, verdicts, result = recorded()
    report = verify([declaration], verdicts, [result], DEADLINE)  # no keys supplied
    assert kinds(report) == []
    (note,) = report.unchecked
    assert note.kind == SAMPLING_NOT_CHECKED and note.declaration_id == "D-AUDIT"
    assert "'test-1'" in note.detail and "no sampling keys were supplied" in note.detail

    other_keys = factories.keyring("test-9")
    report = verify([declaration], verdicts, [result], DEADLINE, recomputers(other_keys))
    assert kinds(report) == []
    assert "versions test-9" in report.unchecked[0].detail


def test_without_the_key_the_rest_of_the_verdict_is_still_checked() -> None:
    declaration = sampled_declaration()
    verdict = ruled(declaration, "customs")
    assert kinds(verify([declaration], [verdict], [], DEADLINE)) == ["missing result"]
    forged = verdict.model_copy(
        update={
            "decision": Decision.REJECT,
            "reasons": (*verdict.reasons, Reason(code="CUS-PROHIBITED", message="x", item=1)),
        }
    )
    _, results = fold([declaration, verdict], DEADLINE)
    report = verify([declaration], [forged], results, DEADLINE)
    assert "verdict mismatch" in kinds(report)


def test_a_verdict_from_before_keyed_sampling_is_checked_with_the_unkeyed_hash() -> None:
    rate = float(customs_rules.load_reference().random_inspection_rate)
    for n in range(10_000):  # an id the old, public SHA-256 draw sampled
        candidate = f"D-{n:04d}"
        if int(hashlib.sha256(candidate.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < rate:
            break
    declaration = customs_declaration(candidate)
    reference = customs_rules.load_reference()
    old = customs_rules.assess_drawn(
        declaration, reference, factories.T0, customs_rules.SampleDraw(None, True)
    )
    assert old.sampling_key_version is None and old.decision is Decision.INSPECT
    report = customs_only(declaration, old)
    assert kinds(report) == [] and report.unchecked == []
    not_drawn = customs_rules.assess_drawn(
        declaration, reference, factories.T0, customs_rules.SampleDraw(None, False)
    )
    assert "verdict mismatch" in kinds(customs_only(declaration, not_drawn))


def test_a_verdict_decided_with_another_months_reference_data_is_caught() -> None:
    """Accepted on 5 December 2026 (China time) but assessed with November's version: the
    auditor recomputes with the version in force that day, December's, and the verdict (its
    version, its id) does not match; the one decided with December's does."""
    declaration = factories.declaration(
        "D-DECEMBER", submitted_at=datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    )
    november = customs_rules.assess(
        declaration, customs_rules.load_reference("customs-2026.11-r2"), factories.T0, KEY
    )
    december = customs_rules.assess_on_acceptance(declaration, factories.T0, KEY)
    assert december.rules_version == "customs-2026.12"
    checks = recomputers(KEYS)
    for recorded, mismatch in ((november, True), (december, False)):
        report = verify([declaration], [recorded], [], DEADLINE, checks)
        assert ("verdict mismatch" in kinds(report)) is mismatch


# --- the life of a versioned declaration -----------------------------------------------------
# D-0001 by air, routed to customs alone and not in customs' sample under test-1. Version 1
# declares the laptops at 10.00 EUR: customs queries the price (HOLD). Version 2 declares them
# at their value: cleared, VAT 48,350.36 CNY collected, so the answer awaits payment; paid in
# two parts, it is released. Every result is what the join writes (``fold``).

ID = "D-0001"


def lodged(version: int, at: int = 0, **changes: object) -> DeclarationSubmitted:
    """Version ``version`` of D-0001, submitted ``at`` seconds after T0 (1: undervalued)."""
    base = customs_declaration(ID)
    if version == 1:
        item = base.items[0].model_copy(
            update={"customs_value": Decimal("10.00"), "invoice_price": Decimal("10.00")}
        )
        changes = {"items": (item,), **changes}
    return base.model_copy(
        update={
            "version": version,
            "event_id": f"E-v{version}",
            "submitted_at": factories.T0 + timedelta(seconds=at),
            **changes,
        }
    )


def ruled_on(declaration: DeclarationSubmitted, at: int = 1) -> AgencyVerdict:
    """Customs' verdict on a version, as the agency SDK publishes it (stamped)."""
    now = factories.T0 + timedelta(seconds=at)
    return ruled(declaration, "customs", now)


def pay(amount: str, payment_id: str, hours: int = 1, **changes: object) -> PaymentConfirmed:
    return factories.payment(
        ID,
        notice_id=payment.notice_id(ID, 2),
        payment_id=payment_id,
        amount=Decimal(amount),
        paid_at=factories.T0 + timedelta(hours=hours),
        **changes,
    )


@dataclass
class Life:
    declarations: list[DeclarationSubmitted]
    verdicts: list[AgencyVerdict]
    results: list[ClearanceResult]
    withdrawals: list[DeclarationWithdrawn] = field(default_factory=list)
    payments: list[PaymentConfirmed] = field(default_factory=list)
    findings: list[InspectionFinding] = field(default_factory=list)

    def verify(self, **changes: Any) -> Report:
        parts = {**self.__dict__, **changes}
        return verify(
            parts["declarations"],
            parts["verdicts"],
            parts["results"],
            DEADLINE,
            recomputers(KEYS),
            withdrawals=parts["withdrawals"],
            payments=parts["payments"],
            inspection_findings=parts["findings"],
            inspection_after=parts.get("inspection_after", INSPECTION_DEADLINE),
        )


def folded(events: list[Any], **parts: Any) -> Life:
    """The events of one life and the results the join writes for them, in that order."""
    _, results = fold(events, DEADLINE)
    return Life(
        [e for e in events if isinstance(e, DeclarationSubmitted)],
        [e for e in events if isinstance(e, AgencyVerdict)],
        results,
        [e for e in events if isinstance(e, DeclarationWithdrawn)],
        [e for e in events if isinstance(e, PaymentConfirmed)],
        [e for e in events if isinstance(e, InspectionFinding)],
        **parts,
    )


def paid_life() -> Life:
    """Held on version 1, amended, awaiting payment on version 2, paid in two parts."""
    v1, v2 = lodged(1), lodged(2, at=60)
    return folded(
        [v1, ruled_on(v1), v2, ruled_on(v2, 61), pay("40000.00", "P1"), pay("8350.36", "P2", 2)]
    )


def test_a_faithful_versioned_life_verifies_clean_step_by_step() -> None:
    life = paid_life()
    assert [(r.sequence, r.version, r.status) for r in life.results] == [
        (1, 1, ClearanceStatus.HELD),
        (2, 2, ClearanceStatus.AWAITING_PAYMENT),
        (3, 2, ClearanceStatus.AWAITING_PAYMENT),
        (4, 2, ClearanceStatus.RELEASED),
    ]
    report = life.verify()
    assert kinds(report) == [] and report.unchecked == []
    assert (report.declarations, report.verdicts, report.results) == (1, 2, 4)
    assert (report.withdrawals, report.payments) == (0, 2)


def test_verdicts_are_recomputed_from_the_version_they_name() -> None:
    life = paid_life()
    held, cleared = life.verdicts
    assert held.decision is Decision.HOLD and cleared.decision is Decision.CLEAR
    assert held.verdict_id != cleared.verdict_id  # on_version: one id per version
    # a second customs verdict on version 2 (the join ignores it): the HOLD on version 1
    # relabelled; recomputed from version 2, customs clears
    relabelled = on_version(held, 2)
    report = life.verify(verdicts=[held, cleared, relabelled])
    assert kinds(report) == ["verdict mismatch"]
    assert "decision recorded 'HOLD' recomputed 'CLEAR'" in report.findings[0].detail
    # the right verdict on version 2, but with version 1's id
    reused = cleared.model_copy(update={"verdict_id": held.verdict_id})
    report = life.verify(verdicts=[held, cleared, reused])
    assert kinds(report) == ["verdict mismatch"]
    assert report.findings[0].detail.startswith("customs: verdict_id recorded")


def test_a_verdict_on_an_undeclared_version_is_a_finding() -> None:
    life = paid_life()
    held, cleared = life.verdicts
    on_three = on_version(ruled(lodged(2), "customs", factories.T0), 3)
    stamped = ruled(lodged(2), "customs", factories.T0)
    unstamped = stamped.model_copy(update={"declaration_version": None})  # none lodged so
    report = life.verify(verdicts=[held, cleared, on_three, unstamped])
    assert kinds(report) == ["verdict on an undeclared version"] * 2
    assert "version 3" in report.findings[0].detail
    assert "no version" in report.findings[1].detail


def test_routing_is_checked_for_every_version() -> None:
    life = paid_life()
    misrouted = life.declarations[1].model_copy(update={"required_agencies": ("customs", "port")})
    report = life.verify(declarations=[life.declarations[0], misrouted])
    assert kinds(report).count("routing mismatch") == 1
    assert "'customs', 'port'" in report.findings[0].detail


def test_steps_are_numbered_once_each_without_a_gap() -> None:
    life = paid_life()
    first, second, third, fourth = life.results
    assert kinds(life.verify(results=[first, second, fourth])) == ["missing step"]
    report = life.verify(results=[first, second, second, third, fourth])
    assert kinds(report) == ["duplicate result"]
    assert report.findings[0].detail == "2 results for step 2"


def test_a_consolidated_answer_is_what_the_join_gives_its_version() -> None:
    life = paid_life()
    first, second, *rest = life.results
    held = second.model_copy(update={"status": ClearanceStatus.HELD, "payment_notice": None})
    assert kinds(life.verify(results=[first, held, *rest])) == ["result contradicts verdicts"]
    assert second.payment_notice is not None
    cheaper = second.payment_notice.model_copy(update={"amount": Decimal("1.00")})
    report = life.verify(results=[first, second.model_copy(update={"payment_notice": cheaper})])
    assert "result contradicts verdicts" in kinds(report)
    # the answer of version 1 given with version 2's verdict missing from the log
    report = life.verify(verdicts=life.verdicts[:1])
    assert {"missing verdict", "result contradicts verdicts"} <= set(kinds(report))


def test_a_result_for_a_superseded_version_is_a_finding() -> None:
    v1, v2 = lodged(1), lodged(2, at=60)
    withdrawal = factories.withdrawal(ID, withdrawn_at=factories.T0 + timedelta(seconds=90))
    life = folded([v1, ruled_on(v1), v2, withdrawal])
    assert [(r.version, r.status) for r in life.results] == [
        (1, ClearanceStatus.HELD),
        (2, ClearanceStatus.WITHDRAWN),
    ]
    assert kinds(life.verify()) == []
    held, withdrawn = life.results
    # decided after version 2 was submitted, yet rightly on version 1 if the join read v2 later
    on_one = withdrawn.model_copy(update={"version": 1})
    assert "result for a superseded version" not in kinds(life.verify(results=[held, on_one]))
    # but never after a step on version 2
    late = held.model_copy(update={"sequence": 3})
    report = life.verify(results=[held, withdrawn, late])
    assert "result for a superseded version" in kinds(report)
    assert "after step 2 had decided version 2" in " ".join(f.detail for f in report.findings)


def test_a_release_rests_on_a_payment_or_a_guarantee() -> None:
    life = paid_life()
    first, second, third, released = life.results
    # the answer to version 2 given as an immediate release: its notice had VAT to collect
    at_once = second.model_copy(update={"status": ClearanceStatus.RELEASED, "payment_notice": None})
    report = life.verify(results=[first, at_once])
    assert kinds(report) == ["release without payment or guarantee"]
    assert "48350.36" in report.findings[0].detail
    # the release with its settlement, but the second payment is not in the log
    assert kinds(life.verify(payments=life.payments[:1])) == [
        "release without payment or guarantee"
    ]
    # a settlement that claims a guarantee the bank never confirmed
    assert released.settlement is not None
    claimed = released.settlement.model_copy(update={"kind": PaymentKind.BANK_GUARANTEE})
    forged = released.model_copy(update={"settlement": claimed})
    assert kinds(life.verify(results=[first, second, third, forged])) == [
        "release without payment or guarantee"
    ]


def test_a_bank_guarantee_releases_and_verifies_clean() -> None:
    v1, v2 = lodged(1), lodged(2, at=60)
    guarantee = pay("48350.36", "G1", kind=PaymentKind.BANK_GUARANTEE)
    life = folded([v1, ruled_on(v1), v2, ruled_on(v2, 61), guarantee])
    assert life.results[-1].status is ClearanceStatus.RELEASED
    assert kinds(life.verify()) == []


def test_a_payment_step_is_what_the_join_gives_the_payments() -> None:
    life = paid_life()
    first, second, third, released = life.results
    assert third.payment_notice is not None
    assert third.payment_notice.outstanding == Decimal("8350.36")
    owed = third.payment_notice.model_copy(update={"outstanding": Decimal("0.36")})
    forged = third.model_copy(update={"payment_notice": owed})
    assert kinds(life.verify(results=[first, second, forged, released])) == [
        "result contradicts payments"
    ]


def test_withdrawn_rests_on_a_request() -> None:
    v1 = lodged(1)
    withdrawal = factories.withdrawal(ID)
    life = folded([v1, ruled_on(v1), withdrawal])
    assert [r.status for r in life.results] == [ClearanceStatus.HELD, ClearanceStatus.WITHDRAWN]
    assert kinds(life.verify()) == []
    assert kinds(life.verify(withdrawals=[])) == ["withdrawn without a request"]
    later = withdrawal.model_copy(update={"withdrawn_at": factories.T0 + timedelta(hours=1)})
    report = life.verify(withdrawals=[later])
    assert kinds(report) == ["withdrawn without a request"]
    assert "when no request was made" in report.findings[0].detail
    # requested, but the aggregator never withdrew it: a missing result
    assert kinds(life.verify(results=life.results[:1])) == ["missing result"]


def test_an_escalation_is_at_the_deadline_and_the_late_verdict_decides() -> None:
    v1 = lodged(1)
    state, _ = fold([v1], DEADLINE)
    assert state is not None
    state, escalated = expire(state, v1.submitted_at + DEADLINE)
    late = ruled_on(v1, at=300)
    _, answered = step(state, late, DEADLINE)
    life = Life([v1], [late], [*escalated, *answered])
    assert [(r.sequence, r.status) for r in life.results] == [
        (1, ClearanceStatus.TIMED_OUT),
        (2, ClearanceStatus.HELD),
    ]
    assert life.results[0].missing_agencies == ("customs",)
    assert kinds(life.verify()) == []
    timed_out, held = life.results
    early = timed_out.model_copy(update={"decided_at": v1.submitted_at + DEADLINE / 2})
    assert kinds(life.verify(results=[early, held])) == ["result contradicts verdicts"]
    nobody = timed_out.model_copy(update={"missing_agencies": ()})
    report = life.verify(results=[nobody, held])
    assert kinds(report) == ["result contradicts verdicts"]
    assert report.findings[0].detail == "step 1: timeout not as recorded"


def test_nothing_comes_after_the_end_of_a_life() -> None:
    life = paid_life()
    released = life.results[-1]
    withdrawal = factories.withdrawal(ID, withdrawn_at=factories.T0 + timedelta(hours=3))
    after = released.model_copy(
        update={
            "status": ClearanceStatus.WITHDRAWN,
            "sequence": 5,
            "settlement": None,
            "decided_at": withdrawal.withdrawn_at,
        }
    )
    assert kinds(fold_again(life, withdrawal)) == []  # the join ignores it: nothing after
    report = life.verify(results=[*life.results, after], withdrawals=[withdrawal])
    # after a release only a change after release may follow (tests/unit/
    # test_verify_after_release.py): anything else is a result after a release
    assert kinds(report) == ["result after a release"]
    rejected = [r.model_copy(update={"status": ClearanceStatus.REJECTED}) for r in life.results]
    report = life.verify(results=[*rejected[:1], after.model_copy(update={"sequence": 2})])
    assert "result after a final result" in kinds(report)


def fold_again(life: Life, withdrawal: DeclarationWithdrawn) -> Report:
    """The life with a withdrawal after its release, as the join writes it."""
    v1, v2 = life.declarations
    events = [v1, life.verdicts[0], v2, life.verdicts[1], *life.payments, withdrawal]
    again = folded(events)
    assert again.results == life.results
    return again.verify()


def test_a_result_on_an_undeclared_version_and_a_missing_answer() -> None:
    life = paid_life()
    first, *rest = life.results
    report = life.verify(results=[first.model_copy(update={"version": 7}), *rest])
    assert "result on an undeclared version" in kinds(report)
    # version 2 has its verdict, yet no answer to it was written
    assert kinds(life.verify(results=[first], payments=[])) == ["missing result"]


def test_withdrawals_and_payments_of_no_declaration_are_unknown() -> None:
    report = verify([], [], [], DEADLINE, withdrawals=[factories.withdrawal("D-X")])
    assert kinds(report) == ["unknown declaration"]
    report = verify([], [], [], DEADLINE, payments=[factories.payment("D-Y")])
    assert kinds(report) == ["unknown declaration"] and report.payments == 1


# --- the steps after an inspection order -----------------------------------------------------
# D-0076 (the first id customs' sample draws under test-1) imports kerosene by air: routed to
# customs and CIQ, customs' random sample and CIQ's commodity inspection make one order naming
# both. Once the goods pass, customs collects excise and VAT (a notice), then releases them.

KEROSENE = sampled_declaration().declaration_id


def kerosene() -> DeclarationSubmitted:
    """Version 1 of D-0076: 1,000 kg of kerosene, routed (routing-2026.11-r2) to customs and
    CIQ, both of which order an inspection."""
    base = sampled_declaration()
    item = base.items[0].model_copy(
        update={
            "hs_code": "2710191990",
            "description": "Kerosene",
            "declaration_elements": "1|0|kerosene",
            "unit": "KGM",
            "quantity": Decimal("1000"),
            "second_unit": "LTR",
            "second_quantity": Decimal("1250"),
        }
    )
    return base.model_copy(
        update={
            "items": (item,),
            "version": 1,
            "event_id": "E-K1",
            "required_agencies": ("customs", "ciq"),
            "routing_version": "routing-2026.11-r2",
        }
    )


def ordered() -> tuple[list[Any], InspectionOrder]:
    """The declaration and both verdicts, and the order the join gives them."""
    declaration = kerosene()
    events: list[Any] = [declaration, ruled(declaration, "customs"), ruled(declaration, "ciq")]
    _, (answer,) = fold(events, DEADLINE)
    assert answer.status is ClearanceStatus.INSPECTION_REQUIRED and answer.inspection is not None
    return events, answer.inspection


EVENTS, ORDER = ordered()


def found(
    agency: str,
    outcome: FindingOutcome = FindingOutcome.COMPLIANT,
    hours: float = 2,
    n: int = 1,
    **changes: Any,
) -> InspectionFinding:
    """Agency's ``n``th finding on the order, recorded ``hours`` after T0."""
    if outcome is FindingOutcome.SAMPLED:
        changes = {"samples": (f"S-{agency}-{n}",), **changes}
    at = factories.T0 + timedelta(hours=hours)
    base = {"finding_id": f"F-{agency}-{n}", "order_id": ORDER.order_id, "recorded_at": at}
    return factories.finding(KEROSENE, agency, outcome, **{**base, **changes})


def non_compliant(agency: str, measure: Measure, **changes: Any) -> InspectionFinding:
    reasons = (Reason(code=f"{agency.upper()}-FAULT", message="not as declared"),)
    return found(agency, FindingOutcome.NON_COMPLIANT, measure=measure, reasons=reasons, **changes)


def settling(events: list[Any], hours: float = 5, payment_id: str = "P-K") -> PaymentConfirmed:
    """The payment of what the notice the join has issued for ``events`` still asks."""
    state, _ = fold(events, DEADLINE)
    assert state is not None and state.notice is not None
    return factories.payment(
        KEROSENE,
        notice_id=state.notice.notice_id,
        payment_id=payment_id,
        amount=state.notice.outstanding,
        paid_at=factories.T0 + timedelta(hours=hours),
    )


def statuses(life: Life) -> list[ClearanceStatus]:
    return [r.status for r in life.results]


def released_life() -> Life:
    """Inspected, both agencies find the goods compliant: awaiting payment, paid, released."""
    events = [*EVENTS, found("customs"), found("ciq", hours=3)]
    return folded([*events, settling(events)])


def seized_life() -> Life:
    """Customs finds nothing, CIQ seizes the goods."""
    return folded([*EVENTS, found("customs"), non_compliant("ciq", Measure.SEIZURE, hours=3)])


def sampled_life(lab: InspectionFinding) -> Life:
    """CIQ takes samples: awaiting payment, paid, conditionally released; then ``lab``."""
    events = [*EVENTS, found("customs"), found("ciq", FindingOutcome.SAMPLED, hours=3)]
    return folded([*events, settling(events), lab])


LAB_COMPLIANT = found("ciq", hours=30, n=2, lab_result=True)
LAB_FAULT = non_compliant("ciq", Measure.DESTRUCTION, hours=30, n=2, lab_result=True)


def relabelled_life() -> Life:
    """CIQ has the goods re-labelled under supervision, then finds them compliant: awaiting
    payment, paid, released."""
    events = [
        *EVENTS,
        found("customs"),
        non_compliant("ciq", Measure.RELABELLING, hours=3),
        found("ciq", hours=20, n=2),
    ]
    return folded([*events, settling(events, hours=21)])


def test_each_path_after_an_inspection_order_verifies_clean() -> None:
    """Every life the join writes after an inspection order, with real verdicts: no finding."""
    S = ClearanceStatus
    lives = {
        "released": (released_life(), [S.AWAITING_PAYMENT, S.RELEASED]),
        "seized": (seized_life(), [S.SANCTIONED]),
        "sampled, confirmed": (
            sampled_life(LAB_COMPLIANT),
            [S.AWAITING_PAYMENT, S.CONDITIONALLY_RELEASED, S.RELEASED],
        ),
        "sampled, recalled": (
            sampled_life(LAB_FAULT),
            [S.AWAITING_PAYMENT, S.CONDITIONALLY_RELEASED, S.RECALLED],
        ),
        "re-labelled": (
            relabelled_life(),
            [S.REMEDIATION_REQUIRED, S.AWAITING_PAYMENT, S.RELEASED],
        ),
    }
    for name, (life, after) in lives.items():
        assert statuses(life) == [S.INSPECTION_REQUIRED, *after], name
        report = life.verify()
        assert kinds(report) == [] and report.unchecked == [], name
        assert report.inspection_findings == len(life.findings), name
    seized = lives["seized"][0].results[-1]
    assert seized.sanction is not None and seized.sanction.finding_id == "F-ciq-1"
    recalled = lives["sampled, recalled"][0].results[-1]
    assert recalled.sanction is not None and recalled.sanction.measure is Measure.DESTRUCTION


def test_a_payment_made_while_a_fault_is_put_right_releases_on_the_next_finding() -> None:
    """Cleared and awaiting payment, customs then finds a labelling fault; the trader pays
    meanwhile (no step); customs' next finding releases the goods with that settlement."""
    events = [*EVENTS, found("customs"), found("ciq", hours=3)]
    events += [non_compliant("customs", Measure.RELABELLING, hours=4, n=2)]
    events += [settling(events, hours=5), found("customs", hours=6, n=3)]
    life = folded(events)
    assert statuses(life)[1:] == [
        ClearanceStatus.AWAITING_PAYMENT,
        ClearanceStatus.REMEDIATION_REQUIRED,
        ClearanceStatus.RELEASED,
    ]
    assert life.results[-1].settlement is not None
    assert kinds(life.verify()) == []


def interleavings(first: list[Any], second: list[Any]) -> list[list[Any]]:
    """Every merge of two topics' events that keeps each topic's own order."""
    if not first or not second:
        return [first + second]
    return [[first[0], *rest] for rest in interleavings(first[1:], second)] + [
        [second[0], *rest] for rest in interleavings(first, second[1:])
    ]


def test_verify_agrees_with_the_join_whatever_order_it_read_findings_and_payments() -> None:
    """The aggregator's order of reading the findings and the payments relative to one
    another is not recorded: every order gives a life of its own, each verifies clean."""
    findings = [found("customs"), found("ciq", FindingOutcome.SAMPLED, hours=3), LAB_COMPLIANT]
    paid = settling([*EVENTS, *findings[:2]])
    lives = [folded([*EVENTS, *merged]) for merged in interleavings(findings, [paid])]
    S = ClearanceStatus
    assert [statuses(life)[1:] for life in lives] == [
        [S.AWAITING_PAYMENT, S.RELEASED],  # the laboratory's result read first
        [S.AWAITING_PAYMENT, S.CONDITIONALLY_RELEASED, S.RELEASED],
        [S.AWAITING_PAYMENT],  # paid before the notice existed: ignored (the bank never would)
        [S.AWAITING_PAYMENT],
    ]
    for life in lives:
        assert kinds(life.verify()) == [], statuses(life)


def test_a_finding_against_no_order_of_the_declaration_is_a_finding() -> None:
    life = released_life()
    elsewhere = found("customs", n=7, order_id="O-NEVER")
    on_version_two = found("ciq", n=8, version=2)
    unnamed = found("port", n=9)  # the port is asked nothing at this inspection
    events = [*EVENTS, *life.findings, elsewhere, on_version_two, unnamed, *life.payments]
    assert folded(events).results == life.results  # the join ignores all three
    report = life.verify(findings=[*life.findings, elsewhere, on_version_two, unnamed, unnamed])
    assert kinds(report) == ["inspection outcome without an order"] * 3
    details = [f.detail for f in report.findings]
    assert "F-customs-7 of customs (COMPLIANT) against order O-NEVER of version 1" in details[0]
    assert f"F-ciq-8 of ciq (COMPLIANT) against order {ORDER.order_id} of version 2" in details[1]
    assert f"order {ORDER.order_id} names customs, ciq, not port" in details[2]
    # a declaration never inspected
    paid = paid_life()
    assert kinds(paid.verify(findings=[factories.finding(ID)])) == [
        "inspection outcome without an order"
    ]
    # a finding of no declaration at all
    report = verify([], [], [], DEADLINE, inspection_findings=[factories.finding("D-NONE")])
    assert kinds(report) == ["unknown declaration"] and report.inspection_findings == 1


def test_a_release_before_every_agency_recorded_is_a_finding() -> None:
    life = released_life()
    customs, ciq = life.findings
    # CIQ's finding is not in the log: neither the notice nor the release rests on anything
    report = life.verify(findings=[customs])
    assert kinds(report) == ["release before the inspection is complete"] * 2
    assert "ciq had recorded no finding on order" in report.findings[0].detail
    # CIQ recorded it, but only after the goods were released: it cannot have justified them
    late = ciq.model_copy(update={"recorded_at": factories.T0 + timedelta(hours=9)})
    report = life.verify(findings=[customs, late])
    assert kinds(report) == ["release before the inspection is complete"] * 2
    assert report.findings[1].detail.startswith("step 3: RELEASED at ")


def test_a_release_while_a_fault_or_a_laboratory_result_is_outstanding_is_a_finding() -> None:
    life = relabelled_life()
    ordered_, remediation, notice, _ = life.results
    # the notice issued at the re-labelling, as if the goods had passed
    early = notice.model_copy(
        update={"sequence": 2, "decided_at": remediation.decided_at, "finding_ids": ()}
    )
    report = life.verify(results=[ordered_, early], payments=[])
    assert "release before the inspection is complete" in kinds(report)
    assert "RELABELLING by ciq (finding F-ciq-1) was still to be put right" in " ".join(
        f.detail for f in report.findings
    )
    # released outright, the laboratory's result still to come
    sampled = sampled_life(LAB_COMPLIANT)
    first, awaiting, conditional, _ = sampled.results
    outright = conditional.model_copy(update={"status": ClearanceStatus.RELEASED})
    report = sampled.verify(results=[first, awaiting, outright], findings=sampled.findings[:2])
    assert kinds(report) == ["release before the inspection is complete"]
    assert "the laboratory's result on the samples" in report.findings[0].detail


def test_a_sanction_must_be_the_one_the_findings_give() -> None:
    life = seized_life()
    ordered_, seized = life.results
    assert seized.sanction is not None
    for change in (
        {"measure": Measure.RETURN},
        {"agency": "customs"},
        {"finding_id": "F-customs-1"},
    ):
        other = seized.model_copy(update={"sanction": seized.sanction.model_copy(update=change)})
        report = life.verify(results=[ordered_, other])
        assert kinds(report) == ["sanction contradicts findings"], change
    assert "the findings on order" in report.findings[0].detail
    assert "give SEIZURE by ciq (finding F-ciq-1)" in report.findings[0].detail
    # a sanction where every agency found the goods compliant
    released = released_life()
    first, notice, _ = released.results
    invented = notice.model_copy(
        update={
            "status": ClearanceStatus.SANCTIONED,
            "payment_notice": None,
            "sanction": seized.sanction,
        }
    )
    report = released.verify(results=[first, invented])
    assert kinds(report) == ["sanction contradicts findings"]
    assert "give no sanction" in report.findings[0].detail
    # re-labelling asked where the goods were to be seized, and a recall never released
    for status in (ClearanceStatus.REMEDIATION_REQUIRED, ClearanceStatus.RECALLED):
        report = life.verify(results=[ordered_, seized.model_copy(update={"status": status})])
        assert kinds(report) == ["sanction contradicts findings"], status
    # a sanction before the order was complete: customs recorded only after it
    customs, ciq = life.findings
    late = customs.model_copy(update={"recorded_at": seized.decided_at + timedelta(hours=1)})
    report = life.verify(findings=[late, ciq])
    assert kinds(report) == ["sanction contradicts findings"]
    assert "give an incomplete order" in report.findings[0].detail


def test_a_release_after_an_inspection_still_needs_the_duties_settled() -> None:
    life = released_life()
    first, notice, _ = life.results
    assert notice.payment_notice is not None
    report = life.verify(payments=[])
    assert kinds(report) == ["release without payment or guarantee"]
    assert notice.payment_notice.notice_id in report.findings[0].detail
    # released at once after the inspection, no notice
    at_once = notice.model_copy(update={"status": ClearanceStatus.RELEASED, "payment_notice": None})
    report = life.verify(results=[first, at_once])
    assert kinds(report) == ["release without payment or guarantee"]
    # conditionally released, nothing paid
    sampled = sampled_life(LAB_COMPLIANT)
    assert kinds(sampled.verify(payments=[])) == ["release without payment or guarantee"]


def test_a_step_naming_findings_the_log_does_not_hold_or_no_samples_is_a_finding() -> None:
    life = released_life()
    first, notice, released = life.results
    named = released.model_copy(update={"finding_ids": ("F-customs-1", "F-FORGED")})
    report = life.verify(results=[first, notice, named])
    assert kinds(report) == ["result contradicts findings"]
    assert "F-FORGED, which the log does not hold" in report.findings[0].detail
    conditional = released.model_copy(update={"status": ClearanceStatus.CONDITIONALLY_RELEASED})
    report = life.verify(results=[first, notice, conditional])
    assert kinds(report) == ["result contradicts findings"]
    assert "no samples were awaited" in report.findings[0].detail
    # a payment step after the inspection whose outstanding amount is not the payments'
    assert notice.payment_notice is not None
    owed = notice.payment_notice.model_copy(update={"outstanding": Decimal("1.00")})
    again = notice.model_copy(update={"sequence": 3, "payment_notice": owed})
    assert kinds(life.verify(results=[first, notice, again])) == ["result contradicts payments"]


def test_a_second_step_after_a_conditional_release_is_a_finding() -> None:
    """After a conditional release only the laboratory speaks (release or recall): a second
    release on one more payment is a step the join never writes."""
    life = sampled_life(LAB_COMPLIANT)
    conditional = next(
        r for r in life.results if r.status is ClearanceStatus.CONDITIONALLY_RELEASED
    )
    again = conditional.model_copy(
        update={"sequence": conditional.sequence + 1, "result_id": "R-again"}
    )
    later = [
        r.model_copy(update={"sequence": r.sequence + 1})
        for r in life.results
        if r.sequence > conditional.sequence
    ]
    results = [r for r in life.results if r.sequence <= conditional.sequence]
    report = life.verify(results=[*results, again, *later])
    assert "result after a release" in kinds(report)


def test_a_withdrawal_read_after_a_conditional_release_is_no_missing_result() -> None:
    """The trader withdrew while the notice was due; the aggregator read the payment first and
    released the goods on condition: the withdrawal changes nothing, and that is no finding."""
    events = [*EVENTS, found("customs"), found("ciq", FindingOutcome.SAMPLED, hours=3)]
    withdrawal = factories.withdrawal(
        KEROSENE, version=1, withdrawn_at=factories.T0 + timedelta(hours=6)
    )
    life = folded([*events, settling(events), withdrawal])
    assert statuses(life)[-1] is ClearanceStatus.CONDITIONALLY_RELEASED
    assert life.verify().findings == []


def test_a_withdrawal_asked_during_the_inspection_is_no_missing_result() -> None:
    """Asked once the inspection was ordered and read while it was unfinished, the join
    refuses it: no finding. Asked before the order, it must have ended the life."""
    _, (answer,) = fold(EVENTS, DEADLINE)
    late = factories.withdrawal(KEROSENE, version=1, withdrawn_at=answer.decided_at)
    life = folded([*EVENTS, late])
    assert statuses(life) == [ClearanceStatus.INSPECTION_REQUIRED]
    assert life.verify().findings == []
    early = late.model_copy(
        update={"withdrawn_at": answer.decided_at - timedelta(seconds=1), "event_id": "W-early"}
    )
    ignored = life.verify(withdrawals=[early])  # what the join would not have ignored
    assert kinds(ignored) == ["missing result"]


# -- the inspection order's escalation --------------------------------------------------------

INSPECTION = INSPECTION_DEADLINE
PAST_IT = factories.T0 + INSPECTION + timedelta(days=1)  # the clock, past the order's deadline


def escalated_life(before: list[Any], after: list[Any]) -> Life:
    """The join reads ``before``, its clock ticks past the order's deadline, then it reads
    ``after`` (a payment in it settles the notice issued by then)."""
    state, results = fold([*EVENTS, *before], DEADLINE, INSPECTION)
    assert state is not None
    state, escalation = tick(state, PAST_IT, RETENTION)
    results += escalation
    for event in after:
        assert state is not None
        state, out = step(state, event, DEADLINE, INSPECTION)
        results += out
    events = [*EVENTS, *before, *after]
    return Life(
        [e for e in events if isinstance(e, DeclarationSubmitted)],
        [e for e in events if isinstance(e, AgencyVerdict)],
        results,
        payments=[e for e in events if isinstance(e, PaymentConfirmed)],
        findings=[e for e in events if isinstance(e, InspectionFinding)],
    )


def late_release(customs_first: bool = True) -> Life:
    """Customs records in time; CIQ only after the deadline; the duties are paid."""
    customs, ciq = found("customs"), found("ciq", hours=60)
    before = [customs] if customs_first else []
    after = [ciq] if customs_first else [customs, ciq]
    paying = settling([*EVENTS, customs, ciq], hours=61)
    return escalated_life(before, [*after, paying])


def test_an_inspection_orders_escalation_and_its_late_findings_verify_clean() -> None:
    S = ClearanceStatus
    life = late_release()
    assert statuses(life) == [S.INSPECTION_REQUIRED, S.TIMED_OUT, S.AWAITING_PAYMENT, S.RELEASED]
    timed_out = life.results[1]
    assert timed_out.missing_agencies == ("ciq",)
    assert timed_out.decided_at == life.results[0].decided_at + INSPECTION
    assert kinds(life.verify()) == []
    seized = escalated_life([found("customs")], [non_compliant("ciq", Measure.SEIZURE, hours=60)])
    assert statuses(seized) == [S.INSPECTION_REQUIRED, S.TIMED_OUT, S.SANCTIONED]
    assert kinds(seized.verify()) == []
    # customs recorded in time, but the aggregator read it only after its clock ticked: named
    lagging = late_release(customs_first=False)
    assert lagging.results[1].missing_agencies == ("customs", "ciq")
    assert kinds(lagging.verify()) == []


def test_an_escalation_not_as_the_findings_and_the_deadline_give_is_a_finding() -> None:
    life = late_release()
    ordered, timed_out, *rest = life.results

    def report_on(escalation: ClearanceResult, **changes: Any) -> list[Finding]:
        report = life.verify(results=[ordered, escalation, *rest], **changes)
        return report.findings

    early = timed_out.model_copy(update={"decided_at": timed_out.decided_at - timedelta(hours=1)})
    [wrong_time] = report_on(early)
    assert wrong_time.kind == "result contradicts findings" and "deadline" in wrong_time.detail
    # CIQ had recorded nothing by the deadline: an escalation must name it
    for names in [(), ("customs",), ("ciq", "port")]:
        [wrong] = report_on(timed_out.model_copy(update={"missing_agencies": names}))
        assert wrong.kind == "result contradicts findings", names
    no_order = timed_out.model_copy(update={"inspection": None})
    assert [f.kind for f in report_on(no_order)] == ["result contradicts findings"]
    # the auditor's deadline is not the aggregator's
    [elsewhen] = life.verify(inspection_after=INSPECTION * 2).findings
    assert "deadline" in elsewhen.detail
    [never] = life.verify(inspection_after=None).findings
    assert "no deadline" in never.detail


def test_an_escalation_once_the_order_is_complete_or_a_second_one_is_a_finding() -> None:
    waiting = escalated_life([found("customs")], [])  # CIQ never records
    ordered, timed_out = waiting.results
    assert kinds(waiting.verify()) == []
    again = timed_out.model_copy(update={"sequence": 3})
    [twice] = waiting.verify(results=[ordered, timed_out, again]).findings
    assert twice.kind == "result contradicts findings"
    assert "step 3" in twice.detail and "escalated once" in twice.detail
    noticed = escalated_life([found("customs")], [found("ciq", hours=60)])  # not yet paid
    notice = noticed.results[-1]
    assert notice.status is ClearanceStatus.AWAITING_PAYMENT and notice.sequence == 3
    after = timed_out.model_copy(update={"sequence": 4})
    [complete] = noticed.verify(results=[*noticed.results, after]).findings
    assert "escalated after step 3 (AWAITING_PAYMENT)" in complete.detail


def test_an_inspection_escalation_is_never_a_verdicts_escalation() -> None:
    """TIMED_OUT carrying an order, before the version's answer: not the verdicts' escalation
    (which carries none), nor the order's (which comes after it)."""
    v1 = lodged(1)
    state, _ = fold([v1], DEADLINE)
    assert state is not None
    state, [timed_out] = expire(state, v1.submitted_at + DEADLINE)
    late = ruled_on(v1, at=300)
    _, answered = step(state, late, DEADLINE)
    life = Life([v1], [late], [timed_out, *answered])
    assert kinds(life.verify()) == []
    with_order = timed_out.model_copy(update={"inspection": ORDER})
    assert kinds(life.verify(results=[with_order, *answered])) == ["result contradicts verdicts"]


def test_verify_agrees_with_the_join_whatever_it_read_before_and_after_its_clock_ticked() -> None:
    """The findings (customs' in time, CIQ's samples after the deadline, the laboratory's
    result) and the payment, in every order the aggregator may read them, its clock ticking
    past the order's deadline at every point: each life the join writes verifies clean."""
    lab = found("ciq", hours=70, n=2, lab_result=True)
    findings = [found("customs"), found("ciq", FindingOutcome.SAMPLED, hours=60), lab]
    paid = settling([*EVENTS, *findings[:2]], hours=61)
    escalated = 0
    for merged in interleavings(findings, [paid]):
        for cut in range(len(merged) + 1):
            life = escalated_life(merged[:cut], merged[cut:])
            escalated += ClearanceStatus.TIMED_OUT in statuses(life)
            assert kinds(life.verify()) == [], (cut, statuses(life))
    assert escalated > 0


def test_a_withdrawal_naming_an_amendment_that_raced_the_order_is_refused_as_any() -> None:
    """An amendment (version 2) raced version 1's inspection order (the join ignored it); the
    trader's withdrawal, asked after the order while it was unfinished, names version 2, the
    version the trader saw. The join refused it (one inspection, unfinished), whatever version
    it names: nothing is missing while the escalated order waits for CIQ."""
    raced = kerosene().model_copy(
        update={
            "version": 2,
            "event_id": "E-K2",
            "submitted_at": factories.T0 + timedelta(seconds=30),
        }
    )
    asked = factories.withdrawal(
        KEROSENE, version=2, withdrawn_at=factories.T0 + timedelta(hours=1)
    )
    life = escalated_life([raced, found("customs"), asked], [])
    life.withdrawals = [asked]
    assert statuses(life) == [ClearanceStatus.INSPECTION_REQUIRED, ClearanceStatus.TIMED_OUT]
    assert kinds(life.verify()) == []
