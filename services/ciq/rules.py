"""Inspection and quarantine (CIQ, 检验检疫) rules: pure, of declaration, reference and ``now``.

Only goods items in the statutory inspection catalogue are concerned (longest HS prefix
match); an item outside it draws no action. Per catalogued item, every rule that applies fires:

- ``CIQ-QUARANTINE-ALERT`` REJECT: an alert in force on ``now`` (its date in China time)
  covers the item's HS code and origin country. IMPORT only.
- ``CIQ-CERT-MISSING`` HOLD: the certificate the item's category requires
  (``HEALTH_CERTIFICATE`` or ``PHYTOSANITARY_CERTIFICATE``) is not among the declaration's
  documents (documents are not tied to items: one certificate covers every item needing it).
  IMPORT and EXPORT: the only rule for an EXPORT (the exporter must lodge the certificate the
  destination requires; alerts and importer registration concern imports).
- ``CIQ-FIRST-IMPORT`` INSPECT, check ``QUARANTINE_SAMPLE``: an item of a category with
  first-import sampling (in this data: live animals, animal products, food) imported by a
  declarant who is not a registered importer on ``now``'s date (China time). IMPORT only.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from services.ciq.reference import RULES_VERSION, ReferenceData, load_reference
from singlewindow.events import (
    Agency,
    AgencyVerdict,
    DeclarationSubmitted,
    DeclarationType,
    DocumentType,
    GoodsItem,
)
from singlewindow.verdicts import Ruling, build_verdict

__all__ = [
    "AGENCY",
    "CHINA_TIME",
    "RULES_VERSION",
    "ReferenceData",
    "assess",
    "in_statutory_catalogue",
    "load_reference",
]

AGENCY = Agency.CIQ
CHINA_TIME = timezone(timedelta(hours=8), "CST")  # Asia/Shanghai, no daylight saving


def in_statutory_catalogue(hs_code: str, reference: ReferenceData) -> bool:
    """Whether goods of ``hs_code`` are subject to statutory inspection under ``reference``."""
    return reference.catalogue_entry(hs_code) is not None


def assess(
    declaration: DeclarationSubmitted, reference: ReferenceData, now: datetime
) -> AgencyVerdict:
    """The CIQ verdict on ``declaration`` under ``reference``, decided at ``now``."""
    is_import = declaration.declaration_type is DeclarationType.IMPORT
    today = now.astimezone(CHINA_TIME).date()
    lodged = {document.type for document in declaration.documents}
    uscc = declaration.declarant.uscc
    first_importer = uscc if is_import and not reference.is_registered(uscc, today) else None
    rulings: list[Ruling] = []
    for item in declaration.items:
        rulings.extend(_item_rulings(item, reference, is_import, today, lodged, first_importer))
    return build_verdict(declaration, AGENCY, reference.version, rulings, now)


def _item_rulings(
    item: GoodsItem,
    reference: ReferenceData,
    is_import: bool,
    today: date,
    lodged: set[DocumentType],
    first_importer: str | None,
) -> list[Ruling]:
    entry = reference.catalogue_entry(item.hs_code)
    if entry is None:
        return []
    category = entry.category
    rulings: list[Ruling] = []
    if is_import:
        for alert in reference.alerts:
            if alert.in_force(today) and alert.covers(item.hs_code, item.origin_country):
                rulings.append(
                    Ruling.reject(
                        "CIQ-QUARANTINE-ALERT",
                        f"{item.hs_code} from {item.origin_country} is banned by quarantine "
                        f"alert {alert.alert_id} ({alert.disease}, "
                        f"since {alert.issued_on.isoformat()})",
                        item.line,
                    )
                )
    if category.certificate not in lodged:
        rulings.append(
            Ruling.hold(
                "CIQ-CERT-MISSING",
                f"{item.hs_code} ({category.name}, {entry.description}) needs a "
                f"{category.certificate} and none was lodged",
                item.line,
            )
        )
    if first_importer is not None and category.first_import_sampling:
        rulings.append(
            Ruling.inspect(
                "CIQ-FIRST-IMPORT",
                f"first import of {category.name} goods: declarant {first_importer} "
                f"is not a registered importer",
                "QUARANTINE_SAMPLE",
                item.line,
            )
        )
    return rulings
