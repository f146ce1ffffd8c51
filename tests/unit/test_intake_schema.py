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
    event = declaration(version=1)  # every declaration the intake lodges has a version
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
    assert errors["transport.voyage"] == (
        "required when mode is SEA (the voyage) or RAIL (the train's number)"
    )
    assert errors["transport.vessel_imo"] == "required when mode is SEA"


@pytest.mark.parametrize("mode", ["AIR", "RAIL", "ROAD"])
def test_other_modes_carry_no_vessel(mode: str) -> None:
    errors = fields_of(changed("transport.mode", mode))
    assert errors == {"transport.vessel_imo": "allowed only when mode is SEA"}
    body = changed("transport.mode", mode)
    body["transport"]["vessel_imo"] = None
    # the voyage is a train's number by rail, a flight or trip number otherwise
    assert parse_declaration(body).transport.voyage == "001E"
    assert parse_declaration(body).transport.containers == ["CSQU3054383"]  # containerised
    body["transport"]["voyage"] = None
    if mode == "RAIL":
        assert set(fields_of(body)) == {"transport.voyage"}
        return
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


# --- the rules of the declaration form ------------------------------------------------------


def event_of(body: dict[str, Any]) -> ev.DeclarationSubmitted:
    return parse_declaration(body).to_event(
        declaration_id="DEC-1",
        event_id="e-1",
        submitted_at=datetime(2026, 11, 27, 8, 30, tzinfo=UTC),
        agencies=("customs", "port"),
        routing_version="routing-test",
    )


def valued(
    incoterm: str,
    *prices: str,
    declaration_type: str = "IMPORT",
    **costs: str,
) -> dict[str, Any]:
    """The valid body under ``incoterm`` with ``costs`` (freight, insurance) and one item per
    price (copies of the laptops)."""
    body = changed("declaration_type", declaration_type)
    body["valuation"] |= {"incoterm": incoterm, **costs}
    body["items"] = [{**body["items"][0], "invoice_price": price} for price in prices]
    return body


def test_a_record_number_exactly_when_the_trade_mode_needs_one() -> None:
    processing = changed("trade_mode", "0615")  # 进料对口: under a processing-trade manual
    assert fields_of(processing) == {"record_number": "required for trade mode 0615"}
    manual = changed("record_number", "C22017500001", processing)
    assert parse_declaration(manual).record_number == "C22017500001"
    assert event_of(manual).record_number == "C22017500001"
    general = changed("record_number", "C22017500001")  # 0110 一般贸易 takes none
    assert fields_of(general) == {"record_number": "trade mode 0110 takes none"}
    assert "record_number" in fields_of(changed("record_number", "A22017500001", processing))


def test_freight_is_required_under_fob_for_an_import_and_refused_under_cif() -> None:
    errors = fields_of(valued("FOB", "10000.00"))
    assert set(errors) == {"valuation.freight"}
    assert errors["valuation.freight"] == "required under FOB for an IMPORT"
    errors = fields_of(valued("CIF", "10000.00", freight="500.00"))
    assert set(errors) == {"valuation.freight"}
    assert errors["valuation.freight"].startswith("must be absent under CIF")
    assert set(fields_of(valued("CIF", "10000.00", insurance="30.00"))) == {"valuation.insurance"}


def test_insurance_not_declared_is_estimated_at_3_per_mille() -> None:
    """FOB, two items priced 6,000.00 and 4,000.00, freight 500.00, no insurance:
    insurance = (10,000.00 + 500.00) * 0.003 = 31.50, CIF = 10,531.50; the 531.50 added is
    shared by price: 6,000.00 + 318.90 = 6,318.90 and 4,000.00 + 212.60 = 4,212.60."""
    body = valued("FOB", "6000.00", "4000.00", freight="500.00")
    computed = parse_declaration(body).customs_values()
    assert (computed.insurance, computed.insurance_estimated) == (Decimal("31.50"), True)
    assert computed.total_value == Decimal("10531.50")
    event = event_of(body)
    assert [item.customs_value for item in event.items] == [
        Decimal("6318.90"),
        Decimal("4212.60"),
    ]
    assert [item.invoice_price for item in event.items] == [Decimal("6000.00"), Decimal("4000.00")]
    assert event.valuation is not None and event.valuation.insurance is None  # as declared
    declared = valued("FOB", "6000.00", "4000.00", freight="500.00", insurance="0.00")
    assert parse_declaration(declared).customs_values().total_value == Decimal("10500.00")


def test_an_export_under_cif_deducts_freight_and_insurance() -> None:
    """FOB value of an export sold CIF: 6,000.00 + 4,000.00 - 500.00 freight - 30.00
    insurance = 9,470.00; the 530.00 deducted is shared by price: 6,000.00 - 318.00 =
    5,682.00 and 4,000.00 - 212.00 = 3,788.00."""
    body = valued(
        "CIF", "6000.00", "4000.00", declaration_type="EXPORT", freight="500", insurance="30"
    )
    event = event_of(body)
    assert [item.customs_value for item in event.items] == [
        Decimal("5682.00"),
        Decimal("3788.00"),
    ]
    assert parse_declaration(body).customs_values().total_value == Decimal("9470.00")
    no_insurance = valued("CIF", "6000.00", declaration_type="EXPORT", freight="500")
    assert set(fields_of(no_insurance)) == {"valuation.insurance"}
    under_fob = valued("FOB", "6000.00", declaration_type="EXPORT", freight="500")
    assert "nothing to deduct" in fields_of(under_fob)["valuation.freight"]
    too_much = valued("CIF", "100.00", declaration_type="EXPORT", freight="500", insurance="1")
    assert "valuation" in fields_of(too_much)  # a negative value


def test_a_price_influenced_needs_a_special_relationship() -> None:
    influenced = changed("valuation.price_influenced", True)
    assert fields_of(influenced) == {"valuation.price_influenced": "needs special_relationship"}
    related = changed("valuation.special_relationship", True, influenced)
    assert parse_declaration(related).valuation.price_influenced is True


def test_bulk_cargo_travels_in_no_container_but_a_train_may_carry_some() -> None:
    bulk = changed("transport.package_kind", "VL")  # bulk, liquid
    errors = fields_of(bulk)
    assert set(errors) == {"transport.containers"} and "bulk" in errors["transport.containers"]
    assert (
        parse_declaration(changed("transport.containers", DELETE, bulk)).transport.containers
        is None
    )
    train = changed("transport.mode", "RAIL")
    del train["transport"]["vessel_imo"]
    assert parse_declaration(train).transport.containers == ["CSQU3054383"]
    assert event_of(train).consignment.containers == ("CSQU3054383",)


def test_a_vessel_only_by_sea_a_voyage_or_train_number_by_sea_and_rail() -> None:
    assert set(fields_of(changed("transport.voyage", DELETE))) == {"transport.voyage"}
    road = changed("transport.mode", "ROAD")
    del road["transport"]["voyage"]
    assert fields_of(road) == {"transport.vessel_imo": "allowed only when mode is SEA"}
    train = changed("transport.mode", "RAIL")
    del train["transport"]["vessel_imo"], train["transport"]["voyage"]
    assert set(fields_of(train)) == {"transport.voyage"}


def test_the_net_weight_is_at_most_the_gross_weight() -> None:
    errors = fields_of(changed("transport.net_weight_kg", "150.001"))
    assert errors == {"transport.net_weight_kg": "must not exceed the gross weight"}
    same = parse_declaration(changed("transport.net_weight_kg", "150"))
    assert same.transport.net_weight_kg == same.transport.gross_weight_kg


def test_second_quantity_and_second_unit_go_together() -> None:
    alone = changed("items[0].second_unit", DELETE)
    assert fields_of(alone) == {"items[0].second_unit": "goes with second_quantity"}
    unit_alone = changed("items[0].second_quantity", DELETE)
    assert fields_of(unit_alone) == {"items[0].second_unit": "goes with second_quantity"}
    neither = changed("items[0].second_unit", DELETE, unit_alone)
    assert parse_declaration(neither).items[0].second_quantity is None


def test_an_items_licence_names_an_import_licence_of_the_declaration() -> None:
    body = changed("items[0].licences", ["IL-2026-0001"])
    errors = fields_of(body)
    assert set(errors) == {"items[0].licences[0]"}
    assert "IMPORT_LICENSE" in errors["items[0].licences[0]"]
    invoice = changed("items[0].licences", ["INV-2026-001"])  # a document, not a licence
    assert set(fields_of(invoice)) == {"items[0].licences[0]"}
    body["documents"].append({"type": "IMPORT_LICENSE", "reference": "IL-2026-0001"})
    assert event_of(body).items[0].licences == ("IL-2026-0001",)


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("declarant.uscc", "91310115UKRECL7CL1", "declarant.uscc", "organisation code"),
        ("domestic_party.uscc", "91310115UKRECL7CL1", "domestic_party.uscc", "GB 11714"),
        ("declarant.customs_code", "9902980123", "declarant.customs_code", "province"),
        ("valuation.currency", "XXX", "valuation.currency", "no currency involved"),
        ("transport.port_of_loading", "CNZZZ", "transport.port_of_loading", "ZZZ"),
        ("transport.entry_port", "CNZZZ", "transport.entry_port", "ZZZ"),
        ("transport.vessel_imo", "0000000", "transport.vessel_imo", "not a ship number"),
        ("items[0].unit", "KG", "items[0].unit", "rec20"),
        ("items[0].second_unit", "KG", "items[0].second_unit", "rec20"),
        ("valuation.incoterm", "FOB2", "valuation.incoterm", "Incoterms"),
        ("trade_mode", "9999", "trade_mode", "trade mode"),
        ("levy_nature", "100", "levy_nature", "levy nature"),
        ("declaration_office", "9999", "declaration_office", "customs office"),
        ("transport.package_kind", "XX", "transport.package_kind", "package kind"),
        ("record_number", "C2201750000", "record_number", "12 characters"),
        ("items[0].un_number", "UN9999", "items[0].un_number", "UN0004-UN3599"),
        ("overseas_party.country", "XX", "overseas_party.country", "ISO 3166-1"),
    ],
)
def test_a_bad_code_is_named(path: str, value: str, field: str, words: str) -> None:
    errors = fields_of(changed(path, value))
    assert field in errors and words in errors[field], errors


@pytest.mark.parametrize("price", [45000.1, 45000, "4.5e4"])
def test_an_invoice_price_is_a_plain_decimal_string(price: object) -> None:
    message = fields_of(changed("items[0].invoice_price", price))["items[0].invoice_price"]
    assert ("not a JSON number" in message) == (not isinstance(price, str))
    assert "45000.10" in message  # says what to send


def test_an_origin_claim_names_a_certificate_of_origin_lodged() -> None:
    claimed = changed("items[0].origin_claim", {"agreement": "RCEP", "certificate": "CO-1"})
    assert fields_of(claimed) == {
        "items[0].origin_claim.certificate": "names no CERTIFICATE_OF_ORIGIN document of this "
        "declaration"
    }
    claimed["documents"].append({"type": "CERTIFICATE_OF_ORIGIN", "reference": "CO-1"})
    assert event_of(claimed).items[0].origin_claim == ev.OriginClaim(
        agreement="RCEP", certificate="CO-1"
    )


def test_a_customs_value_beyond_an_amount_is_a_422_not_a_500() -> None:
    """The largest price plus 1.00 of freight (FOB) would be 10,030,000,000,000,000.99."""
    body = changed("valuation.incoterm", "FOB")
    body["valuation"]["freight"] = "1.00"
    body["items"][0]["invoice_price"] = "9999999999999999.99"
    assert list(fields_of(body)) == ["items[0].invoice_price"]


def test_a_free_item_gets_no_share_of_the_freight() -> None:
    """FOB, prices 100.00, 100.00 and a free sample (0.00), freight 10.00: insurance
    (200 + 10) * 0.003 = 0.63, adjustment 10.63, shares 5.32 (5.315 half up) and 5.32 would
    be 10.64: the highest price (the first) takes the difference, 5.31; the sample stays 0."""
    body = changed("valuation.incoterm", "FOB")
    body["valuation"]["freight"] = "10.00"
    body["items"][0]["invoice_price"] = "100.00"
    body["items"] += [
        {**body["items"][0], "invoice_price": "100.00"},
        {**body["items"][0], "invoice_price": "0.00"},
    ]
    values = [item.customs_value for item in event_of(body).items]
    assert values == [Decimal("105.31"), Decimal("105.32"), Decimal("0.00")]
