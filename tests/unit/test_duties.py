"""Customs money arithmetic: exact Decimal, ROUND_HALF_UP to 0.01 CNY at each stated step."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.customs import duties
from services.customs.reference import load_reference

D = Decimal


def half_up_cents(value: Fraction) -> Decimal:
    """Independent oracle: round a non-negative exact value half up to cents, by integers."""
    cents = (value * 100 + Fraction(1, 2)).__floor__()
    return (D(cents) / 100).quantize(D("0.01"))


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("2.345", "2.35"),  # half-even would give 2.34
        ("2.335", "2.34"),
        ("0.125", "0.13"),  # half-even would give 0.12
        ("0.005", "0.01"),
        ("0.0049999", "0.00"),
        ("10.004", "10.00"),
        ("-2.345", "-2.35"),  # half away from zero
        ("7", "7.00"),
    ],
)
def test_round_cny_is_half_up(amount: str, expected: str) -> None:
    result = duties.round_cny(D(amount))
    assert result == D(expected)
    assert result.as_tuple().exponent == -2


def test_factory_laptops_from_eur() -> None:
    # 45000.10 EUR x 8.2650 = 371925.826500 -> 371925.83; duty 0 %;
    # VAT 13 % of 371925.83 = 48350.3579 -> 48350.36
    line = duties.legacy_duty_line(1, D("45000.10"), D("8.2650"), D("0.0000"), D("0.1300"))
    assert line.customs_value_cny == D("371925.83")
    assert line.duty == D("0.00")
    assert line.vat == D("48350.36")
    assert line.duty_rate == D("0.0000") and line.vat_rate == D("0.1300")
    assert line.duty_rate.as_tuple().exponent == -4
    assert line.vat_rate.as_tuple().exponent == -4


def test_wine_vat_is_levied_on_duty_paid_value() -> None:
    # 1000.00 EUR x 8.2650 = 8265.00; duty 14 % = 1157.10;
    # VAT 13 % of (8265.00 + 1157.10) = 9422.10 x 0.13 = 1224.873 -> 1224.87
    line = duties.legacy_duty_line(3, D("1000.00"), D("8.2650"), D("0.1400"), D("0.1300"))
    assert (line.item, line.customs_value_cny, line.duty, line.vat) == (
        3,
        D("8265.00"),
        D("1157.10"),
        D("1224.87"),
    )
    assert line.vat != duties.round_cny(line.customs_value_cny * D("0.13"))  # 1074.45


def test_duty_at_half_cent_rounds_up() -> None:
    # 100.05 CNY x 10 % = 10.005 -> 10.01 (half-even: 10.00);
    # VAT 9 % of 110.06 = 9.9054 -> 9.91
    line = duties.legacy_duty_line(1, D("100.05"), D("1"), D("0.1000"), D("0.0900"))
    assert (line.customs_value_cny, line.duty, line.vat) == (D("100.05"), D("10.01"), D("9.91"))


def test_vat_at_half_cent_rounds_up() -> None:
    # 0.50 CNY, duty 0; VAT 13 % = 0.065 -> 0.07 (half-even: 0.06)
    line = duties.legacy_duty_line(1, D("0.50"), D("1"), D("0"), D("0.1300"))
    assert (line.duty, line.vat) == (D("0.00"), D("0.07"))
    # 10.50 CNY, duty 5 % = 0.525 -> 0.53; VAT 13 % of 11.03 = 1.4339 -> 1.43
    line = duties.legacy_duty_line(2, D("10.50"), D("1"), D("0.0500"), D("0.1300"))
    assert (line.duty, line.vat) == (D("0.53"), D("1.43"))


def test_conversion_rounds_half_up_at_the_cent() -> None:
    # 12.34 USD x 7.1020 = 87.638680 -> 87.64; 1.00 KRW x 0.005071 -> 0.01;
    # 0.50 JPY x 0.046520 = 0.02326 -> 0.02; 125.00 KRW x 0.005071 = 0.633875 -> 0.63
    assert duties.to_cny(D("12.34"), D("7.1020")) == D("87.64")
    assert duties.to_cny(D("1.00"), D("0.005071")) == D("0.01")
    assert duties.to_cny(D("0.50"), D("0.046520")) == D("0.02")
    assert duties.to_cny(D("125.00"), D("0.005071")) == D("0.63")
    assert duties.to_cny(D("0.10"), D("0.05")) == D("0.01")  # 0.005 exactly -> 0.01


def test_each_step_rounds_before_the_next() -> None:
    # 1.42 USD x 7.1020 = 10.084840 -> 10.08, and the duty is taken on the rounded value:
    # 6 % of 10.08 = 0.6048 -> 0.60 (on the unrounded value: 0.6050904 -> 0.61);
    # VAT 13 % of 10.68 = 1.3884 -> 1.39
    line = duties.legacy_duty_line(1, D("1.42"), D("7.1020"), D("0.0600"), D("0.1300"))
    assert (line.customs_value_cny, line.duty, line.vat) == (D("10.08"), D("0.60"), D("1.39"))
    # 1.64 USD x 7.1020 = 11.647280 -> 11.65; 6 % = 0.699 -> 0.70;
    # VAT 13 % of 12.35 = 1.6055 -> 1.61 (unrounded chain: 1.604995 -> 1.60)
    line = duties.legacy_duty_line(1, D("1.64"), D("7.1020"), D("0.0600"), D("0.1300"))
    assert (line.customs_value_cny, line.duty, line.vat) == (D("11.65"), D("0.70"), D("1.61"))


def test_total_is_sum_of_rounded_duty_and_vat() -> None:
    lines = [
        duties.legacy_duty_line(1, D("45000.10"), D("8.2650"), D("0"), D("0.1300")),
        duties.legacy_duty_line(2, D("1000.00"), D("8.2650"), D("0.1400"), D("0.1300")),
        duties.legacy_duty_line(3, D("100.05"), D("1"), D("0.1000"), D("0.0900")),
    ]
    # 48350.36 + (1157.10 + 1224.87) + (10.01 + 9.91) = 50752.25
    assert duties.total_duties(lines) == D("50752.25")
    assert duties.total_duties([]) == D("0.00")


def test_large_values_stay_exact() -> None:
    # 18-digit money: 9999999999999999.99 CNY at 15 % / 13 %
    line = duties.legacy_duty_line(1, D("9999999999999999.99"), D("1"), D("0.1500"), D("0.1300"))
    assert line.duty == D("1500000000000000.00")  # 1499999999999999.9985 -> .00
    assert line.vat == D("1495000000000000.00")  # 11499999999999999.99 x 0.13 = ...9999.9987


_REFERENCE = load_reference("customs-2026.11")
money = st.decimals(min_value=0, max_value=10**12, places=2, allow_nan=False, allow_infinity=False)
exchange_rates = st.sampled_from(sorted(_REFERENCE.cny_per_unit.values()))
tariff_lines = st.sampled_from(sorted(_REFERENCE.tariff))


@given(value=money, rate=exchange_rates, hs_code=tariff_lines)
def test_duty_line_properties(value: Decimal, rate: Decimal, hs_code: str) -> None:
    tariff = _REFERENCE.tariff[hs_code]
    line = duties.legacy_duty_line(1, value, rate, tariff.duty_rate, tariff.vat_rate)
    exact_cny = Fraction(value) * Fraction(rate)
    assert line.customs_value_cny == half_up_cents(exact_cny)
    assert abs(Fraction(line.customs_value_cny) - exact_cny) <= Fraction(1, 200)
    assert line.duty == half_up_cents(Fraction(line.customs_value_cny) * Fraction(tariff.duty_rate))
    assert 0 <= line.duty <= line.customs_value_cny
    # VAT is computed on the duty-paid value, not on the value alone
    duty_paid = Fraction(line.customs_value_cny + line.duty)
    assert line.vat == half_up_cents(duty_paid * Fraction(tariff.vat_rate))
    assert line.vat >= 0
    for amount in (line.customs_value_cny, line.duty, line.vat):
        assert amount.as_tuple().exponent == -2


@given(st.lists(st.tuples(money, tariff_lines), max_size=8))
def test_total_properties(rows: list[tuple[Decimal, str]]) -> None:
    lines = [
        duties.legacy_duty_line(n, value, D("1"), tariff.duty_rate, tariff.vat_rate)
        for n, (value, hs) in enumerate(rows, start=1)
        for tariff in [_REFERENCE.tariff[hs]]
    ]
    total = duties.total_duties(lines)
    assert total == sum((line.duty + line.vat for line in lines), D(0))
    assert total >= 0
    assert total.as_tuple().exponent == -2
