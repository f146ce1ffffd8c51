"""The money arithmetic of customs: conversion to CNY and every tax on an import, exactly.

Every amount is a ``Decimal``; products and quotients are computed in a context of 60 digits
(exact for any amount an event can carry, and the same on every machine), and each tax is
rounded once, half up to 0.01 CNY. For one goods item, in this order (each tax enters the
base of the next):

1. **Customs value in CNY** ``V = round(value * exchange rate)``, at the rate of the month
   the declaration was accepted (the reference version in force on that day).
2. **Duty** (关税) at the rate chosen by :func:`services.customs.rates.choose_duty_rate`:
   ad valorem ``V * r``; specific ``Q * a``; compound ``V * r + Q * a`` (Tariff Law of the
   PRC, 2024: 从价、从量、复合计征). ``Q`` is the item's quantity in the rate's unit.
3. **Additional duties** (anti-dumping, countervailing, safeguard, countermeasures), each
   ``V * r``, one line per measure in force on the acceptance date for the line and origin.
   ``D`` below is the duty plus the additional duties.
4. **Consumption tax** (消费税, Consumption Tax Law / Provisional Regulations on Consumption
   Tax, import: 组成计税价格), for the goods the tariff line names a consumption-tax rate for:
   ad valorem ``(V + D) / (1 - r) * r``; specific ``Q * a``; compound
   ``(V + D + Q * a) / (1 - r) * r + Q * a``.
5. **Import VAT** (进口环节增值税, VAT Law of the PRC, in force 2026-01-01: 13 %, or 9 % for the
   goods it lists) ``(V + D + CT) * rate``.

Over the declaration, each kind of tax is summed; a kind whose sum is at most the de minimis
threshold (50 CNY per declaration per tax: 关税, 进口环节增值税或者消费税税额在人民币50元
以下的一票货物免征; 以下 includes the number itself, as in Criminal Law art. 99 and customs
practice, 含50元) is assessed but not collected (:func:`tax_totals`).
A duty not collected under the threshold still enters the consumption-tax and VAT bases as
assessed: the threshold waives collection of an amount, it does not change the computation of
the others (a choice of this implementation, stated so that an officer can check it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

from services.customs.rates import Chosen, Rate
from singlewindow.events import DutyLine, TaxKind, TaxLine, TaxTotal
from singlewindow.identifiers import InvalidIdentifier, convert

CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.0001")
QUANTITY_PLACES = Decimal("0.001")
ZERO = Decimal("0.00")
_EXACT = Context(prec=60)


def round_cny(amount: Decimal) -> Decimal:
    """``amount`` rounded half up to 0.01 (2.345 -> 2.35, -2.345 -> -2.35)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def to_cny(value: Decimal, cny_per_unit: Decimal) -> Decimal:
    """A value converted to CNY, rounded half up to 0.01."""
    with localcontext(_EXACT):
        return round_cny(value * cny_per_unit)


def quantity_in(unit: str, quantities: Mapping[str, Decimal]) -> Decimal | None:
    """The item's quantity in ``unit``: declared in it, or converted from a declared unit of
    the same dimension (kilograms to tonnes, litres to cubic metres); None otherwise."""
    if unit in quantities:
        return quantities[unit]
    for declared, quantity in quantities.items():
        try:
            converted = convert(quantity, declared, unit)  # the Rec 20 list's dimensions
        except InvalidIdentifier:
            continue  # a unit the list does not know converts to nothing
        if converted is not None:
            return converted
    return None


def _specific(rate: Rate, quantities: Mapping[str, Decimal]) -> Decimal | None:
    """``Q * a`` of a rate with a specific part (unrounded); 0 without one; None if the
    item has no quantity in the rate's unit."""
    if rate.per_unit is None or rate.unit is None:
        return Decimal(0)
    quantity = quantity_in(rate.unit, quantities)
    return None if quantity is None else quantity * rate.per_unit


def can_levy(rates: Iterable[Rate | None], quantities: Mapping[str, Decimal]) -> bool:
    """Whether the item has a quantity in the unit of every specific rate among ``rates``."""
    return all(r is None or _specific(r, quantities) is not None for r in rates)


def _line(
    kind: TaxKind,
    basis: str,
    base: Decimal,
    rate: Rate,
    amount: Decimal,
    quantities: Mapping[str, Decimal],
) -> TaxLine:
    unit = rate.unit if rate.per_unit is not None else None
    quantity = quantity_in(unit, quantities) if unit else None
    if quantity is not None:  # shown to 0.001 (1,234.5 kg is 1.2345 t); the tax used it exactly
        quantity = quantity.quantize(QUANTITY_PLACES, rounding=ROUND_HALF_UP)
    return TaxLine(
        kind=kind,
        basis=basis,
        base=round_cny(base),
        rate=None if rate.ad_valorem is None else rate.ad_valorem.quantize(RATE_PLACES),
        amount_per_unit=rate.per_unit,
        unit=unit,
        quantity=quantity,
        amount=amount,
    )


def duty(rate: Rate, value_cny: Decimal, quantities: Mapping[str, Decimal]) -> Decimal:
    """A duty at ``rate``: ``V * r + Q * a``, rounded (ValueError without the quantity)."""
    specific = _specific(rate, quantities)
    if specific is None:
        raise ValueError(f"no quantity in {rate.unit} for the rate {rate}")
    with localcontext(_EXACT):
        return round_cny(value_cny * (rate.ad_valorem or 0) + specific)


def consumption_tax(
    rate: Rate, value_and_duties: Decimal, quantities: Mapping[str, Decimal]
) -> tuple[Decimal, Decimal]:
    """``(composed value, tax)`` at ``rate`` on ``V + D`` (see step 4 of the module)."""
    specific = _specific(rate, quantities)
    if specific is None:
        raise ValueError(f"no quantity in {rate.unit} for the rate {rate}")
    ad_valorem = rate.ad_valorem or Decimal(0)
    with localcontext(_EXACT):
        composed = (value_and_duties + specific) / (1 - ad_valorem)
        if rate.ad_valorem is None:
            composed = value_and_duties
        return composed, round_cny(composed * ad_valorem + specific)


def duty_line(
    item: int,
    value: Decimal,
    cny_per_unit: Decimal,
    chosen: Chosen,
    additional: Sequence[tuple[str, Rate]],
    excise: tuple[str, Rate] | None,
    vat: tuple[str, Decimal],
    quantities: Mapping[str, Decimal],
) -> DutyLine:
    """Every tax on one goods item (steps 1-5 of the module), line by line.

    ``additional`` are the additional duties in force as (measure, rate); ``excise`` the
    consumption tax as (tariff line, rate), or None; ``vat`` as (tariff line, rate).
    """
    value_cny = to_cny(value, cny_per_unit)
    taxes: list[TaxLine] = []
    customs_duty = duty(chosen.rate, value_cny, quantities)
    taxes.append(
        _line(TaxKind.DUTY, chosen.basis, value_cny, chosen.rate, customs_duty, quantities)
    )
    for measure, rate in additional:
        amount = duty(rate, value_cny, quantities)
        taxes.append(_line(TaxKind.ADDITIONAL_DUTY, measure, value_cny, rate, amount, quantities))
    duties = sum((t.amount for t in taxes), ZERO)
    excise_amount = ZERO
    if excise is not None:
        line, rate = excise
        composed, excise_amount = consumption_tax(rate, value_cny + duties, quantities)
        taxes.append(
            _line(TaxKind.CONSUMPTION_TAX, line, composed, rate, excise_amount, quantities)
        )
    line, vat_rate = vat
    vat_base = value_cny + duties + excise_amount
    with localcontext(_EXACT):
        vat_amount = round_cny(vat_base * vat_rate)
    taxes.append(
        _line(TaxKind.VAT, line, vat_base, Rate.ad_valorem_of(vat_rate), vat_amount, quantities)
    )
    return DutyLine(
        item=item,
        customs_value_cny=value_cny,
        duty_rate=(chosen.rate.ad_valorem or Decimal(0)).quantize(RATE_PLACES),
        duty=customs_duty,
        vat_rate=vat_rate.quantize(RATE_PLACES),
        vat=vat_amount,
        taxes=tuple(taxes),
    )


def legacy_duty_line(
    item: int, value: Decimal, cny_per_unit: Decimal, duty_rate: Decimal, vat_rate: Decimal
) -> DutyLine:
    """Duty and VAT as verdicts before 2026-12 computed them (reference versions of the old
    tariff format: one ad valorem rate, no consumption tax), to recompute those verdicts."""
    with localcontext(_EXACT):
        value_cny = to_cny(value, cny_per_unit)
        amount = round_cny(value_cny * duty_rate)
        vat = round_cny((value_cny + amount) * vat_rate)
    return DutyLine(
        item=item,
        customs_value_cny=value_cny,
        duty_rate=duty_rate.quantize(RATE_PLACES),
        duty=amount,
        vat_rate=vat_rate.quantize(RATE_PLACES),
        vat=vat,
    )


def tax_totals(lines: Iterable[DutyLine], de_minimis: Decimal) -> tuple[TaxTotal, ...]:
    """Per kind of tax, in :class:`TaxKind` order, the sum over the items' tax lines and what
    is collected: the sum, or nothing when it is at most ``de_minimis`` (0: every amount).
    Kinds with no line are left out."""
    assessed: dict[TaxKind, Decimal] = {}
    for line in lines:
        for tax in line.taxes:
            assessed[tax.kind] = assessed.get(tax.kind, ZERO) + tax.amount
    return tuple(
        TaxTotal(
            kind=kind, assessed=assessed[kind], collected=_collected(assessed[kind], de_minimis)
        )
        for kind in TaxKind
        if kind in assessed
    )


def _collected(assessed: Decimal, de_minimis: Decimal) -> Decimal:
    return ZERO if assessed <= de_minimis and de_minimis else assessed


def total_duties(lines: Iterable[DutyLine], totals: Sequence[TaxTotal] = ()) -> Decimal:
    """What the declaration owes, in CNY: the taxes collected when there are tax totals, else
    (verdicts before 2026-12) duty plus VAT over the lines."""
    if totals:
        return sum((t.collected for t in totals), ZERO)
    with localcontext(_EXACT):
        return sum((line.duty + line.vat for line in lines), start=ZERO)
