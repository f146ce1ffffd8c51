"""The routing table: which agencies must rule, in a stable order, with the table version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.intake.routing import current_version, load_table, route, tables_dir
from services.intake.schema import parse_declaration
from tests import factories
from tests.unit.test_intake_schema import valid_body

CUSTOMS, CIQ, PORT = "customs", "ciq", "port"
TABLE = load_table()


def air(body: dict[str, Any]) -> dict[str, Any]:
    body["transport"] = {
        k: v
        for k, v in body["transport"].items()
        if k not in ("vessel_imo", "voyage", "containers")
    }
    body["transport"]["mode"] = "AIR"
    return body


def agencies(body: dict[str, Any]) -> tuple[str, ...]:
    return route(parse_declaration(body), TABLE)[0]


def test_the_shipped_table_has_a_version() -> None:
    assert TABLE.version == "routing-2026.11-r2"
    assert (
        json.loads((tables_dir() / f"{current_version()}.json").read_text())["version"]
        == TABLE.version
    )


def test_sea_freight_of_laptops_goes_to_customs_and_port() -> None:
    assert route(parse_declaration(valid_body()), TABLE) == ((CUSTOMS, PORT), "routing-2026.11-r2")


def test_air_freight_of_laptops_goes_to_customs_only() -> None:
    assert agencies(air(valid_body())) == (CUSTOMS,)


@pytest.mark.parametrize(
    "hs_code",
    [
        "0201100000",  # beef
        "0210110000",  # ham
        "0302110000",  # fish
        "0401100000",  # milk
        "0407110000",  # eggs
        "0805100000",  # oranges
        "1001110000",  # wheat
        "1201100000",  # soya beans
        "1901101000",  # infant formula
        "2204210000",  # wine
        "4403110000",  # wood in the rough
        "0901110000",  # coffee, not roasted
        "2203000000",  # beer
        "2208300000",  # whisky
        "2710121000",  # motor gasoline
        "2806100000",  # hydrochloric acid
        "8703234110",  # a car
    ],
)
def test_statutory_inspection_goods_add_ciq(hs_code: str) -> None:
    body = valid_body()
    body["items"].append({**body["items"][0], "hs_code": hs_code})
    assert agencies(body) == (CUSTOMS, CIQ, PORT)


@pytest.mark.parametrize(
    "hs_code", ["0211000000", "1902110000", "2202100000", "4501100000", "4418100000"]
)
def test_neighbouring_codes_do_not_add_ciq(hs_code: str) -> None:
    body = air(valid_body())
    body["items"][0]["hs_code"] = hs_code
    assert agencies(body) == (CUSTOMS,)


@pytest.mark.parametrize("document", ["HEALTH_CERTIFICATE", "PHYTOSANITARY_CERTIFICATE"])
def test_health_and_phytosanitary_certificates_add_ciq(document: str) -> None:
    body = air(valid_body())
    body["documents"].append({"type": document, "reference": "CERT-1"})
    assert agencies(body) == (CUSTOMS, CIQ)


def test_the_submitted_event_routes_like_the_request() -> None:
    event = factories.declaration()
    assert route(event, TABLE) == ((CUSTOMS, PORT), TABLE.version)


def test_the_agencies_are_listed_in_the_order_of_the_table(tmp_path: Path) -> None:
    """The order is the table version's, so an auditor recomputes it exactly; it no longer
    comes from a closed list of agencies in the code."""
    raw = json.loads((tables_dir() / f"{current_version()}.json").read_text())
    raw["agencies"] = dict(reversed(list(raw["agencies"].items())))
    (tmp_path / "t.json").write_text(json.dumps(raw))
    body = valid_body()
    body["items"][0]["hs_code"] = "0302110000"
    assert route(parse_declaration(body), TABLE)[0] == (CUSTOMS, CIQ, PORT)
    assert route(parse_declaration(body), load_table(tmp_path / "t.json"))[0] == (
        PORT,
        CIQ,
        CUSTOMS,
    )


@pytest.mark.parametrize(
    "agencies_json",
    [
        {"customs": {"always": True}, "UNKNOWN": {"always": True}},
        {"customs": {"modes": ["SEA"]}},  # no agency would rule on an AIR declaration
        {"customs": {"always": True, "hs_prefixes": [{"prefix": "8"}]}},  # prefix too short
        {"customs": {"always": True, "documents": ["PASSPORT"]}},
        {"customs": {"always": True, "sometimes": True}},
        {"customs": {"always": True}, "immigration": {"always": True}},  # not registered
    ],
)
def test_a_malformed_table_is_refused(tmp_path: Path, agencies_json: dict[str, Any]) -> None:
    (tmp_path / "t.json").write_text(json.dumps({"version": "v", "agencies": agencies_json}))
    with pytest.raises(ValueError):  # pydantic's ValidationError is one
        load_table(tmp_path / "t.json")
