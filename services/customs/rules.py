"""Customs (海关) rules: a pure function of the declaration, the reference data and ``now``.

Per goods item, in this order (every rule that applies fires; each gives one reason):

- ``CUS-UNKNOWN-HS`` REJECT: the HS code is not in the tariff (no other item rule runs).
- ``CUS-NO-RATE`` HOLD: the currency is not in the exchange-rate table (the item cannot be
  valued: no undervaluation check, no duty line).
- ``CUS-PROHIBITED`` REJECT: the tariff line is prohibited (both directions in this data).
- ``CUS-LICENCE-MISSING`` HOLD: IMPORT of a licence line and no ``IMPORT_LICENSE`` document
  in the declaration (documents are not tied to items: one licence document covers them all).
- ``CUS-UNDERVALUED`` INSPECT, check ``UNIT_VALUE``: value in CNY per unit below
  ``undervaluation_ratio`` (30 %) of the tariff's reference price. Only when the item is
  declared in the reference price's unit with a positive quantity; both directions.

Per declaration, after the items:

- ``CUS-DECLARANT-RISK`` INSPECT, check ``DECLARANT_RISK``: the declarant's risk level is HIGH
  (an unknown declarant is MEDIUM: no action).
- ``CUS-RANDOM-SAMPLE`` INSPECT, check ``RANDOM_SAMPLE``: the declaration falls in the random
  sample, drawn with a keyed hash of its id under the agency's secret sampling key (see
  :mod:`services.customs.sampling`): the trader cannot predict it, a replay with the same
  key reproduces it. The verdict names the key version (``sampling_key_version``).

Duties (:mod:`services.customs.duties`): IMPORT only, one ``DutyLine`` per item that can be
assessed (HS code known and not prohibited, currency known), whatever the decision, so the
officer sees the liability. An EXPORT pays none: no duty lines and ``total_duties`` 0.
"""

from __future__ import annotations

from datetime import datetime

from services.customs import duties as money
from services.customs.reference import RULES_VERSION, ReferenceData, RiskLevel, load_reference
from services.customs.sampling import SampleDraw, SamplingKey, draw, is_sampled, sample_fraction
from singlewindow.events import (
    Agency,
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
    "RANDOM_SAMPLE",
    "RULES_VERSION",
    "ReferenceData",
    "SampleDraw",
    "SamplingKey",
    "assess",
    "assess_drawn",
    "is_sampled",
    "load_reference",
    "sample_fraction",
]

AGENCY = Agency.CUSTOMS
RANDOM_SAMPLE = "CUS-RANDOM-SAMPLE"


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
    is_import = declaration.declaration_type is DeclarationType.IMPORT
    has_licence = any(d.type is DocumentType.IMPORT_LICENSE for d in declaration.documents)
    rulings: list[Ruling] = []
    duty_lines: list[DutyLine] = []
    for item in declaration.items:
        rulings.extend(_item_rulings(item, reference, is_import, has_licence))
        if is_import:
            line = _duty_line(item, reference)
            if line is not None:
                duty_lines.append(line)
    risk = reference.risk_of(declaration.declarant.uscc)
    if risk is RiskLevel.HIGH:
        rulings.append(
            Ruling.inspect(
                "CUS-DECLARANT-RISK",
                f"declarant {declaration.declarant.uscc} has risk level {risk}",
                "DECLARANT_RISK",
            )
        )
    if sample.sampled:
        rulings.append(
            Ruling.inspect(
                RANDOM_SAMPLE,
                f"selected by random sampling at rate {reference.random_inspection_rate}",
                "RANDOM_SAMPLE",
            )
        )
    verdict = build_verdict(
        declaration,
        AGENCY,
        reference.version,
        rulings,
        now,
        duties=duty_lines,
        total_duties=money.total_duties(duty_lines),
    )
    return verdict.model_copy(update={"sampling_key_version": sample.key_version})


def _item_rulings(
    item: GoodsItem, reference: ReferenceData, is_import: bool, has_licence: bool
) -> list[Ruling]:
    line = reference.tariff.get(item.hs_code)
    if line is None:
        return [
            Ruling.reject(
                "CUS-UNKNOWN-HS",
                f"HS code {item.hs_code} is not in the tariff {reference.version}",
                item.line,
            )
        ]
    rulings: list[Ruling] = []
    rate = reference.cny_per_unit.get(item.currency)
    if rate is None:
        rulings.append(
            Ruling.hold(
                "CUS-NO-RATE",
                f"no customs exchange rate for {item.currency} "
                f"(rates of {reference.rate_date.isoformat()})",
                item.line,
            )
        )
    if line.prohibited:
        rulings.append(
            Ruling.reject(
                "CUS-PROHIBITED",
                f"{item.hs_code} ({line.description}) is prohibited",
                item.line,
            )
        )
    if is_import and line.licence_required and not has_licence:
        rulings.append(
            Ruling.hold(
                "CUS-LICENCE-MISSING",
                f"{item.hs_code} ({line.description}) needs an import licence "
                f"and no {DocumentType.IMPORT_LICENSE} document was lodged",
                item.line,
            )
        )
    if (
        rate is not None
        and line.reference_price_cny is not None
        and item.unit == line.price_unit
        and item.quantity > 0
    ):
        value_cny = money.to_cny(item.customs_value, rate)
        floor = reference.undervaluation_ratio * line.reference_price_cny
        if value_cny < floor * item.quantity:  # value_cny / quantity < floor, without division
            unit_value = money.round_cny(value_cny / item.quantity)
            rulings.append(
                Ruling.inspect(
                    "CUS-UNDERVALUED",
                    f"unit value {unit_value} CNY/{item.unit} is below "
                    f"{reference.undervaluation_ratio:.0%} of the reference price "
                    f"{line.reference_price_cny} CNY/{line.price_unit}",
                    "UNIT_VALUE",
                    item.line,
                )
            )
    return rulings


def _duty_line(item: GoodsItem, reference: ReferenceData) -> DutyLine | None:
    line = reference.tariff.get(item.hs_code)
    rate = reference.cny_per_unit.get(item.currency)
    if line is None or line.prohibited or rate is None:
        return None
    return money.duty_line(item.line, item.customs_value, rate, line.duty_rate, line.vat_rate)
