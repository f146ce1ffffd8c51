"""Reference files: ``check`` and the loaders' errors, which name the file and the line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.ciq import reference as ciq
from services.customs import reference as customs
from services.port import reference as port
from singlewindow.identifiers import (
    InvalidIdentifier,
    validate_country,
    validate_currency,
    validate_hs_code,
    validate_imo,
    validate_unlocode,
    validate_uscc,
)
from singlewindow.reference import ReferenceDataError, ReferenceFolder, check

USCC = "91350100M000100Y43"  # a valid USCC (in the shipped data)


def folder(tmp_path: Path, name: str, text: str) -> ReferenceFolder:
    """A reference folder holding one file, ``name``."""
    (tmp_path / name).write_text(text, encoding="utf-8")
    return ReferenceFolder(package="services.test", version="test-1", root=tmp_path)


def message(validator: Callable[[str], Any], value: str) -> str:
    with pytest.raises(ValueError) as caught:
        validator(value)
    return str(caught.value)


def test_check_returns_what_the_validator_returns() -> None:
    assert check("here", validate_uscc, USCC) is None
    assert check("here", customs.RiskLevel, "HIGH") is customs.RiskLevel.HIGH


def test_check_names_where_the_value_is_and_keeps_the_validators_message() -> None:
    with pytest.raises(ReferenceDataError) as caught:
        check("pkg reference v/f.csv line 3", validate_hs_code, "7712345678")
    assert str(caught.value) == (
        f"pkg reference v/f.csv line 3: {message(validate_hs_code, '7712345678')}"
    )
    assert caught.value.__suppress_context__  # the validator's traceback is no news


def test_check_turns_an_enums_refusal_into_a_reference_error() -> None:
    with pytest.raises(ReferenceDataError, match=r"^here: 'EXTREME' is not a valid RiskLevel$"):
        check("here", customs.RiskLevel, "EXTREME")


def test_check_lets_other_errors_through() -> None:
    def broken(value: str) -> None:
        raise KeyError(value)

    with pytest.raises(KeyError):
        check("here", broken, "x")


def test_csv_names_the_line_of_a_short_row(tmp_path: Path) -> None:
    ref = folder(tmp_path, "a.csv", "x,y\n1,2\n3\n")
    with pytest.raises(ReferenceDataError, match=r"^services.test reference test-1/a.csv line 3: "):
        ref.csv("a.csv", ("x", "y"))


# One case per validated cell of the loaders: the loader, its file, the header, a row whose
# cell fails, the validator of that cell and the bad value.
TARIFF = "hs_code,description,duty_rate,vat_rate,prohibited,licence_required,"
TARIFF += "reference_price_cny,price_unit"
CASES: list[tuple[Callable[[ReferenceFolder], Any], str, str, Callable[[str], Any], str]] = [
    (customs._tariff, "tariff.csv", TARIFF, validate_hs_code, "7700000000"),
    (customs._declarants, "declarant_risk.csv", "uscc,name,risk_level,assessed_on",
     validate_uscc, "91350100M000100Y44"),
    (customs._declarants, "declarant_risk.csv", "uscc,name,risk_level,assessed_on",
     customs.RiskLevel, "EXTREME"),
    (ciq._alerts, "quarantine_alerts.csv",
     "alert_id,disease,country,hs_prefixes,issued_on,lifted_on", validate_country, "XX"),
    (ciq._importers, "registered_importers.csv", "uscc,name,registered_on", validate_uscc,
     "9135010"),
    (port._served, "served_ports.csv", "unlocode,name,authority", validate_unlocode, "XXSHA"),
    (lambda f: port._calls(f, {"CNSHA": "Shanghai"}), "port_calls.csv",
     "vessel_imo,vessel_name,voyage,port,eta", validate_imo, "9074728"),
]  # fmt: skip


def _row(header: str, column: str | None = None, value: str = "") -> str:
    """A good row of a file with ``header``, but for ``value`` in ``column``."""
    good = {
        "hs_code": "0202300000", "description": "d", "duty_rate": "0.1200",
        "vat_rate": "0.0900", "prohibited": "N", "licence_required": "N",
        "reference_price_cny": "", "price_unit": "KG", "uscc": USCC, "name": "n",
        "risk_level": "LOW", "assessed_on": "2026-09-30", "alert_id": "A", "disease": "d",
        "country": "PL", "hs_prefixes": "0203", "issued_on": "2020-01-01", "lifted_on": "",
        "registered_on": "2024-03-12", "unlocode": "CNSHA", "authority": "a",
        "vessel_imo": "9074729", "vessel_name": "v", "voyage": "001E", "port": "CNSHA",
        "eta": "2026-11-26",
    }  # fmt: skip
    return ",".join(value if name == column else good[name] for name in header.split(","))


COLUMN = {
    validate_hs_code: "hs_code",
    validate_uscc: "uscc",
    customs.RiskLevel: "risk_level",
    validate_country: "country",
    validate_unlocode: "unlocode",
    validate_imo: "vessel_imo",
}


@pytest.mark.parametrize(("load", "name", "header", "validator", "bad"), CASES)
def test_a_bad_cell_is_named_by_file_and_line(
    tmp_path: Path,
    load: Callable[[ReferenceFolder], Any],
    name: str,
    header: str,
    validator: Callable[[str], Any],
    bad: str,
) -> None:
    column = COLUMN[validator]
    text = "\n".join((header, _row(header), _row(header, column, bad))) + "\n"  # line 3 bad
    ref = folder(tmp_path, name, text)
    with pytest.raises(ReferenceDataError) as caught:
        load(ref)
    assert str(caught.value) == f"{ref.where(name, 3)}: {message(validator, bad)}"


def test_an_unknown_currency_is_named_by_file(tmp_path: Path) -> None:
    text = '{"rate_date": "2026-10-21", "cny_per_unit": {"CNY": "1", "XYZ": "2"}}'
    ref = folder(tmp_path, "exchange_rates.json", text)
    with pytest.raises(ReferenceDataError) as caught:
        customs._exchange_rates(ref)
    expected = f"{ref.where('exchange_rates.json')}: {message(validate_currency, 'XYZ')}"
    assert str(caught.value) == expected


def test_an_unknown_certificate_is_named_by_file_and_line(tmp_path: Path) -> None:
    text = "category,certificate,first_import_sampling,description\nFOOD,VISA,Y,Food\n"
    ref = folder(tmp_path, "categories.csv", text)
    with pytest.raises(ReferenceDataError) as caught:
        ciq._categories(ref)
    assert str(caught.value) == f"{ref.where('categories.csv', 2)}: unknown document type VISA"


def test_an_invalid_identifier_is_a_value_error() -> None:
    assert issubclass(InvalidIdentifier, ValueError)  # what check relies on
