"""Tests for the trade code lists shipped in singlewindow/data and their validators."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

import pytest

from singlewindow.identifiers import (
    InvalidIdentifier,
    accepted_currencies,
    convert,
    incoterm_includes,
    is_bulk,
    trade_mode_needs_record,
    validate_customs_office,
    validate_enterprise_customs_code,
    validate_incoterm,
    validate_levy_nature,
    validate_package_kind,
    validate_record_number,
    validate_trade_mode,
    validate_un_number,
    validate_unit,
)

D = Decimal


def rows(name: str) -> list[dict[str, str]]:
    text = files("singlewindow").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@pytest.mark.parametrize(
    "name",
    [
        "incoterms.csv",
        "trade_modes.csv",
        "levy_natures.csv",
        "customs_offices.csv",
        "package_kinds.csv",
        "rec20_units.csv",
    ],
)
def test_list_is_sorted_unique_and_complete_rows(name: str) -> None:
    table = rows(name)
    keys = [next(iter(row.values())) for row in table]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert all(None not in row and None not in row.values() for row in table)


def test_incoterms_2020_are_the_eleven_rules() -> None:
    assert {r["code"] for r in rows("incoterms.csv")} == set(
        ["EXW", "FCA", "FAS", "FOB", "CFR", "CIF", "CPT", "CIP", "DAP", "DPU", "DDP"]
    )
    assert [incoterm_includes(c) for c in ("EXW", "FOB", "CFR", "CPT", "CIF", "CIP", "DDP")] == [
        "NONE", "NONE", "FREIGHT", "FREIGHT", "FREIGHT_INSURANCE", "FREIGHT_INSURANCE",
        "FREIGHT_INSURANCE",
    ]  # fmt: skip


def test_trade_modes_and_record_numbers() -> None:
    for code in ("0110", "0214", "0615", "0844", "0845", "1039", "9610", "9710", "9810"):
        validate_trade_mode(code)
    assert trade_mode_needs_record("0615") and trade_mode_needs_record("0214")
    assert not trade_mode_needs_record("0110") and not trade_mode_needs_record("9610")
    assert all(r["record_required"] in ("Y", "N") for r in rows("trade_modes.csv"))


def test_customs_offices_belong_to_a_listed_directly_affiliated_customs() -> None:
    table = rows("customs_offices.csv")
    districts = {r["code"] for r in table if r["code"].endswith("00")}
    assert len(districts) == 42
    assert all(r["district"] in districts and r["district"][:2] == r["code"][:2] for r in table)


def test_package_kinds_bulk() -> None:
    assert all(is_bulk(c) for c in ("VR", "VY", "VO", "VL", "VQ", "VG"))
    assert not any(is_bulk(c) for c in ("NE", "CT", "PX", "CN", "VN"))


@pytest.mark.parametrize(
    ("quantity", "source", "target", "expected"),
    [
        ("1.5", "TNE", "KGM", "1500"),
        ("250", "GRM", "KGM", "0.25"),
        ("2", "MTQ", "LTR", "2000"),
        ("750", "MLT", "LTR", "0.75"),
        ("0.000001", "KGM", "GRM", "0.001"),
        ("3", "H87", "H87", "3"),
    ],
)
def test_convert_is_exact(quantity: str, source: str, target: str, expected: str) -> None:
    assert convert(D(quantity), source, target) == D(expected)


@pytest.mark.parametrize(
    ("source", "target"), [("KGM", "LTR"), ("MIL", "H87"), ("SET", "H87"), ("PR", "H87")]
)
def test_convert_across_dimensions_is_none(source: str, target: str) -> None:
    assert convert(D(1), source, target) is None


@pytest.mark.parametrize(
    "code",
    ["4403960001", "3122930ABC", "1101910123", "8201950009"],
)
def test_enterprise_customs_code_form(code: str) -> None:
    validate_enterprise_customs_code(code)


@pytest.mark.parametrize(
    ("validator", "code", "message"),
    [
        (validate_incoterm, "FOB ", "3 characters long"),
        (validate_incoterm, "DAT", "'DAT' is not in the shipped list"),  # Incoterms 2010 only
        (validate_incoterm, "fob", "'f' at position 1"),
        (validate_trade_mode, "0111", "'0111' is not in the shipped list"),
        (validate_trade_mode, "110", "4 characters long"),
        (validate_levy_nature, "100", "'100' is not in the shipped list"),
        (validate_levy_nature, "1O1", "'O' at position 2"),
        (validate_customs_office, "0300", "'0300' is not in the shipped list"),
        (validate_package_kind, "ZZ", "'ZZ' is not in the shipped list"),
        (validate_unit, "KG", "'KG' is not in the shipped list"),
        (validate_unit, "KGMS", "2 or 3 characters long"),
        (validate_unit, "kgm", "'k' at position 1"),
        (validate_enterprise_customs_code, "440396000", "10 characters long"),
        (validate_enterprise_customs_code, "9903960001", "99 is not a GB/T 2260 province"),
        (validate_enterprise_customs_code, "44A3960001", "'A' at position 3"),
        (validate_enterprise_customs_code, "4403960a01", "'a' at position 8"),
        (validate_record_number, "C2201750000", "12 characters long"),
        (validate_record_number, "A22017500001", "kind 'A' is not one of"),
        (validate_record_number, "C2201750000a", "'a' at position 12"),
        (validate_un_number, "UN0003", "outside UN0004-UN3599"),
        (validate_un_number, "UN3600", "outside UN0004-UN3599"),
        (validate_un_number, "1203", "6 characters long"),
        (validate_un_number, "NA1203", "must start with 'UN'"),
        (validate_un_number, "UN12O3", "'O' at position 3"),
    ],
)
def test_bad_codes_are_rejected_with_reason(
    validator: Callable[[str], object], code: str, message: str
) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        validator(code)


@pytest.mark.parametrize(
    ("validator", "code"),
    [
        (validate_incoterm, "DPU"),
        (validate_levy_nature, "101"),
        (validate_levy_nature, "999"),
        (validate_customs_office, "2248"),
        (validate_customs_office, "4300"),
        (validate_package_kind, "NE"),
        (validate_unit, "PR"),
        (validate_unit, "H87"),
        (validate_record_number, "C22017500001"),
        (validate_record_number, "E3101B000123"),
        (validate_record_number, "Z22012345678"),
        (validate_un_number, "UN0004"),
        (validate_un_number, "UN1203"),
        (validate_un_number, "UN3599"),
    ],
)
def test_good_codes_validate(validator: Callable[[str], object], code: str) -> None:
    validator(code)


REFERENCE = Path(__file__).parents[2] / "services" / "customs" / "reference"


@pytest.mark.parametrize("version", ["customs-2026.11-r2", "customs-2026.12", "customs-2027.01"])
def test_exchange_rates_cover_exactly_the_accepted_currencies(version: str) -> None:
    data = json.loads((REFERENCE / version / "exchange_rates.json").read_text(encoding="utf-8"))
    rates = {code: D(value) for code, value in data["cny_per_unit"].items()}
    assert set(rates) == accepted_currencies()
    assert all(rate > 0 for rate in rates.values())
    assert rates["CNY"] == 1


def test_november_r2_keeps_the_released_rates() -> None:
    def rates(version: str) -> dict[str, str]:
        path = REFERENCE / version / "exchange_rates.json"
        return dict(json.loads(path.read_text(encoding="utf-8"))["cny_per_unit"])

    released, revised = rates("customs-2026.11"), rates("customs-2026.11-r2")
    assert {code: revised[code] for code in released} == released
