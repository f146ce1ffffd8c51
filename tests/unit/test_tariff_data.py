"""Sanity of the customs reference data `customs-2026.11-r2`, read with the csv module (the
loader's own checks are in test_taxes and test_customs_rules_legacy)."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from services.customs.reference import COLUMNS
from services.customs.reference import LICENCES as REFERENCE_LICENCES

FOLDER = (
    Path(__file__).resolve().parents[2]
    / "services"
    / "customs"
    / "reference"
    / "customs-2026.11-r2"
)

HEADER = list(COLUMNS)  # the loader's columns, in order
UNITS = {"KGM", "TNE", "GRM", "LTR", "MTQ", "MTK", "MTR", "H87", "SET", "PR", "MIL"}
LICENCES = {"", *REFERENCE_LICENCES}

# Minimum lines per chapter of the coverage (what this version achieves, rounded down).
MIN_LINES = {
    **{f"{c:02d}": 5 for c in range(1, 25)},
    "03": 200,
    "27": 40,
    "28": 150,
    "29": 400,
    "39": 120,
    "44": 100,
    "61": 100,
    "62": 100,
    "63": 50,
    "64": 20,
    "84": 500,
    "85": 290,
    "87": 100,
    "90": 140,
}
MIN_TOTAL = 3300

_NUM = r"\d+(?:\.\d{1,2})?"
_AD_VALOREM = re.compile(rf"^{_NUM}%$")
_SPECIFIC = re.compile(r"^(\d+(?:\.\d+)?)/([A-Z0-9]+)$")


def parse_rate(cell: str) -> tuple[float | None, tuple[float, str] | None]:
    """Parse one rate cell: ``10%``, ``1.52/LTR`` or ``5%+90/KGM``. Raises on anything else."""
    ad_valorem: float | None = None
    specific: tuple[float, str] | None = None
    parts = cell.split("+")
    if not 1 <= len(parts) <= 2:
        raise ValueError(cell)
    for part in parts:
        if _AD_VALOREM.match(part) and ad_valorem is None:
            ad_valorem = float(part[:-1])
            continue
        match = _SPECIFIC.match(part)
        if match and specific is None and match.group(2) in UNITS:
            specific = (float(match.group(1)), match.group(2))
            continue
        raise ValueError(cell)
    if len(parts) == 2 and (ad_valorem is None or specific is None):
        raise ValueError(cell)
    return ad_valorem, specific


def _read(name: str) -> tuple[list[str], list[dict[str, str]]]:
    with (FOLDER / name).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@pytest.fixture(scope="module")
def tariff() -> list[dict[str, str]]:
    header, rows = _read("tariff.csv")
    assert header == HEADER
    return rows


@pytest.fixture(scope="module")
def by_code(tariff: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["hs_code"]: r for r in tariff}


def test_rate_parser() -> None:
    assert parse_rate("270%") == (270.0, None)
    assert parse_rate("5%+90/KGM") == (5.0, (90.0, "KGM"))
    for bad in ("10", "10.123%", "5%+6%", "1/XYZ", "", "abc"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_codes_sorted_unique_ten_digits(tariff: list[dict[str, str]]) -> None:
    codes = [r["hs_code"] for r in tariff]
    assert all(re.fullmatch(r"\d{10}", c) for c in codes)
    assert codes == sorted(codes)
    assert len(codes) == len(set(codes))


def test_every_cell_parses(tariff: list[dict[str, str]]) -> None:
    for r in tariff:
        code = r["hs_code"]
        assert r["description"].strip(), code
        assert r["unit1"] in UNITS, code
        assert r["unit2"] in UNITS | {""}, code
        assert r["mfn"] and r["general"], code
        for key in ("mfn", "provisional", "general", "excise"):
            if r[key]:
                parse_rate(r[key])
        assert r["vat"] in {"13%", "9%"}, code
        assert r["prohibited"] in {"", "I", "E", "IE"}, code
        assert r["licence"] in LICENCES, code
        if r["reference_price_cny"] or r["price_unit"]:
            assert float(r["reference_price_cny"]) > 0, code
            assert r["price_unit"] in {r["unit1"], r["unit2"]} - {""}, code


def test_coverage(tariff: list[dict[str, str]]) -> None:
    per_chapter = Counter(r["hs_code"][:2] for r in tariff)
    assert len(tariff) >= MIN_TOTAL
    for chapter, minimum in MIN_LINES.items():
        assert per_chapter[chapter] >= minimum, chapter


def test_general_rates_above_100_percent_exist(tariff: list[dict[str, str]]) -> None:
    assert any((parse_rate(r["general"])[0] or 0) > 100 for r in tariff)


def test_rows_the_issue_calls_out(by_code: dict[str, dict[str, str]]) -> None:
    whisky = by_code["2208300000"]
    assert whisky["mfn"] == "10%" and whisky["excise"]
    gasoline = by_code["2710121000"]
    assert gasoline["provisional"] == "1%" and gasoline["excise"] == "1.52/LTR"
    assert parse_rate(gasoline["mfn"])[0] > 1
    assert (gasoline["unit1"], gasoline["unit2"]) == ("KGM", "LTR")
    car = by_code["8703234110"]
    assert (car["mfn"], car["excise"], car["licence"]) == ("15%", "5%", "AIL")
    assert "knocked-down" in by_code["8703234190"]["description"]
    assert by_code["8703234190"]["excise"] == ""
    for precursor in ("2806100000", "2807000010", "2909110000"):
        assert by_code[precursor]["licence"] == "PRECURSOR", precursor
    assert any(code.startswith("19011010") and row["provisional"] for code, row in by_code.items())
    assert by_code["6309000000"]["prohibited"] == "I"
    assert by_code["0507100010"]["prohibited"] == "IE"
    assert "1901101000" not in by_code and "2710192200" not in by_code
    cigarettes = by_code["2402200000"]
    assert cigarettes["excise"] == "56%+3/MIL" and "MIL" in (
        cigarettes["unit1"],
        cigarettes["unit2"],
    )
    assert by_code["2203000000"]["excise"] == "250/TNE"


def test_fuel_units(tariff: list[dict[str, str]]) -> None:
    for r in tariff:
        if r["hs_code"].startswith(("271012", "271019")):
            assert (r["unit1"], r["unit2"]) == ("KGM", "LTR"), r["hs_code"]


def test_side_tables() -> None:
    header, agreements = _read("agreements.csv")
    assert header == ["agreement", "kind", "name", "countries"]
    names = {a["agreement"] for a in agreements}
    for a in agreements:
        assert a["kind"] in {"CONVENTIONAL", "SPECIAL"}
        assert all(re.fullmatch(r"[A-Z]{2}", c) for c in a["countries"].split())
    header, conventional = _read("conventional.csv")
    assert header == ["agreement", "hs_prefix", "rate"]
    for row in conventional:
        assert row["agreement"] in names
        assert re.fullmatch(r"\d{2,10}", row["hs_prefix"])
        parse_rate(row["rate"])
    assert {"ChAFTA", "RCEP", "CCFTA", "CNZFTA", "CKFTA", "CSFTA"} <= {
        r["agreement"] for r in conventional
    }
    header, special = _read("special.csv")
    assert header == ["hs_prefix", "rate"]
    for row in special:
        assert re.fullmatch(r"\d{2,10}", row["hs_prefix"])
        parse_rate(row["rate"])
    header, duties = _read("additional_duties.csv")
    assert header == [
        "measure",
        "hs_prefix",
        "origin",
        "rate",
        "valid_from",
        "valid_to",
        "description",
    ]
    for row in duties:
        assert re.fullmatch(r"\d{2,10}", row["hs_prefix"])
        assert re.fullmatch(r"[A-Z]{2}", row["origin"])
        parse_rate(row["rate"])
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["valid_from"])
        assert row["valid_to"] == "" or row["valid_to"] > row["valid_from"]
    brandy = [r for r in duties if r["hs_prefix"].startswith("220820")]
    assert len(brandy) == 27 and {r["rate"] for r in brandy} == {"34.9%"}
