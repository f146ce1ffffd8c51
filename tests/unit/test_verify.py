"""The auditors' verification, pure: what it must catch and what it must let pass."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from services.aggregator.join import fold
from services.audit.verify import RULES, verify
from services.demo_data import sample_declaration_body
from singlewindow.events import (
    Agency,
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    Document,
    GoodsItem,
    Reason,
)
from tests import factories

DEADLINE = timedelta(seconds=120)


def recorded() -> tuple[DeclarationSubmitted, list[AgencyVerdict], ClearanceResult]:
    """A declaration, the verdicts the real rules give it, the result the join gives them."""
    body = sample_declaration_body(0)
    item = body["items"][0]
    declaration = factories.declaration(
        "D-AUDIT",
        items=(
            GoodsItem(
                line=1,
                hs_code=item["hs_code"],
                description=item["description"],
                origin_country=item["origin_country"],
                quantity=Decimal(item["quantity"]),
                unit=item["unit"],
                customs_value=Decimal(item["customs_value"]),
                currency=item["currency"],
            ),
        ),
        documents=tuple(Document.model_validate(d) for d in body["documents"]),
    )
    verdicts = [
        RULES[a](declaration, f"{a}-2026.11", factories.T0) for a in declaration.required_agencies
    ]
    _, results = fold([declaration, *verdicts], DEADLINE)
    return declaration, verdicts, results[0]


def kinds(report: object) -> list[str]:
    return sorted(f.kind for f in report.findings)  # type: ignore[attr-defined]


def test_a_faithful_record_verifies_clean() -> None:
    declaration, verdicts, result = recorded()
    assert kinds(verify([declaration], verdicts + verdicts[:1], [result], DEADLINE)) == []


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
    orphan = factories.verdict("D-NOBODY", Agency.CUSTOMS)
    assert "unknown declaration" in kinds(
        verify([declaration], [*verdicts, orphan], [result], DEADLINE)
    )
    assert "missing verdict" in kinds(verify([declaration], verdicts[:1], [result], DEADLINE))
