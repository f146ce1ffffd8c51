"""CIQ reference data: statutory inspection catalogue, categories, quarantine alerts, registered
importers and (from ``ciq-2026.11-r2``) registered overseas food manufacturers.

Read once per version from ``services/ciq/reference/<version>/`` (see its README) and cached.
The version that applies to a declaration is the one in force on its acceptance date
(:func:`reference_on`). A version whose ``categories.csv`` is in the format before
``ciq-2026.11-r2`` (every category has a certificate, no food flag, no inspection) is
``legacy``: its rules stay as they were then, so the verdicts naming it recompute exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache, partial
from types import MappingProxyType

from singlewindow.events import DocumentType
from singlewindow.identifiers import validate_country, validate_uscc
from singlewindow.reference import (
    ReferenceDataError,
    ReferenceFolder,
    check,
    hs_prefix_match,
    parse_date,
    parse_flag,
    parse_hs_prefix,
    reference_folder,
    version_for,
)

RULES_VERSION = "ciq-2026.11-r2"  # the base of the versions in force (demo data, tests)
PACKAGE = "services.ciq"
LEGACY_CATEGORY_COLUMNS = ("category", "certificate", "first_import_sampling", "description")
CATEGORY_COLUMNS = (
    "category",
    "certificate",
    "food",
    "first_import_sampling",
    "inspection",
    "description",
)
DIRECTIONS = ("IMPORT", "EXPORT")


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    certificate: DocumentType | None  # what an IMPORT must lodge; None: no certificate
    first_import_sampling: bool
    description: str
    food: bool = False  # food: registered importer (Decree 249), manufacturer (Decree 248)
    inspected: frozenset[str] = frozenset()  # directions in which every consignment is inspected


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    hs_prefix: str
    category: Category
    description: str


@dataclass(frozen=True, slots=True)
class QuarantineAlert:
    alert_id: str
    disease: str
    country: str
    hs_prefixes: tuple[str, ...]
    issued_on: date
    lifted_on: date | None

    def in_force(self, day: date) -> bool:
        """Whether the alert applies on ``day`` (a date in China time)."""
        return self.issued_on <= day and (self.lifted_on is None or day < self.lifted_on)

    def covers(self, hs_code: str, country: str) -> bool:
        return country == self.country and hs_prefix_match(hs_code, self.hs_prefixes) is not None


@dataclass(frozen=True, slots=True)
class Manufacturer:
    """An overseas food manufacturer registered with the GACC (Decree 248) for the goods of
    ``hs_prefixes`` made in ``country``, from ``registered_on`` to ``expires_on`` inclusive."""

    registration: str
    name: str
    country: str
    hs_prefixes: tuple[str, ...]
    registered_on: date
    expires_on: date

    def valid_on(self, day: date) -> bool:
        return self.registered_on <= day <= self.expires_on

    def covers(self, hs_code: str) -> bool:
        return hs_prefix_match(hs_code, self.hs_prefixes) is not None


@dataclass(frozen=True, eq=False)
class ReferenceData:
    """One version of the CIQ reference data (immutable)."""

    version: str
    catalogue: Mapping[str, CatalogueEntry]  # HS prefix -> entry; longest prefix wins
    alerts: tuple[QuarantineAlert, ...]
    registered_importers: Mapping[str, date]  # USCC -> date of registration with the GACC
    legacy: bool = False  # the format before ciq-2026.11-r2 (see the module)
    # registration number -> manufacturer; empty: the version lists none (numbers not checked)
    manufacturers: Mapping[str, Manufacturer] = field(default_factory=dict)

    def is_registered(self, uscc: str, day: date) -> bool:
        """Whether ``uscc`` is a registered importer on ``day`` (a date in China time)."""
        registered_on = self.registered_importers.get(uscc)
        return registered_on is not None and registered_on <= day

    def catalogue_entry(self, hs_code: str) -> CatalogueEntry | None:
        prefix = hs_prefix_match(hs_code, self.catalogue)
        return None if prefix is None else self.catalogue[prefix]


def load_reference(version: str = RULES_VERSION) -> ReferenceData:
    """The CIQ reference data of ``version``, read once and cached."""
    return _load(version)


def reference_on(accepted_at: datetime) -> ReferenceData:
    """The reference data in force when a declaration accepted at ``accepted_at`` was."""
    return _load(version_for(PACKAGE, accepted_at))


@cache
def _load(version: str) -> ReferenceData:
    folder = reference_folder(PACKAGE, version)
    legacy = _legacy(folder)
    catalogue = _catalogue(folder, _categories(folder))
    alerts = _alerts(folder)
    for alert in alerts:
        for prefix in alert.hs_prefixes:
            if hs_prefix_match(prefix, catalogue) is None:
                raise ReferenceDataError(
                    f"{folder.where('quarantine_alerts.csv')}: alert {alert.alert_id} covers "
                    f"{prefix}, which is outside the statutory inspection catalogue"
                )
    return ReferenceData(
        version=version,
        catalogue=MappingProxyType(catalogue),
        alerts=alerts,
        registered_importers=MappingProxyType(_importers(folder)),
        legacy=legacy,
        manufacturers=MappingProxyType(_manufacturers(folder) if folder.has(MANUFACTURERS) else {}),
    )


def _legacy(folder: ReferenceFolder) -> bool:
    header = folder.text("categories.csv").split("\n", 1)[0].strip()
    return header == ",".join(LEGACY_CATEGORY_COLUMNS)


def _categories(folder: ReferenceFolder) -> dict[str, Category]:
    name = "categories.csv"
    legacy = _legacy(folder)
    rows = folder.csv(name, LEGACY_CATEGORY_COLUMNS if legacy else CATEGORY_COLUMNS)
    categories: dict[str, Category] = {}
    for number, row in enumerate(rows, start=2):
        where = folder.where(name, number)
        if row["category"] in categories:
            raise ReferenceDataError(f"{where}: duplicate category {row['category']}")
        if legacy:
            certificate = check(where, _document_type, row["certificate"])
            categories[row["category"]] = Category(
                name=row["category"],
                certificate=certificate,
                first_import_sampling=parse_flag(row["first_import_sampling"], where),
                description=row["description"],
            )
            continue
        inspected = frozenset(row["inspection"].split())
        if inspected - set(DIRECTIONS):
            raise ReferenceDataError(f"{where}: inspection must name IMPORT and/or EXPORT")
        categories[row["category"]] = Category(
            name=row["category"],
            certificate=(
                check(where, _document_type, row["certificate"]) if row["certificate"] else None
            ),
            first_import_sampling=parse_flag(row["first_import_sampling"], where),
            description=row["description"],
            food=parse_flag(row["food"], where),
            inspected=inspected,
        )
    return categories


def _document_type(value: str) -> DocumentType:
    try:
        return DocumentType(value)
    except ValueError:
        raise ValueError(f"unknown document type {value}") from None


def _catalogue(
    folder: ReferenceFolder, categories: Mapping[str, Category]
) -> dict[str, CatalogueEntry]:
    name = "catalogue.csv"
    catalogue: dict[str, CatalogueEntry] = {}
    for number, row in enumerate(folder.csv(name, ("hs_prefix", "category", "description")), 2):
        where = folder.where(name, number)
        prefix = parse_hs_prefix(row["hs_prefix"], where)
        if prefix in catalogue:
            raise ReferenceDataError(f"{where}: duplicate prefix {prefix}")
        if row["category"] not in categories:
            raise ReferenceDataError(f"{where}: unknown category {row['category']}")
        catalogue[prefix] = CatalogueEntry(prefix, categories[row["category"]], row["description"])
    return catalogue


def _alerts(folder: ReferenceFolder) -> tuple[QuarantineAlert, ...]:
    name = "quarantine_alerts.csv"
    columns = ("alert_id", "disease", "country", "hs_prefixes", "issued_on", "lifted_on")
    alerts = []
    for number, row in enumerate(folder.csv(name, columns), start=2):
        where = folder.where(name, number)
        check(where, validate_country, row["country"])
        prefixes = tuple(parse_hs_prefix(p, where) for p in row["hs_prefixes"].split())
        if not prefixes:
            raise ReferenceDataError(f"{where}: an alert must cover at least one HS prefix")
        issued = parse_date(row["issued_on"], where)
        lifted = parse_date(row["lifted_on"], where) if row["lifted_on"] else None
        if lifted is not None and lifted <= issued:
            raise ReferenceDataError(f"{where}: lifted_on must follow issued_on")
        alerts.append(
            QuarantineAlert(
                row["alert_id"], row["disease"], row["country"], prefixes, issued, lifted
            )
        )
    return tuple(alerts)


def _importers(folder: ReferenceFolder) -> dict[str, date]:
    name = "registered_importers.csv"
    importers: dict[str, date] = {}
    for number, row in enumerate(folder.csv(name, ("uscc", "name", "registered_on")), start=2):
        where = folder.where(name, number)
        # The GB 32100 form only: released files may list a code whose embedded organisation
        # code is impossible; it still loads, and is never matched (the door refuses it).
        check(where, partial(validate_uscc, organisation_code=False), row["uscc"])
        importers[row["uscc"]] = parse_date(row["registered_on"], where)
    return importers


MANUFACTURERS = "registered_manufacturers.csv"
MANUFACTURER_COLUMNS = (
    "registration",
    "name",
    "country",
    "hs_prefixes",
    "registered_on",
    "expires_on",
)


def _manufacturers(folder: ReferenceFolder) -> dict[str, Manufacturer]:
    name = MANUFACTURERS
    found: dict[str, Manufacturer] = {}
    for number, row in enumerate(folder.csv(name, MANUFACTURER_COLUMNS), start=2):
        where = folder.where(name, number)
        registration = row["registration"]
        if not registration or registration in found:
            raise ReferenceDataError(f"{where}: empty or duplicate registration {registration!r}")
        check(where, validate_country, row["country"])
        prefixes = tuple(parse_hs_prefix(p, where) for p in row["hs_prefixes"].split())
        if not prefixes:
            raise ReferenceDataError(f"{where}: a registration must cover at least one HS prefix")
        registered = parse_date(row["registered_on"], where)
        expires = parse_date(row["expires_on"], where)
        if expires < registered:
            raise ReferenceDataError(f"{where}: expires_on must not precede registered_on")
        found[registration] = Manufacturer(
            registration, row["name"], row["country"], prefixes, registered, expires
        )
    return found
