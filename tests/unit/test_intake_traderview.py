"""The trader's view: a trader-facing message for every reason code the agencies emit,
no threshold or criterion in any of them, a generic fallback for the rest; the joint
inspection's order, findings (never the inspector) and sanction, and the next step."""

from __future__ import annotations

import ast
import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.aggregator.join import event_time, expire
from services.aggregator.join import fold as join_fold
from services.intake.schema import DeclarationState, DeclarationStatus
from services.intake.traderview import (
    GENERIC_CHECK,
    NEXT_STEPS,
    TRADER_CHECKS,
    TRADER_REASONS,
    declarant_of,
    fallback,
    trader_inspection,
    trader_reasons,
    trader_verdict,
    trader_view,
)
from singlewindow import events as ev
from singlewindow.readmodel import apply
from tests import factories
from tests.unit.test_readmodel import (
    D_IN,
    INSPECTED,
    INSPECTION_LIVES,
    ORDER,
    PORT_OK,
    RELABEL,
    _found,
    escalated_inspection,
)

RULES = [Path(f"services/{agency}/rules.py") for agency in ("customs", "ciq", "port")]
CODE = re.compile(r"(CUS|CIQ|PORT)-[A-Z]+(-[A-Z]+)*")


def _trees() -> list[ast.Module]:
    root = Path(__file__).resolve().parents[2]
    return [ast.parse((root / path).read_text(encoding="utf-8")) for path in RULES]


def emitted_codes() -> set[str]:
    """Every reason-code literal in the agencies' rules (read, not imported)."""
    return {
        node.value
        for tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and CODE.fullmatch(node.value)
    }


def ordered_checks() -> set[str]:
    """The check names of every ``Finding.inspect(code, message, check, ...)`` in the rules."""
    checks = set()
    for tree in _trees():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "inspect"
                and len(node.args) >= 3
                and isinstance(node.args[2], ast.Constant)
            ):
                checks.add(str(node.args[2].value))
    return checks


def test_every_code_the_agencies_emit_has_a_trader_message() -> None:
    codes = emitted_codes()
    assert len(codes) >= 15  # the scan finds them
    assert codes <= TRADER_REASONS.keys(), codes - TRADER_REASONS.keys()


def test_every_check_the_agencies_order_has_a_trader_name() -> None:
    checks = ordered_checks()
    assert {"UNIT_VALUE", "DECLARANT_RISK", "RANDOM_SAMPLE"} <= checks
    assert checks <= TRADER_CHECKS.keys(), checks - TRADER_CHECKS.keys()


@pytest.mark.parametrize("code", sorted(TRADER_REASONS))
def test_no_message_states_a_number_a_level_or_a_sample(code: str) -> None:
    told = TRADER_REASONS[code]
    assert not re.search(r"[0-9%]|risk|random|HIGH|threshold|reference", told.message, re.I)
    assert CODE.fullmatch(told.code) and told.message.endswith(".")


def test_targeting_criteria_collapse_into_one_neutral_code() -> None:
    risk, sample = TRADER_REASONS["CUS-DECLARANT-RISK"], TRADER_REASONS["CUS-RANDOM-SAMPLE"]
    assert risk == sample and risk.code == "CUS-EXAMINATION"
    assert TRADER_CHECKS["DECLARANT_RISK"] == TRADER_CHECKS["RANDOM_SAMPLE"] == "EXAMINATION"


@pytest.mark.parametrize(
    ("agency", "decision", "code", "words"),
    [
        ("customs", "REJECT", "CUS-OTHER", "Customs refused"),
        ("ciq", "HOLD", "CIQ-OTHER", "more information"),
        ("port", "INSPECT", "PORT-OTHER", "inspect the goods"),
        ("veterinary", "CLEAR", "VETERINARY-OTHER", "no objection"),
        ("customs", "SOMETHING-NEW", "CUS-OTHER", "will contact you"),
    ],
)
def test_an_unknown_code_gets_the_generic_reason_of_its_decision(
    agency: str, decision: str, code: str, words: str
) -> None:
    told = fallback(agency, decision)
    assert told.code == code and words in told.message


def test_reasons_are_mapped_and_repeats_dropped() -> None:
    verdict = {
        "agency": "customs",
        "decision": "INSPECT",
        "reasons": [
            {"code": "CUS-DECLARANT-RISK", "message": "risk level HIGH", "item": None},
            {"code": "CUS-RANDOM-SAMPLE", "message": "rate 0.03", "item": None},
            {"code": "CUS-UNDERVALUED", "message": "below 30%", "item": 2},
            {"code": "CUS-NEW-RULE", "message": "secret", "item": None},
        ],
    }
    assert [(r["code"], r["item"]) for r in trader_reasons(verdict)] == [
        ("CUS-EXAMINATION", None),
        ("CUS-UNDERVALUED", 2),
        ("CUS-OTHER", None),
    ]


@pytest.mark.parametrize(
    ("agency", "code", "words"),
    [
        ("customs", "CUS-MANIFEST", "cargo manifest"),
        ("ciq", "CIQ-MANUFACTURER-UNREGISTERED", "registration number"),
        ("ciq", "CIQ-IMPORTER-NOT-REGISTERED", "importer of food"),
        ("ciq", "CIQ-COMMODITY-INSPECTION", "statutory inspection"),
        ("ciq", "CIQ-EXPORT-CERTIFICATION", "before export"),
    ],
)
def test_the_rules_of_the_r2_versions_tell_the_trader_what_to_do(
    agency: str, code: str, words: str
) -> None:
    """Not the generic message of the decision: the trader learns what to correct."""
    verdict = {
        "agency": agency,
        "decision": "HOLD",
        "reasons": [{"code": code, "message": "gross weight (kg, tolerance 5%)", "item": 1}],
    }
    [told] = trader_reasons(verdict)
    assert told["code"] == code and words in told["message"] and "5%" not in told["message"]


def test_the_inspection_order_names_checks_neutrally() -> None:
    order = {
        "order_id": "O-1",
        "checks": [
            {"agency": "customs", "check": "DECLARANT_RISK", "item": None},
            {"agency": "customs", "check": "RANDOM_SAMPLE", "item": None},
            {"agency": "port", "check": "SOMETHING_INTERNAL", "item": 3},
        ],
    }
    assert trader_inspection(order) == {
        "order_id": "O-1",
        "checks": [
            {"agency": "customs", "check": "EXAMINATION", "item": None},
            {"agency": "port", "check": GENERIC_CHECK, "item": 3},
        ],
    }
    assert trader_inspection(None) is None


def test_a_document_without_a_declaration_has_no_declarant() -> None:
    assert declarant_of({"_id": "D", "declaration": None}) is None
    assert declarant_of({"_id": "D", "declaration": {"declarant": {"uscc": "X"}}}) == "X"


def test_a_submitted_declaration_has_an_empty_view() -> None:
    doc = {"_id": "D", "status": "SUBMITTED", "declaration": {}, "verdicts": {}, "result": None}
    assert trader_view(doc) == {
        "declaration_id": "D",
        "status": "SUBMITTED",
        "verdicts": [],
        "result": None,
    }


def test_duties_stay_and_only_their_known_fields() -> None:
    line = {
        "item": 1,
        "customs_value_cny": "433800.01",
        "duty_rate": "0.0000",
        "duty": "0.00",
        "vat_rate": "0.1300",
        "vat": "56394.00",
    }
    verdict = {
        "agency": "customs",
        "decision": "CLEAR",
        "reasons": [],
        "duties": [{**line, "valuation_method": "internal"}],
        "total_duties": "56394.00",
        "decided_at": "2026-11-27T08:31:00.000Z",
        "verdict_id": "V-1",
        "rules_version": "customs-2026.11",
        "checks": [{"agency": "customs", "check": "RANDOM_SAMPLE", "item": None}],
    }
    assert trader_verdict(verdict) == {
        "agency": "customs",
        "decision": "CLEAR",
        "reasons": [],
        "duties": [{**line, "taxes": []}],  # a verdict of before 2026-12: no tax lines
        "tax_totals": [],
        "total_duties": "56394.00",
        "security": None,  # customs offers no release under guarantee
        "charges": [],
        "decided_at": "2026-11-27T08:31:00.000Z",
    }


def _tax(kind: ev.TaxKind, basis: str, base: str, rate: str, amount: str) -> ev.TaxLine:
    return ev.TaxLine(
        kind=kind, basis=basis, base=Decimal(base), rate=Decimal(rate), amount=Decimal(amount)
    )


def test_the_trader_sees_every_tax_line_and_the_totals_assessed_and_collected() -> None:
    """A car valued 200,000.00 CNY: duty 15 % = 30,000.00; an additional duty of 0.02 % =
    40.00; consumption tax 5 % on (200,000.00 + 30,000.00 + 40.00) / (1 - 0.05) = 242,147.37,
    12,107.37; VAT 13 % on 230,040.00 + 12,107.37 = 242,147.37, 31,479.16. The additional duty
    is under the 50 CNY de minimis: assessed, not collected; 73,586.53 collected in all."""
    taxes = (
        _tax(ev.TaxKind.DUTY, "MFN", "200000.00", "0.15", "30000.00"),
        _tax(ev.TaxKind.ADDITIONAL_DUTY, "COUNTERMEASURE", "200000.00", "0.0002", "40.00"),
        _tax(ev.TaxKind.CONSUMPTION_TAX, "8703234110", "242147.37", "0.05", "12107.37"),
        _tax(ev.TaxKind.VAT, "8703234110", "242147.37", "0.13", "31479.16"),
    )
    duty = ev.DutyLine(
        item=1,
        customs_value_cny=Decimal("200000.00"),
        duty_rate=Decimal("0.15"),
        duty=Decimal("30000.00"),
        vat_rate=Decimal("0.13"),
        vat=Decimal("31479.16"),
        taxes=taxes,
    )
    totals = tuple(
        ev.TaxTotal(
            kind=t.kind,
            assessed=t.amount,
            collected=t.amount if t.amount >= 50 else Decimal("0.00"),
        )
        for t in taxes
    )
    customs = factories.verdict(
        "DEC-1", duties=(duty,), tax_totals=totals, total_duties=Decimal("73586.53")
    )
    doc = apply(apply(None, factories.declaration("DEC-1")), customs)
    doc["verdicts"]["customs"]["duties"][0]["taxes"][0]["legal_basis"] = "internal"
    view = DeclarationStatus.model_validate(trader_view(doc)).model_dump(mode="json")
    [verdict] = view["verdicts"]
    [line] = verdict["duties"]
    assert [(t["kind"], t["basis"], t["base"], t["rate"], t["amount"]) for t in line["taxes"]] == [
        ("DUTY", "MFN", "200000.00", "0.1500", "30000.00"),
        ("ADDITIONAL_DUTY", "COUNTERMEASURE", "200000.00", "0.0002", "40.00"),
        ("CONSUMPTION_TAX", "8703234110", "242147.37", "0.0500", "12107.37"),
        ("VAT", "8703234110", "242147.37", "0.1300", "31479.16"),
    ]
    assert all(t["amount_per_unit"] is t["unit"] is t["quantity"] is None for t in line["taxes"])
    assert "legal_basis" not in line["taxes"][0]  # only the fields the trader is shown
    assert (line["customs_value_cny"], line["duty"], line["vat"]) == (
        "200000.00",
        "30000.00",
        "31479.16",
    )
    assert verdict["tax_totals"] == [
        {"kind": "DUTY", "assessed": "30000.00", "collected": "30000.00"},
        {"kind": "ADDITIONAL_DUTY", "assessed": "40.00", "collected": "0.00"},
        {"kind": "CONSUMPTION_TAX", "assessed": "12107.37", "collected": "12107.37"},
        {"kind": "VAT", "assessed": "31479.16", "collected": "31479.16"},
    ]
    assert verdict["total_duties"] == "73586.53"


# -- the joint inspection: the order, the findings, the sanction, the next step ---------------
# The documents are the read model's fold of the inspection lives the join really gives
# (tests.unit.test_readmodel); each view is checked against the response schema.


def _views(life: list[ev.Event]) -> list[dict[str, Any]]:
    """The trader's view after each of the join's steps: the inputs up to the step's time and
    the steps so far, folded."""
    inputs = [e for e in life if not isinstance(e, ev.ClearanceResult)]
    steps = [e for e in life if isinstance(e, ev.ClearanceResult)]
    views = []
    for n, step in enumerate(steps, 1):
        doc = None
        for event in [*(e for e in inputs if event_time(e) <= step.decided_at), *steps[:n]]:
            doc = apply(doc, event)
        assert doc is not None
        views.append(DeclarationStatus.model_validate(trader_view(doc)).model_dump(mode="json"))
    return views


def _codes(views: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(v["status"], v["next_step"]["code"]) for v in views]


def test_a_conditional_release_waits_for_the_laboratory() -> None:
    views = _views(INSPECTION_LIVES["confirmed"])
    assert _codes(views) == [
        ("INSPECTION_REQUIRED", "PRESENT_GOODS"),
        ("AWAITING_PAYMENT", "PAY"),
        ("CONDITIONALLY_RELEASED", "WAIT"),
        ("RELEASED", "NONE"),
    ]
    ordered, _, conditional, released = views
    assert ordered["next_step"]["agencies"] == ["customs", "port"]
    assert "no longer be amended" in ordered["next_step"]["message"]
    assert conditional["next_step"]["agencies"] == ["customs"]  # its samples are at the lab
    assert "laboratory" in conditional["next_step"]["message"]
    for view in views:  # the order stays shown after the step that issued it
        assert view["inspection"]["order_id"] == ORDER.order_id
        assert [c["check"] for c in view["inspection"]["checks"]] == [
            "UNIT_VALUE",
            "DG_SEGREGATION",
        ]
    assert conditional["findings"] == [
        {
            "agency": "customs",
            "outcome": "SAMPLED",
            "measure": None,
            "reasons": [],
            "samples": ["S-1"],
            "lab_result": False,
            "recorded_at": conditional["findings"][0]["recorded_at"],
        },
        {
            "agency": "port",
            "outcome": "COMPLIANT",
            "measure": None,
            "reasons": [],
            "samples": [],
            "lab_result": False,
            "recorded_at": conditional["findings"][1]["recorded_at"],
        },
    ]
    assert [(f["agency"], f["lab_result"]) for f in released["findings"]][-1] == ("customs", True)
    assert all(v["sanction"] is None for v in views)


def test_the_trader_never_sees_the_inspector_nor_the_ids_of_a_finding() -> None:
    doc = None
    for event in INSPECTION_LIVES["remedied"]:
        doc = apply(doc, event)
    assert doc is not None and doc["findings"][0]["inspector"] == "customs-inspector-1"
    text = json.dumps(trader_view(doc))
    assert "inspector-1" not in text and "inspector" not in text
    assert RELABEL.finding_id not in text  # neither in the findings nor in the sanction
    for finding in trader_view(doc)["findings"]:
        assert set(finding) == {
            "agency",
            "outcome",
            "measure",
            "reasons",
            "samples",
            "lab_result",
            "recorded_at",
        }


def test_a_remediation_asks_for_the_remedy_the_sanction_names() -> None:
    views = _views(INSPECTION_LIVES["remedied"])
    assert _codes(views) == [
        ("INSPECTION_REQUIRED", "PRESENT_GOODS"),
        ("REMEDIATION_REQUIRED", "REMEDY"),
        ("AWAITING_PAYMENT", "PAY"),
        ("RELEASED", "NONE"),
    ]
    remedy = views[1]
    assert remedy["sanction"] == {"measure": "RELABELLING", "agency": "customs", "reasons": []}
    assert remedy["next_step"]["agencies"] == ["customs"]
    assert "re-label" in remedy["next_step"]["message"]
    assert [(f["agency"], f["outcome"], f["measure"]) for f in remedy["findings"]] == [
        ("customs", "NON_COMPLIANT", "RELABELLING"),
        ("port", "COMPLIANT", None),
    ]
    assert views[2]["sanction"] is None  # put right: the latest step imposes nothing


def test_a_recall_and_a_sanction_are_final() -> None:
    recalled = _views(INSPECTION_LIVES["recalled"])[-1]
    assert (recalled["status"], recalled["next_step"]["code"]) == ("RECALLED", "NONE")
    assert recalled["sanction"] == {
        "measure": "DESTRUCTION",
        "agency": "customs",
        "reasons": [{"code": "LAB-1", "message": "residues above the limit", "item": 1}],
    }
    assert "recalled" in recalled["next_step"]["message"]
    assert "destroyed" in recalled["next_step"]["message"]
    seized = _found("customs", ev.FindingOutcome.NON_COMPLIANT, 100, measure=ev.Measure.SEIZURE)
    inputs: list[Any] = [*INSPECTED, seized, PORT_OK]
    _, results = join_fold(inputs, timedelta(seconds=120))
    sanctioned = _views([*inputs, *results])[-1]
    assert (sanctioned["status"], sanctioned["next_step"]["code"]) == ("SANCTIONED", "NONE")
    assert sanctioned["sanction"]["measure"] == "SEIZURE"
    assert "seized" in sanctioned["next_step"]["message"]


def test_a_conditional_release_with_duties_owed_asks_for_payment() -> None:
    doc: dict[str, Any] | None = None
    for event in INSPECTION_LIVES["confirmed"][:-1]:  # up to the conditional release
        doc = apply(doc, event)
    assert doc is not None and doc["status"] == "CONDITIONALLY_RELEASED"
    notice = {**doc["result"]["payment_notice"], "outstanding": "12.00"}
    doc["steps"][-1] = doc["result"] = {**doc["result"], "payment_notice": notice}
    doc["steps"][-1]["settlement"] = None
    step = trader_view(doc)["next_step"]
    assert step["code"] == "PAY" and "12.00 CNY" in step["message"]


def test_findings_on_another_order_are_not_shown() -> None:
    doc = None
    for event in INSPECTION_LIVES["remedied"]:
        doc = apply(doc, event)
    stray = [
        factories.finding(D_IN, "customs", order_id="O-OTHER", finding_id="F-X"),
        factories.finding(D_IN, "ciq", order_id=ORDER.order_id, finding_id="F-Y"),  # not named
        factories.finding(D_IN, "port", order_id=ORDER.order_id, version=2, finding_id="F-Z"),
    ]
    shown = trader_view(doc)["findings"]
    for finding in stray:
        doc = apply(doc, finding)
    assert len(doc["findings"]) == 6 and trader_view(doc)["findings"] == shown


def test_every_status_has_one_next_step_rule() -> None:
    assert set(NEXT_STEPS) == {str(s) for s in ev.ClearanceStatus}
    assert {str(s) for s in ev.ClearanceStatus} <= set(DeclarationState)


# -- the port's gate-outs ---------------------------------------------------------------------


def _released_and_out(life: list[ev.Event], *outs: ev.GateOut) -> dict[str, Any]:
    doc = None
    for event in [*life, *outs]:
        doc = apply(doc, event)
    assert doc is not None
    return DeclarationStatus.model_validate(trader_view(doc)).model_dump(mode="json")


def test_the_trader_sees_the_gate_outs_without_the_officer() -> None:
    life = INSPECTION_LIVES["confirmed"]
    release = [e for e in life if isinstance(e, ev.ClearanceResult)][-1]
    out = factories.gate_out(
        D_IN, result_id=release.result_id, passed_at=release.decided_at + timedelta(hours=1)
    )
    before = _released_and_out(life)
    assert before["gate_outs"] == [] and before["next_step"]["code"] == "NONE"
    assert "may leave the port through the gate" in before["next_step"]["message"]
    view = _released_and_out(life, out)
    assert view["gate_outs"] == [
        {
            "gate": "CNSHA-WGQ-3",
            "vehicle": "沪A12345",
            "containers": ["CSQU3054383"],
            "passed_at": out.model_dump(mode="json")["passed_at"],
        }
    ]
    assert (view["status"], view["next_step"]["code"]) == ("RELEASED", "NONE")
    assert "1 gate-out(s)" in view["next_step"]["message"]
    text = json.dumps(view)
    assert out.officer not in text and out.gate_out_id not in text and "officer" not in text


def test_a_conditional_release_may_leave_through_the_gate() -> None:
    conditional = _views(INSPECTION_LIVES["confirmed"])[2]
    assert conditional["next_step"]["code"] == "WAIT"
    assert "gate" in conditional["next_step"]["message"]


def test_a_declaration_without_versions_shows_its_gate_outs_only_once_out() -> None:
    released = [
        factories.declaration("D-RM", required_agencies=("customs",)),
        factories.verdict("D-RM", "customs", ev.Decision.CLEAR, verdict_id="V1"),
        factories.result("D-RM"),
    ]
    assert "gate_outs" not in trader_view(_doc(released))
    view = trader_view(_doc([*released, factories.gate_out("D-RM", containers=())]))
    assert view["gate_outs"] == [
        {
            "gate": "CNSHA-WGQ-3",
            "vehicle": "沪A12345",
            "containers": [],
            "passed_at": view["gate_outs"][0]["passed_at"],
        }
    ]
    assert DeclarationStatus.model_validate(view).gate_outs[0].vehicle == "沪A12345"


def _doc(events: list[ev.Event]) -> dict[str, Any]:
    doc = None
    for event in events:
        doc = apply(doc, event)
    assert doc is not None
    return doc


# -- an inspection order escalated at its deadline --------------------------------------------


def test_an_escalated_inspection_tells_the_trader_to_wait_for_the_agency_still_silent() -> None:
    """Customs recorded in time, the port not: at the deadline the trader is told to wait for
    the port, the order and customs' finding still shown; once the port has recorded (its
    decision not yet projected) for nobody; then the decision's own next step."""
    customs = _found("customs", ev.FindingOutcome.COMPLIANT, 100)
    life = escalated_inspection(customs)
    doc: dict[str, Any] | None = None
    for event in life:
        doc = apply(doc, event)
    assert doc is not None
    view = DeclarationStatus.model_validate(trader_view(doc)).model_dump(mode="json")
    assert view["status"] == "TIMED_OUT"
    assert view["result"]["missing_agencies"] == ["port"]
    assert view["inspection"] is not None and view["inspection"]["order_id"] == ORDER.order_id
    assert [f["agency"] for f in view["findings"]] == ["customs"]
    step = view["next_step"]
    assert (step["code"], step["agencies"], step["action"]) == ("WAIT", ["port"], None)
    assert "overdue" in step["message"] and "port" in step["message"]
    late = _found("port", ev.FindingOutcome.COMPLIANT, 4 * 86400)
    recorded = trader_view(apply(doc, late))["next_step"]
    assert (recorded["code"], recorded["agencies"]) == ("WAIT", [])
    assert "every agency has recorded" in recorded["message"]
    decided = escalated_inspection(customs, after=(late,))
    last = _views(decided)[-1]
    assert last["status"] == "AWAITING_PAYMENT" and last["next_step"]["code"] == "PAY"


def test_a_verdicts_escalation_still_names_the_agencies_that_have_not_ruled() -> None:
    declared = factories.declaration("D-TO", version=1, required_agencies=("customs", "port"))
    state, _ = join_fold([declared], timedelta(seconds=120))
    assert state is not None
    _, [timed_out] = expire(state, declared.submitted_at + timedelta(seconds=120))
    doc = apply(apply(None, declared), timed_out)
    step = trader_view(doc)["next_step"]
    assert (step["code"], step["agencies"]) == ("WAIT", ["customs", "port"])
    assert "Not every agency answered in time" in step["message"]
