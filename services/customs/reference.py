"""Customs reference data: tariff, trade agreements, additional duties, exchange rates,
risk profiles, policy parameters.

Read once per version from ``services/customs/reference/<version>/`` (see its README) and
cached; the rules never read files themselves. The version that applies to a declaration is
the one in force on its acceptance date (:func:`reference_on`).

Two tariff formats are read. The current one (``customs-2026.11-r2`` on) has statutory units,
the MFN, provisional and general rates (ad valorem, specific or compound), the consumption tax,
prohibitions by direction and the licence an import needs. The format before it (one ad
valorem duty rate per line) is still read, so that the verdicts naming those versions are
recomputed exactly as they were decided: such a version is ``legacy``.

A version may ship the cargo manifest (``manifest.json``, 舱单: the bills of lading the
carriers filed, with vessel and voyage or train, ports, packages, gross weight and containers,
for the transport modes it lists), which a declaration is matched against.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import cache, partial
from types import MappingProxyType

from services.customs.duties import quantity_in
from services.customs.rates import Agreement, Basis, Rate
from singlewindow.events import TransportMode
from singlewindow.identifiers import (
    InvalidIdentifier,
    validate_container_number,
    validate_country,
    validate_currency,
    validate_hs_code,
    validate_imo,
    validate_unlocode,
    validate_uscc,
)
from singlewindow.reference import (
    ReferenceDataError,
    ReferenceFolder,
    check,
    hs_prefix_match,
    parse_date,
    parse_decimal,
    parse_flag,
    parse_hs_prefix,
    reference_folder,
    version_for,
)

RULES_VERSION = "customs-2026.11-r2"  # the base of the versions in force (demo data, tests)
PACKAGE = "services.customs"
RATE_EXPONENT = Decimal("0.0001")  # duty and VAT rates carry 4 decimals (the DutyLine scale)
LEGACY_COLUMNS = (
    "hs_code",
    "description",
    "duty_rate",
    "vat_rate",
    "prohibited",
    "licence_required",
    "reference_price_cny",
    "price_unit",
)
COLUMNS = (
    "hs_code",
    "description",
    "unit1",
    "unit2",
    "mfn",
    "provisional",
    "general",
    "vat",
    "excise",
    "prohibited",
    "licence",
    "reference_price_cny",
    "price_unit",
)
LICENCES = {
    "AIL": "automatic import licence (自动进口许可证)",
    "PRECURSOR": "precursor chemicals import licence (易制毒化学品进口许可)",
    "DUAL": "dual-use items import licence (两用物项和技术进口许可证)",
    "IL": "import licence (进口许可证)",
}


MANIFEST = "manifest.json"
BULK_PACKAGE_KINDS = frozenset({"VR", "VY", "VO", "VL", "VQ", "VG"})  # UN/ECE Rec 21: bulk


class RiskLevel(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


@dataclass(frozen=True, slots=True)
class TariffLine:
    hs_code: str
    description: str
    mfn: Rate
    vat_rate: Decimal
    prohibited_import: bool
    prohibited_export: bool
    licence: str | None  # what an IMPORT needs (a key of LICENCES), None: nothing
    reference_price_cny: Decimal | None  # per ``price_unit``; None: no undervaluation check
    price_unit: str
    unit1: str | None = None  # statutory units (Rec 20); None in the legacy format
    unit2: str | None = None
    provisional: Rate | None = None
    general: Rate | None = None
    excise: Rate | None = None  # consumption tax

    @property
    def duty_rate(self) -> Decimal:
        """The ad valorem MFN rate (the legacy format's only rate)."""
        return self.mfn.ad_valorem or Decimal(0)

    def prohibited(self, is_import: bool) -> bool:
        return self.prohibited_import if is_import else self.prohibited_export


@dataclass(frozen=True, slots=True)
class AdditionalDuty:
    """An anti-dumping, countervailing, safeguard or countermeasure duty on goods of a line
    (HS prefix) originating in one country, in force from ``valid_from`` to ``valid_to``."""

    measure: str
    hs_prefix: str
    origin: str
    rate: Rate
    valid_from: date
    valid_to: date | None
    description: str

    def applies(self, hs_code: str, origin: str, day: date) -> bool:
        return (
            hs_code.startswith(self.hs_prefix)
            and origin == self.origin
            and self.valid_from <= day
            and (self.valid_to is None or day <= self.valid_to)
        )


@dataclass(frozen=True, slots=True)
class DeclarantProfile:
    uscc: str
    name: str
    risk_level: RiskLevel
    assessed_on: date


@dataclass(frozen=True, slots=True)
class ManifestBill:
    """A bill of lading (or rail consignment note) as the carrier filed it on the manifest."""

    bill_of_lading: str
    mode: TransportMode
    vessel_imo: str | None  # None for a train
    voyage: str  # the voyage, or the train's number
    port_of_loading: str
    port_of_discharge: str
    packages: int
    package_kind: str  # UN/ECE Rec 21
    gross_weight_kg: Decimal
    containers: tuple[str, ...]  # none for bulk cargo


@dataclass(frozen=True, slots=True)
class Manifest:
    """The cargo manifest: the modes it covers and its bills by number."""

    modes: frozenset[TransportMode]
    bills: Mapping[str, ManifestBill]


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
    legacy: bool = False  # the tariff format before 2026-12 (see the module)
    de_minimis_cny: Decimal = Decimal(0)  # a tax under this per declaration is not collected
    general_rate_origins: frozenset[str] = frozenset()
    agreements: Mapping[str, Agreement] = field(default_factory=dict)
    preferential: Mapping[str, Mapping[str, Rate]] = field(default_factory=dict)
    additional: tuple[AdditionalDuty, ...] = ()
    manifest: Manifest | None = None  # None: this version ships no manifest (no match)
    manifest_weight_tolerance: Decimal = Decimal(0)  # of the manifest's gross weight

    def risk_of(self, uscc: str) -> RiskLevel:
        profile = self.declarants.get(uscc)
        return RiskLevel.MEDIUM if profile is None else profile.risk_level

    def preferential_rate(self, agreement: str, hs_code: str) -> Rate | None:
        """The agreement's rate for ``hs_code`` (longest HS prefix), None if it sets none."""
        rates = self.preferential.get(agreement, {})
        prefix = hs_prefix_match(hs_code, rates)
        return None if prefix is None else rates[prefix]

    def additional_duties(self, hs_code: str, origin: str, day: date) -> list[AdditionalDuty]:
        return [a for a in self.additional if a.applies(hs_code, origin, day)]


def load_reference(version: str = RULES_VERSION) -> ReferenceData:
    """The customs reference data of ``version``, read once and cached."""
    return _load(version)


def reference_on(accepted_at: datetime) -> ReferenceData:
    """The reference data in force when a declaration accepted at ``accepted_at`` was."""
    return _load(version_for(PACKAGE, accepted_at))


@cache
def _load(version: str) -> ReferenceData:
    folder = reference_folder(PACKAGE, version)
    rates, rate_date = _exchange_rates(folder)
    parameters = folder.json("parameters.json")
    where = folder.where("parameters.json")
    try:
        sampling = parse_decimal(str(parameters["random_inspection_rate"]), where)
        ratio = parse_decimal(str(parameters["undervaluation_ratio"]), where)
        de_minimis = parse_decimal(str(parameters.get("de_minimis_cny", "0")), where)
        general_origins = frozenset(parameters.get("general_rate_origins", ()))
        tolerance = parse_decimal(str(parameters.get("manifest_weight_tolerance", "0")), where)
    except (KeyError, TypeError) as exc:
        raise ReferenceDataError(f"{where}: missing parameter {exc}") from None
    for name, value in (
        ("random_inspection_rate", sampling),
        ("undervaluation_ratio", ratio),
        ("manifest_weight_tolerance", tolerance),
    ):
        if not 0 <= value <= 1:
            raise ReferenceDataError(f"{where}: {name} must lie in [0, 1], got {value}")
    if de_minimis < 0:
        raise ReferenceDataError(f"{where}: de_minimis_cny must not be negative")
    for country in general_origins:
        check(where, validate_country, country)
    tariff, legacy = _tariff(folder)
    agreements = {} if legacy else _agreements(folder)
    return ReferenceData(
        version=version,
        tariff=MappingProxyType(tariff),
        cny_per_unit=MappingProxyType(rates),
        rate_date=rate_date,
        declarants=MappingProxyType(_declarants(folder)),
        random_inspection_rate=sampling,
        undervaluation_ratio=ratio,
        legacy=legacy,
        de_minimis_cny=de_minimis,
        general_rate_origins=general_origins,
        agreements=MappingProxyType(agreements),
        preferential=MappingProxyType({} if legacy else _preferential(folder, agreements)),
        additional=() if legacy else _additional(folder),
        manifest=_manifest(folder) if folder.has(MANIFEST) else None,
        manifest_weight_tolerance=tolerance,
    )


def _fraction(value: str, where: str) -> Decimal:
    rate = parse_decimal(value, where)
    if not 0 <= rate < 1 or rate != rate.quantize(RATE_EXPONENT):
        raise ReferenceDataError(f"{where}: rate {value!r} must be in [0, 1) with 4 decimals")
    return rate.quantize(RATE_EXPONENT)


def _rate_cell(value: str, where: str, units: tuple[str | None, ...]) -> Rate:
    """A rate cell; a specific part must be in one of the line's statutory ``units`` or in a
    unit convertible from one (a mass or a volume)."""
    rate = check(where, Rate.parse, value)
    if rate.unit is not None and rate.unit not in units and not _convertible(rate.unit, units):
        raise ReferenceDataError(
            f"{where}: rate {value} is per {rate.unit}, not a unit of the line"
        )
    return rate


def _convertible(unit: str, units: tuple[str | None, ...]) -> bool:
    return any(u and quantity_in(unit, {u: Decimal(1)}) is not None for u in units)


def _tariff(folder: ReferenceFolder) -> tuple[dict[str, TariffLine], bool]:
    """The tariff by HS code, and whether it is in the legacy format."""
    name = "tariff.csv"
    header = folder.text(name).split("\n", 1)[0].strip()
    legacy = header == ",".join(LEGACY_COLUMNS)
    tariff: dict[str, TariffLine] = {}
    rows = folder.csv(name, LEGACY_COLUMNS if legacy else COLUMNS)
    for number, row in enumerate(rows, start=2):
        where = folder.where(name, number)
        check(where, validate_hs_code, row["hs_code"])
        if row["hs_code"] in tariff:
            raise ReferenceDataError(f"{where}: duplicate HS code {row['hs_code']}")
        price = row["reference_price_cny"]
        reference_price = parse_decimal(price, where) if price else None
        if reference_price is not None and reference_price <= 0:
            raise ReferenceDataError(f"{where}: reference price must be positive")
        line = _legacy_line(row, where) if legacy else _line(row, where)
        tariff[row["hs_code"]] = line
        if reference_price is not None:
            tariff[row["hs_code"]] = _with_price(line, reference_price, row["price_unit"], where)
    return tariff, legacy


def _legacy_line(row: dict[str, str], where: str) -> TariffLine:
    prohibited = parse_flag(row["prohibited"], where)
    return TariffLine(
        hs_code=row["hs_code"],
        description=row["description"],
        mfn=Rate.ad_valorem_of(_fraction(row["duty_rate"], where)),
        vat_rate=_fraction(row["vat_rate"], where),
        prohibited_import=prohibited,
        prohibited_export=prohibited,
        licence="IL" if parse_flag(row["licence_required"], where) else None,
        reference_price_cny=None,
        price_unit=row["price_unit"],
    )


def _line(row: dict[str, str], where: str) -> TariffLine:
    units = (row["unit1"], row["unit2"] or None)
    for unit in units:
        if unit is not None and not unit.isalnum():
            raise ReferenceDataError(f"{where}: unit {unit!r} is not a Rec 20 code")
    if row["prohibited"] not in ("", "I", "E", "IE"):
        raise ReferenceDataError(f"{where}: prohibited must be empty, I, E or IE")
    if row["licence"] and row["licence"] not in LICENCES:
        raise ReferenceDataError(
            f"{where}: licence {row['licence']!r} is not one of {list(LICENCES)}"
        )
    vat = _rate_cell(row["vat"], where, units)
    excise = _rate_cell(row["excise"], where, units) if row["excise"] else None
    if vat.ad_valorem is None or vat.per_unit is not None or vat.ad_valorem >= 1:
        raise ReferenceDataError(f"{where}: vat must be an ad valorem rate below 100%")
    if excise is not None and (excise.ad_valorem or 0) >= 1:
        raise ReferenceDataError(f"{where}: a consumption tax rate must be below 100%")
    return TariffLine(
        hs_code=row["hs_code"],
        description=row["description"],
        mfn=_rate_cell(row["mfn"], where, units),
        provisional=_rate_cell(row["provisional"], where, units) if row["provisional"] else None,
        general=_rate_cell(row["general"], where, units),
        vat_rate=vat.ad_valorem.quantize(RATE_EXPONENT),
        excise=excise,
        prohibited_import="I" in row["prohibited"],
        prohibited_export="E" in row["prohibited"],
        licence=row["licence"] or None,
        reference_price_cny=None,
        price_unit=row["price_unit"],
        unit1=units[0],
        unit2=units[1],
    )


def _with_price(line: TariffLine, price: Decimal, unit: str, where: str) -> TariffLine:
    if line.unit1 is not None and unit not in (line.unit1, line.unit2):
        raise ReferenceDataError(f"{where}: price unit {unit} is not a unit of the line")
    return dataclasses.replace(line, reference_price_cny=price, price_unit=unit)


def _agreements(folder: ReferenceFolder) -> dict[str, Agreement]:
    name = "agreements.csv"
    found: dict[str, Agreement] = {}
    for number, row in enumerate(folder.csv(name, ("agreement", "kind", "name", "countries")), 2):
        where = folder.where(name, number)
        kind = check(where, Basis, row["kind"])
        if kind not in (Basis.CONVENTIONAL, Basis.SPECIAL) or row["agreement"] in found:
            raise ReferenceDataError(f"{where}: a duplicate, or kind not CONVENTIONAL/SPECIAL")
        countries = frozenset(row["countries"].split())
        for country in countries:
            check(where, validate_country, country)
        found[row["agreement"]] = Agreement(row["agreement"], kind, row["name"], countries)
    return found


def _preferential(
    folder: ReferenceFolder, agreements: Mapping[str, Agreement]
) -> dict[str, dict[str, Rate]]:
    """Conventional rates by agreement, and the special preferential rates (under every
    SPECIAL agreement), by HS prefix."""
    rates: dict[str, dict[str, Rate]] = {code: {} for code in agreements}
    name = "conventional.csv"
    for number, row in enumerate(folder.csv(name, ("agreement", "hs_prefix", "rate")), 2):
        where = folder.where(name, number)
        agreement = agreements.get(row["agreement"])
        if agreement is None or agreement.kind is not Basis.CONVENTIONAL:
            raise ReferenceDataError(f"{where}: {row['agreement']!r} is no conventional agreement")
        prefix = parse_hs_prefix(row["hs_prefix"], where)
        rates[agreement.code][prefix] = check(where, Rate.parse, row["rate"])
    name = "special.csv"
    for number, row in enumerate(folder.csv(name, ("hs_prefix", "rate")), 2):
        where = folder.where(name, number)
        prefix = parse_hs_prefix(row["hs_prefix"], where)
        for agreement in agreements.values():
            if agreement.kind is Basis.SPECIAL:
                rates[agreement.code][prefix] = check(where, Rate.parse, row["rate"])
    return rates


def _additional(folder: ReferenceFolder) -> tuple[AdditionalDuty, ...]:
    name = "additional_duties.csv"
    columns = ("measure", "hs_prefix", "origin", "rate", "valid_from", "valid_to", "description")
    found = []
    for number, row in enumerate(folder.csv(name, columns), 2):
        where = folder.where(name, number)
        check(where, validate_country, row["origin"])
        rate = check(where, Rate.parse, row["rate"])
        valid_to = parse_date(row["valid_to"], where) if row["valid_to"] else None
        found.append(
            AdditionalDuty(
                measure=row["measure"],
                hs_prefix=parse_hs_prefix(row["hs_prefix"], where),
                origin=row["origin"],
                rate=rate,
                valid_from=parse_date(row["valid_from"], where),
                valid_to=valid_to,
                description=row["description"],
            )
        )
    return tuple(found)


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


def _manifest(folder: ReferenceFolder) -> Manifest:
    data = folder.json(MANIFEST)
    where = folder.where(MANIFEST)
    if (
        not isinstance(data, dict)
        or set(data) != {"modes", "bills_of_lading"}
        or not isinstance(data["modes"], list)
        or not isinstance(data["bills_of_lading"], list)
    ):
        raise ReferenceDataError(f"{where}: expected an object of modes and bills_of_lading")
    modes = frozenset(check(where, TransportMode, str(mode)) for mode in data["modes"])
    bills: dict[str, ManifestBill] = {}
    seen: set[str] = set()
    for raw in data["bills_of_lading"]:
        bill = _bill(raw, where)
        place = f"{where}: bill {bill.bill_of_lading}"
        if bill.bill_of_lading in bills:
            raise ReferenceDataError(f"{place} is filed twice")
        if bill.mode not in modes:
            raise ReferenceDataError(f"{place} is by {bill.mode}, not a mode of the manifest")
        if (bill.mode is TransportMode.SEA) != (bill.vessel_imo is not None):
            raise ReferenceDataError(f"{place}: a vessel's IMO number for SEA only, and always")
        if bill.package_kind in BULK_PACKAGE_KINDS and bill.containers:
            raise ReferenceDataError(f"{place}: bulk cargo ({bill.package_kind}) in containers")
        for container in bill.containers:
            if container in seen:
                raise ReferenceDataError(f"{where}: container {container} is on two bills")
            seen.add(container)
        bills[bill.bill_of_lading] = bill
    return Manifest(modes, MappingProxyType(bills))


def _bill(raw: object, where: str) -> ManifestBill:
    try:
        if not isinstance(raw, dict):
            raise TypeError("not an object")
        vessel = raw["vessel_imo"]
        bill = ManifestBill(
            bill_of_lading=str(raw["bill_of_lading"]),
            mode=TransportMode(raw["mode"]),
            vessel_imo=None if vessel is None else str(vessel),
            voyage=str(raw["voyage"]),
            port_of_loading=str(raw["port_of_loading"]),
            port_of_discharge=str(raw["port_of_discharge"]),
            packages=int(raw["packages"]),
            package_kind=str(raw["package_kind"]),
            gross_weight_kg=parse_decimal(str(raw["gross_weight_kg"]), where),
            containers=tuple(str(c) for c in raw["containers"]),
        )
        if not bill.bill_of_lading or bill.packages < 1 or bill.gross_weight_kg <= 0:
            raise ValueError("needs a number, at least one package and a positive gross weight")
        if bill.vessel_imo is not None:
            validate_imo(bill.vessel_imo)
        validate_unlocode(bill.port_of_loading)
        validate_unlocode(bill.port_of_discharge)
        for container in bill.containers:
            validate_container_number(container)
    except (KeyError, TypeError, ValueError, InvalidIdentifier, ReferenceDataError) as exc:
        raise ReferenceDataError(f"{where}: bad bill of lading {raw!r}: {exc}") from None
    return bill
