"""Customs (海关) rules: a pure function of the declaration, the reference data and ``now``.

Each rule is a function below, named after what it checks, that yields the ruling it gives
(none or one); :func:`rulings` runs them in this order.

Per goods item (every rule that applies fires; each gives one reason):

- ``CUS-UNKNOWN-HS`` REJECT (:func:`unknown_hs`): the HS code is not in the tariff (no other
  item rule runs).
- ``CUS-NO-RATE`` HOLD (:func:`no_rate`): the currency is not in the exchange-rate table (the
  item cannot be valued: no undervaluation check, no duty line).
- ``CUS-PROHIBITED`` REJECT (:func:`prohibited`): the tariff line is prohibited (both
  directions in this data).
- ``CUS-LICENCE-MISSING`` HOLD (:func:`licence_missing`): IMPORT of a licence line and no
  ``IMPORT_LICENSE`` document in the declaration (documents are not tied to items: one licence
  document covers them all).
- ``CUS-UNDERVALUED`` INSPECT, check ``UNIT_VALUE`` (:func:`undervalued`): value in CNY per
  unit below ``undervaluation_ratio`` (30 %) of the tariff's reference price. Only when the
  item is declared in the reference price's unit with a positive quantity; both directions.

Per declaration, after the items:

- ``CUS-DECLARANT-RISK`` INSPECT, check ``DECLARANT_RISK`` (:func:`declarant_risk`): the
  declarant's risk level is HIGH (an unknown declarant is MEDIUM: no action).
- ``CUS-RANDOM-SAMPLE`` INSPECT, check ``RANDOM_SAMPLE`` (:func:`random_sample`): the
  declaration falls in the random sample, drawn with a keyed hash of its id under the agency's
  secret sampling key (see :mod:`services.customs.sampling`): the trader cannot predict it, a
  replay with the same key reproduces it. The verdict names the key version
  (``sampling_key_version``).

Duties (:mod:`services.customs.duties`): IMPORT only, one ``DutyLine`` per item that can be
assessed (HS code known and not prohibited, currency known), whatever the decision, so the
officer sees the liability. An EXPORT pays none: no duty lines and ``total_duties`` 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from services.customs import duties as money
from services.customs.reference import (
    RULES_VERSION,
    ReferenceData,
    RiskLevel,
    TariffLine,
    load_reference,
)
from services.customs.sampling import SampleDraw, SamplingKey, draw, is_sampled, sample_fraction
from singlewindow.events import (
    AgencyVerdict,
    DeclarationSubmitted,
    DeclarationType,
    DocumentType,
    DutyLine,
    GoodsItem,
)
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
    "declarant_risk",
    "is_sampled",
    "licence_missing",
    "load_reference",
    "no_rate",
    "prohibited",
    "random_sample",
    "rulings",
    "sample_fraction",
    "undervalued",
    "unknown_hs",
]

AGENCY = "customs"
RANDOM_SAMPLE = "CUS-RANDOM-SAMPLE"


@dataclass(frozen=True, slots=True)
class Case:
    """What the customs rules decide on: a declaration, the reference data, the sample draw."""

    declaration: DeclarationSubmitted
    reference: ReferenceData
    sample: SampleDraw
    is_import: bool
    has_licence: bool  # an IMPORT_LICENSE document is lodged (it covers every item)

    @classmethod
    def of(
        cls, declaration: DeclarationSubmitted, reference: ReferenceData, sample: SampleDraw
    ) -> Case:
        return cls(
            declaration=declaration,
            reference=reference,
            sample=sample,
            is_import=declaration.declaration_type is DeclarationType.IMPORT,
            has_licence=any(d.type is DocumentType.IMPORT_LICENSE for d in declaration.documents),
        )


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
    """``CUS-PROHIBITED`` REJECT: the item's tariff line is prohibited (in either direction)."""
    if line.prohibited:
        yield Ruling.reject(
            "CUS-PROHIBITED",
            f"{item.hs_code} ({line.description}) is prohibited",
            item.line,
        )


def licence_missing(case: Case, item: GoodsItem, line: TariffLine) -> Iterator[Ruling]:
    """``CUS-LICENCE-MISSING`` HOLD: an IMPORT of a licence line, no ``IMPORT_LICENSE`` lodged."""
    if case.is_import and line.licence_required and not case.has_licence:
        yield Ruling.hold(
            "CUS-LICENCE-MISSING",
            f"{item.hs_code} ({line.description}) needs an import licence "
            f"and no {DocumentType.IMPORT_LICENSE} document was lodged",
            item.line,
        )


def undervalued(case: Case, item: GoodsItem, line: TariffLine) -> Iterator[Ruling]:
    """``CUS-UNDERVALUED`` INSPECT ``UNIT_VALUE``: the item's value in CNY per unit is below
    ``undervaluation_ratio`` of the tariff line's reference price.

    Only for an item with an exchange rate, declared in the unit of the reference price with a
    positive quantity, on a line that has a reference price; in either direction.
    """
    reference = case.reference
    rate = reference.cny_per_unit.get(item.currency)
    if (
        rate is None
        or line.reference_price_cny is None
        or item.unit != line.price_unit
        or item.quantity <= 0
    ):
        return
    value_cny = money.to_cny(item.customs_value, rate)
    floor = reference.undervaluation_ratio * line.reference_price_cny
    if value_cny < floor * item.quantity:  # value_cny / quantity < floor, without division
        unit_value = money.round_cny(value_cny / item.quantity)
        yield Ruling.inspect(
            "CUS-UNDERVALUED",
            f"unit value {unit_value} CNY/{item.unit} is below "
            f"{reference.undervaluation_ratio:.0%} of the reference price "
            f"{line.reference_price_cny} CNY/{line.price_unit}",
            "UNIT_VALUE",
            item.line,
        )


ItemRule = Callable[[Case, GoodsItem, TariffLine], Iterator[Ruling]]

# The rules of an item whose HS code is in the tariff, in the order they are reported.
ITEM_RULES: tuple[ItemRule, ...] = (no_rate, prohibited, licence_missing, undervalued)


# --- the rules of the whole declaration -----------------------------------------------------


def declarant_risk(case: Case) -> Iterator[Ruling]:
    """``CUS-DECLARANT-RISK`` INSPECT ``DECLARANT_RISK``: the declarant's risk level is HIGH.

    A declarant without a risk profile is MEDIUM, which draws no action.
    """
    uscc = case.declaration.declarant.uscc
    risk = case.reference.risk_of(uscc)
    if risk is RiskLevel.HIGH:
        yield Ruling.inspect(
            "CUS-DECLARANT-RISK", f"declarant {uscc} has risk level {risk}", "DECLARANT_RISK"
        )


def random_sample(case: Case) -> Iterator[Ruling]:
    """``CUS-RANDOM-SAMPLE`` INSPECT ``RANDOM_SAMPLE``: the declaration was drawn in the random
    sample (the draw is the case's, see :mod:`services.customs.sampling`)."""
    if case.sample.sampled:
        yield Ruling.inspect(
            RANDOM_SAMPLE,
            f"selected by random sampling at rate {case.reference.random_inspection_rate}",
            "RANDOM_SAMPLE",
        )


DeclarationRule = Callable[[Case], Iterator[Ruling]]

# The rules of the declaration, after its items', in the order they are reported.
DECLARATION_RULES: tuple[DeclarationRule, ...] = (declarant_risk, random_sample)


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


def assess_drawn(
    declaration: DeclarationSubmitted, reference: ReferenceData, now: datetime, sample: SampleDraw
) -> AgencyVerdict:
    """The customs verdict given the outcome of the random-sample draw.

    :func:`assess` draws, then calls this; an auditor without the key calls it with the draw
    a verdict records, to check everything else in the verdict.
    """
    case = Case.of(declaration, reference, sample)
    duty_lines: list[DutyLine] = []
    if case.is_import:
        for item in declaration.items:
            line = _duty_line(item, reference)
            if line is not None:
                duty_lines.append(line)
    verdict = build_verdict(
        declaration,
        AGENCY,
        reference.version,
        rulings(case),
        now,
        duties=duty_lines,
        total_duties=money.total_duties(duty_lines),
    )
    return verdict.model_copy(update={"sampling_key_version": sample.key_version})


def _duty_line(item: GoodsItem, reference: ReferenceData) -> DutyLine | None:
    line = reference.tariff.get(item.hs_code)
    rate = reference.cny_per_unit.get(item.currency)
    if line is None or line.prohibited or rate is None:
        return None
    return money.duty_line(item.line, item.customs_value, rate, line.duty_rate, line.vat_rate)
