"""Customs reference data: tariff, exchange rates, declarant risk profile, policy parameters.

Read once per version from ``services/customs/reference/<version>/`` (see its README) and
cached; the rules never read files themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import cache, partial
from types import MappingProxyType

from singlewindow.identifiers import validate_currency, validate_hs_code, validate_uscc
from singlewindow.reference import (
    ReferenceDataError,
    ReferenceFolder,
    check,
    parse_date,
    parse_decimal,
    parse_flag,
    reference_folder,
)

RULES_VERSION = "customs-2026.11"
PACKAGE = "services.customs"
RATE_EXPONENT = Decimal("0.0001")  # duty and VAT rates carry 4 decimals (the DutyLine scale)


class RiskLevel(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


@dataclass(frozen=True, slots=True)
class TariffLine:
    hs_code: str
    description: str
    duty_rate: Decimal
    vat_rate: Decimal
    prohibited: bool
    licence_required: bool
    reference_price_cny: Decimal | None  # per ``price_unit``; None: no undervaluation check
    price_unit: str


@dataclass(frozen=True, slots=True)
class DeclarantProfile:
    uscc: str
    name: str
    risk_level: RiskLevel
    assessed_on: date


@dataclass(frozen=True, eq=False)
class ReferenceData:
    """One version of the customs reference data (immutable)."""

    version: str
    tariff: Mapping[str, TariffLine]
    cny_per_unit: Mapping[str, Decimal]  # exchange rate to CNY, CNY itself is 1
    rate_date: date
    declarants: Mapping[str, DeclarantProfile]  # by USCC; an unknown declarant is MEDIUM
    random_inspection_rate: Decimal
    undervaluation_ratio: Decimal

    def risk_of(self, uscc: str) -> RiskLevel:
        profile = self.declarants.get(uscc)
        return RiskLevel.MEDIUM if profile is None else profile.risk_level


def load_reference(version: str = RULES_VERSION) -> ReferenceData:
    """The customs reference data of ``version``, read once and cached."""
    return _load(version)


@cache
def _load(version: str) -> ReferenceData:
    folder = reference_folder(PACKAGE, version)
    rates, rate_date = _exchange_rates(folder)
    parameters = folder.json("parameters.json")
    where = folder.where("parameters.json")
    try:
        sampling = parse_decimal(str(parameters["random_inspection_rate"]), where)
        ratio = parse_decimal(str(parameters["undervaluation_ratio"]), where)
    except (KeyError, TypeError) as exc:
        raise ReferenceDataError(f"{where}: missing parameter {exc}") from None
    for name, value in (("random_inspection_rate", sampling), ("undervaluation_ratio", ratio)):
        if not 0 <= value <= 1:
            raise ReferenceDataError(f"{where}: {name} must lie in [0, 1], got {value}")
    return ReferenceData(
        version=version,
        tariff=MappingProxyType(_tariff(folder)),
        cny_per_unit=MappingProxyType(rates),
        rate_date=rate_date,
        declarants=MappingProxyType(_declarants(folder)),
        random_inspection_rate=sampling,
        undervaluation_ratio=ratio,
    )


def _rate(value: str, where: str) -> Decimal:
    rate = parse_decimal(value, where)
    if not 0 <= rate < 1 or rate != rate.quantize(RATE_EXPONENT):
        raise ReferenceDataError(f"{where}: rate {value!r} must be in [0, 1) with 4 decimals")
    return rate.quantize(RATE_EXPONENT)


def _tariff(folder: ReferenceFolder) -> dict[str, TariffLine]:
    name = "tariff.csv"
    columns = (
        "hs_code",
        "description",
        "duty_rate",
        "vat_rate",
        "prohibited",
        "licence_required",
        "reference_price_cny",
        "price_unit",
    )
    tariff: dict[str, TariffLine] = {}
    for number, row in enumerate(folder.csv(name, columns), start=2):
        where = folder.where(name, number)
        check(where, validate_hs_code, row["hs_code"])
        if row["hs_code"] in tariff:
            raise ReferenceDataError(f"{where}: duplicate HS code {row['hs_code']}")
        price = row["reference_price_cny"]
        reference_price = parse_decimal(price, where) if price else None
        if reference_price is not None and reference_price <= 0:
            raise ReferenceDataError(f"{where}: reference price must be positive")
        tariff[row["hs_code"]] = TariffLine(
            hs_code=row["hs_code"],
            description=row["description"],
            duty_rate=_rate(row["duty_rate"], where),
            vat_rate=_rate(row["vat_rate"], where),
            prohibited=parse_flag(row["prohibited"], where),
            licence_required=parse_flag(row["licence_required"], where),
            reference_price_cny=reference_price,
            price_unit=row["price_unit"],
        )
    return tariff


def _exchange_rates(folder: ReferenceFolder) -> tuple[dict[str, Decimal], date]:
    name = "exchange_rates.json"
    data = folder.json(name)
    where = folder.where(name)
    if not isinstance(data, dict) or not isinstance(data.get("cny_per_unit"), dict):
        raise ReferenceDataError(f"{where}: expected an object with a cny_per_unit object")
    rate_date = parse_date(str(data.get("rate_date")), where)
    table: dict[str, object] = data["cny_per_unit"]
    rates: dict[str, Decimal] = {}
    for currency, value in table.items():
        check(where, validate_currency, currency)
        rate = parse_decimal(str(value), f"{where} {currency}")
        if rate <= 0:
            raise ReferenceDataError(f"{where}: rate of {currency} must be positive")
        rates[currency] = rate
    if rates.get("CNY") != 1:
        raise ReferenceDataError(f"{where}: CNY must be listed with rate 1")
    return rates, rate_date


def _declarants(folder: ReferenceFolder) -> dict[str, DeclarantProfile]:
    name = "declarant_risk.csv"
    profiles: dict[str, DeclarantProfile] = {}
    rows = folder.csv(name, ("uscc", "name", "risk_level", "assessed_on"))
    for number, row in enumerate(rows, start=2):
        where = folder.where(name, number)
        # The GB 32100 form only: released files may list a code whose embedded organisation
        # code is impossible; it still loads, and is never matched (the door refuses it).
        check(where, partial(validate_uscc, organisation_code=False), row["uscc"])
        level = check(where, RiskLevel, row["risk_level"])
        if row["uscc"] in profiles:
            raise ReferenceDataError(f"{where}: duplicate USCC {row['uscc']}")
        profiles[row["uscc"]] = DeclarantProfile(
            row["uscc"], row["name"], level, parse_date(row["assessed_on"], where)
        )
    return profiles
