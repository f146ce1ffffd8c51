"""The auditors' verification, pure: what it must catch and what it must let pass."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from deploy.local.demo_data import sample_declaration_body
from services.aggregator.join import fold
from services.audit.verify import SAMPLING_NOT_CHECKED, Report, recomputers, verify
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
    Reason,
    TransportMode,
)
from tests import factories

DEADLINE = timedelta(seconds=120)
KEY = factories.sampling_key("test-1")  # test keys, never production ones
KEYS = factories.keyring("test-1")


def ruled(
    declaration: DeclarationSubmitted, agency: str, now: datetime = factories.T0
) -> AgencyVerdict:
    """What the agency's real rules decide, customs drawing under the test key."""
    if agency == "customs":
        return customs_rules.assess(declaration, customs_rules.load_reference(), now, KEY)
    if agency == "ciq":
        return ciq_rules.assess(declaration, ciq_rules.load_reference(), now)
    return port_rules.assess(declaration, port_rules.load_reference(), now)


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
