"""The trader's view: a trader-facing message for every reason code the agencies emit,
no threshold or criterion in any of them, a generic fallback for the rest."""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from pathlib import Path

import pytest

from services.intake.schema import DeclarationStatus
from services.intake.traderview import (
    GENERIC_CHECK,
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
