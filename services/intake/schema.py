"""Request and response models of the intake API, and the validation of a declaration.

The body carries what the declaration form (报关单, GACC Announcement 2019 No. 18) carries:
trade mode, nature of levy and record number; the declarant (often a customs broker) and the
domestic consignee or consignor it declares for, and the overseas party; the valuation (terms,
freight, insurance, other costs, the three confirmations); transport, weights, packages and the
countries and offices of the movement; per item the statutory quantities, the invoice price,
the declaration elements, an origin claim, the food manufacturer's registration, the UN number
of dangerous goods and the licences that cover it. The customs value of each item is computed
from the valuation (:mod:`singlewindow.valuation`), never typed in.

Limits (a value outside them is a 422 naming the field):

- strings: no control characters, not blank; names <= 200, ``items[].description`` <= 500,
  ``items[].declaration_elements`` <= 255, references <= 64, ``transport.bill_of_lading`` <=
  35 (UN/EDIFACT an..35), ``transport.voyage`` <= 17;
- codes checked with ``singlewindow.identifiers`` against the shipped lists: USCC (with its
  embedded organisation code), enterprise customs code, IMO, ISO 6346 containers, UN/LOCODE,
  10-digit HS code, ISO 3166-1 country, ISO 4217 currency (money only), UN/ECE Rec 20 units and
  Rec 21 package kinds, Incoterms 2020, trade modes, natures of levy, customs offices, record
  numbers, UN numbers;
- decimals travel as JSON *strings* (``"45000.10"``; a JSON number is refused, to avoid float
  rounding), plain notation only (no exponent, NaN or Infinity): quantities and weights > 0
  with at most 15 integer digits and 3 decimals; amounts >= 0 (free samples may have no
  price) with at most 16 integer digits and 2 decimals; both are normalised to that scale;
- 1-999 items, 0-50 documents (``documents`` may be omitted), 1-500 containers;
- ``vessel_imo`` is required for mode SEA and must be absent otherwise; ``voyage`` (the
  voyage, or the train's number) is required for SEA and RAIL;
  containers follow the cargo, not the mode: allowed for every mode, refused for bulk cargo
  (a bulk package kind); net weight at most the gross weight;
- ``second_quantity`` and ``second_unit`` go together; ``record_number`` is required exactly
  when the trade mode needs one; freight and insurance as the terms require
  (:func:`singlewindow.valuation.needs`); a price influenced by a relationship needs the
  relationship; every licence an item names is an ``IMPORT_LICENSE`` document of the body,
  the certificate of an origin claim a ``CERTIFICATE_OF_ORIGIN`` one; a computed customs
  value fits an amount (16 integer digits);
- unknown fields are refused everywhere.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from services.intake.errors import Problem, field_errors
from singlewindow import events as ev
from singlewindow import identifiers as ids
from singlewindow.valuation import Computed, customs_values
from singlewindow.valuation import problems as valuation_problems


class DeclarationState(StrEnum):
    SUBMITTED = "SUBMITTED"
    IN_REVIEW = "IN_REVIEW"
    RELEASED = "RELEASED"
    INSPECTION_REQUIRED = "INSPECTION_REQUIRED"
    HELD = "HELD"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    WITHDRAWN = "WITHDRAWN"
    SANCTIONED = "SANCTIONED"
    REMEDIATION_REQUIRED = "REMEDIATION_REQUIRED"
    CONDITIONALLY_RELEASED = "CONDITIONALLY_RELEASED"
    RECALLED = "RECALLED"
    SUPPLEMENTARY_PAYMENT_DUE = "SUPPLEMENTARY_PAYMENT_DUE"
    AMENDMENT_REFUSED = "AMENDMENT_REFUSED"


# the statuses that answer a long-poll that names no status seen: the first answer and every
# later step (each one the trader reads, most of them one the trader acts on)
ANSWERED: frozenset[str] = frozenset(DeclarationState) - {"SUBMITTED", "IN_REVIEW"}
FINAL_STATUSES = ANSWERED  # the name before versions: "answered", not "the life is over"
# where a versioned declaration's life ends: no amendment, documents or withdrawal after it
CLOSED: frozenset[str] = frozenset(str(s) for s in ev.FINAL_STATUSES)
# where the goods are out but the life goes on (a conditional release, a supplementary
# notice due): no change either
RELEASED: frozenset[str] = frozenset(str(s) for s in ev.RELEASED_STATUSES) - CLOSED
# where an amendment is a change after release, which customs must approve (放行后修改)
REOPENABLE: frozenset[str] = frozenset(str(s) for s in ev.REOPENABLE)
# after an inspection order (one inspection): no new version (amendment, documents), nor a
# withdrawal while it is unfinished (these, and TIMED_OUT after the order: its escalation)
INSPECTED: frozenset[str] = frozenset(
    {str(ev.ClearanceStatus.INSPECTION_REQUIRED), str(ev.ClearanceStatus.REMEDIATION_REQUIRED)}
)
_MODES: frozenset[str] = frozenset(ev.TransportMode)
_NUMBERED = frozenset({ev.TransportMode.SEA, ev.TransportMode.RAIL})  # voyage or train number
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # controls, lone surrogates
_PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]{1,40}(\.[0-9]{1,40})?")


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if _BAD_CHARS.search(value):
        raise ValueError("must not contain control characters or lone surrogates")
    return value


def _identifier(check: Callable[[str], None]) -> AfterValidator:
    def validate(value: str) -> str:
        check(value)  # InvalidIdentifier is a ValueError: pydantic reports its message
        return value

    return AfterValidator(validate)


def _decimal_string(value: object) -> object:
    if isinstance(value, str):
        if _PLAIN_DECIMAL.fullmatch(value):
            return value
        raise ValueError('must be a plain decimal such as "45000.10" (no exponent, NaN, Infinity)')
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        raise ValueError(
            'must be a JSON string such as "45000.10", not a JSON number (floats round)'
        )
    raise ValueError('must be a JSON string holding a decimal, such as "45000.10"')


def _scale(places: int) -> AfterValidator:
    exponent = Decimal(1).scaleb(-places)
    return AfterValidator(lambda value: value.quantize(exponent) + 0)  # + 0 turns -0 into 0


Name = Annotated[StrictStr, Field(min_length=1, max_length=200), AfterValidator(_text)]
Elements = Annotated[StrictStr, Field(min_length=1, max_length=255), AfterValidator(_text)]
Description = Annotated[StrictStr, Field(min_length=1, max_length=500), AfterValidator(_text)]
Reference = Annotated[StrictStr, Field(min_length=1, max_length=64), AfterValidator(_text)]
BillOfLading = Annotated[StrictStr, Field(min_length=1, max_length=35), AfterValidator(_text)]
Voyage = Annotated[StrictStr, Field(min_length=1, max_length=17), AfterValidator(_text)]
Unit = Annotated[StrictStr, _identifier(ids.validate_unit)]
Uscc = Annotated[StrictStr, _identifier(ids.validate_uscc)]
CustomsCode = Annotated[StrictStr, _identifier(ids.validate_enterprise_customs_code)]
Incoterm = Annotated[StrictStr, _identifier(ids.validate_incoterm)]
TradeMode = Annotated[StrictStr, _identifier(ids.validate_trade_mode)]
LevyNature = Annotated[StrictStr, _identifier(ids.validate_levy_nature)]
Office = Annotated[StrictStr, _identifier(ids.validate_customs_office)]
RecordNumber = Annotated[StrictStr, _identifier(ids.validate_record_number)]
PackageKind = Annotated[StrictStr, _identifier(ids.validate_package_kind)]
UnNumber = Annotated[StrictStr, _identifier(ids.validate_un_number)]
AgreementCode = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9]{2,16}$")]
Imo = Annotated[StrictStr, _identifier(ids.validate_imo)]
Container = Annotated[StrictStr, _identifier(ids.validate_container_number)]
Locode = Annotated[StrictStr, _identifier(ids.validate_unlocode)]
HsCode = Annotated[StrictStr, _identifier(ids.validate_hs_code)]
Country = Annotated[StrictStr, _identifier(ids.validate_country)]
Currency = Annotated[StrictStr, _identifier(ids.validate_currency)]
Quantity = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    Field(gt=0, max_digits=18, decimal_places=3, allow_inf_nan=False),
    _scale(3),
]
Money = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    Field(ge=0, max_digits=18, decimal_places=2, allow_inf_nan=False),
    _scale(2),
]
Count = Annotated[int, Field(strict=True, ge=1, le=9_999_999)]
MONEY_LIMIT = Decimal("1e16")  # an amount an event carries has at most 16 integer digits


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartyIn(_In):
    """A domestic enterprise: its USCC, its customs registration code, its name."""

    uscc: Uscc
    customs_code: CustomsCode
    name: Name


class OverseasPartyIn(_In):
    name: Name
    country: Country


class ValuationIn(_In):
    """Delivery terms and the costs the customs value is computed from, in ``currency``."""

    incoterm: Incoterm
    currency: Currency
    freight: Money | None = None
    insurance: Money | None = None
    other_costs: Money = Decimal("0.00")
    special_relationship: StrictBool
    price_influenced: StrictBool
    royalties_payable: StrictBool

    def to_event(self) -> ev.Valuation:
        return ev.Valuation(**self.model_dump())


class OriginClaimIn(_In):
    agreement: AgreementCode
    certificate: Reference


class Transport(_In):
    mode: ev.TransportMode
    vessel_imo: Imo | None = None
    voyage: Voyage | None = None
    bill_of_lading: BillOfLading
    port_of_loading: Locode
    port_of_discharge: Locode
    containers: Annotated[list[Container], Field(min_length=1, max_length=500)] | None = None
    gross_weight_kg: Quantity
    net_weight_kg: Quantity
    packages: Count
    package_kind: PackageKind
    trade_country: Country
    departure_country: Country
    entry_customs: Office
    entry_port: Locode

    @model_validator(mode="wrap")
    @classmethod
    def _sea_only_fields(
        cls, data: Any, handler: ModelWrapValidatorHandler[Transport]
    ) -> Transport:
        """Vessel: SEA only; voyage: SEA and RAIL; containers: refused for bulk
        cargo; net weight at most gross (every field named)."""
        extra: list[InitErrorDetails] = []
        if isinstance(data, dict):
            extra = _transport_problems(data)
        try:
            transport = handler(data)
        except ValidationError as exc:
            if not extra:
                raise
            kept = [_again(e) for e in exc.errors()]
            raise ValidationError.from_exception_data(exc.title, [*kept, *extra]) from None
        if extra:
            raise ValidationError.from_exception_data(cls.__name__, extra)
        return transport


def _transport_problems(data: dict[str, Any]) -> list[InitErrorDetails]:
    found: list[InitErrorDetails] = []
    mode = data.get("mode")
    if isinstance(mode, str) and mode in _MODES:
        sea = mode == ev.TransportMode.SEA
        if sea == (data.get("vessel_imo") is None):
            why = "required when mode is SEA" if sea else "allowed only when mode is SEA"
            found.append(_custom_error("vessel_imo", why, data.get("vessel_imo")))
        if mode in _NUMBERED and data.get("voyage") is None:
            why = "required when mode is SEA (the voyage) or RAIL (the train's number)"
            found.append(_custom_error("voyage", why, None))
    kind = data.get("package_kind")
    if _is_bulk(kind) and data.get("containers") is not None:
        why = f"bulk cargo (package kind {kind}) travels in no container"
        found.append(_custom_error("containers", why, data.get("containers")))
    gross, net = (
        _decimal_or_none(data.get("gross_weight_kg")),
        _decimal_or_none(data.get("net_weight_kg")),
    )
    if gross is not None and net is not None and net > gross:
        found.append(_custom_error("net_weight_kg", "must not exceed the gross weight", str(net)))
    return found


def _is_bulk(kind: object) -> bool:
    try:
        return isinstance(kind, str) and ids.is_bulk(kind)
    except ValueError:
        return False  # not a package kind: the field's own check names it


def _decimal_or_none(value: object) -> Decimal | None:
    return Decimal(value) if isinstance(value, str) and _PLAIN_DECIMAL.fullmatch(value) else None


def _again(error: ErrorDetails) -> InitErrorDetails:
    return InitErrorDetails(
        type=error["type"], loc=error["loc"], input=error["input"], ctx=error.get("ctx", {})
    )


def _custom_error(field: str, message: str, value: object) -> InitErrorDetails:
    error = PydanticCustomError("transport", message)
    return InitErrorDetails(type=error, loc=(field,), input=value)


def _custom_error_at(loc: tuple[str | int, ...], message: str) -> InitErrorDetails:
    error = PydanticCustomError("inconsistent", message)
    return InitErrorDetails(type=error, loc=loc, input=None)


class Item(_In):
    """A goods item: its quantity in the tariff's first statutory unit (and second, when the
    tariff names one), its price on the invoice in the valuation currency."""

    hs_code: HsCode
    description: Description
    declaration_elements: Elements
    origin_country: Country
    quantity: Quantity
    unit: Unit
    second_quantity: Quantity | None = None
    second_unit: Unit | None = None
    invoice_price: Money
    origin_claim: OriginClaimIn | None = None
    manufacturer_registration: Reference | None = None
    un_number: UnNumber | None = None
    licences: list[Reference] = Field(default_factory=list, max_length=10)


class DocumentIn(_In):
    type: ev.DocumentType
    reference: Reference


class DeclarationRequest(_In):
    """The body of ``POST /v1/declarations``."""

    declaration_type: ev.DeclarationType
    trade_mode: TradeMode
    levy_nature: LevyNature
    record_number: RecordNumber | None = None
    declaration_office: Office
    declarant: PartyIn
    domestic_party: PartyIn
    overseas_party: OverseasPartyIn
    valuation: ValuationIn
    transport: Transport
    items: list[Item] = Field(min_length=1, max_length=999)
    documents: list[DocumentIn] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _consistent(self) -> DeclarationRequest:
        """What no single field shows: each problem named by its field."""
        found = [_custom_error_at(loc, why) for loc, why in self.problems()]
        if found:
            raise ValidationError.from_exception_data(type(self).__name__, found)
        return self

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Fields that contradict others (empty when consistent)."""
        found: list[tuple[tuple[str | int, ...], str]] = []
        needs_record = ids.trade_mode_needs_record(self.trade_mode)
        if needs_record and self.record_number is None:
            found.append((("record_number",), f"required for trade mode {self.trade_mode}"))
        if not needs_record and self.record_number is not None:
            found.append((("record_number",), f"trade mode {self.trade_mode} takes none"))
        valuation = self.valuation.to_event()
        for name, why in valuation_problems(self.declaration_type, valuation):
            found.append((("valuation", name), why))
        if self.valuation.price_influenced and not self.valuation.special_relationship:
            found.append((("valuation", "price_influenced"), "needs special_relationship"))
        licences = {d.reference for d in self.documents if d.type is ev.DocumentType.IMPORT_LICENSE}
        for n, item in enumerate(self.items):
            if (item.second_quantity is None) != (item.second_unit is None):
                found.append((("items", n, "second_unit"), "goes with second_quantity"))
            for k, reference in enumerate(item.licences):
                if reference not in licences:
                    why = f"names no {ev.DocumentType.IMPORT_LICENSE} document of this declaration"
                    found.append((("items", n, "licences", k), why))
        origins = {
            d.reference for d in self.documents if d.type is ev.DocumentType.CERTIFICATE_OF_ORIGIN
        }
        for n, item in enumerate(self.items):
            if item.origin_claim is not None and item.origin_claim.certificate not in origins:
                why = (
                    f"names no {ev.DocumentType.CERTIFICATE_OF_ORIGIN} document of this declaration"
                )
                found.append((("items", n, "origin_claim", "certificate"), why))
        if not found:
            try:
                values = self.customs_values().item_values
            except ValueError as exc:
                return [(("valuation",), str(exc))]
            for n, value in enumerate(values):
                if value >= MONEY_LIMIT:
                    why = "the customs value computed from it would exceed 9999999999999999.99"
                    found.append((("items", n, "invoice_price"), why))
        return found

    def customs_values(self) -> Computed:
        """The items' customs values (:func:`singlewindow.valuation.customs_values`)."""
        return customs_values(
            self.declaration_type, self.valuation.to_event(), [i.invoice_price for i in self.items]
        )

    def body_hash(self) -> str:
        """SHA-256 of the canonical JSON of the validated body (for idempotency keys)."""
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_event(
        self,
        *,
        declaration_id: str,
        event_id: str,
        submitted_at: datetime,
        agencies: tuple[str, ...],
        routing_version: str,
        version: int = 1,
    ) -> ev.DeclarationSubmitted:
        t = self.transport
        values = self.customs_values().item_values
        currency = self.valuation.currency
        return ev.DeclarationSubmitted(
            event_id=event_id,
            declaration_id=declaration_id,
            submitted_at=submitted_at,
            declaration_type=self.declaration_type,
            declarant=ev.Party(**self.declarant.model_dump()),
            consignment=ev.Consignment(
                **t.model_dump(exclude={"containers"}), containers=tuple(t.containers or ())
            ),
            items=tuple(
                ev.GoodsItem(
                    line=n,
                    customs_value=value,
                    currency=currency,
                    **item.model_dump(exclude={"origin_claim", "licences"}),
                    origin_claim=item.origin_claim
                    and ev.OriginClaim(**item.origin_claim.model_dump()),
                    licences=tuple(item.licences),
                )
                for n, (item, value) in enumerate(zip(self.items, values, strict=True), 1)
            ),
            documents=tuple(ev.Document(**d.model_dump()) for d in self.documents),
            required_agencies=agencies,
            routing_version=routing_version,
            trade_mode=self.trade_mode,
            levy_nature=self.levy_nature,
            record_number=self.record_number,
            declaration_office=self.declaration_office,
            domestic_party=ev.Party(**self.domestic_party.model_dump()),
            overseas_party=ev.OverseasParty(**self.overseas_party.model_dump()),
            valuation=self.valuation.to_event(),
            version=version,
        )


_M = TypeVar("_M", bound=BaseModel)


class DocumentsRequest(_In):
    """The body of ``POST /v1/declarations/{id}/documents``: what a HOLD asked for."""

    documents: list[DocumentIn] = Field(min_length=1, max_length=50)


class WithdrawalRequest(_In):
    """The body of ``POST /v1/declarations/{id}/withdrawal``."""

    reason: Annotated[StrictStr, Field(min_length=1, max_length=1000), AfterValidator(_text)]

    def body_hash(self) -> str:
        return hashlib.sha256(self.reason.encode("utf-8", "surrogatepass")).hexdigest()


def parse_body(model: type[_M], data: object, what: str) -> _M:
    """Validate a parsed JSON body with ``model``; a Problem 422 names every bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_url=False, include_input=False))
        detail = f"the {what} has {len(errors)} invalid field(s)"
        raise Problem(422, detail, kind=f"invalid-{what}", errors=errors) from None


class Accepted(BaseModel):
    declaration_id: str
    status: DeclarationState = DeclarationState.SUBMITTED


class _Out(BaseModel):
    """A response body: exactly the fields declared (``traderview`` builds them)."""

    model_config = ConfigDict(extra="forbid")


class ReasonOut(_Out):
    code: str = Field(description="trader-facing reason code (services.intake.traderview)")
    message: str = Field(description="what the reason means for the trader, what to do")
    item: int | None = Field(None, description="the goods item line, if the reason is about one")


class TaxOut(_Out):
    """One tax on one item (CNY, exact): its kind, why this rate, its base and rate, the
    amount (see the README's "How customs assesses an import")."""

    kind: ev.TaxKind
    basis: str
    base: str
    rate: str | None = None
    amount_per_unit: str | None = None
    unit: str | None = None
    quantity: str | None = None
    amount: str


class DutyOut(_Out):
    item: int
    customs_value_cny: str
    duty_rate: str
    duty: str
    vat_rate: str
    vat: str
    taxes: list[TaxOut] = []


class TaxTotalOut(_Out):
    """One kind of tax over the declaration: assessed, and collected (0.00 if 50 CNY or less)."""

    kind: ev.TaxKind
    assessed: str
    collected: str


class ChargeOut(_Out):
    """A fee or charge an agency levies (CNY, exact)."""

    code: str
    description: str
    amount: str
    item: int | None = None


class VerdictOut(_Out):
    """One agency's decision as the trader sees it."""

    agency: str
    decision: ev.Decision
    reasons: list[ReasonOut] = []
    duties: list[DutyOut] = []
    tax_totals: list[TaxTotalOut] = []
    total_duties: str | None = None
    security: str | None = Field(
        None,
        description="customs: the bank guarantee that releases the goods pending a price "
        "consultation (价格磋商), CNY; null when none is offered",
    )
    charges: list[ChargeOut] = []
    decided_at: str | None = None


class AgencyDecisionOut(_Out):
    agency: str
    decision: ev.Decision
    charges: list[ChargeOut] = []


class InspectionCheckOut(_Out):
    agency: str
    check: str
    item: int | None = None


class InspectionOut(_Out):
    order_id: str
    checks: list[InspectionCheckOut] = []


class ResultOut(_Out):
    """The consolidated answer of every agency asked."""

    status: DeclarationState
    decisions: list[AgencyDecisionOut] = []
    missing_agencies: list[str] = []
    inspection: InspectionOut | None = None
    total_duties: str | None = None
    total_charges: str = "0.00"
    decided_at: str | None = None
    refund: str | None = Field(
        None, description="duties to refund (退税) after a change customs approved after release"
    )
    valuation_pending: bool = Field(
        False,
        description="released under guarantee while customs determines the goods' value "
        "(价格磋商): lodge the value agreed as a change (PUT)",
    )


class StepOut(_Out):
    """One step of a versioned declaration's life (one result of the aggregator)."""

    sequence: int
    version: int | None = None
    status: DeclarationState
    decided_at: str | None = None


class PaymentNoticeOut(_Out):
    """The tax payment notice (税款缴款书) to pay at the bank (CNY, exact)."""

    notice_id: str
    issued_at: str | None = None
    due_by: str
    taxes: list[TaxTotalOut] = []
    amount: str
    outstanding: str


class GuaranteeDrawOut(_Out):
    """The general guarantee (总担保) a release was drawn on, and the draw's repayment."""

    guarantee_id: str
    drawn_at: str
    repay_by: str = Field(
        description="the day the duties drawn are due in the consolidated payment (汇总征税): "
        "the fifth working day of the month after the draw's"
    )
    repaid_at: str | None = Field(None, description="when the bank confirmed the repayment")
    late_interest: str | None = Field(None, description="paid with the repayment, CNY")


class SettlementOut(_Out):
    """How the notice was settled: paid (with late interest, if any) or guaranteed (a bank
    guarantee, or a draw on a general guarantee, shown in ``guarantee``)."""

    kind: ev.PaymentKind
    paid: str
    days_late: int
    late_interest: str
    guarantee: GuaranteeDrawOut | None = None


class InspectorReasonOut(_Out):
    """What an inspector found, as recorded at the inspection."""

    code: str
    message: str
    item: int | None = None


class FindingOut(_Out):
    """One agency's finding at the joint inspection (the inspector is not named)."""

    agency: str
    outcome: ev.FindingOutcome
    measure: ev.Measure | None = None
    reasons: list[InspectorReasonOut] = []
    samples: list[str] = Field([], description="the samples sent to the laboratory")
    lab_result: bool = Field(False, description="the laboratory's result on those samples")
    recorded_at: str | None = None


class SanctionOut(_Out):
    """The measure the latest step imposes after the inspection: the most severe
    non-compliance found, the agency whose finding it is, and why."""

    measure: ev.Measure
    agency: str
    reasons: list[InspectorReasonOut] = []


class GateOutOut(_Out):
    """Goods out of the port through its gate under the release (the officer is not named)."""

    gate: str = Field(description="the gate's code")
    vehicle: str = Field(description="the vehicle's plate")
    containers: list[str] = Field([], description="the containers it took out (none: bulk, air)")
    passed_at: str | None = None


class NextStepOut(_Out):
    """What the trader must do now (``code`` for machines, ``message`` for people)."""

    code: str = Field(
        description="PAY, SUPPLY_DOCUMENTS, PRESENT_GOODS, REMEDY, WAIT, NONE (final), AMEND, "
        "or REPAY_GUARANTEE (released against a general guarantee: repay the draw)"
    )
    message: str
    action: str | None = Field(None, description="the request to make, if any")
    agencies: list[str] = []


class DeclarationStatus(_Out):
    """The body of ``GET /v1/declarations/{id}``: the trader's view of the read model."""

    declaration_id: str
    status: DeclarationState
    verdicts: list[VerdictOut] = []
    result: ResultOut | None = None
    version: int | None = Field(None, description="the version shown (None: lodged before)")
    steps: list[StepOut] = []
    payment_notice: PaymentNoticeOut | None = None
    settlement: SettlementOut | None = None
    inspection: InspectionOut | None = Field(
        None, description="the joint inspection order of the version shown, if one was issued"
    )
    findings: list[FindingOut] = Field([], description="the findings against it, as recorded")
    sanction: SanctionOut | None = None
    gate_outs: list[GateOutOut] = Field(
        [], description="the goods' gate-outs at the port's gate (卡口), in the order passed"
    )
    next_step: NextStepOut | None = None


def parse_declaration(data: object) -> DeclarationRequest:
    """Validate a parsed JSON body; a Problem 422 names every bad field."""
    return parse_body(DeclarationRequest, data, "declaration")
