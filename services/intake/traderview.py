"""The trader's view of a declaration: decisions and what to do, never how risk is targeted.

The agencies' verdicts in the read model carry their rules' own messages, written for
officers and auditors: risk levels, thresholds, sampling rates, reference prices, alert ids.
A trader sees, per agency, the decision and, per reason, a trader-facing code and message
from :data:`TRADER_REASONS` (an unknown code gets the generic message of its agency and
decision, :func:`fallback`). Codes that would themselves reveal a targeting criterion (a
declarant's risk level, the random sample) become one neutral code; the inspection order
names checks the same way (:data:`TRADER_CHECKS`). Internal fields (verdict and result ids,
rules versions) are left out; duties stay, since the trader pays them.

After a joint inspection the trader sees its order (kept after the step that issued it), the
findings recorded against it so far (agency, outcome, measure, reasons, samples, laboratory
result, time: never the inspector, an officer's identity, nor the station's ids) and the
sanction of the latest step. :func:`next_step` has one rule per status (:data:`NEXT_STEPS`).

Once the goods leave the port under their release, the trader sees each gate-out the port's
gate recorded (``gate_outs``: the gate, the vehicle, the containers, the time; never the gate
officer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from singlewindow.events import PaymentKind
from singlewindow.latepayment import consolidated_due_by
from singlewindow.readmodel import status_view
from singlewindow.registry import agency_registry

Doc = Mapping[str, Any]


@dataclass(frozen=True)
class TraderReason:
    code: str
    message: str


_EXAMINATION = TraderReason(
    "CUS-EXAMINATION",
    "Customs has selected the goods for examination before release. Customs will contact "
    "you to arrange it; have the goods and the commercial documents available.",
)

# Agency rule code -> what the trader is told. Messages state the requirement and the next
# step; they never state a threshold, a rate, a risk level or a reference value.
TRADER_REASONS: Mapping[str, TraderReason] = {
    "CUS-UNKNOWN-HS": TraderReason(
        "CUS-UNKNOWN-HS",
        "The HS code of this item is not in the customs tariff. Check the classification "
        "and lodge a corrected declaration.",
    ),
    "CUS-NO-RATE": TraderReason(
        "CUS-NO-RATE",
        "Customs cannot value this item in the declared currency. Customs will contact you; "
        "you may lodge a corrected declaration in another currency.",
    ),
    "CUS-PROHIBITED": TraderReason(
        "CUS-PROHIBITED",
        "Goods of this tariff line may not be imported or exported.",
    ),
    "CUS-LICENCE-MISSING": TraderReason(
        "CUS-LICENCE-MISSING",
        "This item needs an import licence. Lodge a declaration with the licence document.",
    ),
    "CUS-UNDERVALUED": TraderReason(
        "CUS-UNDERVALUED",
        "Customs will verify the declared value of this item. Have the contract, the "
        "commercial invoice and the proof of payment available.",
    ),
    "CUS-PRICE-QUERY": TraderReason(
        "CUS-PRICE-QUERY",
        "Customs questions the declared price of this item (价格质疑) and will consult you "
        "(价格磋商): have the contract, the invoice and the proof of payment ready. The goods "
        "may be released against a guarantee meanwhile.",
    ),
    "CUS-STATUTORY-UNIT": TraderReason(
        "CUS-STATUTORY-UNIT",
        "Declare the quantities of this item in the statutory units the tariff names "
        "(法定第一/第二计量单位) and lodge a corrected declaration.",
    ),
    "CUS-ORIGIN-CLAIM": TraderReason(
        "CUS-ORIGIN-CLAIM",
        "The preferential origin claimed for this item cannot be granted: the normal duty "
        "rate applies. Check the agreement and the country of origin.",
    ),
    "CUS-PRICE-INFLUENCED": TraderReason(
        "CUS-PRICE-INFLUENCED",
        "You confirmed that the relationship with the seller influenced the price: customs "
        "will consult you on the value. Have the contract and the transfer-pricing records "
        "available.",
    ),
    "CUS-ROYALTIES-NOT-ADDED": TraderReason(
        "CUS-ROYALTIES-NOT-ADDED",
        "Royalties or licence fees are payable for these goods: add them to the other costs "
        "of the valuation and lodge a corrected declaration.",
    ),
    "CUS-MANIFEST": TraderReason(
        "CUS-MANIFEST",
        "The declaration does not match the cargo manifest the carrier filed for its bill of "
        "lading (transport, vessel and voyage or train, ports, packages, gross weight or "
        "containers). Check them with the carrier and lodge a corrected declaration.",
    ),
    "CUS-NOT-ASSESSABLE": TraderReason(
        "CUS-NOT-ASSESSABLE",
        "Customs will assess the duties and taxes of this declaration itself and will contact you.",
    ),
    "CUS-DECLARANT-RISK": _EXAMINATION,
    "CUS-OWNER-RISK": _EXAMINATION,
    "CUS-RANDOM-SAMPLE": _EXAMINATION,
    "CIQ-QUARANTINE-ALERT": TraderReason(
        "CIQ-QUARANTINE-ALERT",
        "A quarantine measure in force bans the import of this item from its country of origin.",
    ),
    "CIQ-CERT-MISSING": TraderReason(
        "CIQ-CERT-MISSING",
        "This item needs a health or phytosanitary certificate. Lodge a declaration with the "
        "certificate.",
    ),
    "CIQ-FIRST-IMPORT": TraderReason(
        "CIQ-FIRST-IMPORT",
        "A first import of goods of this kind is sampled for quarantine inspection. The "
        "inspection service will contact you to take the sample.",
    ),
    "CIQ-EXPORT-CERTIFICATION": TraderReason(
        "CIQ-EXPORT-CERTIFICATION",
        "Goods of this kind are inspected before export, and the inspection service issues "
        "their health or phytosanitary certificate. It will contact you to arrange the "
        "inspection.",
    ),
    "CIQ-MANUFACTURER-UNREGISTERED": TraderReason(
        "CIQ-MANUFACTURER-UNREGISTERED",
        "This item is food: declare the GACC registration number of its overseas "
        "manufacturer, registered for these goods and their country of origin, and lodge a "
        "corrected declaration.",
    ),
    "CIQ-COMMODITY-INSPECTION": TraderReason(
        "CIQ-COMMODITY-INSPECTION",
        "Goods of this kind are subject to statutory inspection. The inspection service will "
        "contact you to arrange it; have the goods and their documents available.",
    ),
    "CIQ-IMPORTER-NOT-REGISTERED": TraderReason(
        "CIQ-IMPORTER-NOT-REGISTERED",
        "The consignee is not registered with the GACC as an importer of food. Register the "
        "consignee, then lodge a declaration.",
    ),
    "PORT-NOT-SERVED": TraderReason(
        "PORT-NOT-SERVED",
        "The port of this consignment is not served by this port authority. Check the port "
        "of loading or discharge.",
    ),
    "PORT-NO-CALL": TraderReason(
        "PORT-NO-CALL",
        "No call of the declared vessel and voyage is scheduled at this port. Check the "
        "vessel IMO number and the voyage.",
    ),
    "PORT-CONTAINER-NOT-MANIFESTED": TraderReason(
        "PORT-CONTAINER-NOT-MANIFESTED",
        "The bill of lading or a declared container is not on the vessel's manifest. Check "
        "them with the carrier.",
    ),
    "PORT-DG-UNDECLARED": TraderReason(
        "PORT-DG-UNDECLARED",
        "This item is dangerous goods (by its tariff line or the UN number declared). Lodge "
        "a declaration with the dangerous goods declaration.",
    ),
    "PORT-DG-CHECK": TraderReason(
        "PORT-DG-CHECK",
        "This item is dangerous goods: its segregation and stowage will be checked.",
    ),
}

# Inspection check names as the trader sees them (the physical checks to prepare for).
TRADER_CHECKS: Mapping[str, str] = {
    "UNIT_VALUE": "UNIT_VALUE",
    "DECLARANT_RISK": "EXAMINATION",
    "RANDOM_SAMPLE": "EXAMINATION",
    "QUARANTINE_SAMPLE": "QUARANTINE_SAMPLE",
    "COMMODITY_INSPECTION": "COMMODITY_INSPECTION",
    "EXPORT_CERTIFICATION": "EXPORT_CERTIFICATION",
    "DG_SEGREGATION": "DG_SEGREGATION",
}
GENERIC_CHECK = "INSPECTION"

_AGENCY_NAMES = {"customs": "Customs", "ciq": "Inspection and quarantine", "port": "The port"}
_CODE_PREFIXES = {"customs": "CUS", "ciq": "CIQ", "port": "PORT"}
_GENERIC = {
    "REJECT": "{name} refused the declaration. Contact {name} for the grounds.",
    "HOLD": "{name} needs more information or documents before deciding and will contact you.",
    "INSPECT": "{name} will inspect the goods before release.",
    "CLEAR": "{name} raised no objection.",
}


def fallback(agency: str, decision: str) -> TraderReason:
    """The generic reason of an agency's decision, for a code without a trader message (every
    code of an agency that joined by registration: its officers' messages are never shown)."""
    registry = agency_registry()
    name = _AGENCY_NAMES.get(agency) or (
        registry.get(agency).name if agency in registry else "The agency"
    )
    prefix = _CODE_PREFIXES.get(agency, agency.upper())
    template = _GENERIC.get(decision, "{name} will contact you.")
    return TraderReason(f"{prefix}-OTHER", template.format(name=name))


def declarant_of(doc: Doc) -> str | None:
    """The declarant's USCC of a read-model document (None if it has no declaration)."""
    declaration = doc.get("declaration") or {}
    uscc = (declaration.get("declarant") or {}).get("uscc")
    return uscc if isinstance(uscc, str) else None


def _unique(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without repeats, first kept (two criteria mapped to one code show once)."""
    seen: list[dict[str, Any]] = []
    for row in rows:
        if row not in seen:
            seen.append(row)
    return seen


def trader_reasons(verdict: Doc) -> list[dict[str, Any]]:
    """A verdict's reasons as the trader sees them."""
    agency, decision = str(verdict.get("agency")), str(verdict.get("decision"))
    shown = []
    for reason in verdict.get("reasons") or ():
        told = TRADER_REASONS.get(str(reason.get("code"))) or fallback(agency, decision)
        shown.append({"code": told.code, "message": told.message, "item": reason.get("item")})
    return _unique(shown)


DUTY_FIELDS = ("item", "customs_value_cny", "duty_rate", "duty", "vat_rate", "vat")
TAX_FIELDS = ("kind", "basis", "base", "rate", "amount_per_unit", "unit", "quantity", "amount")
TOTAL_FIELDS = ("kind", "assessed", "collected")


def trader_duty(line: Doc) -> dict[str, Any]:
    """One item's taxes: the summary fields, and every tax line by line."""
    taxes = [{name: tax.get(name) for name in TAX_FIELDS} for tax in line.get("taxes") or ()]
    return {**{name: line[name] for name in DUTY_FIELDS}, "taxes": taxes}


CHARGE_FIELDS = ("code", "description", "amount", "item")


def trader_charges(holder: Doc) -> list[dict[str, Any]]:
    """An agency's fees and charges, as its verdict or its decision in the result has them."""
    return [{name: c.get(name) for name in CHARGE_FIELDS} for c in holder.get("charges") or ()]


def trader_verdict(verdict: Doc) -> dict[str, Any]:
    """An agency verdict without internal fields (ids, rules version, check names): only
    the fields named here, whatever else a newer verdict carries."""
    return {
        "agency": verdict["agency"],
        "decision": verdict["decision"],
        "reasons": trader_reasons(verdict),
        "duties": [trader_duty(line) for line in verdict.get("duties") or ()],
        "tax_totals": [
            {name: total[name] for name in TOTAL_FIELDS}
            for total in verdict.get("tax_totals") or ()
        ],
        "total_duties": verdict.get("total_duties"),
        "security": verdict.get("security"),
        "charges": trader_charges(verdict),
        "decided_at": verdict.get("decided_at"),
    }


def trader_inspection(order: Doc | None) -> dict[str, Any] | None:
    """The joint inspection order: its id and the checks to prepare for, neutrally named."""
    if order is None:
        return None
    checks = (
        {
            "agency": check.get("agency"),
            "check": TRADER_CHECKS.get(str(check.get("check")), GENERIC_CHECK),
            "item": check.get("item"),
        }
        for check in order.get("checks") or ()
    )
    return {"order_id": order.get("order_id"), "checks": _unique(checks)}


def trader_result(result: Doc | None) -> dict[str, Any] | None:
    """The consolidated answer without internal ids."""
    if result is None:
        return None
    decisions = [
        {"agency": d["agency"], "decision": d["decision"], "charges": trader_charges(d)}
        for d in result.get("decisions", ())
    ]
    charged = sum((Decimal(c["amount"]) for d in decisions for c in d["charges"]), Decimal("0"))
    shown = {
        "status": result["status"],
        "decisions": decisions,
        "missing_agencies": list(result.get("missing_agencies") or ()),
        "inspection": trader_inspection(result.get("inspection")),
        "total_duties": result.get("total_duties"),
        "total_charges": f"{charged:.2f}",
        "decided_at": result.get("decided_at"),
    }
    if result.get("refund") is not None:  # a change after release that collects less
        shown["refund"] = result["refund"]
    if result.get("valuation_pending"):  # released under guarantee, the price consulted
        shown["valuation_pending"] = True
    return shown


NOTICE_FIELDS = ("notice_id", "issued_at", "due_by", "amount", "outstanding")
SETTLEMENT_FIELDS = ("kind", "paid", "days_late", "late_interest")
LATE_INTEREST = "0.05%"  # a day after the due date (services.aggregator.payment)


def trader_notice(notice: Doc | None) -> dict[str, Any] | None:
    """The payment notice to pay: amount, taxes per kind, due date, what is outstanding."""
    if notice is None:
        return None
    return {
        **{name: notice.get(name) for name in NOTICE_FIELDS},
        "taxes": [{name: t.get(name) for name in TOTAL_FIELDS} for t in notice.get("taxes") or ()],
    }


def trader_settlement(
    settlement: Doc | None, payments: Iterable[Doc] = ()
) -> dict[str, Any] | None:
    """How the notice was settled (the bank's payment ids are left out); for a draw on a
    general guarantee, the guarantee and its consolidated repayment (:func:`trader_draw`)."""
    if settlement is None:
        return None
    shown = {name: settlement.get(name) for name in SETTLEMENT_FIELDS}
    if settlement.get("kind") == PaymentKind.GENERAL_GUARANTEE:
        shown["guarantee"] = trader_draw(settlement, list(payments))
    return shown


def trader_draw(settlement: Doc, payments: list[Doc]) -> dict[str, Any] | None:
    """The general guarantee (总担保) a release was drawn on, when, by when the duties drawn
    are due in the consolidated payment (汇总征税: the fifth working day of the next month,
    :mod:`singlewindow.latepayment`), and their repayment once the bank confirms it."""
    drawn = set(settlement.get("payment_ids") or ())
    draw = next((p for p in payments if p.get("payment_id") in drawn), None)
    if draw is None:  # the release is seen before the bank's confirmation
        return None
    drawn_at = datetime.fromisoformat(str(draw["paid_at"]))
    repaid = next(
        (
            p
            for p in payments
            if p.get("kind") == PaymentKind.CONSOLIDATED_PAYMENT
            and p.get("guarantee_id") == draw.get("guarantee_id")
            and p.get("notice_id") == draw.get("notice_id")
        ),
        None,
    )
    return {
        "guarantee_id": draw.get("guarantee_id"),
        "drawn_at": draw["paid_at"],
        "repay_by": consolidated_due_by(drawn_at).isoformat(),
        "repaid_at": repaid["paid_at"] if repaid else None,
        "late_interest": repaid.get("late_interest") if repaid else None,
    }


def _paid_notice(steps: list[Doc]) -> tuple[Doc | None, Doc | None]:
    """The latest payment notice and settlement of the steps (None, None if there is none)."""
    for step in reversed(steps):
        if step.get("payment_notice") or step.get("settlement"):
            return step.get("payment_notice"), step.get("settlement")
    return None, None


def _unrepaid_draw(steps: list[Doc], payments: Iterable[Doc]) -> dict[str, Any] | None:
    """The first draw on a general guarantee that settled a step and is not repaid yet (None if
    none is): a change after release settled otherwise, refunded or refused leaves the draw
    that released the version before it to be repaid."""
    confirmed = list(payments)
    for step in steps:
        settlement = step.get("settlement") or {}
        if settlement.get("kind") != PaymentKind.GENERAL_GUARANTEE:
            continue
        drawn = trader_draw(settlement, confirmed)
        if drawn is not None and not drawn.get("repaid_at"):
            return drawn
    return None


REASON_FIELDS = ("code", "message", "item")
# what an inspector's finding shows the trader: never the inspector (an officer's identity)
# nor the station's ids
FINDING_FIELDS = ("agency", "outcome", "measure", "samples", "lab_result", "recorded_at")


def _inspector_reasons(holder: Doc) -> list[dict[str, Any]]:
    """The reasons of a finding or a sanction as recorded: what was found and must be put
    right (the inspection's own, not a targeting criterion)."""
    return [{name: r.get(name) for name in REASON_FIELDS} for r in holder.get("reasons") or ()]


def trader_finding(finding: Doc) -> dict[str, Any]:
    """An inspector's finding without the inspector and the ids."""
    shown = {name: finding.get(name) for name in FINDING_FIELDS}
    shown["samples"] = list(finding.get("samples") or ())
    shown["lab_result"] = bool(finding.get("lab_result"))
    return {**shown, "reasons": _inspector_reasons(finding)}


def trader_sanction(sanction: Doc | None) -> dict[str, Any] | None:
    """The measure a step imposes after the inspection: which, whose, why (no finding id)."""
    if sanction is None:
        return None
    return {
        "measure": sanction.get("measure"),
        "agency": sanction.get("agency"),
        "reasons": _inspector_reasons(sanction),
    }


def _order_of(steps: list[Doc]) -> Doc | None:
    """The inspection order of the version the latest step is of (None if it has none)."""
    if not steps:
        return None
    version = steps[-1].get("version")
    ordered = [s for s in steps if s.get("inspection") and s.get("version") == version]
    return ordered[-1] if ordered else None


def _findings_on(step: Doc | None, findings: Iterable[Doc]) -> list[Doc]:
    """The findings recorded against the order ``step`` issued, by the agencies it names, in
    the order recorded (the others answer nothing: the join ignores them)."""
    if step is None:
        return []
    order = step["inspection"]
    named = {check.get("agency") for check in order.get("checks") or ()}
    return [
        f
        for f in findings
        if f.get("order_id") == order.get("order_id")
        and f.get("version") == step.get("version")
        and f.get("agency") in named
    ]


# what a gate-out shows the trader: never the gate officer (an officer's identity) nor its id
GATE_OUT_FIELDS = ("gate", "vehicle", "containers", "passed_at")


def trader_gate_out(gate_out: Doc) -> dict[str, Any]:
    """A gate-out of the goods without the officer and the ids."""
    shown = {name: gate_out.get(name) for name in GATE_OUT_FIELDS}
    return {**shown, "containers": list(gate_out.get("containers") or ())}


@dataclass(frozen=True)
class Situation:
    """What the trader's next step is computed from: the declaration, its latest step, the
    payment notice shown, the findings against its inspection order and the number of
    gate-outs recorded."""

    declaration_id: str
    result: Doc
    notice: Doc | None
    findings: list[dict[str, Any]]
    gone_out: int = 0
    settlement: dict[str, Any] | None = None
    unrepaid: dict[str, Any] | None = None  # a draw not repaid yet, whichever step it settled
    changing: bool = False  # the declaration shown is a change after release

    @property
    def here(self) -> str:
        return f"/v1/declarations/{self.declaration_id}"

    def deciding(self, decision: str) -> list[str]:
        return [
            d["agency"] for d in self.result.get("decisions") or () if d["decision"] == decision
        ]

    @property
    def owed(self) -> bool:
        return self.notice is not None and Decimal(str(self.notice["outstanding"])) > 0

    @property
    def to_repay(self) -> dict[str, Any] | None:
        """A draw on a general guarantee still to repay in the consolidated payment: one that
        settled any step (a release before a change after release included), else the
        settlement's shown."""
        drawn = self.unrepaid or (self.settlement or {}).get("guarantee")
        return drawn if drawn and not drawn.get("repaid_at") else None


def _next(
    code: str, message: str, action: str | None = None, agencies: Iterable[str] = ()
) -> dict[str, Any]:
    return {"code": code, "message": message, "action": action, "agencies": list(agencies)}


def _assessing(_: Situation) -> dict[str, Any]:
    return _next("WAIT", "The agencies are assessing the declaration. Nothing to do yet.")


def _pay(now: Situation) -> dict[str, Any]:
    notice = now.notice
    if notice is None:
        return _assessing(now)
    return _next(
        "PAY",
        f"Pay tax payment notice {notice['notice_id']}: {notice['outstanding']} CNY "
        f"outstanding, due by {notice['due_by']}, through your bank (POST /v1/payments). After "
        f"that date late interest of {LATE_INTEREST} of the amount accrues per day. The goods "
        "are released once it is paid or guaranteed.",
        "POST /v1/payments",
    )


def _held(now: Situation) -> dict[str, Any]:
    # the HELD step's own security notice (customs questions the price, 价格磋商), not the
    # latest notice of the steps: an earlier version's, awaiting payment before the amendment
    # now held, is none the join still counts, and a guarantee on it releases nothing
    security = now.result.get("payment_notice")
    if security and Decimal(str(security["outstanding"])) > 0:
        return _secure(now, security)
    return _next(
        "SUPPLY_DOCUMENTS",
        "The declaration is on hold: supply the documents or information the reasons name "
        f"(POST {now.here}/documents), or amend the declaration (PUT {now.here}).",
        f"POST {now.here}/documents",
        now.deciding("HOLD"),
    )


def _secure(now: Situation, security: Doc) -> dict[str, Any]:
    """``SECURE_RELEASE``: a HELD step with a security notice (a price query, 价格磋商)."""
    return _next(
        "SECURE_RELEASE",
        "Customs questions the declared price and will consult you on it (价格磋商). The goods "
        f"can be released meanwhile against a bank guarantee of {security['amount']} CNY on "
        f"notice {security['notice_id']} (POST /v1/payments, kind BANK_GUARANTEE); once the "
        "value is agreed, you lodge it as a change and pay the duties on it. Or amend the "
        f"declaration with the price actually paid (PUT {now.here}).",
        "POST /v1/payments",
        now.deciding("HOLD"),
    )


def _valuation(now: Situation) -> dict[str, Any]:
    """``LODGE_VALUE``: released under guarantee pending customs' valuation."""
    # customs' answer to a value lodged (the declaration shown is that change), not the
    # conditional release the guarantee gave, which names the price query's HOLD too
    refused = (
        "Customs did not accept the value you lodged (the reasons say why). "
        if now.changing and now.deciding("HOLD") + now.deciding("REJECT") + now.deciding("INSPECT")
        else ""
    )
    return _next(
        "LODGE_VALUE",
        f"{refused}The goods are released under your bank guarantee while customs determines "
        "their value (价格磋商): they may leave the port through the gate. Once you and customs "
        f"agree on the price, lodge it as a change of the declaration (PUT {now.here}); "
        "customs assesses it, and the duties on that value are then due.",
        f"PUT {now.here}",
        ["customs"],
    )


def _inspection(now: Situation) -> dict[str, Any]:
    return _next(
        "PRESENT_GOODS",
        "Present the goods for the joint inspection the order names; the agencies will "
        "contact you to arrange it. After the inspection order the declaration can no longer "
        "be amended.",
        None,
        now.deciding("INSPECT"),
    )


_REMEDIES = {
    "RELABELLING": "re-label the goods under the supervision of {agency}, as the sanction's "
    "reasons say; {agency} then inspects them again",
    "PENALTY": "{agency} has opened a penalty case about the goods: settle it with {agency}; "
    "the goods stay under customs' control until {agency} records it settled",
}


def _remedy(now: Situation) -> dict[str, Any]:
    sanction = now.result.get("sanction") or {}
    agency = str(sanction.get("agency") or "the agency")
    remedy = _REMEDIES.get(
        str(sanction.get("measure")), "put right what the sanction names, as {agency} directs"
    )
    return _next(
        "REMEDY",
        f"The joint inspection found the goods non-compliant: {remedy.format(agency=agency)}. "
        "The goods are released once that is done and the duties are settled.",
        None,
        [agency] if sanction else [],
    )


def _conditional(now: Situation) -> dict[str, Any]:
    if now.owed:
        return _pay(now)
    if now.result.get("valuation_pending"):
        return _valuation(now)
    latest = {f["agency"]: f for f in now.findings}  # in the order recorded: the last counts
    sampling = [a for a, f in latest.items() if f["outcome"] == "SAMPLED"]
    return _next(
        "WAIT",
        "The goods are released on condition: samples taken at the inspection are at the "
        "laboratory. The goods may leave the port through the gate, but keep them as they "
        "are, available to the agencies, until its result: if it does not conform, they are "
        "recalled. Nothing to do meanwhile.",
        None,
        sampling,
    )


def _repay(drawn: dict[str, Any], lead: str, agencies: Iterable[str] = ()) -> dict[str, Any]:
    """``REPAY_GUARANTEE``: the draw on a general guarantee is still to be repaid, whatever
    else ``lead`` says of the declaration."""
    guarantee = drawn["guarantee_id"]
    return _next(
        "REPAY_GUARANTEE",
        f"{lead} The duties drawn on your general guarantee {guarantee} are due in your "
        f"consolidated payment (汇总征税) by {drawn['repay_by']}, with the other duties drawn "
        f"that month, through your bank; after that date late interest of {LATE_INTEREST} of "
        "the amount accrues per day.",
        f"POST /v1/guarantees/{guarantee}/repayments",
        agencies,
    )


def _released(now: Situation) -> dict[str, Any]:
    refund = now.result.get("refund")
    drawn = now.to_repay
    if refund is not None:
        approved = (
            f"Customs approved the change after release: {refund} CNY of duties levied on the "
            "release before are to be refunded (退税); customs will contact you about the "
            "refund. The goods stay released."
        )
        if drawn:
            return _repay(drawn, approved)
        return _next("NONE", approved)
    if drawn:
        return _repay(drawn, "The goods are released: they may leave the port through the gate.")
    if now.gone_out:
        return _next(
            "NONE",
            f"The goods are released; the port's gate recorded {now.gone_out} gate-out(s) "
            "of them (gate_outs). Nothing more to do.",
        )
    return _next(
        "NONE",
        "The goods are released: they may leave the port through the gate. Nothing more to do.",
    )


def _supplementary(now: Situation) -> dict[str, Any]:
    notice = now.notice
    if notice is None:
        return _assessing(now)
    return _next(
        "PAY",
        "Customs approved the change after release and collects more duties on it: pay "
        f"supplementary notice {notice['notice_id']} (补税): {notice['outstanding']} CNY "
        f"outstanding, due by {notice['due_by']}, through your bank (POST /v1/payments). After "
        f"that date late interest of {LATE_INTEREST} of the amount accrues per day. The goods "
        "stay released.",
        "POST /v1/payments",
    )


def _refused(now: Situation) -> dict[str, Any]:
    refused = (
        "Customs refused the change after release (its verdict's reasons say why): the "
        "release before it stands, and the goods may leave the port under it. You may ask for "
        f"another change (PUT {now.here})."
    )
    deciding = now.deciding("REJECT") + now.deciding("HOLD") + now.deciding("INSPECT")
    drawn = now.to_repay
    if drawn:
        return _repay(drawn, refused, deciding)
    return _next("NONE", refused, None, deciding)


def _change_assessed(now: Situation) -> dict[str, Any]:
    drawn = now.to_repay
    if drawn:  # the consolidated payment does not wait for customs' answer
        return _repay(
            drawn,
            "Customs is assessing the change you asked for after release; the release before "
            "it stands, and goods still in the port leave once customs has answered.",
            ["customs"],
        )
    return _next(
        "WAIT",
        "Customs is assessing the change you asked for after release; the release before it "
        "stands, and goods still in the port leave once customs has answered. Nothing to do "
        "yet.",
        None,
        ["customs"],
    )


def _escalated(now: Situation) -> dict[str, Any]:
    missing = list(now.result.get("missing_agencies") or ())
    if now.result.get("inspection"):
        return _overdue(now, missing)
    return _next(
        "WAIT",
        "Not every agency answered in time: the declaration is escalated, and is decided when "
        f"{', '.join(missing) or 'they'} rule. Nothing to do.",
        None,
        missing,
    )


def _overdue(now: Situation, missing: list[str]) -> dict[str, Any]:
    """An inspection order escalated at its deadline: the agencies named then that have still
    not recorded a finding on it (the findings shown are the order's)."""
    recorded = {f["agency"] for f in now.findings}
    waiting = [a for a in missing if a not in recorded]
    if not waiting:
        return _next(
            "WAIT",
            "The joint inspection was overdue; every agency has recorded its findings since, "
            "and the declaration is decided on them shortly. Nothing to do.",
        )
    return _next(
        "WAIT",
        f"The joint inspection is overdue: {', '.join(waiting)} has not recorded its findings "
        "on the order by the deadline, and the agencies are alerted. Keep the goods presented "
        "for the inspection the order names; the declaration is decided once every agency "
        "has recorded. It can no longer be amended, nor withdrawn until the inspection is "
        "finished. Nothing else to do.",
        None,
        waiting,
    )


_MEASURES = {
    "SEIZURE": "the goods are seized",
    "DESTRUCTION": "the goods are to be destroyed under supervision",
    "RETURN": "the goods are to be returned (re-exported)",
}


def _final(message: str) -> Callable[[Situation], dict[str, Any]]:
    def rule(now: Situation) -> dict[str, Any]:
        sanction = now.result.get("sanction") or {}
        measure = _MEASURES.get(str(sanction.get("measure")), "a measure is ordered")
        told = message.format(measure=measure, agency=sanction.get("agency") or "the agency")
        return _next("NONE", told)

    return rule


# One rule per status (SUBMITTED and IN_REVIEW: the agencies are assessing).
NEXT_STEPS: Mapping[str, Callable[[Situation], dict[str, Any]]] = {
    "AWAITING_PAYMENT": _pay,
    "HELD": _held,
    "INSPECTION_REQUIRED": _inspection,
    "REMEDIATION_REQUIRED": _remedy,
    "CONDITIONALLY_RELEASED": _conditional,
    "TIMED_OUT": _escalated,
    "RELEASED": _released,
    "SUPPLEMENTARY_PAYMENT_DUE": _supplementary,
    "AMENDMENT_REFUSED": _refused,
    "REJECTED": _final(
        "The declaration is rejected; the reasons say why. Nothing more can be done with it: "
        "lodge a new declaration if appropriate."
    ),
    "WITHDRAWN": _final("The declaration is withdrawn. Nothing more to do."),
    "SANCTIONED": _final(
        "The joint inspection found the goods non-compliant: {measure}, on the finding of "
        "{agency} (the sanction gives the reasons). Nothing more can be done with this "
        "declaration."
    ),
    "RECALLED": _final(
        "The laboratory's result does not conform: the conditional release is recalled and "
        "{measure}, on the finding of {agency} (the sanction gives the reasons); {agency} will "
        "contact you. Nothing more can be done with this declaration."
    ),
}


def next_step(
    view: Doc,
    notice: Doc | None,
    findings: list[dict[str, Any]] | None = None,
    changing: bool = False,
    settlement: dict[str, Any] | None = None,
    unrepaid: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the trader must do now: a code for machines, a message for people, the request
    to make (if any) and the agencies concerned (:data:`NEXT_STEPS`, one rule per status).

    - AWAITING_PAYMENT -> ``PAY`` the notice through the bank (``POST /v1/payments``);
    - HELD -> ``SUPPLY_DOCUMENTS`` the reasons name (``POST .../documents``) or amend; with a
      security notice (a price query, 价格磋商) -> ``SECURE_RELEASE``: a bank guarantee for
      it releases the goods pending the valuation (``POST /v1/payments``), or amend;
    - INSPECTION_REQUIRED -> ``PRESENT_GOODS`` for the joint inspection;
    - REMEDIATION_REQUIRED -> ``REMEDY``: put right what the sanction names, under the
      supervision of its agency (re-labelling, a penalty case);
    - CONDITIONALLY_RELEASED -> ``WAIT`` for the laboratory's result (``PAY`` if duties are
      still owed); the goods may leave through the gate meanwhile, kept as they are; released
      under guarantee pending customs' valuation -> ``LODGE_VALUE``: the price agreed, as a
      change (``PUT``), also after customs refused one;
    - TIMED_OUT -> ``WAIT``: escalated, the agencies named have not ruled (nothing to do);
      after an inspection order, the agencies named that have still not recorded their
      findings on it (keep the goods presented);
    - SUBMITTED, IN_REVIEW -> ``WAIT``;
    - RELEASED, REJECTED, WITHDRAWN, SANCTIONED, RECALLED -> ``NONE``: final (a release: the
      goods may leave through the gate; the message says how many gate-outs are recorded, or
      the refund of a change after release); but RELEASED against a general guarantee whose
      draw is not repaid yet -> ``REPAY_GUARANTEE`` in the consolidated payment
      (``POST /v1/guarantees/{id}/repayments`` at the bank), by the date it names;
    - after release (``changing``: the version shown is a change after release): IN_REVIEW
      -> ``WAIT`` for customs' approval; SUPPLEMENTARY_PAYMENT_DUE -> ``PAY`` the
      supplementary notice; AMENDMENT_REFUSED -> ``NONE`` (the release before stands);
    - but RELEASED (a refund included), AMENDMENT_REFUSED, or a change assessed while a draw
      on a general guarantee that settled any step (``unrepaid``: the release before the
      change, say, whose settlement the latest steps no longer show) is not repaid ->
      ``REPAY_GUARANTEE``: the consolidated payment's date does not move with the change.
    """
    now = Situation(
        view["declaration_id"],
        view.get("result") or {},
        notice,
        findings or [],
        len(view.get("gate_outs") or ()),
        settlement,
        unrepaid,
        changing,
    )
    if changing and view["status"] in ("SUBMITTED", "IN_REVIEW"):
        return _change_assessed(now)
    return NEXT_STEPS.get(view["status"], _assessing)(now)


def trader_view(doc: Doc) -> dict[str, Any]:
    """The body of ``GET /v1/declarations/{id}`` for a read-model document."""
    view = status_view(dict(doc))
    body = {
        "declaration_id": view["declaration_id"],
        "status": view["status"],
        "verdicts": [trader_verdict(v) for v in view["verdicts"]],
        "result": trader_result(view["result"]),
    }
    gate_outs = [trader_gate_out(g) for g in view.get("gate_outs") or ()]
    if "version" not in view:  # lodged before versions: as it always was, and its gate-outs
        return {**body, "gate_outs": gate_outs} if gate_outs else body
    steps = list(view.get("steps") or ())
    notice, settlement = _paid_notice(steps)
    shown_notice = trader_notice(notice)
    shown_settlement = trader_settlement(settlement, view.get("payments") or ())
    ordered = _order_of(steps)
    findings = [trader_finding(f) for f in _findings_on(ordered, view.get("findings") or ())]
    body.update(
        version=view["version"],
        steps=[
            {name: step.get(name) for name in ("sequence", "version", "status", "decided_at")}
            for step in steps
        ],
        payment_notice=shown_notice,
        settlement=shown_settlement,
        inspection=trader_inspection(ordered["inspection"] if ordered else None),
        findings=findings,
        sanction=trader_sanction((view.get("result") or {}).get("sanction")),
        gate_outs=gate_outs,
        next_step=next_step(
            view,
            shown_notice,
            findings,
            bool((doc.get("declaration") or {}).get("after_release")),
            shown_settlement,
            _unrepaid_draw(steps, view.get("payments") or ()),
        ),
    )
    return body
