"""Every tax customs assesses on an import, computed by hand, each case citing its rule.

The rates are those of a small tariff written here (so the arithmetic is the point, not the
shipped data, which ``test_tariff_data`` checks); exchange rates as in the November 2026
reference data: EUR 8.2650, USD 7.1020, AUD 4.6250 CNY.

The rules (see :mod:`services.customs.duties` and :mod:`services.customs.rates`):

- duty: ad valorem V*r, specific Q*a, compound V*r + Q*a (Tariff Law of the PRC, 2024);
- rate: general for goods of an origin without MFN treatment; MFN, replaced by the provisional
  rate where there is one; the conventional (FTA) rate on a valid origin claim, or the
  provisional rate when that is lower (从低适用);
- consumption tax at import: ad valorem (V+D)/(1-r)*r, specific Q*a, compound
  (V+D+Q*a)/(1-r)*r + Q*a;
- import VAT: (V+D+CT) * 13 % or 9 %;
- de minimis: a tax of 50 CNY or less per declaration per kind is not collected;
- every tax rounded once, half up to 0.01 CNY.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

from services.customs import rules
from services.customs.rates import Agreement, Basis, Rate
from services.customs.reference import (
    PACKAGE,
    AdditionalDuty,
    ReferenceData,
    TariffLine,
    load_reference,
    reference_on,
)
from singlewindow import events as ev
from singlewindow.reference import acceptance_date, version_for
from tests import factories

D = Decimal
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
KEY = factories.sampling_key()
P = Rate.parse


def line(hs_code: str, unit1: str, mfn: str, vat: str = "13%", **more: Any) -> TariffLine:
    cells = {
        "provisional": None,
        "general": P("100%"),
        "excise": None,
        "unit2": None,
        **{k: P(v) if isinstance(v, str) and k != "unit2" else v for k, v in more.items()},
    }
    return TariffLine(
        hs_code=hs_code,
        description=f"line {hs_code}",
        mfn=P(mfn),
        vat_rate=P(vat).ad_valorem or D(0),
        prohibited_import=False,
        prohibited_export=False,
        licence=None,
        reference_price_cny=None,
        price_unit=unit1,
        unit1=unit1,
        **cells,
    )


TARIFF = {
    t.hs_code: t
    for t in (
        # a passenger car of 1.5-2.0 l: MFN 15 %, consumption tax 5 %
        line("8703234110", "H87", "15%", excise="5%", unit2="KGM"),
        # motor gasoline: MFN 5 %, provisional 1 %, general 14 %, consumption tax 1.52 CNY/l
        line("2710121000", "KGM", "5%", provisional="1%", general="14%", excise="1.52/LTR",
             unit2="LTR"),
        # beer: MFN 0 CNY/l, general 7.5 CNY/l (specific), consumption tax 250 CNY/t
        line("2203000000", "LTR", "0/LTR", general="7.5/LTR", excise="250/TNE", unit2="KGM"),
        # a camera with a compound MFN duty: 3 % + 4374 CNY per unit
        line("8525891100", "H87", "3%+4374/H87"),
        # cigarettes: MFN 25 %, consumption tax 56 % + 3 CNY per thousand sticks (compound)
        line("2402200000", "MIL", "25%", excise="56%+3/MIL", unit2="KGM"),
        # frozen boneless beef: MFN 12 %, VAT 9 %; ChAFTA 0 %
        line("0202300000", "KGM", "12%", vat="9%"),
        # infant formula: MFN 15 %, provisional 5 %; a conventional rate of 10 % below
        line("1901101090", "KGM", "15%", provisional="5%"),
        # brandy: MFN 10 %, consumption tax 20 % + 0.912 CNY/l; anti-dumping on EU brandy
        line("2208200000", "LTR", "10%", excise="20%+0.912/LTR", unit2="KGM"),
        # laptops: MFN 0 %
        line("8471300000", "H87", "0%", unit2="KGM"),
        # coffee, not roasted: MFN 8 %, VAT 9 %
        line("0901110000", "KGM", "8%", vat="9%"),
    )
}  # fmt: skip
REFERENCE = ReferenceData(
    version="customs-test",
    tariff=MappingProxyType(TARIFF),
    cny_per_unit=MappingProxyType(
        {"CNY": D(1), "EUR": D("8.2650"), "USD": D("7.1020"), "AUD": D("4.6250")}
    ),
    rate_date=date(2026, 10, 21),
    declarants=MappingProxyType({}),
    random_inspection_rate=D(0),
    undervaluation_ratio=D("0.30"),
    de_minimis_cny=D("50.00"),
    general_rate_origins=frozenset({"KP"}),
    agreements=MappingProxyType(
        {
            "CHAFTA": Agreement(
                "CHAFTA", Basis.CONVENTIONAL, "China-Australia FTA", frozenset({"AU"})
            ),
            "TEST10": Agreement(
                "TEST10", Basis.CONVENTIONAL, "An agreement at 10 %", frozenset({"NZ"})
            ),
        }
    ),
    preferential=MappingProxyType(
        {"CHAFTA": {"0202": P("0%")}, "TEST10": {"1901": P("10%"), "0202": P("15%")}}
    ),
    additional=(
        AdditionalDuty(
            "AD-BRANDY-EU",
            "22082",
            "FR",
            P("34.9%"),
            date(2025, 7, 5),
            date(2030, 7, 4),
            "anti-dumping duty on brandy from the EU",
        ),
    ),
)


def goods(
    hs_code: str,
    value: str,
    currency: str,
    quantity: str,
    origin: str = "DE",
    second: str | None = None,
    claim: str | None = None,
    line_no: int = 1,
) -> ev.GoodsItem:
    tariff_line = TARIFF[hs_code]
    return ev.GoodsItem(
        line=line_no,
        hs_code=hs_code,
        description=tariff_line.description,
        origin_country=origin,
        quantity=D(quantity),
        unit=tariff_line.unit1,
        second_quantity=D(second) if second else None,
        second_unit=tariff_line.unit2 if second else None,
        customs_value=D(value),
        invoice_price=D(value),
        currency=currency,
        origin_claim=ev.OriginClaim(agreement=claim, certificate="CO-1") if claim else None,
    )


def assess(*items: ev.GoodsItem) -> ev.AgencyVerdict:
    declaration = factories.declaration(items=items)
    return rules.assess(declaration, REFERENCE, NOW, KEY)


def taxes(verdict: ev.AgencyVerdict, item: int = 1) -> dict[str, tuple[str, D]]:
    line = next(d for d in verdict.duties if d.item == item)
    return {t.kind.value: (t.basis, t.amount) for t in line.taxes}


def totals(verdict: ev.AgencyVerdict) -> dict[str, tuple[D, D]]:
    return {t.kind.value: (t.assessed, t.collected) for t in verdict.tax_totals}


# --- the two examples ----------------------------------------------------------------


def test_a_car_pays_duty_consumption_tax_and_vat_on_the_tax_inclusive_value() -> None:
    """A 1.5-2.0 l car at 20,000 EUR CIF (the issue's example: 60,813.00 CNY, not 49,507.35).

    V = 20,000 * 8.2650 = 165,300.00; duty (ad valorem, MFN 15 %) = 24,795.00;
    CT (ad valorem 5 %) = (165,300 + 24,795) / (1 - 0.05) * 0.05 = 200,100 * 0.05 = 10,005.00;
    VAT 13 % = (165,300 + 24,795 + 10,005) * 0.13 = 26,013.00; total 60,813.00.
    """
    verdict = assess(goods("8703234110", "20000.00", "EUR", "1", second="1450"))
    assert verdict.duties[0].customs_value_cny == D("165300.00")
    assert taxes(verdict) == {
        "DUTY": ("MFN", D("24795.00")),
        "CONSUMPTION_TAX": ("8703234110", D("10005.00")),
        "VAT": ("8703234110", D("26013.00")),
    }
    consumption = verdict.duties[0].taxes[1]
    assert consumption.base == D("200100.00") and consumption.rate == D("0.0500")
    assert verdict.total_duties == D("60813.00")


def test_gasoline_pays_the_provisional_duty_and_a_specific_consumption_tax() -> None:
    """1.35 million litres of gasoline at 700,000 USD (the issue: 3,021,218.82 CNY).

    V = 700,000 * 7.1020 = 4,971,400.00; duty at the provisional 1 % (it replaces MFN 5 %)
    = 49,714.00; CT (specific) = 1,350,000 l * 1.52 = 2,052,000.00; VAT 13 % =
    (4,971,400 + 49,714 + 2,052,000) * 0.13 = 7,073,114 * 0.13 = 919,504.82.
    """
    verdict = assess(goods("2710121000", "700000.00", "USD", "1000000", second="1350000"))
    assert taxes(verdict) == {
        "DUTY": ("PROVISIONAL", D("49714.00")),
        "CONSUMPTION_TAX": ("2710121000", D("2052000.00")),
        "VAT": ("2710121000", D("919504.82")),
    }
    consumption = verdict.duties[0].taxes[1]
    assert (consumption.amount_per_unit, consumption.unit) == (D("1.5200"), "LTR")
    assert consumption.quantity == D("1350000.000") and consumption.rate is None
    assert verdict.total_duties == D("3021218.82")


# --- duty: ad valorem, specific, compound; the rate chosen ----------------------------------


def test_specific_duty_at_the_general_rate_and_a_specific_consumption_tax_per_tonne() -> None:
    """Beer from an origin without MFN treatment: the general rate, 7.5 CNY/l (specific).

    10,000 l, 10,100 kg, 50,000 CNY CIF: duty = 10,000 * 7.5 = 75,000.00; CT 250 CNY/t on
    10,100 kg = 10.1 t * 250 = 2,525.00 (kilograms converted to tonnes); VAT 13 % =
    (50,000 + 75,000 + 2,525) * 0.13 = 16,578.25. Total 94,103.25.
    """
    verdict = assess(goods("2203000000", "50000.00", "CNY", "10000", origin="KP", second="10100"))
    assert taxes(verdict) == {
        "DUTY": ("GENERAL", D("75000.00")),
        "CONSUMPTION_TAX": ("2203000000", D("2525.00")),
        "VAT": ("2203000000", D("16578.25")),
    }
    assert verdict.duties[0].taxes[1].quantity == D("10.100")
    assert verdict.total_duties == D("94103.25")


def test_beer_of_mfn_origin_pays_no_duty_under_a_zero_specific_rate() -> None:
    """Beer from DE: MFN 0 CNY/l -> duty 0.00, the rest as above (VAT on 52,525: 6,828.25)."""
    verdict = assess(goods("2203000000", "50000.00", "CNY", "10000", second="10100"))
    assert taxes(verdict)["DUTY"] == ("MFN", D("0.00"))
    assert taxes(verdict)["VAT"][1] == D("6828.25")  # (50,000 + 0 + 2,525) * 0.13


def test_compound_duty() -> None:
    """2 cameras at 80,000 CNY CIF, MFN 3 % + 4,374 CNY/unit: duty = 80,000 * 0.03 + 2 * 4,374
    = 2,400 + 8,748 = 11,148.00; VAT 13 % = 91,148 * 0.13 = 11,849.24."""
    verdict = assess(goods("8525891100", "80000.00", "CNY", "2"))
    duty = verdict.duties[0].taxes[0]
    assert (duty.rate, duty.amount_per_unit, duty.unit, duty.quantity) == (
        D("0.0300"),
        D("4374.0000"),
        "H87",
        D("2.000"),
    )
    assert taxes(verdict) == {"DUTY": ("MFN", D("11148.00")), "VAT": ("8525891100", D("11849.24"))}


def test_general_rate_ignores_the_provisional_rate() -> None:
    """Gasoline from an origin without MFN treatment: general 14 %, never the provisional 1 %:
    4,971,400.00 * 0.14 = 695,996.00."""
    verdict = assess(
        goods("2710121000", "700000.00", "USD", "1000000", origin="KP", second="1350000")
    )
    assert taxes(verdict)["DUTY"] == ("GENERAL", D("695996.00"))


def test_vat_at_nine_percent() -> None:
    """Frozen beef from AR, 100,000 AUD CIF: V = 462,500.00; duty MFN 12 % = 55,500.00;
    VAT 9 % = (462,500 + 55,500) * 0.09 = 46,620.00."""
    verdict = assess(goods("0202300000", "100000.00", "AUD", "20000", origin="AR"))
    assert taxes(verdict) == {"DUTY": ("MFN", D("55500.00")), "VAT": ("0202300000", D("46620.00"))}
    assert verdict.duties[0].vat_rate == D("0.0900")


def test_conventional_rate_with_a_valid_origin_claim() -> None:
    """The same beef from AU claiming ChAFTA: conventional 0 %; VAT 9 % = 462,500 * 0.09 =
    41,625.00."""
    verdict = assess(goods("0202300000", "100000.00", "AUD", "20000", origin="AU", claim="CHAFTA"))
    assert taxes(verdict) == {
        "DUTY": ("CONVENTIONAL:CHAFTA", D("0.00")),
        "VAT": ("0202300000", D("41625.00")),
    }
    assert [r.code for r in verdict.reasons] == []
    assert verdict.decision is ev.Decision.CLEAR


def test_a_claim_the_agreement_does_not_cover_leaves_the_mfn_rate_with_a_note() -> None:
    """Beef from NZ claiming ChAFTA: NZ is not a party; MFN 12 % applies (55,500.00) and the
    verdict says why, without holding the goods."""
    verdict = assess(goods("0202300000", "100000.00", "AUD", "20000", origin="NZ", claim="CHAFTA"))
    assert taxes(verdict)["DUTY"] == ("MFN", D("55500.00"))
    assert [(r.code, r.item) for r in verdict.reasons] == [("CUS-ORIGIN-CLAIM", 1)]
    assert "does not cover goods originating in NZ" in verdict.reasons[0].message
    assert verdict.decision is ev.Decision.CLEAR


def test_a_conventional_rate_above_the_normal_one_is_not_applied() -> None:
    """Beef from NZ under an agreement at 15 %, above MFN 12 %: MFN (55,500.00), with a note."""
    verdict = assess(goods("0202300000", "100000.00", "AUD", "20000", origin="NZ", claim="TEST10"))
    assert taxes(verdict)["DUTY"] == ("MFN", D("55500.00"))
    assert "gives less duty" in verdict.reasons[0].message


def test_the_lower_of_conventional_and_provisional_applies() -> None:
    """Infant formula from NZ, 10,000 CNY: conventional 10 % vs provisional 5 % (从低适用):
    provisional, 500.00. Without a claim: provisional too (it replaces MFN 15 %)."""
    claimed = assess(goods("1901101090", "10000.00", "CNY", "500", origin="NZ", claim="TEST10"))
    assert taxes(claimed)["DUTY"] == ("PROVISIONAL", D("500.00"))
    unclaimed = assess(goods("1901101090", "10000.00", "CNY", "500", origin="NZ"))
    assert taxes(unclaimed)["DUTY"] == ("PROVISIONAL", D("500.00"))


def test_additional_duty_enters_the_consumption_tax_and_vat_bases() -> None:
    """1,000 l of brandy from FR at 10,000 EUR, during the EU brandy anti-dumping measure.

    V = 82,650.00; duty MFN 10 % = 8,265.00; anti-dumping 34.9 % of V = 28,844.85;
    CT (compound 20 % + 0.912 CNY/l) = (82,650 + 8,265 + 28,844.85 + 912) / 0.8 * 0.2 + 912
    = 30,167.9625 + 912 = 31,079.96; VAT 13 % = (82,650 + 8,265 + 28,844.85 + 31,079.96)
    * 0.13 = 150,839.81 * 0.13 = 19,609.18. Total 87,798.99.
    """
    verdict = assess(goods("2208200000", "10000.00", "EUR", "1000", origin="FR", second="1100"))
    assert taxes(verdict) == {
        "DUTY": ("MFN", D("8265.00")),
        "ADDITIONAL_DUTY": (
            "AD-BRANDY-EU: anti-dumping duty on brandy from the EU",
            D("28844.85"),
        ),
        "CONSUMPTION_TAX": ("2208200000", D("31079.96")),
        "VAT": ("2208200000", D("19609.18")),
    }
    assert verdict.total_duties == D("87798.99")
    spanish = assess(goods("2208200000", "10000.00", "EUR", "1000", origin="ES", second="1100"))
    assert "ADDITIONAL_DUTY" not in taxes(spanish)  # the measure here covers FR only


def test_compound_consumption_tax() -> None:
    """500 thousand cigarettes at 100,000 CNY CIF: duty 25 % = 25,000.00; CT (56 % +
    3 CNY per thousand) = (100,000 + 25,000 + 1,500) / (1 - 0.56) * 0.56 + 1,500 =
    287,500 * 0.56 + 1,500 = 162,500.00; VAT 13 % = (100,000 + 25,000 + 162,500) * 0.13 =
    37,375.00. Total 224,875.00."""
    verdict = assess(goods("2402200000", "100000.00", "CNY", "500", second="400"))
    assert taxes(verdict) == {
        "DUTY": ("MFN", D("25000.00")),
        "CONSUMPTION_TAX": ("2402200000", D("162500.00")),
        "VAT": ("2402200000", D("37375.00")),
    }
    assert verdict.duties[0].taxes[1].base == D("287500.00")
    assert verdict.total_duties == D("224875.00")


# --- de minimis ------------------------------------------------------------------------------


def test_taxes_of_50_yuan_or_less_per_declaration_per_kind_are_not_collected() -> None:
    """Coffee at 450 CNY: duty 8 % = 36.00 (< 50: not collected); VAT 9 % = 486 * 0.09 =
    43.74 (< 50: not collected). Nothing is due."""
    verdict = assess(goods("0901110000", "450.00", "CNY", "30"))
    assert totals(verdict) == {
        "DUTY": (D("36.00"), D("0.00")),
        "VAT": (D("43.74"), D("0.00")),
    }
    assert verdict.total_duties == D("0.00")


def test_de_minimis_is_per_kind_and_per_declaration_not_per_item() -> None:
    """Two coffee items at 450 CNY each: duty 36.00 + 36.00 = 72.00 (collected); VAT 43.74 +
    43.74 = 87.48 (collected). One item of 600 CNY: duty 48.00 (not collected), VAT
    (600 + 48) * 0.09 = 58.32 (collected): 58.32 due."""
    two = assess(
        goods("0901110000", "450.00", "CNY", "30"),
        goods("0901110000", "450.00", "CNY", "30", line_no=2),
    )
    assert totals(two) == {"DUTY": (D("72.00"), D("72.00")), "VAT": (D("87.48"), D("87.48"))}
    assert two.total_duties == D("159.48")
    one = assess(goods("0901110000", "600.00", "CNY", "40"))
    assert totals(one) == {"DUTY": (D("48.00"), D("0.00")), "VAT": (D("58.32"), D("58.32"))}
    assert one.total_duties == D("58.32")


def test_exactly_50_yuan_is_not_collected_50_01_is() -> None:
    """以下 includes the number: coffee at 625 CNY, duty 8 % = 50.00: not collected; at
    625.13 CNY, duty 50.0104 -> 50.01: collected."""
    at_50 = assess(goods("0901110000", "625.00", "CNY", "40"))
    assert totals(at_50)["DUTY"] == (D("50.00"), D("0.00"))
    above = assess(goods("0901110000", "625.13", "CNY", "40"))
    assert totals(above)["DUTY"] == (D("50.01"), D("50.01"))


# --- statutory units ---------------------------------------------------------------------------


def test_a_quantity_outside_the_statutory_units_is_rejected_and_not_taxed() -> None:
    """Gasoline declared in tonnes, with no litres: REJECT, and no duty line (the specific
    consumption tax has no quantity to levy on)."""
    item = goods("2710121000", "700000.00", "USD", "1000000").model_copy(update={"unit": "TNE"})
    verdict = assess(item)
    assert verdict.decision is ev.Decision.REJECT
    assert [r.code for r in verdict.reasons] == ["CUS-STATUTORY-UNIT", "CUS-STATUTORY-UNIT"]
    assert verdict.duties == ()


# --- the version and the exchange rate of the acceptance date ------------------------------


@pytest.mark.parametrize(
    ("accepted_at", "day", "version"),
    [
        (datetime(2026, 11, 1, 0, 0, tzinfo=UTC), date(2026, 11, 1), "customs-2026.11-r2"),
        (datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC), date(2026, 11, 30), "customs-2026.11-r2"),
        # 16:00 UTC on 30 November is midnight on 1 December in China
        (datetime(2026, 11, 30, 16, 0, tzinfo=UTC), date(2026, 12, 1), "customs-2026.12"),
        (datetime(2026, 12, 31, 15, 59, tzinfo=UTC), date(2026, 12, 31), "customs-2026.12"),
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), date(2027, 1, 1), "customs-2027.01"),
        (datetime(2031, 5, 1, tzinfo=UTC), date(2031, 5, 1), "customs-2027.01"),
    ],
)
def test_the_version_in_force_on_the_acceptance_date_in_china(
    accepted_at: datetime, day: date, version: str
) -> None:
    assert acceptance_date(accepted_at) == day
    assert version_for(PACKAGE, accepted_at) == version


def test_the_acceptance_date_fixes_the_exchange_rate_and_the_verdict_names_the_version() -> None:
    """The same car at 20,000 USD, accepted on 30 November and on 1 December (China time):
    converted at the rate of the month in force (7.1020, then 7.15882: 142,040.00 and
    143,176.40 CNY), and each verdict names its version."""
    car = goods("8703234110", "20000.00", "USD", "1", second="1450")
    late_november = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    early_december = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    for accepted_at in (late_november, early_december):
        declaration = factories.declaration(items=(car,), submitted_at=accepted_at)
        verdict = rules.assess_on_acceptance(declaration, NOW, KEY)
        reference = reference_on(accepted_at)
        assert verdict.rules_version == reference.version
        usd = reference.cny_per_unit["USD"]
        assert verdict.duties[0].customs_value_cny == (D("20000") * usd).quantize(D("0.01"))
    november, december = reference_on(late_november), reference_on(early_december)
    assert (november.version, december.version) == ("customs-2026.11-r2", "customs-2026.12")
    assert november.cny_per_unit["EUR"] == D("8.2650")
    assert december.cny_per_unit["USD"] == D("7.15882") != november.cny_per_unit["USD"]
    assert december.tariff is not november.tariff and december.tariff == november.tariff


def test_the_legacy_version_is_never_chosen_by_date_but_still_loads_by_name() -> None:
    assert load_reference("customs-2026.11").legacy
    assert version_for(PACKAGE, datetime(2026, 11, 15, tzinfo=UTC)) == "customs-2026.11-r2"


def test_a_fractional_weight_converted_to_tonnes_is_taxed_exactly_and_shown_to_the_gram() -> None:
    """Beer of 1,234.5 kg: 1.2345 t * 250 CNY/t = 308.625 -> 308.63 (the exact quantity);
    the tax line shows 1.235 t (0.001 t, half up)."""
    verdict = assess(goods("2203000000", "50000.00", "CNY", "1000", second="1234.5"))
    consumption = verdict.duties[0].taxes[1]
    assert (consumption.amount, consumption.quantity) == (D("308.63"), D("1.235"))


@pytest.mark.parametrize("cell", ["10%+20%+3/MIL", "junk+x+1.5/LTR", "3/MIL+56%", "10", "%"])
def test_a_malformed_rate_cell_is_refused(cell: str) -> None:
    with pytest.raises(ValueError, match="is not a rate"):
        Rate.parse(cell)


def test_taxes_beyond_what_a_verdict_carries_are_held_for_assessment_by_hand() -> None:
    """Gasoline with 999,999,999,999,999.999 litres declared: the consumption tax alone would be
    about 1.52 * 10^15 CNY, beyond the 10^14 a verdict carries. The verdict is a HOLD with no
    duty lines, not a crash (which would leave the declaration to time out)."""
    huge = goods("2710121000", "700000.00", "USD", "1000000", second="999999999999999.999")
    verdict = assess(huge)
    assert verdict.decision is ev.Decision.HOLD
    assert [r.code for r in verdict.reasons] == ["CUS-NOT-ASSESSABLE"]
    assert (verdict.duties, verdict.tax_totals, verdict.total_duties) == ((), (), D("0.00"))
    assert verdict == rules.assess(factories.declaration(items=(huge,)), REFERENCE, NOW, KEY)
