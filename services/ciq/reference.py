"""CIQ reference data: statutory inspection catalogue, categories, quarantine alerts, importers.

Read once per version from ``services/ciq/reference/<version>/`` (see its README) and cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
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
)

RULES_VERSION = "ciq-2026.11"
PACKAGE = "services.ciq"


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    certificate: DocumentType
    first_import_sampling: bool
    description: str


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


@dataclass(frozen=True, eq=False)
class ReferenceData:
    """One version of the CIQ reference data (immutable)."""

    version: str
    catalogue: Mapping[str, CatalogueEntry]  # HS prefix -> entry; longest prefix wins
    alerts: tuple[QuarantineAlert, ...]
    registered_importers: Mapping[str, date]  # USCC -> date of registration with the GACC

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


@cache
def _load(version: str) -> ReferenceData:
    folder = reference_folder(PACKAGE, version)
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
    )


def _categories(folder: ReferenceFolder) -> dict[str, Category]:
    name = "categories.csv"
    rows = folder.csv(name, ("category", "certificate", "first_import_sampling", "description"))
    categories: dict[str, Category] = {}
    for number, row in enumerate(rows, start=2):
        where = folder.where(name, number)
        certificate = check(where, _document_type, row["certificate"])
        categories[row["category"]] = Category(
            name=row["category"],
            certificate=certificate,
            first_import_sampling=parse_flag(row["first_import_sampling"], where),
            description=row["description"],
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
