"""The veterinary authority's rules: pure functions of the declaration, the reference and
``now``, one per rule. Only imported meat and dairy items concern it (``category``).

- ``VET-ORIGIN-SUSPENDED`` REJECT: the item's origin is suspended for its HS code since a
  date on or before ``now`` (UTC date).
- ``VET-CERT-MISSING`` HOLD: no veterinary health certificate (``HEALTH_CERTIFICATE``) lodged.
- ``VET-CERT-UNREADABLE`` HOLD: certificates were lodged, but none names an establishment
  (``<ISO country>-<establishment>-<serial>``).
- ``VET-EST-UNREGISTERED`` REJECT: the establishments the certificates name are none of the
  item's origin country registered for the item's category.
- Fee ``VET_INSPECTION_FEE`` per concerned item: the fee per item plus the fee per started
  tonne when the quantity is a mass (KGM, or KG as declared today; TNE).
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_CEILING, Decimal

from singlewindow.events import (
    AgencyVerdict,
    Charge,
    DeclarationSubmitted,
    DeclarationType,
    DocumentType,
    GoodsItem,
)
from singlewindow.identifiers import validate_country
from singlewindow.verdicts import Ruling, build_verdict
from vet_agency.reference import VetReference

AGENCY = "vet"
KILOGRAMS = {"KGM": Decimal(1), "KG": Decimal(1), "TNE": Decimal(1000)}


def assess(
    declaration: DeclarationSubmitted, reference: VetReference, now: datetime
) -> AgencyVerdict:
    """The veterinary verdict on ``declaration``, with the inspection fees it levies."""
    rulings: list[Ruling] = []
    charges: list[Charge] = []
    if declaration.declaration_type is DeclarationType.IMPORT:
        certificates = [
            d.reference for d in declaration.documents if d.type is DocumentType.HEALTH_CERTIFICATE
        ]
        for item in declaration.items:
            category = reference.category(item.hs_code)
            if category is None:
                continue
            rulings += origin_suspended(item, reference, now)
            rulings += certificate_missing(item, category, certificates)
            rulings += certificate_unreadable(item, category, certificates)
            rulings += establishment_unregistered(item, category, certificates, reference)
            charges.append(inspection_fee(item, category, reference))
    return build_verdict(declaration, AGENCY, reference.version, rulings, now, charges=charges)


def origin_suspended(item: GoodsItem, reference: VetReference, now: datetime) -> list[Ruling]:
    return [
        Ruling.reject(
            "VET-ORIGIN-SUSPENDED",
            f"{item.hs_code} from {item.origin_country}: {s.reason} (since {s.since})",
            item.line,
        )
        for s in reference.suspensions
        if s.country == item.origin_country
        and item.hs_code.startswith(s.hs_prefix)
        and s.since <= now.date()
    ]


def certificate_missing(item: GoodsItem, category: str, certificates: list[str]) -> list[Ruling]:
    if certificates:
        return []
    message = f"{category.lower()} item {item.hs_code} needs a veterinary health certificate"
    return [Ruling.hold("VET-CERT-MISSING", message, item.line)]


def certificate_unreadable(item: GoodsItem, category: str, certificates: list[str]) -> list[Ruling]:
    if not certificates or any(certified_establishment(c) for c in certificates):
        return []
    message = (
        f"no lodged health certificate reads <country>-<establishment>-<serial>: the "
        f"establishment that produced {category.lower()} item {item.hs_code} is not named"
    )
    return [Ruling.hold("VET-CERT-UNREADABLE", message, item.line)]


def establishment_unregistered(
    item: GoodsItem, category: str, certificates: list[str], reference: VetReference
) -> list[Ruling]:
    named = {certified_establishment(c) for c in certificates} - {None}
    if not named or (item.origin_country, category) in {
        (country, cat)
        for country, establishment, cat in reference.establishments
        if (country, establishment) in named
    }:
        return []
    message = (
        f"no lodged certificate names an establishment of {item.origin_country} registered "
        f"for {category.lower()}"
    )
    return [Ruling.reject("VET-EST-UNREGISTERED", message, item.line)]


def certified_establishment(certificate: str) -> tuple[str, str] | None:
    """(country, establishment) of a certificate reference ``<country>-<establishment>-<serial>``
    (an establishment number may itself hold dashes), None if it reads otherwise."""
    country, _, rest = certificate.partition("-")
    establishment, _, serial = rest.rpartition("-")
    try:
        validate_country(country)
    except ValueError:
        return None
    return (country, establishment) if establishment and serial else None


def inspection_fee(item: GoodsItem, category: str, reference: VetReference) -> Charge:
    amount = reference.fee_per_item
    if item.unit in KILOGRAMS:
        tonnes = (item.quantity * KILOGRAMS[item.unit] / 1000).to_integral_value(ROUND_CEILING)
        amount += tonnes * reference.fee_per_tonne
    return Charge(
        code="VET_INSPECTION_FEE",
        description=f"veterinary inspection of {category.lower()} item {item.line} "
        f"({reference.version}: per item and per started tonne)",
        amount=amount,
        item=item.line,
    )
