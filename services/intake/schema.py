"""Request and response models of the intake API, and the validation of a declaration.

Limits (a value outside them is a 422 naming the field):

- strings: no control characters, not blank; ``declarant.name`` <= 200, ``items[].description``
  <= 500, ``documents[].reference`` <= 64, ``transport.bill_of_lading`` <= 35 (UN/EDIFACT
  an..35), ``transport.voyage`` <= 17, ``items[].unit`` 1-3 upper-case letters or digits
  (UN/ECE Recommendation 20 style, e.g. ``KG``, ``KGM``, ``PCE``);
- identifiers checked with ``singlewindow.identifiers`` (USCC, IMO, ISO 6346 containers,
  UN/LOCODE, 10-digit HS code, ISO 3166-1 alpha-2 country, ISO 4217 currency);
- decimals travel as JSON *strings* (``"45000.10"``; a JSON number is refused, to avoid float
  rounding), plain notation only (no exponent, NaN or Infinity): ``quantity`` > 0 with at most
  15 integer digits and 3 decimals; ``customs_value`` >= 0 (free samples may have no value)
  with at most 16 integer digits and 2 decimals; both are normalised to that scale;
- 1-999 items, 0-50 documents (``documents`` may be omitted), 1-500 containers;
- ``vessel_imo``, ``voyage`` and ``containers`` are required for mode SEA and must be absent
  (or null) otherwise; unknown fields are refused everywhere.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from services.intake.errors import Problem, field_errors
from singlewindow import events as ev
from singlewindow import identifiers as ids


class DeclarationState(StrEnum):
    SUBMITTED = "SUBMITTED"
    IN_REVIEW = "IN_REVIEW"
    RELEASED = "RELEASED"
    INSPECTION_REQUIRED = "INSPECTION_REQUIRED"
    HELD = "HELD"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"


FINAL_STATUSES: frozenset[str] = frozenset(DeclarationState) - {"SUBMITTED", "IN_REVIEW"}
_MODES: frozenset[str] = frozenset(ev.TransportMode)
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
Description = Annotated[StrictStr, Field(min_length=1, max_length=500), AfterValidator(_text)]
Reference = Annotated[StrictStr, Field(min_length=1, max_length=64), AfterValidator(_text)]
BillOfLading = Annotated[StrictStr, Field(min_length=1, max_length=35), AfterValidator(_text)]
Voyage = Annotated[StrictStr, Field(min_length=1, max_length=17), AfterValidator(_text)]
Unit = Annotated[StrictStr, Field(pattern=r"^[A-Z0-9]{1,3}$")]
Uscc = Annotated[StrictStr, _identifier(ids.validate_uscc)]
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


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Declarant(_In):
    uscc: Uscc
    name: Name


class Transport(_In):
    mode: ev.TransportMode
    vessel_imo: Imo | None = None
    voyage: Voyage | None = None
    bill_of_lading: BillOfLading
    port_of_loading: Locode
    port_of_discharge: Locode
    containers: Annotated[list[Container], Field(min_length=1, max_length=500)] | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _sea_only_fields(
        cls, data: Any, handler: ModelWrapValidatorHandler[Transport]
    ) -> Transport:
        """Vessel, voyage and containers: required for SEA, absent otherwise (every field named)."""
        extra: list[InitErrorDetails] = []
        mode = data.get("mode") if isinstance(data, dict) else None
        if isinstance(mode, str) and mode in _MODES:
            sea = mode == ev.TransportMode.SEA
            for name in ("vessel_imo", "voyage", "containers"):
                if sea == (data.get(name) is None):
                    why = "required when mode is SEA" if sea else "allowed only when mode is SEA"
                    extra.append(_custom_error(name, why, data.get(name)))
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


def _again(error: ErrorDetails) -> InitErrorDetails:
    return InitErrorDetails(
        type=error["type"], loc=error["loc"], input=error["input"], ctx=error.get("ctx", {})
    )


def _custom_error(field: str, message: str, value: object) -> InitErrorDetails:
    error = PydanticCustomError("transport_mode", message)
    return InitErrorDetails(type=error, loc=(field,), input=value)


class Item(_In):
    hs_code: HsCode
    description: Description
    origin_country: Country
    quantity: Quantity
    unit: Unit
    customs_value: Money
    currency: Currency


class DocumentIn(_In):
    type: ev.DocumentType
    reference: Reference


class DeclarationRequest(_In):
    """The body of ``POST /v1/declarations``."""

    declaration_type: ev.DeclarationType
    declarant: Declarant
    transport: Transport
    items: list[Item] = Field(min_length=1, max_length=999)
    documents: list[DocumentIn] = Field(default_factory=list, max_length=50)

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
    ) -> ev.DeclarationSubmitted:
        t = self.transport
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
                ev.GoodsItem(line=n, **item.model_dump()) for n, item in enumerate(self.items, 1)
            ),
            documents=tuple(ev.Document(**d.model_dump()) for d in self.documents),
            required_agencies=agencies,
            routing_version=routing_version,
        )


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


class DutyOut(_Out):
    item: int
    customs_value_cny: str
    duty_rate: str
    duty: str
    vat_rate: str
    vat: str


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
    total_duties: str | None = None
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


class DeclarationStatus(_Out):
    """The body of ``GET /v1/declarations/{id}``: the trader's view of the read model."""

    declaration_id: str
    status: DeclarationState
    verdicts: list[VerdictOut] = []
    result: ResultOut | None = None


def parse_declaration(data: object) -> DeclarationRequest:
    """Validate a parsed JSON body; a Problem 422 names every bad field."""
    try:
        return DeclarationRequest.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_url=False, include_input=False))
        detail = f"the declaration has {len(errors)} invalid field(s)"
        raise Problem(422, detail, kind="invalid-declaration", errors=errors) from None
