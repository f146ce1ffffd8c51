"""Inspection and quarantine (CIQ, 检验检疫) rules: pure, of declaration, reference and ``now``.

Only goods items in the statutory inspection catalogue are concerned (longest HS prefix
match); an item outside it draws no action. Each rule is a function below, named after what
it checks, that yields the rulings it gives; per catalogued item, every rule that applies
fires, in this order (:func:`rulings`):

- ``CIQ-QUARANTINE-ALERT`` REJECT (:func:`quarantine_alert`): an alert in force on ``now``
  (its date in China time) covers the item's HS code and origin country. IMPORT only.
- ``CIQ-CERT-MISSING`` HOLD (:func:`cert_missing`): the certificate the item's category
  requires (``HEALTH_CERTIFICATE`` or ``PHYTOSANITARY_CERTIFICATE``) is not among the
  declaration's documents (documents are not tied to items: one certificate covers every item
  needing it). IMPORT and EXPORT: the only rule for an EXPORT (the exporter must lodge the
  certificate the destination requires; alerts and importer registration concern imports).
- ``CIQ-FIRST-IMPORT`` INSPECT, check ``QUARANTINE_SAMPLE`` (:func:`first_import`): an item
  of a category with first-import sampling (in this data: live animals, animal products, food)
  imported by a declarant who is not a registered importer on ``now``'s date (China time).
  IMPORT only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from services.ciq.reference import RULES_VERSION, CatalogueEntry, ReferenceData, load_reference
from singlewindow.events import (
    AgencyVerdict,
    DeclarationSubmitted,
    DeclarationType,
    DocumentType,
    GoodsItem,
)
from singlewindow.verdicts import Ruling, build_verdict

__all__ = [
    "AGENCY",
    "CATALOGUE_RULES",
    "CHINA_TIME",
    "RULES_VERSION",
    "Case",
    "ReferenceData",
    "assess",
    "cert_missing",
    "first_import",
    "in_statutory_catalogue",
    "load_reference",
    "quarantine_alert",
    "rulings",
]

AGENCY = "ciq"
CHINA_TIME = timezone(timedelta(hours=8), "CST")  # Asia/Shanghai, no daylight saving


def in_statutory_catalogue(hs_code: str, reference: ReferenceData) -> bool:
    """Whether goods of ``hs_code`` are subject to statutory inspection under ``reference``."""
    return reference.catalogue_entry(hs_code) is not None


@dataclass(frozen=True, slots=True)
class Case:
    """What the CIQ rules decide on: a declaration, the reference data, the day of ``now``."""

    declaration: DeclarationSubmitted
    reference: ReferenceData
    is_import: bool
    today: date  # the date of ``now`` in China time
    lodged: frozenset[DocumentType]  # the kinds of document lodged (each covers every item)
    first_importer: str | None  # the declarant of an IMPORT if not registered on ``today``

    @classmethod
    def of(cls, declaration: DeclarationSubmitted, reference: ReferenceData, now: datetime) -> Case:
        is_import = declaration.declaration_type is DeclarationType.IMPORT
        today = now.astimezone(CHINA_TIME).date()
        uscc = declaration.declarant.uscc
        return cls(
            declaration=declaration,
            reference=reference,
            is_import=is_import,
            today=today,
            lodged=frozenset(document.type for document in declaration.documents),
            first_importer=(
                uscc if is_import and not reference.is_registered(uscc, today) else None
            ),
        )


# --- the rules of a goods item in the statutory inspection catalogue ------------------------


def quarantine_alert(case: Case, item: GoodsItem, entry: CatalogueEntry) -> Iterator[Ruling]:
    """``CIQ-QUARANTINE-ALERT`` REJECT: a quarantine alert in force on the case's day covers
    the item's HS code and origin country (one ruling per such alert). IMPORT only."""
    if not case.is_import:
        return
    for alert in case.reference.alerts:
        if alert.in_force(case.today) and alert.covers(item.hs_code, item.origin_country):
            yield Ruling.reject(
                "CIQ-QUARANTINE-ALERT",
                f"{item.hs_code} from {item.origin_country} is banned by quarantine "
                f"alert {alert.alert_id} ({alert.disease}, "
                f"since {alert.issued_on.isoformat()})",
                item.line,
            )


def cert_missing(case: Case, item: GoodsItem, entry: CatalogueEntry) -> Iterator[Ruling]:
    """``CIQ-CERT-MISSING`` HOLD: the certificate the item's category requires is not among
    the declaration's documents. IMPORT and EXPORT."""
    category = entry.category
    if category.certificate not in case.lodged:
        yield Ruling.hold(
            "CIQ-CERT-MISSING",
            f"{item.hs_code} ({category.name}, {entry.description}) needs a "
            f"{category.certificate} and none was lodged",
            item.line,
        )


def first_import(case: Case, item: GoodsItem, entry: CatalogueEntry) -> Iterator[Ruling]:
    """``CIQ-FIRST-IMPORT`` INSPECT ``QUARANTINE_SAMPLE``: the item's category has first-import
    sampling and the declarant is not a registered importer on the case's day. IMPORT only."""
    category = entry.category
    if case.first_importer is not None and category.first_import_sampling:
        yield Ruling.inspect(
            "CIQ-FIRST-IMPORT",
            f"first import of {category.name} goods: declarant {case.first_importer} "
            f"is not a registered importer",
            "QUARANTINE_SAMPLE",
            item.line,
        )


CatalogueRule = Callable[[Case, GoodsItem, CatalogueEntry], Iterator[Ruling]]

# The rules of an item in the statutory inspection catalogue, in the order they are reported.
CATALOGUE_RULES: tuple[CatalogueRule, ...] = (quarantine_alert, cert_missing, first_import)


def rulings(case: Case) -> list[Ruling]:
    """Every ruling on the case: item by item, the :data:`CATALOGUE_RULES`' on an item in the
    statutory inspection catalogue (none on any other)."""
    found: list[Ruling] = []
    for item in case.declaration.items:
        entry = case.reference.catalogue_entry(item.hs_code)
        if entry is not None:
            found.extend(ruling for rule in CATALOGUE_RULES for ruling in rule(case, item, entry))
    return found


def assess(
    declaration: DeclarationSubmitted, reference: ReferenceData, now: datetime
) -> AgencyVerdict:
    """The CIQ verdict on ``declaration`` under ``reference``, decided at ``now``."""
    case = Case.of(declaration, reference, now)
    return build_verdict(declaration, AGENCY, reference.version, rulings(case), now)
