"""Pydantic models of the events: the only way code builds them. They mirror ``schemas/avro/``.

Money is an exact ``Decimal`` with a fixed scale; instants are UTC, millisecond precision
(as ``timestamp-millis`` carries them). A test checks every model against its Avro schema.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from singlewindow.avro import codec
from singlewindow.identifiers import validate_container_number

NS = "cn.singlewindow.events"


# Every instant of the platform lies in this range: a timestamp outside it (9999-12-31 from
# a hostile producer, 1970 from a broken clock) is invalid at every door, and arithmetic on
# valid ones (a deadline years ahead) can never overflow.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _utc_millis(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a time must carry its time zone")
    value = value.astimezone(UTC)
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"{value.isoformat()} is outside {EARLIEST.year}-{LATEST.year - 1}")
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _scaled(places: int) -> AfterValidator:
    exponent = Decimal(1).scaleb(-places)
    return AfterValidator(lambda value: value.quantize(exponent))


UtcMillis = Annotated[datetime, AfterValidator(_utc_millis)]
Money = Annotated[Decimal, Field(max_digits=18, decimal_places=2, allow_inf_nan=False), _scaled(2)]
Quantity = Annotated[
    Decimal, Field(max_digits=18, decimal_places=3, allow_inf_nan=False), _scaled(3)
]
Rate = Annotated[
    Decimal, Field(max_digits=9, decimal_places=4, ge=0, allow_inf_nan=False), _scaled(4)
]
PerUnit = Annotated[
    Decimal, Field(max_digits=18, decimal_places=4, ge=0, allow_inf_nan=False), _scaled(4)
]


class DeclarationType(StrEnum):
    IMPORT = "IMPORT"
    EXPORT = "EXPORT"


class TransportMode(StrEnum):
    SEA = "SEA"
    AIR = "AIR"
    RAIL = "RAIL"
    ROAD = "ROAD"


class DocumentType(StrEnum):
    COMMERCIAL_INVOICE = "COMMERCIAL_INVOICE"
    PACKING_LIST = "PACKING_LIST"
    BILL_OF_LADING = "BILL_OF_LADING"
    CERTIFICATE_OF_ORIGIN = "CERTIFICATE_OF_ORIGIN"
    HEALTH_CERTIFICATE = "HEALTH_CERTIFICATE"
    PHYTOSANITARY_CERTIFICATE = "PHYTOSANITARY_CERTIFICATE"
    IMPORT_LICENSE = "IMPORT_LICENSE"
    DANGEROUS_GOODS_DECLARATION = "DANGEROUS_GOODS_DECLARATION"


# An agency as events name it: an open code, registered in the agency registry
# (:mod:`singlewindow.registry`), never a closed enum: a new agency needs no schema release.
# Decoding checks the form only, so an event of an agency that has since left still reads;
# the doors (the intake's routing, the aggregator's inputs, the signature check) check that
# the code is registered. On the wire a union ``["string", Agency]``: writers write the
# string; the enum branch only reads what the releases up to 2026-11 wrote.
AGENCY_CODE_PATTERN = r"^[a-z][a-z0-9_]{1,31}$"
# Names of the platform's own services and principals: never an agency's (a verdict "of the
# intake" would otherwise pass the check of the intake's signature).
RESERVED_NAMES = frozenset(
    {
        "intake",
        "aggregator",
        "projector",
        "audit",
        "redrive",
        "admin",
        "bank",
        "inspection",
        "gate",
    }
)


def _an_agency(code: str) -> str:
    if code in RESERVED_NAMES:
        raise ValueError(f"{code!r} names one of the platform's own services, not an agency")
    return code


AgencyCode = Annotated[
    str, StringConstraints(pattern=AGENCY_CODE_PATTERN), AfterValidator(_an_agency)
]
# At most this many agencies rule on one declaration, each assessing below this much: the
# join adds every agency's duties, and the sum must stay a Money (below 10^16).
MAX_AGENCIES = 64
MAX_ASSESSED = Decimal("1e14")


class TaxKind(StrEnum):
    """The taxes customs assesses on an import, in the order they are computed (each enters
    the base of the next: duty and additional duty the consumption tax's, all three VAT's)."""

    DUTY = "DUTY"
    ADDITIONAL_DUTY = "ADDITIONAL_DUTY"
    CONSUMPTION_TAX = "CONSUMPTION_TAX"
    VAT = "VAT"


class Decision(StrEnum):
    CLEAR = "CLEAR"
    INSPECT = "INSPECT"
    HOLD = "HOLD"
    REJECT = "REJECT"


class ClearanceStatus(StrEnum):
    RELEASED = "RELEASED"
    INSPECTION_REQUIRED = "INSPECTION_REQUIRED"
    HELD = "HELD"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    WITHDRAWN = "WITHDRAWN"
    # after the joint inspection (services.aggregator.inspection)
    SANCTIONED = "SANCTIONED"
    REMEDIATION_REQUIRED = "REMEDIATION_REQUIRED"
    CONDITIONALLY_RELEASED = "CONDITIONALLY_RELEASED"
    RECALLED = "RECALLED"
    # a change after release, with customs' approval (services.aggregator.join)
    SUPPLEMENTARY_PAYMENT_DUE = "SUPPLEMENTARY_PAYMENT_DUE"
    AMENDMENT_REFUSED = "AMENDMENT_REFUSED"


# where a declaration's life ends: a state with one of these ignores every later event
FINAL_STATUSES = frozenset(
    {
        ClearanceStatus.RELEASED,
        ClearanceStatus.REJECTED,
        ClearanceStatus.WITHDRAWN,
        ClearanceStatus.SANCTIONED,
        ClearanceStatus.RECALLED,
        ClearanceStatus.AMENDMENT_REFUSED,
    }
)
# where the goods have left customs' control: a trader can no longer amend or withdraw (a
# change after release is a request for customs' approval, not an amendment)
RELEASED_STATUSES = frozenset(
    {
        ClearanceStatus.RELEASED,
        ClearanceStatus.CONDITIONALLY_RELEASED,
        ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE,
        ClearanceStatus.AMENDMENT_REFUSED,
    }
)
# the final statuses a change after release reopens (报关单修改和撤销管理办法): the goods are
# out for good, and customs may still approve a change of the declaration
REOPENABLE = frozenset({ClearanceStatus.RELEASED, ClearanceStatus.AMENDMENT_REFUSED})
Version = Annotated[int, Field(ge=1, le=9999)]


class FindingOutcome(StrEnum):
    """What an agency's inspector found at the joint inspection."""

    COMPLIANT = "COMPLIANT"
    NON_COMPLIANT = "NON_COMPLIANT"
    SAMPLED = "SAMPLED"  # conform on sight; samples sent to the laboratory


class Measure(StrEnum):
    """What a non-compliance calls for, the most severe first (the order is the precedence)."""

    SEIZURE = "SEIZURE"  # 扣留/没收
    DESTRUCTION = "DESTRUCTION"  # 销毁
    RETURN = "RETURN"  # 退运
    RELABELLING = "RELABELLING"  # 监督下整改: re-labelling under supervision, then re-inspected
    PENALTY = "PENALTY"  # 立案调查: a penalty case; the goods wait until it is settled


# the measures that end a declaration's life (the goods never enter)
TERMINAL_MEASURES = frozenset({Measure.SEIZURE, Measure.DESTRUCTION, Measure.RETURN})


class PaymentKind(StrEnum):
    PAYMENT = "PAYMENT"
    BANK_GUARANTEE = "BANK_GUARANTEE"
    GENERAL_GUARANTEE = "GENERAL_GUARANTEE"  # a draw on a general guarantee (总担保)
    CONSOLIDATED_PAYMENT = "CONSOLIDATED_PAYMENT"  # a draw repaid (汇总征税)


# the entries of a general guarantee's ledger: a draw, and its repayment
LEDGER_KINDS = frozenset({PaymentKind.GENERAL_GUARANTEE, PaymentKind.CONSOLIDATED_PAYMENT})


def _lists(value: Any) -> Any:
    """Tuples as lists: fastavro reads a tuple in a union as a (type name, value) pair."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


class AvroRecord(BaseModel):
    """A named Avro record."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str]

    def avro_datum(self) -> Any:
        """The record as fastavro writes it."""
        return _lists(self.model_dump(mode="python"))


class Party(AvroRecord):
    AVRO_NAME = f"{NS}.Party"
    uscc: str
    name: str
    customs_code: str | None = None


class OverseasParty(AvroRecord):
    AVRO_NAME = f"{NS}.OverseasParty"
    name: str
    country: str


class Valuation(AvroRecord):
    """What the customs values are computed from (see :mod:`singlewindow.valuation`)."""

    AVRO_NAME = f"{NS}.Valuation"
    incoterm: str
    currency: str
    freight: Money | None = None
    insurance: Money | None = None
    other_costs: Money = Decimal("0.00")
    special_relationship: bool = False
    price_influenced: bool = False
    royalties_payable: bool = False


class OriginClaim(AvroRecord):
    AVRO_NAME = f"{NS}.OriginClaim"
    agreement: str
    certificate: str


class Consignment(AvroRecord):
    AVRO_NAME = f"{NS}.Consignment"
    mode: TransportMode
    vessel_imo: str | None = None
    voyage: str | None = None
    bill_of_lading: str
    port_of_loading: str
    port_of_discharge: str
    containers: tuple[str, ...] = ()
    gross_weight_kg: Quantity | None = None
    net_weight_kg: Quantity | None = None
    packages: int | None = Field(None, ge=1)
    package_kind: str | None = None
    trade_country: str | None = None
    departure_country: str | None = None
    entry_customs: str | None = None
    entry_port: str | None = None


class GoodsItem(AvroRecord):
    AVRO_NAME = f"{NS}.GoodsItem"
    line: int = Field(ge=1)
    hs_code: str
    description: str
    origin_country: str
    quantity: Quantity
    unit: str
    customs_value: Money
    currency: str
    invoice_price: Money | None = None
    second_quantity: Quantity | None = None
    second_unit: str | None = None
    declaration_elements: str | None = None
    origin_claim: OriginClaim | None = None
    manufacturer_registration: str | None = None
    un_number: str | None = None
    licences: tuple[str, ...] = ()


class Document(AvroRecord):
    AVRO_NAME = f"{NS}.Document"
    type: DocumentType
    reference: str


class Reason(AvroRecord):
    AVRO_NAME = f"{NS}.Reason"
    code: str
    message: str
    item: int | None = None


class InspectionCheck(AvroRecord):
    AVRO_NAME = f"{NS}.InspectionCheck"
    agency: AgencyCode
    check: str
    item: int | None = None


class Charge(AvroRecord):
    """A fee or charge an agency levies on a declaration (an inspection fee, port dues), in
    CNY; the consolidated result carries every agency's, per agency."""

    AVRO_NAME = f"{NS}.Charge"
    code: str = Field(min_length=1, max_length=64)
    description: str = Field(max_length=512)
    amount: Money = Field(ge=0, lt=MAX_ASSESSED)
    item: int | None = None


class TaxLine(AvroRecord):
    """One tax on one goods item: its base, its rate (ad valorem, specific or both), the
    amount (see :mod:`services.customs.duties`)."""

    AVRO_NAME = f"{NS}.TaxLine"
    kind: TaxKind
    basis: str
    base: Money
    rate: Rate | None = None
    amount_per_unit: PerUnit | None = None
    unit: str | None = None
    quantity: Quantity | None = None
    amount: Annotated[Money, Field(ge=0)]


class DutyLine(AvroRecord):
    """The taxes on one goods item. ``duty_rate``/``duty`` and ``vat_rate``/``vat`` are the
    customs duty's ad valorem part and amount and the VAT, as before 2026-12; ``taxes`` has
    every tax line by line."""

    AVRO_NAME = f"{NS}.DutyLine"
    item: int
    customs_value_cny: Money
    duty_rate: Rate
    duty: Money
    vat_rate: Rate
    vat: Money
    taxes: tuple[TaxLine, ...] = ()


class TaxTotal(AvroRecord):
    AVRO_NAME = f"{NS}.TaxTotal"
    kind: TaxKind
    assessed: Money
    collected: Money


class AgencyDecision(AvroRecord):
    AVRO_NAME = f"{NS}.AgencyDecision"
    agency: AgencyCode
    decision: Decision
    verdict_id: str
    charges: tuple[Charge, ...] = ()

    @property
    def total_charges(self) -> Decimal:
        return sum((c.amount for c in self.charges), Decimal("0.00"))


class InspectionOrder(AvroRecord):
    AVRO_NAME = f"{NS}.InspectionOrder"
    order_id: str
    checks: tuple[InspectionCheck, ...]


# the id of a security notice (a price consultation's, services.aggregator.payment) starts so:
# the bank, which does not know notices, takes only a bank guarantee on it
SECURITY_NOTICE_PREFIX = "SEC-"


class PaymentNotice(AvroRecord):
    """A tax payment notice (税款缴款书) on one declaration version (see
    :mod:`services.aggregator.payment`)."""

    AVRO_NAME = f"{NS}.PaymentNotice"
    notice_id: str
    issued_at: UtcMillis
    due_by: date
    taxes: tuple[TaxTotal, ...]
    amount: Annotated[Money, Field(ge=0)]
    outstanding: Annotated[Money, Field(ge=0)]


class Settlement(AvroRecord):
    AVRO_NAME = f"{NS}.Settlement"
    kind: PaymentKind
    payment_ids: tuple[str, ...]
    paid: Annotated[Money, Field(ge=0)]
    days_late: int = Field(ge=0)
    late_interest: Annotated[Money, Field(ge=0)]


class Sanction(AvroRecord):
    """The measure a step imposes after the joint inspection: the most severe of the
    non-compliant findings, the agency whose finding it is, that finding and its reasons."""

    AVRO_NAME = f"{NS}.Sanction"
    measure: Measure
    agency: AgencyCode
    finding_id: str
    reasons: tuple[Reason, ...] = ()


class Signature(AvroRecord):
    """Who vouches for an event (see :mod:`singlewindow.signing`): the key's id in the key
    registry, when it signed, and the Ed25519 signature over the event's canonical form."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64"
    )
    AVRO_NAME = f"{NS}.Signature"
    key_id: str = Field(min_length=1, max_length=128)
    signed_at: UtcMillis
    value: bytes = Field(max_length=512)


class Event(AvroRecord):
    """A top-level event: what travels on a topic, keyed by ``declaration_id``. Its last
    field is the signature of the service that wrote it (:mod:`singlewindow.signing`)."""

    declaration_id: str = Field(min_length=1, max_length=64)
    signature: Signature | None = None

    def unsigned(self) -> Self:
        """The same event without its signature (what the pure domain code computes)."""
        return self if self.signature is None else self.model_copy(update={"signature": None})

    def to_avro(self) -> bytes:
        return codec.encode(self.AVRO_NAME, self.avro_datum())

    @classmethod
    def from_avro(cls, payload: bytes) -> Self:
        _, record = codec.decode(payload, expected=cls.AVRO_NAME)
        return cls.model_validate(record)

    def key(self) -> bytes:
        return self.declaration_id.encode()


class DeclarationSubmitted(Event):
    AVRO_NAME = f"{NS}.DeclarationSubmitted"
    event_id: str
    submitted_at: UtcMillis
    declaration_type: DeclarationType
    declarant: Party
    consignment: Consignment
    items: tuple[GoodsItem, ...] = Field(min_length=1)
    documents: tuple[Document, ...]
    required_agencies: tuple[AgencyCode, ...] = Field(max_length=MAX_AGENCIES)
    routing_version: str
    trade_mode: str | None = None
    levy_nature: str | None = None
    record_number: str | None = None
    declaration_office: str | None = None
    domestic_party: Party | None = None
    overseas_party: OverseasParty | None = None
    valuation: Valuation | None = None
    version: Version | None = None
    after_release: bool = False

    @property
    def owner(self) -> Party:
        """Whose goods these are: the domestic party, or (before 2026-12) the declarant."""
        return self.domestic_party or self.declarant


class AgencyVerdict(Event):
    AVRO_NAME = f"{NS}.AgencyVerdict"
    verdict_id: str
    agency: AgencyCode
    decision: Decision
    reasons: tuple[Reason, ...]
    checks: tuple[InspectionCheck, ...] = ()
    duties: tuple[DutyLine, ...] = ()
    total_duties: Annotated[Money, Field(lt=MAX_ASSESSED)]
    rules_version: str
    decided_at: UtcMillis
    sampling_key_version: str | None = None
    charges: tuple[Charge, ...] = Field((), max_length=1000)
    tax_totals: tuple[TaxTotal, ...] = ()
    declaration_version: Version | None = None
    # customs: what a guarantee must cover for a release pending its valuation (价格磋商)
    security: Annotated[Money, Field(gt=0, lt=MAX_ASSESSED)] | None = None


class ClearanceResult(Event):
    AVRO_NAME = f"{NS}.ClearanceResult"
    result_id: str
    status: ClearanceStatus
    decisions: tuple[AgencyDecision, ...]
    missing_agencies: tuple[AgencyCode, ...] = ()
    inspection: InspectionOrder | None = None
    total_duties: Money
    decided_at: UtcMillis
    version: Version | None = None
    sequence: int = Field(1, ge=1)
    payment_notice: PaymentNotice | None = None
    settlement: Settlement | None = None
    finding_ids: tuple[str, ...] = ()
    sanction: Sanction | None = None
    refund: Annotated[Money, Field(gt=0)] | None = None
    valuation_pending: bool = False

    @property
    def total_charges(self) -> Decimal:
        """Every agency's fees and charges together (each agency's are in ``decisions``)."""
        return sum((d.total_charges for d in self.decisions), Decimal("0.00"))


class DeclarationWithdrawn(Event):
    """A trader's withdrawal (撤单) before release; written by the intake."""

    AVRO_NAME = f"{NS}.DeclarationWithdrawn"
    event_id: str
    withdrawn_at: UtcMillis
    version: Version
    requested_by: str
    reason: str = Field(max_length=1000)


class PaymentConfirmed(Event):
    """A bank's confirmation of a payment (or guarantee) on a notice; written by the bank."""

    AVRO_NAME = f"{NS}.PaymentConfirmed"
    payment_id: str = Field(min_length=1, max_length=64)
    notice_id: str
    kind: PaymentKind
    amount: Annotated[Money, Field(gt=0, lt=MAX_ASSESSED)]
    paid_at: UtcMillis
    payer: str
    # a general guarantee's ledger entry (GENERAL_GUARANTEE, CONSOLIDATED_PAYMENT): which
    # guarantee, its amount, the entry's number and the balance after it
    guarantee_id: str | None = Field(None, min_length=1, max_length=64)
    guarantee_amount: Annotated[Money, Field(gt=0, lt=MAX_ASSESSED)] | None = None
    ledger_sequence: int | None = Field(None, ge=1)
    balance_after: Annotated[Money, Field(ge=0, lt=MAX_ASSESSED)] | None = None
    late_interest: Annotated[Money, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _ledger_entry(self) -> Self:
        ledger = (self.guarantee_id, self.guarantee_amount, self.ledger_sequence)
        if self.kind in LEDGER_KINDS:
            if None in ledger or self.balance_after is None:
                raise ValueError(f"a {self.kind} names its guarantee and ledger entry")
        elif any(v is not None for v in (*ledger, self.balance_after)):
            raise ValueError(f"a {self.kind} is no guarantee's ledger entry")
        if (self.late_interest is None) != (self.kind is not PaymentKind.CONSOLIDATED_PAYMENT):
            raise ValueError("late_interest is a CONSOLIDATED_PAYMENT's, and only its")
        return self


# reasons, and samples, in one finding: the join keeps each agency's latest finding, and its
# state (one Kafka record) must hold an order's worth of them
MAX_FINDING_ENTRIES = 20


class InspectionFinding(Event):
    """One agency's findings at the joint inspection (一次查验), recorded against the one
    inspection order of a declaration version by that agency's inspector; written by the
    inspection station (``services.inspection``). A later finding of the same agency on the
    same order supersedes its earlier one: a laboratory result after SAMPLED, COMPLIANT after
    re-labelling or a settled penalty case."""

    AVRO_NAME = f"{NS}.InspectionFinding"
    finding_id: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=64)
    version: Version
    agency: AgencyCode
    inspector: str = Field(min_length=1, max_length=255)
    outcome: FindingOutcome
    measure: Measure | None = None
    reasons: tuple[Reason, ...] = Field((), max_length=MAX_FINDING_ENTRIES)
    samples: tuple[Annotated[str, StringConstraints(min_length=1, max_length=64)], ...] = Field(
        (), max_length=MAX_FINDING_ENTRIES
    )
    lab_result: bool = False
    recorded_at: UtcMillis

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.outcome is FindingOutcome.NON_COMPLIANT) != (self.measure is not None):
            raise ValueError("a measure is named by, and only by, a NON_COMPLIANT finding")
        if (self.outcome is FindingOutcome.SAMPLED) != bool(self.samples):
            raise ValueError("samples are listed by, and only by, a SAMPLED finding")
        if self.outcome is FindingOutcome.SAMPLED and self.lab_result:
            raise ValueError("a laboratory result is COMPLIANT or NON_COMPLIANT, not SAMPLED")
        return self


def _container(code: str) -> str:
    validate_container_number(code)  # InvalidIdentifier is a ValueError
    return code


ContainerNumber = Annotated[str, AfterValidator(_container)]


class GateOut(Event):
    """The port's gate (卡口) let goods out under a release: a declaration RELEASED or
    CONDITIONALLY_RELEASED on ``clearance.results``, whose result (the release notice, 放行)
    it names; written by the gate system (``services.gate``), confirmed by a gate officer."""

    AVRO_NAME = f"{NS}.GateOut"
    gate_out_id: str = Field(min_length=1, max_length=64)
    result_id: str = Field(min_length=1, max_length=64)
    gate: str = Field(min_length=1, max_length=32)
    vehicle: str = Field(min_length=1, max_length=16)
    containers: tuple[ContainerNumber, ...] = Field((), max_length=500)
    passed_at: UtcMillis
    officer: str = Field(min_length=1, max_length=255)


class JoinState(Event):
    """The aggregator's join state for one declaration (its changelog value)."""

    AVRO_NAME = f"{NS}.JoinState"
    required_agencies: tuple[AgencyCode, ...] | None = None
    submitted_at: UtcMillis | None = None
    deadline: UtcMillis | None = None
    verdicts: tuple[AgencyVerdict, ...] = ()
    decided: ClearanceStatus | None = None
    version: Version | None = None
    sequence: int = Field(0, ge=0)
    last_status: ClearanceStatus | None = None
    assessed: bool = False
    notice: PaymentNotice | None = None
    payments: tuple[PaymentConfirmed, ...] = ()
    withdrawal: DeclarationWithdrawn | None = None
    last_event_at: UtcMillis | None = None
    order: InspectionOrder | None = None
    findings: tuple[InspectionFinding, ...] = ()
    cleared: bool = False
    after_release: bool = False
    levied: tuple[TaxTotal, ...] = ()
    valuation_pending: bool = False

    def verdict_of(self, agency: str) -> AgencyVerdict | None:
        """The agency's verdict on the version being decided."""
        return next(
            (
                v
                for v in self.verdicts
                if v.agency == agency and (v.declaration_version or 1) == (self.version or 1)
            ),
            None,
        )

    @property
    def current(self) -> tuple[AgencyVerdict, ...]:
        """The verdicts on the version being decided."""
        return tuple(
            v for v in self.verdicts if (v.declaration_version or 1) == (self.version or 1)
        )

    @property
    def missing(self) -> tuple[AgencyCode, ...]:
        return tuple(a for a in self.required_agencies or () if self.verdict_of(a) is None)

    @property
    def steps(self) -> int:
        """Results emitted so far (a state written before steps were numbered: 1 if decided)."""
        return self.sequence or (1 if self.decided is not None else 0)


EVENTS: dict[str, type[Event]] = {
    cls.AVRO_NAME: cls
    for cls in (
        DeclarationSubmitted,
        AgencyVerdict,
        ClearanceResult,
        JoinState,
        DeclarationWithdrawn,
        PaymentConfirmed,
        InspectionFinding,
        GateOut,
    )
}
_RECORD_TYPES: tuple[type[AvroRecord], ...] = (
    Party,
    OverseasParty,
    Valuation,
    OriginClaim,
    Consignment,
    GoodsItem,
    Document,
    Reason,
    InspectionCheck,
    Charge,
    TaxLine,
    DutyLine,
    TaxTotal,
    AgencyDecision,
    InspectionOrder,
    PaymentNotice,
    Settlement,
    Sanction,
    Signature,
    *EVENTS.values(),
)
RECORDS: dict[str, type[AvroRecord]] = {cls.AVRO_NAME: cls for cls in _RECORD_TYPES}


def decode_event(payload: bytes) -> Event:
    """Decode any known event (typed CodecError or pydantic ValidationError otherwise)."""
    name, record = codec.decode(payload)
    if name not in EVENTS:
        raise codec.SchemaMismatch(f"{name} is not an event")
    return EVENTS[name].model_validate(record)
