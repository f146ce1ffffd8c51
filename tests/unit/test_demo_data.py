"""Demo declarations: valid, consistent with the reference data, decided as their scenario says."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from deploy.local import demo_data
from services.ciq import rules as ciq
from services.customs import rules as customs
from services.intake.schema import parse_declaration
from services.port import rules as port
from singlewindow import events as ev
from singlewindow.identifiers import (
    validate_container_number,
    validate_country,
    validate_currency,
    validate_hs_code,
    validate_imo,
    validate_unlocode,
)
from singlewindow.verdicts import combine
from tests import factories

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
N = 200
CUSTOMS, CIQ, PORT = customs.load_reference(), ciq.load_reference(), port.load_reference()
BODIES = [demo_data.sample_declaration_body(i) for i in range(N)]
DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
KEY = factories.sampling_key()  # customs' random sample, under a test key


def to_event(i: int, body: dict[str, Any]) -> ev.DeclarationSubmitted:
    """The submitted event the intake builds from the body (it validates it first)."""
    return parse_declaration(body).to_event(
        declaration_id=f"DEMO-{i:05d}",
        event_id=f"E-{i}",
        submitted_at=NOW,
        agencies=("customs", "ciq", "port"),
        routing_version="routing-2026.11",
    )


def awb_valid(number: str) -> bool:
    match = re.fullmatch(r"([0-9]{3})-([0-9]{7})([0-9])", number)
    return match is not None and int(match[2]) % 7 == int(match[3])


@pytest.mark.parametrize("i", range(N))
def test_body_is_internally_consistent(i: int) -> None:
    body = BODIES[i]
    event = to_event(i, body)  # the intake accepts it (else a Problem names the fields)
    assert body["declaration_type"] in ("IMPORT", "EXPORT")
    json.dumps(body)  # plain JSON: strings, lists, dicts

    declarant = body["declarant"]
    assert CUSTOMS.declarants[declarant["uscc"]].name == declarant["name"]
    assert body["domestic_party"] == declarant  # the demo companies declare for themselves

    transport = body["transport"]
    validate_unlocode(transport["port_of_loading"])
    validate_unlocode(transport["port_of_discharge"])
    if transport["mode"] == "SEA":
        validate_imo(transport["vessel_imo"])
        bill = CUSTOMS.manifest.bills[transport["bill_of_lading"]]
        assert (bill.vessel_imo, bill.voyage) == (transport["vessel_imo"], transport["voyage"])
        assert (bill.port_of_loading, bill.port_of_discharge) == (
            transport["port_of_loading"],
            transport["port_of_discharge"],
        )
        assert transport["containers"]
        for number in transport["containers"]:
            validate_container_number(number)
            assert number in bill.containers
        ours = (
            transport["port_of_discharge"]
            if body["declaration_type"] == "IMPORT"
            else transport["port_of_loading"]
        )
        assert ours in PORT.served_ports
        assert PORT.port_call(transport["vessel_imo"], transport["voyage"], ours) is not None
    else:
        assert transport["mode"] == "AIR"
        assert "vessel_imo" not in transport and "containers" not in transport
        assert awb_valid(transport["bill_of_lading"]), transport["bill_of_lading"]

    assert body["items"]
    for item in body["items"]:
        validate_hs_code(item["hs_code"])
        tariff = CUSTOMS.tariff[item["hs_code"]]
        assert item["description"] == tariff.description
        assert (item["unit"], item.get("second_unit")) == (tariff.unit1, tariff.unit2)
        validate_country(item["origin_country"])
        assert isinstance(item["quantity"], str) and DECIMAL.fullmatch(item["quantity"])
        assert isinstance(item["invoice_price"], str)
        assert re.fullmatch(r"[0-9]+\.[0-9]{2}", item["invoice_price"])
        assert Decimal(item["quantity"]) > 0 and Decimal(item["invoice_price"]) > 0
        if body["declaration_type"] == "EXPORT":
            assert item["origin_country"] == "CN"
        elif transport["mode"] == "SEA":
            assert item["origin_country"] == transport["port_of_loading"][:2]

    validate_currency(body["valuation"]["currency"])
    assert body["valuation"]["currency"] in CUSTOMS.cny_per_unit
    assert [i.customs_value for i in event.items] == [  # CIF import, FOB export: the price
        Decimal(item["invoice_price"]) for item in body["items"]
    ]
    kinds = [d["type"] for d in body["documents"]]
    assert kinds[0] == "COMMERCIAL_INVOICE"
    assert len(set(kinds)) == len(kinds)
    for document in body["documents"]:
        ev.DocumentType(document["type"])
        assert 1 <= len(document["reference"]) <= 64


@pytest.mark.parametrize("i", range(N))
def test_agencies_decide_as_the_scenario_says(i: int) -> None:
    scenario = demo_data.scenario(i)
    declaration = to_event(i, BODIES[i])
    verdicts = {
        "customs": customs.assess(declaration, CUSTOMS, NOW, KEY),
        "ciq": ciq.assess(declaration, CIQ, NOW),
        "port": port.assess(declaration, PORT, NOW),
    }
    expected = dict(scenario.expected)
    if customs.is_sampled(declaration.declaration_id, CUSTOMS.random_inspection_rate, KEY):
        expected["customs"] = combine([expected["customs"], ev.Decision.INSPECT])
    decided = {agency: verdict.decision for agency, verdict in verdicts.items()}
    assert decided == expected, (scenario.name, [v.reasons for v in verdicts.values()])


def test_bodies_pass_the_intake_schema() -> None:
    schema = pytest.importorskip("services.intake.schema")
    for body in BODIES:
        request = schema.DeclarationRequest.model_validate(body)
        assert len(request.items) == len(body["items"])


def test_bodies_are_deterministic() -> None:
    for i in (0, 7, 19, 20, 123, 199):
        assert demo_data.sample_declaration_body(i) == BODIES[i]
    assert BODIES[0] != BODIES[20]  # the next cycle varies the details


def test_first_body_matches_the_factory_shipment() -> None:
    transport = BODIES[0]["transport"]
    assert transport["vessel_imo"] == "9074729"
    assert transport["bill_of_lading"] == "COSU6182736450"
    assert transport["containers"] == ["CSQU3054383"]
    assert BODIES[0]["items"][0]["hs_code"] == "8471300000"


def test_scenarios_cycle_through_the_outcomes() -> None:
    cycle = [demo_data.scenario(i) for i in range(len(demo_data.SCENARIOS))]
    clear = [s for s in cycle if set(s.expected.values()) == {ev.Decision.CLEAR}]
    assert len(clear) > len(cycle) / 2  # mostly clear
    outcomes = Counter(
        (agency, decision)
        for s in cycle
        for agency, decision in s.expected.items()
        if decision is not ev.Decision.CLEAR
    )
    assert outcomes[("customs", ev.Decision.REJECT)] >= 1  # prohibited
    assert outcomes[("customs", ev.Decision.HOLD)] >= 1  # licence missing
    assert outcomes[("customs", ev.Decision.INSPECT)] >= 1  # undervalued / risk
    assert outcomes[("ciq", ev.Decision.HOLD)] >= 1  # certificate missing
    assert outcomes[("ciq", ev.Decision.REJECT)] >= 1  # quarantine alert
    assert outcomes[("port", ev.Decision.INSPECT)] >= 1  # dangerous goods
    modes = Counter(body["transport"]["mode"] for body in BODIES)
    assert modes["AIR"] >= N // 10 and modes["SEA"] > N / 2
    types = Counter(body["declaration_type"] for body in BODIES)
    assert types["EXPORT"] >= 1
    certified = [
        body
        for body in BODIES
        if {"HEALTH_CERTIFICATE", "PHYTOSANITARY_CERTIFICATE"}
        & {d["type"] for d in body["documents"]}
    ]
    assert certified
    vessels = {body["transport"].get("vessel_imo") for body in BODIES} - {None}
    assert len(vessels) >= 5


def test_the_rules_fire_as_named() -> None:
    """The rule behind each stopping scenario is the one its name says."""
    wanted = {
        "prohibited-worn-clothing": "CUS-PROHIBITED",
        "licence-missing-cars": "CUS-LICENCE-MISSING",
        "undervalued-laptops": "CUS-PRICE-QUERY",
        "high-risk-declarant": "CUS-OWNER-RISK",
        "ciq-cherries-without-phyto": "CIQ-CERT-MISSING",
        "ciq-pork-under-asf-alert": "CIQ-QUARANTINE-ALERT",
        "ciq-unregistered-importer-salmon": "CIQ-IMPORTER-NOT-REGISTERED",
        "dg-methanol-declared": "PORT-DG-CHECK",
    }
    names = {s.name for s in demo_data.SCENARIOS}
    assert set(wanted) <= names
    for i in range(N):
        scenario = demo_data.scenario(i)
        if scenario.name not in wanted:
            continue
        declaration = to_event(i, BODIES[i])
        reasons = [
            r.code
            for verdict in (
                customs.assess(declaration, CUSTOMS, NOW, KEY),
                ciq.assess(declaration, CIQ, NOW),
                port.assess(declaration, PORT, NOW),
            )
            for r in verdict.reasons
        ]
        assert wanted[scenario.name] in reasons, (scenario.name, reasons)


def test_negative_index_is_refused() -> None:
    with pytest.raises(ValueError):
        demo_data.sample_declaration_body(-1)
