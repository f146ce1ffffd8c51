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
from tests.factories import declaration, declaration_body


def valid_body() -> dict[str, Any]:
    """A valid declaration (:func:`tests.factories.declaration_body`): real identifiers with
    correct check characters."""
    return declaration_body()


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
    assert declaration.items[0].invoice_price == Decimal("45000.10")
    assert str(declaration.items[0].quantity) == "120.000"  # normalised to its scale
    assert str(declaration.items[0].second_quantity) == "120.500"
    assert str(declaration.transport.gross_weight_kg) == "150.000"
    assert declaration.customs_values().item_values == (Decimal("45000.10"),)  # CIF: the price


def test_the_valid_body_is_the_factorys_declaration() -> None:
    event = declaration()
    assert (
        parse_declaration(valid_body()).to_event(
            declaration_id=event.declaration_id,
            event_id=event.event_id,
            submitted_at=event.submitted_at,
            agencies=event.required_agencies,
            routing_version=event.routing_version,
        )
        == event
    )


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
        ("valuation.currency", "EUX", "valuation.currency"),
        ("items[0].unit", "kilogram", "items[0].unit"),
        ("items[0].quantity", "0", "items[0].quantity"),
        ("items[0].quantity", "-1", "items[0].quantity"),
        ("items[0].quantity", "1.2345", "items[0].quantity"),
        ("items[0].quantity", "NaN", "items[0].quantity"),
        ("items[0].quantity", "Infinity", "items[0].quantity"),
        ("items[0].quantity", "1e3", "items[0].quantity"),
        ("items[0].quantity", "1" * 16, "items[0].quantity"),
        ("items[0].quantity", True, "items[0].quantity"),
        ("items[0].invoice_price", "-0.01", "items[0].invoice_price"),
        ("items[0].invoice_price", "1.001", "items[0].invoice_price"),
        ("items[0].invoice_price", 45000.1, "items[0].invoice_price"),
        ("items[0].invoice_price", 45000, "items[0].invoice_price"),
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
    body["valuation"]["currency"] = "XYZ"
    body["items"].append({**body["items"][0], "hs_code": "ABC"})
    body["items"][0]["quantity"] = "-5"
    body["documents"][0]["type"] = "LETTER"
    assert set(fields_of(body)) == {
        "declarant.uscc",
        "valuation.currency",
        "transport.vessel_imo",
        "items[0].quantity",
        "items[1].hs_code",
        "documents[0].type",
    }


def test_sea_needs_vessel_and_voyage_not_containers() -> None:
    body = valid_body()
    for name in ("vessel_imo", "voyage", "containers"):
        del body["transport"][name]
    body["items"][0]["hs_code"] = "1"  # reported together with the transport rule
    errors = fields_of(body)
    assert {"transport.vessel_imo", "transport.voyage"} <= set(errors)
    assert "transport.containers" not in errors  # containers follow the cargo, not the mode
    assert "items[0].hs_code" in errors
    assert errors["transport.voyage"] == "required when mode is SEA"
    assert errors["transport.vessel_imo"] == "required when mode is SEA"


@pytest.mark.parametrize("mode", ["AIR", "RAIL", "ROAD"])
def test_other_modes_carry_no_vessel_or_voyage(mode: str) -> None:
    errors = fields_of(changed("transport.mode", mode))
    assert set(errors) == {"transport.vessel_imo", "transport.voyage"}
    assert errors["transport.voyage"] == "allowed only when mode is SEA"
    body = changed("transport.mode", mode)
    for name in ("vessel_imo", "voyage"):
        body["transport"][name] = None
    assert parse_declaration(body).transport.containers == ["CSQU3054383"]  # containerised
    del body["transport"]["containers"]
    assert parse_declaration(body).transport.containers is None


def test_documents_may_be_omitted() -> None:
    assert parse_declaration(changed("documents", DELETE)).documents == []


def test_lone_surrogates_are_refused() -> None:
    assert "declarant.name" in fields_of(changed("declarant.name", "bad \ud800 text"))


def test_the_hash_is_canonical() -> None:
    first = parse_declaration(valid_body())
    reordered = dict(reversed(list(valid_body().items())))
    same = parse_declaration(changed("items[0].invoice_price", "45000.1", reordered))
    other = parse_declaration(changed("items[0].invoice_price", "45000.11"))
    assert first.body_hash() == same.body_hash() != other.body_hash()


def test_the_event_numbers_items_and_copies_everything() -> None:
    body = valid_body()
    beef = {"hs_code": "0201100000", "quantity": "3", "unit": "KGM", "invoice_price": "900"}
    body["items"].append({**body["items"][0], "second_quantity": None, "second_unit": None, **beef})
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
    laptops, meat = event.items
    assert (laptops.customs_value, meat.customs_value) == (Decimal("45000.10"), Decimal("900.00"))
    assert laptops.currency == meat.currency == "EUR"
    assert (laptops.second_quantity, laptops.second_unit) == (Decimal("120.500"), "KGM")
    assert (meat.second_quantity, meat.second_unit) == (None, None)
    assert laptops.declaration_elements == "0|0|portable|Dell|XPS 13"
    assert (event.trade_mode, event.levy_nature, event.record_number) == ("0110", "101", None)
    assert event.declaration_office == "2248" and event.declarant.customs_code == "3502980123"
    assert event.owner.name == "厦门某某贸易有限公司"
    assert event.overseas_party == ev.OverseasParty(name="Dell Products B.V.", country="NL")
    assert event.valuation == ev.Valuation(incoterm="CIF", currency="EUR")
    consignment = event.consignment
    assert (consignment.gross_weight_kg, consignment.net_weight_kg) == (
        Decimal("150.000"),
        Decimal("120.500"),
    )
    assert (consignment.packages, consignment.package_kind, consignment.entry_port) == (
        12,
        "CT",
        "CNSHA",
    )
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
