"""Inspection and quarantine (CIQ, 检验检疫) rules: pure, of declaration, reference and ``now``.

Only goods items in the statutory inspection catalogue are concerned (longest HS prefix
match); an item outside it draws no action. Each rule is a function below, named after what
it checks, that yields the rulings it gives; per catalogued item, every rule that applies
fires, in the order of :data:`CATALOGUE_RULES`, then the declaration's rules
(:data:`DECLARATION_RULES`) (:func:`rulings`):

- ``CIQ-QUARANTINE-ALERT`` REJECT (:func:`quarantine_alert`): an alert in force on ``now``
  (its date in China time) covers the item's HS code and origin country. IMPORT only.
- ``CIQ-CERT-MISSING`` HOLD (:func:`cert_missing`): the certificate the item's category
  requires (``HEALTH_CERTIFICATE`` or ``PHYTOSANITARY_CERTIFICATE``) is not among the
  declaration's documents (documents are not tied to items: one certificate covers every item
  needing it). IMPORT only; legacy versions: IMPORT and EXPORT (the exporter had to lodge it).
- ``CIQ-EXPORT-CERTIFICATION`` INSPECT, check ``EXPORT_CERTIFICATION``
  (:func:`export_certification`): an EXPORT of an item whose category needs a certificate: the
  inspection authority inspects the goods and issues the health or phytosanitary certificate
  itself (the exporter lodges none). Not in legacy versions.
- ``CIQ-MANUFACTURER-UNREGISTERED`` HOLD (:func:`manufacturer_unregistered`): an IMPORT of
  food whose item names no registration number of its overseas manufacturer (GACC Decree
  248), or, when the version lists the registered manufacturers, a number that is not listed,
  not valid on ``now``'s date, of another country than the item's origin, or not registered
  for the item's goods. Not in legacy versions.
- ``CIQ-COMMODITY-INSPECTION`` INSPECT, check ``COMMODITY_INSPECTION``
  (:func:`commodity_inspection`): the item's category is inspected in the declaration's
  direction whatever the documents (cars, fuels, hazardous chemicals). Not in legacy versions.
- ``CIQ-FIRST-IMPORT`` INSPECT, check ``QUARANTINE_SAMPLE`` (:func:`first_import`): an item
  of a category with first-import sampling imported by an importer who is not registered on
  ``now``'s date (China time). IMPORT only. The importer is the goods' owner (the domestic
  consignee, ``declaration.owner``); legacy versions: the declarant. In ``ciq-2026.11`` the
  categories with sampling are live animals, animal products and food; from
  ``ciq-2026.11-r2`` live animals only: an unregistered food importer is held instead.

Per declaration, after the items:

- ``CIQ-IMPORTER-NOT-REGISTERED`` HOLD (:func:`importer_not_registered`): an IMPORT of food
  (an item of a food category) whose importer, the goods' owner, is not registered on
  ``now``'s date (GACC Decree 249): one reason naming the food items. Not in legacy versions.

The service rules with the version in force on the declaration's acceptance date
(:func:`assess_on_acceptance`); :func:`assess` takes the version explicitly (an auditor passes
the one a verdict names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from services.ciq.reference import (
    RULES_VERSION,
    CatalogueEntry,
    ReferenceData,
    load_reference,
    reference_on,
)
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
    "DECLARATION_RULES",
    "RULES_VERSION",
    "Case",
    "ReferenceData",
    "assess",
    "assess_on_acceptance",
    "cert_missing",
    "commodity_inspection",
    "export_certification",
    "first_import",
    "importer_not_registered",
    "in_statutory_catalogue",
    "load_reference",
    "manufacturer_unregistered",
    "quarantine_alert",
    "reference_on",
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
    first_importer: str | None  # the importer of an IMPORT if not registered on ``today``

    @classmethod
    def of(cls, declaration: DeclarationSubmitted, reference: ReferenceData, now: datetime) -> Case:
        is_import = declaration.declaration_type is DeclarationType.IMPORT
        today = now.astimezone(CHINA_TIME).date()
        # the importer: the goods' owner (the declarant in legacy versions, as decided then)
        importer = declaration.declarant if reference.legacy else declaration.owner
        uscc = importer.uscc
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
    the declaration's documents. IMPORT only (legacy versions: IMPORT and EXPORT)."""
    category = entry.category
    if not case.is_import and not case.reference.legacy:
        return  # the authority issues an export's certificate: see export_certification
    if category.certificate is not None and category.certificate not in case.lodged:
        yield Ruling.hold(
            "CIQ-CERT-MISSING",
            f"{item.hs_code} ({category.name}, {entry.description}) needs a "
            f"{category.certificate} and none was lodged",
            item.line,
        )


def export_certification(case: Case, item: GoodsItem, entry: CatalogueEntry) -> Iterator[Ruling]:
    """``CIQ-EXPORT-CERTIFICATION`` INSPECT ``EXPORT_CERTIFICATION``: an EXPORT of an item
    whose category needs a certificate: the authority inspects and issues it. Not legacy."""
    category = entry.category
    if case.is_import or case.reference.legacy or category.certificate is None:
        return
    yield Ruling.inspect(
        "CIQ-EXPORT-CERTIFICATION",
        f"{item.hs_code} ({category.name}, {entry.description}): the goods are inspected "
        f"before export and the inspection authority issues the {category.certificate}",
        "EXPORT_CERTIFICATION",
        item.line,
    )


def manufacturer_unregistered(
    case: Case, item: GoodsItem, entry: CatalogueEntry
) -> Iterator[Ruling]:
    """``CIQ-MANUFACTURER-UNREGISTERED`` HOLD: imported food without a valid registration of
    its overseas manufacturer (GACC Decree 248) for the item's goods and origin. Not legacy.

    A version without a list of registered manufacturers checks only that a number is given.
    """
    if not case.is_import or case.reference.legacy or not entry.category.food:
        return
    number = item.manufacturer_registration
    problem = None
    if not number:
        problem = "names no registration number of its overseas manufacturer"
    elif case.reference.manufacturers:
        maker = case.reference.manufacturers.get(number)
        if maker is None:
            problem = f"names manufacturer registration {number}, which is not registered"
        elif not maker.valid_on(case.today):
            problem = (
                f"names manufacturer registration {number}, valid from "
                f"{maker.registered_on.isoformat()} to {maker.expires_on.isoformat()} only"
            )
        elif maker.country != item.origin_country:
            problem = (
                f"names manufacturer registration {number} of {maker.country}, but the goods "
                f"originate in {item.origin_country}"
            )
        elif not maker.covers(item.hs_code):
            problem = (
                f"names manufacturer registration {number} ({maker.name}), which does not "
                f"cover these goods (registered for {' '.join(maker.hs_prefixes)})"
            )
    if problem is not None:
        yield Ruling.hold(
            "CIQ-MANUFACTURER-UNREGISTERED",
            f"{item.hs_code} ({entry.description}) is food and {problem} "
            "(overseas food manufacturers must be registered with the GACC, Decree 248)",
            item.line,
        )


def commodity_inspection(case: Case, item: GoodsItem, entry: CatalogueEntry) -> Iterator[Ruling]:
    """``CIQ-COMMODITY-INSPECTION`` INSPECT ``COMMODITY_INSPECTION``: the item's category is
    inspected in the declaration's direction (cars, fuels, hazardous chemicals)."""
    direction = case.declaration.declaration_type.value
    if direction in entry.category.inspected:
        yield Ruling.inspect(
            "CIQ-COMMODITY-INSPECTION",
            f"{item.hs_code} ({entry.category.name}, {entry.description}) is subject to "
            f"statutory inspection on {direction.lower()}: {entry.category.description}",
            "COMMODITY_INSPECTION",
            item.line,
        )


def first_import(case: Case, item: GoodsItem, entry: CatalogueEntry) -> Iterator[Ruling]:
    """``CIQ-FIRST-IMPORT`` INSPECT ``QUARANTINE_SAMPLE``: the item's category has first-import
    sampling and the importer (legacy versions: the declarant) is not registered on the
    case's day. IMPORT only."""
    category = entry.category
    if case.first_importer is not None and category.first_import_sampling:
        who = "declarant" if case.reference.legacy else "importer"
        yield Ruling.inspect(
            "CIQ-FIRST-IMPORT",
            f"first import of {category.name} goods: {who} {case.first_importer} "
            f"is not a registered importer",
            "QUARANTINE_SAMPLE",
            item.line,
        )


CatalogueRule = Callable[[Case, GoodsItem, CatalogueEntry], Iterator[Ruling]]

# The rules of an item in the statutory inspection catalogue, in the order they are reported.
CATALOGUE_RULES: tuple[CatalogueRule, ...] = (
    quarantine_alert,
    cert_missing,
    export_certification,
    manufacturer_unregistered,
    commodity_inspection,
    first_import,
)


# --- the rules of the declaration -----------------------------------------------------------


def importer_not_registered(case: Case) -> Iterator[Ruling]:
    """``CIQ-IMPORTER-NOT-REGISTERED`` HOLD: an IMPORT of food by an importer (the goods'
    owner) not registered on the case's day (GACC Decree 249); one reason. Not legacy."""
    if case.reference.legacy or case.first_importer is None:
        return
    food = []
    for item in case.declaration.items:
        entry = case.reference.catalogue_entry(item.hs_code)
        if entry is not None and entry.category.food:
            food.append(str(item.line))
    if food:
        yield Ruling.hold(
            "CIQ-IMPORTER-NOT-REGISTERED",
            f"importer {case.first_importer} is not registered with the GACC as an importer "
            f"of food (Decree 249) and imports food (item {', '.join(food)})",
        )


DeclarationRule = Callable[[Case], Iterator[Ruling]]

# The rules of the declaration, after its items', in the order they are reported.
DECLARATION_RULES: tuple[DeclarationRule, ...] = (importer_not_registered,)


def rulings(case: Case) -> list[Ruling]:
    """Every ruling on the case: item by item, the :data:`CATALOGUE_RULES`' on an item in the
    statutory inspection catalogue (none on any other), then the :data:`DECLARATION_RULES`'."""
    found: list[Ruling] = []
    for item in case.declaration.items:
        entry = case.reference.catalogue_entry(item.hs_code)
        if entry is not None:
            found.extend(ruling for rule in CATALOGUE_RULES for ruling in rule(case, item, entry))
    found.extend(ruling for rule in DECLARATION_RULES for ruling in rule(case))
    return found


def assess(
    declaration: DeclarationSubmitted, reference: ReferenceData, now: datetime
) -> AgencyVerdict:
    """The CIQ verdict on ``declaration`` under ``reference``, decided at ``now``."""
    case = Case.of(declaration, reference, now)
    return build_verdict(declaration, AGENCY, reference.version, rulings(case), now)


def assess_on_acceptance(declaration: DeclarationSubmitted, now: datetime) -> AgencyVerdict:
    """:func:`assess` with the reference data in force on the declaration's acceptance date
    (the verdict's ``rules_version`` names it): what the CIQ service runs."""
    return assess(declaration, reference_on(declaration.submitted_at), now)
