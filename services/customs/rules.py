"""Customs (海关) rules: a pure function of the declaration, the reference data and ``now``.

Each rule is a function below, named after what it checks, that yields the ruling it gives
(none or one); :func:`rulings` runs them in this order.

Per goods item (every rule that applies fires; each gives one reason):

- ``CUS-UNKNOWN-HS`` REJECT (:func:`unknown_hs`): the HS code is not in the tariff (no other
  item rule runs).
- ``CUS-NO-RATE`` HOLD (:func:`no_rate`): the currency is not in the exchange-rate table (the
  item cannot be valued: no undervaluation check, no duty line).
- ``CUS-PROHIBITED`` REJECT (:func:`prohibited`): the tariff line is prohibited in the
  declaration's direction (importing worn clothing is, exporting it is not).
- ``CUS-STATUTORY-UNIT`` REJECT (:func:`statutory_units`): the quantity is not declared in
  the tariff line's first statutory unit, or its second one is missing (法定第一/第二计量单位).
- ``CUS-LICENCE-MISSING`` HOLD (:func:`licence_missing`): IMPORT of a line that needs a
  licence (automatic import licence, precursor chemicals...) and the item names no
  ``IMPORT_LICENSE`` document of the declaration.
- ``CUS-PRICE-QUERY`` HOLD (:func:`undervalued`): value in CNY per unit below
  ``undervaluation_ratio`` (30 %) of the tariff's reference price: customs queries the price
  (价格质疑) and consults the trader (价格磋商); the goods may be released against a
  guarantee meanwhile: the verdict's ``security`` (:func:`security`) is what it must cover.
  Only when the item has a positive quantity in the reference price's unit; both directions.
- ``CUS-ORIGIN-CLAIM`` note, no action (:func:`origin_claim_not_honoured`): a preferential
  origin claim that cannot be honoured; the MFN (or provisional) rate applies.

Per declaration, after the items:

- ``CUS-MANIFEST`` HOLD (:func:`manifest_mismatch`): the declaration does not match the cargo
  manifest (舱单) the carrier filed: its bill of lading is on no manifest, or, one reason per
  mismatch, the bill is of another mode, vessel (IMO) or voyage (a train's number for rail),
  port of loading or discharge, number of packages, gross weight (beyond the version's
  ``manifest_weight_tolerance`` of the manifest's weight), or a container differs (declared
  and not on the bill, or on the bill and not declared: a declaration covers its whole bill).
  Only for versions that ship a manifest and for the modes the manifest lists (not legacy).
- ``CUS-PRICE-INFLUENCED`` HOLD (:func:`price_influenced`): the trader confirms that a
  special relationship influenced the price: the transaction value cannot be accepted as it
  stands (valuation consultation).
- ``CUS-ROYALTIES-NOT-ADDED`` HOLD (:func:`royalties_not_added`): royalties are payable and
  no other costs were added to the price.
- ``CUS-OWNER-RISK`` INSPECT, check ``DECLARANT_RISK`` (:func:`owner_risk`): the risk level
  of the goods' owner, the domestic consignee or consignor, is HIGH -- not the broker's who
  lodges for it (an unknown party is MEDIUM: no action). Not on a change after release
  (``after_release``): the goods are out, nothing is left to examine, and the join takes an
  INSPECT on it as a refusal, so the owner's risk would refuse every change it asks.
- ``CUS-RANDOM-SAMPLE`` INSPECT, check ``RANDOM_SAMPLE`` (:func:`random_sample`): the
  declaration falls in the random sample, drawn with a keyed hash of its id under the agency's
  secret sampling key (see :mod:`services.customs.sampling`): the trader cannot predict it, a
  replay with the same key reproduces it. The verdict names the key version
  (``sampling_key_version``). Not on a change after release: the draw is the declaration id's,
  the same for every version, so a declaration drawn once would have every change refused
  (a refund included) for a sample of goods already released.

Taxes (:mod:`services.customs.duties`): IMPORT only, one ``DutyLine`` per item that can be
assessed (HS code known and not prohibited, currency known, quantities in the statutory
units), whatever the decision, so the officer sees the liability; ``tax_totals`` per kind of
tax with the de minimis applied, ``total_duties`` what is collected. An EXPORT pays none.

``CUS-NOT-ASSESSABLE`` HOLD: the taxes would reach :data:`MAX_ASSESSED` (10^14 CNY) or an
amount no tax line carries; the verdict then has no duty lines, and customs assesses by hand.

Reference versions of the legacy tariff format (``customs-2026.11``) keep the rules as they
were then, so their verdicts recompute exactly: prohibited in both directions, one licence
document for every item, undervaluation an INSPECT of the unit value, the declarant's risk
(``CUS-DECLARANT-RISK``), duty and VAT only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from pydantic import ValidationError

from services.customs import duties as money
from services.customs.rates import Chosen, Rate, choose_duty_rate
from services.customs.reference import (
    LICENCES,
    RULES_VERSION,
    ReferenceData,
    RiskLevel,
    TariffLine,
    load_reference,
    reference_on,
)
from services.customs.sampling import SampleDraw, SamplingKey, draw, is_sampled, sample_fraction
from singlewindow.events import (
    MAX_ASSESSED,
    AgencyVerdict,
    Decision,
    DeclarationSubmitted,
    DeclarationType,
    DocumentType,
    DutyLine,
    GoodsItem,
    TaxTotal,
)
from singlewindow.reference import acceptance_date
from singlewindow.verdicts import Ruling, build_verdict

__all__ = [
    "AGENCY",
    "DECLARATION_RULES",
    "ITEM_RULES",
    "RANDOM_SAMPLE",
    "RULES_VERSION",
    "Case",
    "ReferenceData",
    "SampleDraw",
    "SamplingKey",
    "assess",
    "assess_drawn",
    "assess_on_acceptance",
    "is_sampled",
    "licence_missing",
    "load_reference",
    "manifest_mismatch",
    "no_rate",
    "origin_claim_not_honoured",
    "owner_risk",
    "price_influenced",
    "prohibited",
    "random_sample",
    "royalties_not_added",
    "rulings",
    "sample_fraction",
    "statutory_units",
    "undervalued",
    "unknown_hs",
]

AGENCY = "customs"
RANDOM_SAMPLE = "CUS-RANDOM-SAMPLE"
PRICE_QUERY = "CUS-PRICE-QUERY"
CNY = "CNY"
# verdicts decided from this instant name the security of a price query (:func:`security`);
# those decided before were decided without it, and an auditor recomputes them so
SECURITY_FROM = datetime(2026, 11, 27, tzinfo=UTC)
NOT_ASSESSABLE = "CUS-NOT-ASSESSABLE"


@dataclass(frozen=True, slots=True)
class Case:
    """What the customs rules decide on: a declaration, the reference data, the sample draw."""

    declaration: DeclarationSubmitted
    reference: ReferenceData
    sample: SampleDraw
    is_import: bool
    licences: frozenset[str]  # references of the IMPORT_LICENSE documents lodged
    day: date  # the acceptance date (China time): fixes rates and measures in force

    @classmethod
    def of(
        cls, declaration: DeclarationSubmitted, reference: ReferenceData, sample: SampleDraw
    ) -> Case:
        return cls(
            declaration=declaration,
            reference=reference,
            sample=sample,
            is_import=declaration.declaration_type is DeclarationType.IMPORT,
            licences=frozenset(
                d.reference for d in declaration.documents if d.type is DocumentType.IMPORT_LICENSE
            ),
            day=acceptance_date(declaration.submitted_at),
        )

    def quantities(self, item: GoodsItem) -> dict[str, Decimal]:
        """The item's quantities by unit (its statutory first and second)."""
        found = {item.unit: item.quantity}
        if item.second_unit is not None and item.second_quantity is not None:
            found[item.second_unit] = item.second_quantity
        return found


# --- the rules of one goods item ------------------------------------------------------------


def unknown_hs(case: Case, item: GoodsItem) -> Iterator[Ruling]:
    """``CUS-UNKNOWN-HS`` REJECT: the item's HS code is not in the tariff.

    The other item rules need the item's tariff line: when this one fires, they do not run.
    """
    if item.hs_code not in case.reference.tariff:
        yield Ruling.reject(
            "CUS-UNKNOWN-HS",
            f"HS code {item.hs_code} is not in the tariff {case.reference.version}",
            item.line,
        )


def no_rate(case: Case, item: GoodsItem, line: TariffLine) -> Iterator[Ruling]:
    """``CUS-NO-RATE`` HOLD: the item's currency is not in the exchange-rate table."""
    if item.currency not in case.reference.cny_per_unit:
        yield Ruling.hold(
            "CUS-NO-RATE",
            f"no customs exchange rate for {item.currency} "
            f"(rates of {case.reference.rate_date.isoformat()})",
            item.line,
        )


def prohibited(case: Case, item: GoodsItem, line: TariffLine) -> Iterator[Ruling]:
    """``CUS-PROHIBITED`` REJECT: the item's tariff line is prohibited in this direction."""
    if line.prohibited(case.is_import):
        direction = (
            "" if case.reference.legacy else " for import" if case.is_import else " for export"
        )
        yield Ruling.reject(
            "CUS-PROHIBITED",
            f"{item.hs_code} ({line.description}) is prohibited{direction}",
            item.line,
        )


def statutory_units(case: Case, item: GoodsItem, line: TariffLine) -> Iterator[Ruling]:
    """``CUS-STATUTORY-UNIT`` REJECT: the item's quantities are not in the line's statutory
    units (first: ``quantity``/``unit``; second, when the line has one: ``second_*``)."""
    if line.unit1 is None:
        return  # the legacy tariff names no statutory unit
    if item.unit != line.unit1:
        yield Ruling.reject(
            "CUS-STATUTORY-UNIT",
            f"declare the quantity of {item.hs_code} in {line.unit1}, not {item.unit}",
            item.line,
        )
    if line.unit2 is not None and (item.second_unit != line.unit2 or not item.second_quantity):
        yield Ruling.reject(
            "CUS-STATUTORY-UNIT",
            f"declare the second quantity of {item.hs_code} in {line.unit2}",
            item.line,
        )


def licence_missing(case: Case, item: GoodsItem, line: TariffLine) -> Iterator[Ruling]:
    """``CUS-LICENCE-MISSING`` HOLD: an IMPORT of a licence line whose item names no
    ``IMPORT_LICENSE`` document lodged (legacy versions: no such document at all)."""
    if not case.is_import or line.licence is None:
        return
    if case.reference.legacy:  # the words of the verdicts of then, byte for byte
        if not case.licences:
            yield Ruling.hold(
                "CUS-LICENCE-MISSING",
                f"{item.hs_code} ({line.description}) needs an import licence "
                f"and no {DocumentType.IMPORT_LICENSE} document was lodged",
                item.line,
            )
    elif not any(reference in case.licences for reference in item.licences):
        yield Ruling.hold(
            "CUS-LICENCE-MISSING",
            f"{item.hs_code} ({line.description}) needs an import licence: "
            f"{LICENCES[line.licence]}, and the item names no {DocumentType.IMPORT_LICENSE} "
            "document lodged",
            item.line,
        )


def undervalued(case: Case, item: GoodsItem, line: TariffLine) -> Iterator[Ruling]:
    """``CUS-PRICE-QUERY`` HOLD (legacy versions: ``CUS-UNDERVALUED`` INSPECT ``UNIT_VALUE``):
    the item's value in CNY per unit is below ``undervaluation_ratio`` of the tariff line's
    reference price.

    Only for an item with an exchange rate, declared in the unit of the reference price with a
    positive quantity, on a line that has a reference price; in either direction.
    """
    reference = case.reference
    rate = reference.cny_per_unit.get(item.currency)
    quantity = case.quantities(item).get(line.price_unit)
    if rate is None or line.reference_price_cny is None or quantity is None or quantity <= 0:
        return
    value_cny = money.to_cny(item.customs_value, rate)
    floor = reference.undervaluation_ratio * line.reference_price_cny
    if value_cny < floor * quantity:  # value_cny / quantity < floor, without division
        unit_value = money.round_cny(value_cny / quantity)
        below = (
            f"unit value {unit_value} CNY/{line.price_unit} is below "
            f"{reference.undervaluation_ratio:.0%} of the reference price "
            f"{line.reference_price_cny} CNY/{line.price_unit}"
        )
        if reference.legacy:
            yield Ruling.inspect("CUS-UNDERVALUED", below, "UNIT_VALUE", item.line)
        else:
            yield Ruling.hold(
                PRICE_QUERY,
                f"{below}: customs queries the price (价格质疑) and consults you (价格磋商); "
                "the goods may be released against a guarantee meanwhile",
                item.line,
            )


def origin_claim_not_honoured(case: Case, item: GoodsItem, line: TariffLine) -> Iterator[Ruling]:
    """``CUS-ORIGIN-CLAIM`` note: the item's preferential origin claim cannot be honoured (or
    gives more duty than the normal rate); the verdict's decision is not affected."""
    if not case.is_import or item.origin_claim is None or case.reference.legacy:
        return
    chosen = duty_rate(case, item, line)
    if chosen is not None and chosen.note is not None:
        yield Ruling.note("CUS-ORIGIN-CLAIM", chosen.note, item.line)


ItemRule = Callable[[Case, GoodsItem, TariffLine], Iterator[Ruling]]

# The rules of an item whose HS code is in the tariff, in the order they are reported.
ITEM_RULES: tuple[ItemRule, ...] = (
    no_rate,
    prohibited,
    statutory_units,
    licence_missing,
    undervalued,
    origin_claim_not_honoured,
)


# --- the rules of the whole declaration -----------------------------------------------------


def manifest_mismatch(case: Case) -> Iterator[Ruling]:
    """``CUS-MANIFEST`` HOLD: the consignment does not match its bill on the cargo manifest
    (one ruling per mismatch; one if the bill is on no manifest). Only when the version ships
    a manifest that lists the consignment's mode."""
    manifest = case.reference.manifest
    consignment = case.declaration.consignment
    if manifest is None or case.reference.legacy or consignment.mode not in manifest.modes:
        return
    number = consignment.bill_of_lading
    bill = manifest.bills.get(number)
    if bill is None:
        yield Ruling.hold(
            "CUS-MANIFEST", f"bill of lading {number} is on no {consignment.mode} manifest"
        )
        return

    def differs(what: str, declared: object, filed: object) -> Ruling:
        return Ruling.hold(
            "CUS-MANIFEST",
            f"{what}: declared {'none' if declared is None else declared}, "
            f"the manifest of bill {number} has {'none' if filed is None else filed}",
        )

    for what, declared, filed in (
        ("transport mode", consignment.mode, bill.mode),
        ("vessel IMO", consignment.vessel_imo, bill.vessel_imo),
        ("voyage" if bill.vessel_imo else "train", consignment.voyage, bill.voyage),
        ("port of loading", consignment.port_of_loading, bill.port_of_loading),
        ("port of discharge", consignment.port_of_discharge, bill.port_of_discharge),
        ("number of packages", consignment.packages, bill.packages),
    ):
        if declared != filed:
            yield differs(what, declared, filed)
    weight = consignment.gross_weight_kg
    tolerance = case.reference.manifest_weight_tolerance
    if weight is None or abs(weight - bill.gross_weight_kg) > tolerance * bill.gross_weight_kg:
        yield differs(
            f"gross weight (kg, tolerance {tolerance:.0%})",
            weight,
            bill.gross_weight_kg,
        )
    for container in consignment.containers:
        if container not in bill.containers:
            yield Ruling.hold(
                "CUS-MANIFEST", f"container {container} is not on the manifest of bill {number}"
            )
    for container in bill.containers:
        if container not in consignment.containers:
            yield Ruling.hold(
                "CUS-MANIFEST",
                f"container {container} is on the manifest of bill {number} but not declared",
            )


def price_influenced(case: Case) -> Iterator[Ruling]:
    """``CUS-PRICE-INFLUENCED`` HOLD: a special relationship influenced the price."""
    valuation = case.declaration.valuation
    if valuation is not None and valuation.price_influenced:
        yield Ruling.hold(
            "CUS-PRICE-INFLUENCED",
            "the relationship between buyer and seller influenced the price: the transaction "
            "value is not accepted as declared; customs opens a valuation consultation",
        )


def royalties_not_added(case: Case) -> Iterator[Ruling]:
    """``CUS-ROYALTIES-NOT-ADDED`` HOLD: royalties payable, no other costs added."""
    valuation = case.declaration.valuation
    if valuation is not None and valuation.royalties_payable and not valuation.other_costs:
        yield Ruling.hold(
            "CUS-ROYALTIES-NOT-ADDED",
            "royalties or licence fees are payable for the goods but no other costs were "
            "added to the price: declare them in the valuation's other costs",
        )


def owner_risk(case: Case) -> Iterator[Ruling]:
    """INSPECT ``DECLARANT_RISK``: the goods' owner has risk level HIGH (``CUS-OWNER-RISK``;
    ``CUS-DECLARANT-RISK`` for declarations before 2026-12, which name only the declarant).

    A party without a risk profile is MEDIUM, which draws no action.
    """
    declaration = case.declaration
    if declaration.after_release:
        return  # the goods are out: nothing to examine (an INSPECT would refuse the change)
    uscc = declaration.owner.uscc
    risk = case.reference.risk_of(uscc)
    if risk is not RiskLevel.HIGH:
        return
    if declaration.domestic_party is None or case.reference.legacy:
        yield Ruling.inspect(
            "CUS-DECLARANT-RISK", f"declarant {uscc} has risk level {risk}", "DECLARANT_RISK"
        )
    else:
        yield Ruling.inspect(
            "CUS-OWNER-RISK",
            f"the consignee or consignor {uscc} has risk level {risk}",
            "DECLARANT_RISK",
        )


def random_sample(case: Case) -> Iterator[Ruling]:
    """``CUS-RANDOM-SAMPLE`` INSPECT ``RANDOM_SAMPLE``: the declaration was drawn in the random
    sample (the draw is the case's, see :mod:`services.customs.sampling`); never a change after
    release, whose goods are out."""
    if case.sample.sampled and not case.declaration.after_release:
        yield Ruling.inspect(
            RANDOM_SAMPLE,
            f"selected by random sampling at rate {case.reference.random_inspection_rate}",
            "RANDOM_SAMPLE",
        )


DeclarationRule = Callable[[Case], Iterator[Ruling]]

# The rules of the declaration, after its items', in the order they are reported.
DECLARATION_RULES: tuple[DeclarationRule, ...] = (
    manifest_mismatch,
    price_influenced,
    royalties_not_added,
    owner_risk,
    random_sample,
)


def rulings(case: Case) -> list[Ruling]:
    """Every ruling on the case: item by item (``CUS-UNKNOWN-HS`` alone, or the
    :data:`ITEM_RULES`), then the :data:`DECLARATION_RULES`."""
    found: list[Ruling] = []
    tariff = case.reference.tariff
    for item in case.declaration.items:
        unknown = list(unknown_hs(case, item))
        if unknown:
            found.extend(unknown)
            continue
        line = tariff[item.hs_code]
        found.extend(ruling for rule in ITEM_RULES for ruling in rule(case, item, line))
    found.extend(ruling for rule in DECLARATION_RULES for ruling in rule(case))
    return found


# --- the verdict ------------------------------------------------------------------------------


def assess(
    declaration: DeclarationSubmitted,
    reference: ReferenceData,
    now: datetime,
    sampling_key: SamplingKey,
) -> AgencyVerdict:
    """The customs verdict on ``declaration`` under ``reference``, decided at ``now``.

    The random sample is drawn under ``sampling_key``, whose version the verdict names.
    """
    sample = draw(declaration.declaration_id, reference.random_inspection_rate, sampling_key)
    return assess_drawn(declaration, reference, now, sample)


def assess_on_acceptance(
    declaration: DeclarationSubmitted, now: datetime, sampling_key: SamplingKey
) -> AgencyVerdict:
    """:func:`assess` with the reference data in force on the declaration's acceptance date
    (the verdict's ``rules_version`` names it): what the customs service runs."""
    return assess(declaration, reference_on(declaration.submitted_at), now, sampling_key)


def assess_drawn(
    declaration: DeclarationSubmitted, reference: ReferenceData, now: datetime, sample: SampleDraw
) -> AgencyVerdict:
    """The customs verdict given the outcome of the random-sample draw.

    :func:`assess` draws, then calls this; an auditor without the key calls it with the draw
    a verdict records, to check everything else in the verdict.
    """
    case = Case.of(declaration, reference, sample)
    found = rulings(case)
    taxes = _taxes(case)
    if taxes is None:
        found.append(
            Ruling.hold(
                NOT_ASSESSABLE,
                f"the taxes on this declaration reach {MAX_ASSESSED:,.0f} CNY or more, beyond "
                "what a verdict carries: customs assesses it outside the automatic assessment",
            )
        )
    duty_lines, totals, due = taxes or ([], (), Decimal("0.00"))
    verdict = build_verdict(
        declaration, AGENCY, reference.version, found, now, duties=duty_lines, total_duties=due
    )
    return verdict.model_copy(
        update={
            "sampling_key_version": sample.key_version,
            "tax_totals": totals,
            "security": security(case, found) if now >= SECURITY_FROM else None,
        }
    )


def security(case: Case, found: list[Ruling]) -> Decimal | None:
    """What a guarantee must cover for the goods to be released while customs determines
    their value (担保放行 pending a price consultation, 价格磋商), or None.

    The Regulations on Customs Guarantees (《海关事务担保条例》) let goods whose customs value
    is not yet determined be released against a guarantee for no less than the taxes they may
    bear: the taxes on the declaration with each questioned item valued at its tariff line's
    reference price (the reference price times the quantity in its unit, in CNY), the other
    items as declared. Only when every ruling that asks for something is a
    ``CUS-PRICE-QUERY`` HOLD (anything else must be put right first), on a version that is
    no change after release (its goods are out already), and only when that collects
    something.
    """
    asking = [r for r in found if r.decision is not Decision.CLEAR]
    if case.declaration.after_release or not asking:
        return None
    if any(r.reason.code != PRICE_QUERY for r in asking):
        return None
    questioned = {r.reason.item for r in asking}
    items = tuple(
        _at_reference_price(case, item) if item.line in questioned else item
        for item in case.declaration.items
    )
    revalued = dataclasses.replace(
        case, declaration=case.declaration.model_copy(update={"items": items})
    )
    taxes = _taxes(revalued)
    return taxes[2] if taxes is not None and taxes[2] > 0 else None


def _at_reference_price(case: Case, item: GoodsItem) -> GoodsItem:
    """The item valued at its tariff line's reference price, in CNY (a price query names
    only items that have one, with a quantity in its unit)."""
    line = case.reference.tariff[item.hs_code]
    assert line.reference_price_cny is not None and line.price_unit is not None
    quantity = case.quantities(item)[line.price_unit]
    value = money.round_cny(line.reference_price_cny * quantity)
    return item.model_copy(update={"customs_value": value, "currency": CNY})


def _taxes(case: Case) -> tuple[list[DutyLine], tuple[TaxTotal, ...], Decimal] | None:
    """The duty lines of an IMPORT (none for an EXPORT), the totals per kind and what is due;
    None when an amount would not fit a verdict (a tax line's amount or base of 10^16 CNY or
    more, or more than :data:`MAX_ASSESSED` due): a 15-digit quantity under a specific tax."""
    try:
        lines = [
            line
            for item in case.declaration.items
            if case.is_import and (line := _duty_line(case, item)) is not None
        ]
        reference = case.reference
        totals = () if reference.legacy else money.tax_totals(lines, reference.de_minimis_cny)
        due = money.total_duties(lines, totals)
    except ValidationError:  # an amount beyond what a TaxLine, DutyLine or TaxTotal carries
        return None
    return None if due >= MAX_ASSESSED else (lines, totals, due)


def duty_rate(case: Case, item: GoodsItem, line: TariffLine) -> Chosen | None:
    """The duty rate that applies to the item (:func:`services.customs.rates.choose_duty_rate`),
    None when the item cannot be valued in CNY or lacks a quantity a rate needs."""
    reference = case.reference
    cny_per_unit = reference.cny_per_unit.get(item.currency)
    quantities = case.quantities(item)
    candidates = (line.mfn, line.provisional, line.general)
    if cny_per_unit is None or not money.can_levy(candidates, quantities):
        return None
    value_cny = money.to_cny(item.customs_value, cny_per_unit)
    claim = item.origin_claim.agreement if item.origin_claim is not None else None

    def preferential(agreement: str) -> Rate | None:
        rate = reference.preferential_rate(agreement, item.hs_code)
        return rate if rate is None or money.can_levy((rate,), quantities) else None

    return choose_duty_rate(
        mfn=line.mfn,
        provisional=line.provisional,
        general=line.general or line.mfn,
        origin=item.origin_country,
        general_origins=reference.general_rate_origins,
        claim=claim,
        agreements=dict(reference.agreements),
        preferential=preferential,
        duty_of=lambda rate: money.duty(rate, value_cny, quantities),
    )


def _duty_line(case: Case, item: GoodsItem) -> DutyLine | None:
    reference = case.reference
    line = reference.tariff.get(item.hs_code)
    cny_per_unit = reference.cny_per_unit.get(item.currency)
    if line is None or line.prohibited(case.is_import) or cny_per_unit is None:
        return None
    if reference.legacy:
        return money.legacy_duty_line(
            item.line, item.customs_value, cny_per_unit, line.duty_rate, line.vat_rate
        )
    chosen = duty_rate(case, item, line)
    quantities = case.quantities(item)
    additional = reference.additional_duties(item.hs_code, item.origin_country, case.day)
    rates = [a.rate for a in additional] + [line.excise]
    if chosen is None or not money.can_levy(rates, quantities):
        return None
    return money.duty_line(
        item.line,
        item.customs_value,
        cny_per_unit,
        chosen,
        [(f"{a.measure}: {a.description}", a.rate) for a in additional],
        None if line.excise is None else (line.hs_code, line.excise),
        (line.hs_code, line.vat_rate),
        quantities,
    )
