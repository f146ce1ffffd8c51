"""The customs value of each goods item, computed from what the trader declares: pure.

The trader declares the price of each item on the invoice and, once for the declaration, the
delivery terms (an Incoterms 2020 rule), freight, insurance and the other costs the buyer
bears (:class:`singlewindow.events.Valuation`). The customs value is then computed, never
typed in:

- **Import: CIF**, the transaction value of the goods delivered at the place of importation
  (the price paid or payable, plus transport, its related costs and insurance up to the
  place of importation, plus commissions, packing, assists and royalties payable as a
  condition of sale: 海关确定进出口货物计税价格办法, WTO Customs Valuation Agreement art. 8).
  What the terms already put in the price is not added again:

  ========================  ===================  ===================================
  terms                     freight              insurance
  ========================  ===================  ===================================
  EXW, FCA, FAS, FOB        required, added      optional, added; unknown: estimated
  CFR, CPT                  refused (in price)   optional, added; unknown: estimated
  CIF, CIP, DAP, DPU, DDP   refused (in price)   refused (in price)
  ========================  ===================  ===================================

  Insurance not declared is estimated at 3 per mille of price plus freight (the customs rule
  when the premium cannot be determined: 保险费 = (货价 + 运费) * 3‰). Terms of the D group
  are taken as CIF: costs incurred after arrival in China are not deducted in this version.
- **Export: FOB**, the value at the place of export: the freight and insurance the terms put
  in the price are declared and deducted (CFR/CPT: freight; CIF/CIP/D terms: both); E and F
  terms declare neither.

The adjustment (value minus total price) is shared among the items in proportion to their
prices, each share rounded half up to 0.01 and the item of the highest price (the first of
them) taking what rounding left, so the values add up exactly and an item given free (price
0) gets no share; with a total price of zero (free samples only) the shares are equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from singlewindow.events import DeclarationType, Valuation

CENT = Decimal("0.01")
INSURANCE_ESTIMATE = Decimal("0.003")  # 3 per mille of (price + freight)


class Settled(StrEnum):
    """What the price already settles up to the place of importation, by Incoterms 2020."""

    NOTHING = "NONE"  # EXW, FCA, FAS, FOB
    FREIGHT = "FREIGHT"  # CFR, CPT
    FREIGHT_INSURANCE = "FREIGHT_INSURANCE"  # CIF, CIP, DAP, DPU, DDP


SETTLED: dict[str, Settled] = {
    **dict.fromkeys(("EXW", "FCA", "FAS", "FOB"), Settled.NOTHING),
    **dict.fromkeys(("CFR", "CPT"), Settled.FREIGHT),
    **dict.fromkeys(("CIF", "CIP", "DAP", "DPU", "DDP"), Settled.FREIGHT_INSURANCE),
}


class Need(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    REFUSED = "refused"


def needs(declaration_type: DeclarationType, incoterm: str) -> tuple[Need, Need]:
    """Whether freight and insurance must, may or must not be declared under ``incoterm``."""
    settled = SETTLED[incoterm]
    if declaration_type is DeclarationType.IMPORT:
        freight = Need.REQUIRED if settled is Settled.NOTHING else Need.REFUSED
        insurance = Need.REFUSED if settled is Settled.FREIGHT_INSURANCE else Need.OPTIONAL
        return freight, insurance
    freight = Need.REFUSED if settled is Settled.NOTHING else Need.REQUIRED
    insurance = Need.REQUIRED if settled is Settled.FREIGHT_INSURANCE else Need.REFUSED
    return freight, insurance


def problems(declaration_type: DeclarationType, valuation: Valuation) -> list[tuple[str, str]]:
    """Each field of ``valuation`` declared against its terms: (field, what is wrong)."""
    if valuation.incoterm not in SETTLED:
        return [("incoterm", f"{valuation.incoterm!r} is not an Incoterms 2020 rule")]
    found = []
    for name, need in zip(
        ("freight", "insurance"), needs(declaration_type, valuation.incoterm), strict=True
    ):
        given = getattr(valuation, name) is not None
        if need is Need.REQUIRED and not given:
            found.append((name, f"required under {valuation.incoterm} for an {declaration_type}"))
        elif need is Need.REFUSED and given:
            importing = declaration_type is DeclarationType.IMPORT
            why = "the price already includes it" if importing else "nothing to deduct"
            found.append((name, f"must be absent under {valuation.incoterm}: {why}"))
    return found


@dataclass(frozen=True, slots=True)
class Computed:
    """The customs value of the whole declaration and of each item, in the invoice currency."""

    total_price: Decimal
    freight: Decimal
    insurance: Decimal
    insurance_estimated: bool
    other_costs: Decimal
    total_value: Decimal
    item_values: tuple[Decimal, ...]


def _round(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def customs_values(
    declaration_type: DeclarationType, valuation: Valuation, prices: Sequence[Decimal]
) -> Computed:
    """The customs values of items priced ``prices`` (ValueError when the terms and the
    declared costs disagree, see :func:`problems`, or a value would be negative)."""
    wrong = problems(declaration_type, valuation)
    if wrong:
        raise ValueError("; ".join(f"{field}: {why}" for field, why in wrong))
    if not prices:
        raise ValueError("no items to value")
    total_price = sum(prices, Decimal("0.00"))
    freight = valuation.freight or Decimal("0.00")
    insurance = valuation.insurance
    estimated = False
    if declaration_type is DeclarationType.IMPORT:
        if insurance is None and SETTLED[valuation.incoterm] is not Settled.FREIGHT_INSURANCE:
            insurance, estimated = _round((total_price + freight) * INSURANCE_ESTIMATE), True
        insurance = insurance or Decimal("0.00")
        total = total_price + freight + insurance + valuation.other_costs
    else:
        insurance = insurance or Decimal("0.00")
        total = total_price - freight - insurance + valuation.other_costs
    values = _apportion(total, prices)
    if any(value < 0 for value in values):
        raise ValueError("freight and insurance deducted exceed an item's price")
    return Computed(
        total_price, freight, insurance, estimated, valuation.other_costs, total, values
    )


def _apportion(total: Decimal, prices: Sequence[Decimal]) -> tuple[Decimal, ...]:
    total_price = sum(prices, Decimal("0.00"))
    adjustment = total - total_price
    if total_price:
        shares = [_round(adjustment * price / total_price) for price in prices]
    else:
        shares = [_round(adjustment / len(prices)) for _ in prices]
    largest = prices.index(max(prices))
    shares[largest] += adjustment - sum(shares, Decimal("0.00"))
    return tuple(price + share for price, share in zip(prices, shares, strict=True))
