"""The money arithmetic of customs: conversion to CNY, duty and import VAT, exactly.

Every amount is a ``Decimal``; every rounding is ROUND_HALF_UP to 0.01 CNY and happens at
the three stated steps, in this order (the order matters):

1. ``value_cny = round(customs_value * exchange_rate)``
2. ``duty = round(value_cny * duty_rate)``
3. ``vat = round((value_cny + duty) * vat_rate)`` -- import VAT is levied on the
   duty-paid value (consumption tax, which would also enter the base, is out of scope).

The total of a declaration is the sum of the rounded duty and VAT of its lines (no further
rounding). Decimal arithmetic runs in a local context wide enough that the products are exact
for any amount a ``DutyLine`` can carry.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

from singlewindow.events import DutyLine

CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.0001")
_EXACT = Context(prec=60)  # 18-digit money x 4-to-8-decimal rates: exact, never rounded


def round_cny(amount: Decimal) -> Decimal:
    """``amount`` rounded half up to 0.01 (2.345 -> 2.35, -2.345 -> -2.35)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def to_cny(customs_value: Decimal, cny_per_unit: Decimal) -> Decimal:
    """Customs value converted to CNY, rounded half up to 0.01."""
    with localcontext(_EXACT):
        return round_cny(customs_value * cny_per_unit)


def duty_line(
    item: int,
    customs_value: Decimal,
    cny_per_unit: Decimal,
    duty_rate: Decimal,
    vat_rate: Decimal,
) -> DutyLine:
    """Duty and import VAT of one goods item (rates as fractions, e.g. 0.1300 for 13 %)."""
    with localcontext(_EXACT):
        value_cny = to_cny(customs_value, cny_per_unit)
        duty = round_cny(value_cny * duty_rate)
        vat = round_cny((value_cny + duty) * vat_rate)
    return DutyLine(
        item=item,
        customs_value_cny=value_cny,
        duty_rate=duty_rate.quantize(RATE_PLACES),
        duty=duty,
        vat_rate=vat_rate.quantize(RATE_PLACES),
        vat=vat,
    )


def total_duties(lines: Iterable[DutyLine]) -> Decimal:
    """Sum of duty and VAT over the lines, in CNY (0.00 when there is none)."""
    with localcontext(_EXACT):
        return sum((line.duty + line.vat for line in lines), start=Decimal("0.00"))
