"""Validation of the intake's request body: every bad field named, decimals as strings."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from services.intake.errors import Problem
from services.intake.schema import DeclarationRequest, parse_declaration
from singlewindow import events as ev


def valid_body() -> dict[str, Any]:
    """A valid declaration: real identifiers with correct check characters."""
    return {
        "declaration_type": "IMPORT",
        "declarant": {"uscc": "91350100M000100Y43", "name": "厦门某某贸易有限公司"},
        "transport": {
            "mode": "SEA",
            "vessel_imo": "9074729",
            "voyage": "001E",
            "bill_of_lading": "COSU6182736450",
            "port_of_loading": "NLRTM",
            "port_of_discharge": "CNSHA",
            "containers": ["CSQU3054383"],
        },
        "items": [
            {
                "hs_code": "8471300000",
                "description": "Laptop computers",
                "origin_country": "NL",
                "quantity": "120.5",
                "unit": "KG",
                "customs_value": "45000.10",
                "currency": "EUR",
            }
        ],
        "documents": [{"type": "COMMERCIAL_INVOICE", "reference": "INV-2026-001"}],
    }


def changed(path: str, value: Any, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of the body with ``a.b[0].c`` set (or deleted when value is ``DELETE``)."""
    body = copy.deepcopy(body or valid_body())
    *parents, last = path.replace("[", ".").replace("]", "").split(".")
    target: Any = body
    for part in parents:
        target = target[int(part) if part.isdigit() else part]
    key: Any = int(last) if last.isdigit() else last
    if value is DELETE:
        del target[key]
    else:
        target[key] = value
    return body


DELETE = object()


def fields_of(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(Problem) as caught:
        parse_declaration(body)
    assert caught.value.status == 422
    return {error.field: error.message for error in caught.value.errors}


def test_the_valid_body_is_valid() -> None:
    declaration = parse_declaration(valid_body())
    assert declaration.items[0].customs_value == Decimal("45000.10")
    assert str(declaration.items[0].quantity) == "120.500"  # normalised to its scale


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("declaration_type", "TRANSIT", "declaration_type"),
        ("declarant.uscc", "91350100M000100Y44", "declarant.uscc"),
        ("declarant.name", "x" * 201, "declarant.name"),
        ("declarant.name", "   ", "declarant.name"),
        ("declarant.name", "tab\there", "declarant.name"),
        ("transport.mode", "SPACE", "transport.mode"),
        ("transport.vessel_imo", "9074728", "transport.vessel_imo"),
        ("transport.voyage", "V" * 18, "transport.voyage"),
        ("transport.bill_of_lading", "B" * 36, "transport.bill_of_lading"),
        ("transport.port_of_loading", "XXRTM", "transport.port_of_loading"),
        ("transport.containers", ["CSQU3054384"], "transport.containers[0]"),
        ("transport.containers", [], "transport.containers"),
        ("items", [], "items"),
        ("items[0].hs_code", "847130", "items[0].hs_code"),
        ("items[0].hs_code", "7700000000", "items[0].hs_code"),
        ("items[0].description", "d" * 501, "items[0].description"),
        ("items[0].origin_country", "XX", "items[0].origin_country"),
        ("items[0].currency", "EUX", "items[0].currency"),
        ("items[0].unit", "kilogram", "items[0].unit"),
        ("items[0].quantity", "0", "items[0].quantity"),
        ("items[0].quantity", "-1", "items[0].quantity"),
        ("items[0].quantity", "1.2345", "items[0].quantity"),
        ("items[0].quantity", "NaN", "items[0].quantity"),
        ("items[0].quantity", "Infinity", "items[0].quantity"),
        ("items[0].quantity", "1e3", "items[0].quantity"),
        ("items[0].quantity", "1" * 16, "items[0].quantity"),
        ("items[0].quantity", True, "items[0].quantity"),
        ("items[0].customs_value", "-0.01", "items[0].customs_value"),
        ("items[0].customs_value", "1.001", "items[0].customs_value"),
        ("items[0].customs_value", 45000.1, "items[0].customs_value"),
        ("items[0].customs_value", 45000, "items[0].customs_value"),
        ("documents[0].type", "PASSPORT", "documents[0].type"),
        ("documents[0].reference", "r" * 65, "documents[0].reference"),
        ("documents", [{"type": "PACKING_LIST", "reference": "P"}] * 51, "documents"),
        ("declarant.nickname", "x", "declarant.nickname"),
        ("surprise", 1, "surprise"),
        ("declarant", DELETE, "declarant"),
    ],
)
def test_a_bad_value_is_named(path: str, value: Any, field: str) -> None:
    assert field in fields_of(changed(path, value))


def test_a_number_for_a_decimal_says_to_send_a_string() -> None:
    message = fields_of(changed("items[0].quantity", 120.5))["items[0].quantity"]
    assert "JSON string" in message and "not a JSON number" in message


def test_every_bad_field_is_named_at_once() -> None:
    body = valid_body()
    body["declarant"]["uscc"] = "91350100M000100Y4X"
    body["transport"]["vessel_imo"] = "1234568"
    body["items"].append({**body["items"][0], "hs_code": "ABC", "currency": "XYZ"})
    body["items"][0]["quantity"] = "-5"
    body["documents"][0]["type"] = "LETTER"
    assert set(fields_of(body)) == {
        "declarant.uscc",
        "transport.vessel_imo",
        "items[0].quantity",
        "items[1].hs_code",
        "items[1].currency",
        "documents[0].type",
    }


def test_sea_needs_vessel_voyage_and_containers() -> None:
    body = valid_body()
    for name in ("vessel_imo", "voyage", "containers"):
        del body["transport"][name]
    body["items"][0]["hs_code"] = "1"  # reported together with the transport rule
    errors = fields_of(body)
    assert {"transport.vessel_imo", "transport.voyage", "transport.containers"} <= set(errors)
    assert "items[0].hs_code" in errors
    assert errors["transport.voyage"] == "required when mode is SEA"


@pytest.mark.parametrize("mode", ["AIR", "RAIL", "ROAD"])
def test_other_modes_carry_no_vessel_voyage_or_containers(mode: str) -> None:
    errors = fields_of(changed("transport.mode", mode))
    assert set(errors) == {"transport.vessel_imo", "transport.voyage", "transport.containers"}
    body = changed("transport.mode", mode)
    for name in ("vessel_imo", "voyage"):
        body["transport"][name] = None
    del body["transport"]["containers"]
    assert parse_declaration(body).transport.containers is None


def test_documents_may_be_omitted() -> None:
    assert parse_declaration(changed("documents", DELETE)).documents == []


def test_lone_surrogates_are_refused() -> None:
    assert "declarant.name" in fields_of(changed("declarant.name", "bad \ud800 text"))


def test_the_hash_is_canonical() -> None:
    first = parse_declaration(valid_body())
    reordered = dict(reversed(list(valid_body().items())))
    same = parse_declaration(changed("items[0].customs_value", "45000.1", reordered))
    other = parse_declaration(changed("items[0].customs_value", "45000.11"))
    assert first.body_hash() == same.body_hash() != other.body_hash()


def test_the_event_numbers_items_and_copies_everything() -> None:
    body = valid_body()
    body["items"].append({**body["items"][0], "hs_code": "0201100000", "quantity": "3"})
    at = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
    event = parse_declaration(body).to_event(
        declaration_id="DEC-1",
        event_id="e-1",
        submitted_at=at,
        agencies=("customs", "ciq", "port"),
        routing_version="routing-test",
    )
    assert [item.line for item in event.items] == [1, 2]
    assert event.items[1].quantity == Decimal("3.000")
    assert event.consignment.containers == ("CSQU3054383",)
    assert event.declarant.uscc == "91350100M000100Y43"
    assert event.submitted_at == at and event.routing_version == "routing-test"
    assert ev.DeclarationSubmitted.from_avro(event.to_avro()) == event


def test_air_events_have_no_containers() -> None:
    body = changed("transport.mode", "AIR")
    for name in ("vessel_imo", "voyage", "containers"):
        del body["transport"][name]
    event = DeclarationRequest.model_validate(body).to_event(
        declaration_id="D",
        event_id="E",
        submitted_at=datetime(2026, 1, 1, tzinfo=UTC),
        agencies=("customs",),
        routing_version="v",
    )
    assert event.consignment.containers == () and event.consignment.vessel_imo is None
