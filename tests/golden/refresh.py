"""Write a golden payload for each event type's current schema version, if missing.

``python -m tests.golden.refresh``. Payloads are never overwritten: each one is the bytes an
earlier release wrote, and the current code must keep reading them.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from services.customs import rules as customs_rules
from singlewindow.avro import fingerprint_of
from singlewindow.events import (
    AgencyDecision,
    Charge,
    ClearanceStatus,
    Decision,
    Event,
    FindingOutcome,
    InspectionCheck,
    InspectionOrder,
    Measure,
    OriginClaim,
    PaymentKind,
    PaymentNotice,
    Reason,
    Sanction,
    Settlement,
)
from tests import factories

HERE = Path(__file__).resolve().parent
E = TypeVar("E", bound=Event)


def signed(event: E) -> E:
    """``event`` as its service writes it: signed (by a test key: every field set)."""
    return type(event).from_avro(factories.signed(event))


_FEE = Charge(code="INSPECTION_FEE", description="golden", amount=Decimal("120.00"), item=1)
_CAR = (
    factories.declaration()
    .items[0]
    .model_copy(update={"origin_claim": OriginClaim(agreement="RCEP", certificate="CO-GOLDEN-1")})
)
_ASSESSED = customs_rules.assess(  # duty lines with every tax, tax totals
    factories.declaration(items=(_CAR,)),
    customs_rules.load_reference("customs-2026.11-r2"),
    factories.T0,
    factories.sampling_key("golden-1"),
)
_KEYED_VERDICT = signed(  # every field set
    factories.verdict(
        sampling_key_version="golden-1",
        charges=(_FEE,),
        duties=_ASSESSED.duties,
        tax_totals=_ASSESSED.tax_totals,
        total_duties=_ASSESSED.total_duties,
        declaration_version=2,
    )
)
_NOTICE = PaymentNotice(
    notice_id="N-golden",
    issued_at=factories.T0,
    due_by=date(2026, 12, 12),
    taxes=_ASSESSED.tax_totals,
    amount=_ASSESSED.total_duties,
    outstanding=Decimal("0.00"),
)
_PAID = signed(factories.payment(notice_id="N-golden", amount=_ASSESSED.total_duties))
_DRAWN = signed(  # a draw on a general guarantee (总担保)
    factories.payment(
        notice_id="N-golden",
        payment_id="P-golden-draw",
        kind=PaymentKind.GENERAL_GUARANTEE,
        amount=_ASSESSED.total_duties,
        guarantee_id="G-golden",
        guarantee_amount=Decimal("500000.00"),
        ledger_sequence=1,
        balance_after=Decimal("500000.00") - _ASSESSED.total_duties,
    )
)
_REPAID = signed(  # its repayment in the consolidated payment (汇总征税): every field set
    factories.payment(
        notice_id="N-golden",
        payment_id="P-golden-repaid",
        kind=PaymentKind.CONSOLIDATED_PAYMENT,
        amount=_ASSESSED.total_duties,
        guarantee_id="G-golden",
        guarantee_amount=Decimal("500000.00"),
        ledger_sequence=2,
        balance_after=Decimal("500000.00"),
        late_interest=Decimal("0.00"),
    )
)
_ORDER = InspectionOrder(
    order_id="O-golden",
    checks=(InspectionCheck(agency="ciq", check="PEST_INSPECTION", item=1),),
)
_FOUND = signed(  # every field set
    factories.finding(
        agency="ciq",
        order_id="O-golden",
        version=2,
        outcome=FindingOutcome.NON_COMPLIANT,
        measure=Measure.RELABELLING,
        reasons=(Reason(code="CIQ-LABEL", message="no Chinese label", item=1),),
        lab_result=True,
    )
)
_SAMPLED = signed(
    factories.finding(
        agency="ciq",
        finding_id="F-sampled",
        order_id="O-golden",
        version=2,
        outcome=FindingOutcome.SAMPLED,
        samples=("S-golden-1",),
    )
)
SAMPLES = (
    signed(factories.declaration(items=(_CAR,), version=2, after_release=True)),
    _KEYED_VERDICT,
    signed(
        factories.result(
            decisions=(
                AgencyDecision(
                    agency="customs", decision=Decision.CLEAR, verdict_id="V1", charges=(_FEE,)
                ),
            ),
            version=2,
            sequence=3,
            payment_notice=_NOTICE,
            settlement=Settlement(
                kind=PaymentKind.PAYMENT,
                payment_ids=(_PAID.payment_id,),
                paid=_ASSESSED.total_duties,
                days_late=0,
                late_interest=Decimal("0.00"),
            ),
            refund=Decimal("12.34"),
        )
    ),
    signed(
        factories.join_state(
            verdicts=(_KEYED_VERDICT,),
            version=2,
            sequence=2,
            last_status="AWAITING_PAYMENT",
            assessed=True,
            notice=_NOTICE,
            payments=(_PAID,),
            withdrawal=signed(factories.withdrawal(version=2)),
            last_event_at=factories.T0,
            order=_ORDER,
            findings=(_SAMPLED, _FOUND),
            cleared=True,
            after_release=True,
            levied=_ASSESSED.tax_totals,
        )
    ),
    signed(factories.withdrawal(version=2)),
    _REPAID,  # before _PAID: the first sample of a schema version is its golden
    _PAID,
    _FOUND,
    signed(
        factories.result(
            status=ClearanceStatus.REMEDIATION_REQUIRED,
            version=2,
            sequence=2,
            finding_ids=(_FOUND.finding_id,),
            sanction=Sanction(
                measure=Measure.RELABELLING,
                agency="ciq",
                finding_id=_FOUND.finding_id,
                reasons=_FOUND.reasons,
            ),
        )
    ),
    signed(factories.gate_out()),  # every field set
    _DRAWN,
    signed(
        factories.result(
            version=2,
            sequence=2,
            payment_notice=_NOTICE,
            settlement=Settlement(
                kind=PaymentKind.GENERAL_GUARANTEE,
                payment_ids=(_DRAWN.payment_id,),
                paid=_DRAWN.amount,
                days_late=0,
                late_interest=Decimal("0.00"),
            ),
        )
    ),
)


def refresh() -> list[Path]:
    written = []
    for event in SAMPLES:
        payload = event.to_avro()
        stem = f"{event.AVRO_NAME}.{fingerprint_of(payload).hex()}"
        avro, expected = HERE / f"{stem}.avro", HERE / f"{stem}.json"
        if avro.exists():
            continue
        avro.write_bytes(payload)
        expected.write_text(
            json.dumps(event.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
        )
        written.append(avro)
    return written


if __name__ == "__main__":
    for path in refresh():
        print(f"wrote {path}")
