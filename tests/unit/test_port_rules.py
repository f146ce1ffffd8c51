"""Port authority rules: served port, port call, manifest, dangerous goods."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.port import rules
from services.port.reference import load_reference
from singlewindow import events as ev
from singlewindow.identifiers import (
    iso6346_check_digit,
    validate_container_number,
    validate_imo,
    validate_unlocode,
)
from singlewindow.reference import UnknownReferenceVersion
from singlewindow.verdicts import verdict_id
from tests import factories

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
REF = load_reference("port-2026.11")  # the legacy version; R2 below for the current rules
DGD = ev.DocumentType.DANGEROUS_GOODS_DECLARATION
FACTORY_BL = "COSU6182736450"
EXPORT_BL = "COSU6182740018"  # 9074729 voyage 001W, CNSHA -> NLRTM


def container(owner: str, serial: int) -> str:
    body = f"{owner}U{serial:06d}"
    return f"{body}{iso6346_check_digit(body)}"


UNMANIFESTED = container("TGH", 482913)  # a valid container number on no bill


def consignment(**changes: Any) -> ev.Consignment:
    base = factories.declaration().consignment
    return ev.Consignment.model_validate({**base.model_dump(), **changes})


def goods(line: int, hs_code: str) -> ev.GoodsItem:
    return ev.GoodsItem(
        line=line,
        hs_code=hs_code,
        description=f"goods {hs_code}",
        origin_country="NL",
        quantity=Decimal("1000"),
        unit="KG",
        customs_value=Decimal("10000.00"),
        currency="EUR",
    )


def declaration(
    *items: ev.GoodsItem, dg_declaration: bool = False, **changes: Any
) -> ev.DeclarationSubmitted:
    if items:
        changes["items"] = items
    if dg_declaration:
        invoice = ev.Document(type=ev.DocumentType.COMMERCIAL_INVOICE, reference="INV-1")
        changes["documents"] = (invoice, ev.Document(type=DGD, reference="DGD-2026-0007"))
    return factories.declaration(**changes)


def assess(d: ev.DeclarationSubmitted) -> ev.AgencyVerdict:
    return rules.assess(d, REF, NOW)


def codes(verdict: ev.AgencyVerdict) -> list[tuple[str, int | None]]:
    return [(reason.code, reason.item) for reason in verdict.reasons]


# --- clear cases ----------------------------------------------------------------------------


def test_factory_declaration_clears() -> None:
    verdict = assess(factories.declaration())
    assert verdict.decision is ev.Decision.CLEAR
    assert (verdict.reasons, verdict.checks, verdict.duties) == ((), (), ())
    assert verdict.total_duties == 0
    assert verdict.agency == "port"
    assert verdict.rules_version == REF.version == "port-2026.11"
    assert verdict.verdict_id == verdict_id("D-0001", "port", "port-2026.11")
    assert verdict.decided_at == NOW


def test_every_manifested_bill_with_all_its_containers_clears() -> None:
    for bill in REF.manifest.values():
        export = bill.port_of_loading in REF.served_ports
        d = declaration(
            declaration_type=ev.DeclarationType.EXPORT if export else ev.DeclarationType.IMPORT,
            consignment=consignment(
                vessel_imo=bill.vessel_imo,
                voyage=bill.voyage,
                bill_of_lading=bill.bill_of_lading,
                port_of_loading=bill.port_of_loading,
                port_of_discharge=bill.port_of_discharge,
                containers=bill.containers,
            ),
        )
        assert assess(d).decision is ev.Decision.CLEAR, bill.bill_of_lading


def test_export_is_checked_at_the_port_of_loading() -> None:
    export = declaration(
        declaration_type=ev.DeclarationType.EXPORT,
        consignment=consignment(
            voyage="001W",
            bill_of_lading=EXPORT_BL,
            port_of_loading="CNSHA",
            port_of_discharge="NLRTM",
            containers=REF.manifest[EXPORT_BL].containers,
        ),
    )
    assert assess(export).decision is ev.Decision.CLEAR
    # the factory import, declared as an export, would leave from Rotterdam: not ours
    wrong_way = assess(declaration(declaration_type=ev.DeclarationType.EXPORT))
    assert codes(wrong_way) == [("PORT-NOT-SERVED", None)]
    assert "NLRTM" in wrong_way.reasons[0].message


@pytest.mark.parametrize(
    "mode", [ev.TransportMode.AIR, ev.TransportMode.RAIL, ev.TransportMode.ROAD]
)
def test_non_sea_declarations_are_not_the_port_authoritys(mode: ev.TransportMode) -> None:
    d = declaration(
        goods(1, "3604100000"),  # fireworks without a DG declaration: still not ours
        consignment=ev.Consignment(
            mode=mode,
            bill_of_lading="784-12345675",
            port_of_loading="NLAMS",
            port_of_discharge="CNNGB",
        ),
    )
    verdict = assess(d)
    assert verdict.decision is ev.Decision.CLEAR
    assert verdict.reasons == ()


# --- each rule fires alone ------------------------------------------------------------------


@pytest.mark.parametrize("port", ["CNNGB", "CNXMN", "CNSZX", "SGSIN"])
def test_port_not_served_is_rejected(port: str) -> None:
    verdict = assess(declaration(consignment=consignment(port_of_discharge=port)))
    assert verdict.decision is ev.Decision.REJECT
    assert codes(verdict) == [("PORT-NOT-SERVED", None)]  # nothing else is checked
    assert port in verdict.reasons[0].message


def test_no_port_call_for_the_voyage_is_held() -> None:
    verdict = assess(declaration(consignment=consignment(voyage="999E")))
    assert verdict.decision is ev.Decision.HOLD
    assert codes(verdict) == [("PORT-NO-CALL", None)]
    assert "9074729" in verdict.reasons[0].message and "999E" in verdict.reasons[0].message


def test_no_port_call_for_another_vessel_on_that_voyage() -> None:
    validate_imo("9811000")
    verdict = assess(declaration(consignment=consignment(vessel_imo="9811000")))
    assert codes(verdict) == [("PORT-NO-CALL", None)]


def test_missing_vessel_is_no_port_call() -> None:
    verdict = assess(declaration(consignment=consignment(vessel_imo=None, voyage=None)))
    assert codes(verdict) == [("PORT-NO-CALL", None)]


def test_container_not_on_the_bill_is_held() -> None:
    other_bill = REF.manifest["EGLV142600418251"].containers[0]
    cargo = ("CSQU3054383", UNMANIFESTED, other_bill)
    verdict = assess(declaration(consignment=consignment(containers=cargo)))
    assert verdict.decision is ev.Decision.HOLD
    assert codes(verdict) == [("PORT-CONTAINER-NOT-MANIFESTED", None)] * 2
    assert UNMANIFESTED in verdict.reasons[0].message
    assert other_bill in verdict.reasons[1].message


def test_unknown_bill_of_lading_is_held() -> None:
    verdict = assess(declaration(consignment=consignment(bill_of_lading="COSU0000000000")))
    assert verdict.decision is ev.Decision.HOLD
    assert codes(verdict) == [("PORT-CONTAINER-NOT-MANIFESTED", None)]
    assert "COSU0000000000" in verdict.reasons[0].message


@pytest.mark.parametrize(
    "hs_code",
    ["3604100000", "3602000000", "2710121000", "2905110000", "2801100000", "8507600000"],
)
def test_dangerous_goods_without_declaration_are_held(hs_code: str) -> None:
    verdict = assess(declaration(goods(1, "8471300000"), goods(2, hs_code)))
    assert verdict.decision is ev.Decision.HOLD
    assert codes(verdict) == [("PORT-DG-UNDECLARED", 2)]
    assert "DANGEROUS_GOODS_DECLARATION" in verdict.reasons[0].message
    assert verdict.checks == ()


def test_declared_dangerous_goods_are_inspected_for_segregation() -> None:
    verdict = assess(declaration(goods(1, "3604100000"), dg_declaration=True))
    assert verdict.decision is ev.Decision.INSPECT
    assert codes(verdict) == [("PORT-DG-CHECK", 1)]
    assert "class 1" in verdict.reasons[0].message
    assert verdict.checks == (ev.InspectionCheck(agency="port", check="DG_SEGREGATION", item=1),)


@pytest.mark.parametrize("hs_code", ["8471300000", "2204210000", "2905120000", "3824100000"])
def test_ordinary_goods_are_not_dangerous(hs_code: str) -> None:
    assert REF.dangerous(hs_code) is None


# --- combinations ---------------------------------------------------------------------------


def test_all_findings_and_checks_are_kept() -> None:
    verdict = assess(
        declaration(
            goods(1, "2905110000"),
            goods(2, "8471300000"),
            goods(3, "3604100000"),
            dg_declaration=True,
            consignment=consignment(voyage="002E", containers=("CSQU3054383", UNMANIFESTED)),
        )
    )
    assert verdict.decision is ev.Decision.HOLD
    assert codes(verdict) == [
        ("PORT-NO-CALL", None),
        ("PORT-CONTAINER-NOT-MANIFESTED", None),
        ("PORT-DG-CHECK", 1),
        ("PORT-DG-CHECK", 3),
    ]
    assert [(c.check, c.item) for c in verdict.checks] == [
        ("DG_SEGREGATION", 1),
        ("DG_SEGREGATION", 3),
    ]


@given(
    st.sampled_from(sorted(REF.manifest)),
    st.sampled_from(["001E", "0261E", "247E", "999E"]),
    st.sampled_from(["8471300000", "3604100000", "2710192200", "0203290000"]),
    st.booleans(),
)
def test_verdict_is_deterministic(bl: str, voyage: str, hs_code: str, dg: bool) -> None:
    d = declaration(
        goods(1, hs_code),
        dg_declaration=dg,
        consignment=consignment(bill_of_lading=bl, voyage=voyage),
    )
    first = assess(d)
    assert first == assess(d)
    assert first.verdict_id == assess(d).verdict_id
    holds = {"PORT-NO-CALL", "PORT-CONTAINER-NOT-MANIFESTED", "PORT-DG-UNDECLARED"}
    if any(r.code in holds for r in first.reasons):
        assert first.decision is ev.Decision.HOLD
    elif first.reasons:
        assert first.decision is ev.Decision.INSPECT


# --- reference data -------------------------------------------------------------------------


def test_reference_is_loaded_once_per_version() -> None:
    assert load_reference() is load_reference(rules.RULES_VERSION)
    with pytest.raises(UnknownReferenceVersion):
        load_reference("port-1999.01")


def test_reference_data_is_rich_and_valid() -> None:
    assert set(REF.served_ports) == {"CNSHA"}
    vessels = {call.vessel_imo for call in REF.port_calls.values()}
    assert len(vessels) >= 5
    for imo in vessels:
        validate_imo(imo)
    for call in REF.port_calls.values():
        assert call.port in REF.served_ports
    containers = [c for bill in REF.manifest.values() for c in bill.containers]
    assert len(containers) >= 20
    assert len(set(containers)) == len(containers)
    for number in containers:
        validate_container_number(number)
    for bill in REF.manifest.values():
        validate_unlocode(bill.port_of_loading)
        validate_unlocode(bill.port_of_discharge)
        ours = {bill.port_of_loading, bill.port_of_discharge} & set(REF.served_ports)
        assert len(ours) == 1, bill.bill_of_lading
        assert REF.port_call(bill.vessel_imo, bill.voyage, ours.pop()) is not None
    factory = REF.manifest[FACTORY_BL]
    assert (factory.vessel_imo, factory.voyage) == ("9074729", "001E")
    assert "CSQU3054383" in factory.containers


# --- each rule, called alone ----------------------------------------------------------------


def case(d: ev.DeclarationSubmitted) -> rules.Case:
    return rules.Case.of(d, REF)


def on_declaration(rule: rules.DeclarationRule, **changes: Any) -> list[str]:
    """The codes ``rule`` gives on the factory declaration with its consignment changed."""
    return [r.reason.code for r in rule(case(declaration(consignment=consignment(**changes))))]


def on_item(rule: rules.DangerousGoodsRule, hs_code: str, dg_declaration: bool) -> list[str]:
    """The codes ``rule`` gives on goods of ``hs_code`` (dangerous goods), alone."""
    item = goods(1, hs_code)
    dangerous = REF.dangerous(hs_code)
    assert dangerous is not None
    d = declaration(item, dg_declaration=dg_declaration)
    return [r.reason.code for r in rule(case(d), item, dangerous)]


def test_the_rules_run_in_the_documented_order() -> None:
    assert [rule.__name__ for rule in rules.DECLARATION_RULES] == ["no_call", "not_manifested"]
    assert [rule.__name__ for rule in rules.DANGEROUS_GOODS_RULES] == ["dg_undeclared", "dg_check"]


def test_rule_not_served() -> None:
    assert on_declaration(rules.not_served, port_of_discharge="NLRTM") == ["PORT-NOT-SERVED"]
    assert on_declaration(rules.not_served) == []


def test_rule_no_call() -> None:
    assert on_declaration(rules.no_call, voyage="999E") == ["PORT-NO-CALL"]
    assert on_declaration(rules.no_call, vessel_imo=None, voyage=None) == ["PORT-NO-CALL"]
    assert on_declaration(rules.no_call) == []


def test_rule_not_manifested() -> None:
    code = "PORT-CONTAINER-NOT-MANIFESTED"
    assert on_declaration(rules.not_manifested, bill_of_lading="COSU0000000000") == [code]
    two = ("CSQU3054383", UNMANIFESTED, container("TGH", 482914))
    assert on_declaration(rules.not_manifested, containers=two) == [code, code]
    assert on_declaration(rules.not_manifested) == []


def test_rule_dg_undeclared() -> None:
    assert on_item(rules.dg_undeclared, "3604100000", False) == ["PORT-DG-UNDECLARED"]
    assert on_item(rules.dg_undeclared, "3604100000", True) == []


def test_rule_dg_check() -> None:
    assert on_item(rules.dg_check, "3604100000", True) == ["PORT-DG-CHECK"]
    assert on_item(rules.dg_check, "3604100000", False) == []


# === port-2026.11-r2: the version in force from 2026-11-01 ===================================
# The tests above exercise the legacy version port-2026.11 (its verdicts recompute as decided).

R2 = load_reference("port-2026.11-r2")


def assess_r2(d: ev.DeclarationSubmitted) -> ev.AgencyVerdict:
    return rules.assess(d, R2, NOW)


def with_un(item: ev.GoodsItem, un_number: str) -> ev.GoodsItem:
    return item.model_copy(update={"un_number": un_number})


def test_r2_is_in_force_from_november_2026_and_the_service_uses_it() -> None:
    assert REF.legacy and not R2.legacy
    assert rules.reference_on(datetime(2026, 10, 31, 16, 0, tzinfo=UTC)) is R2
    with pytest.raises(UnknownReferenceVersion):
        rules.reference_on(datetime(2026, 10, 31, 15, 59, tzinfo=UTC))
    verdict = rules.assess_on_acceptance(factories.declaration(), NOW)
    assert verdict.rules_version == "port-2026.11-r2"
    assert verdict.decision is ev.Decision.CLEAR and verdict.reasons == ()


def test_r2_leaves_the_manifest_to_customs() -> None:
    assert R2.manifest == {}
    unknown_bill = consignment(bill_of_lading="COSU0000000000", containers=(UNMANIFESTED,))
    assert assess_r2(declaration(consignment=unknown_bill)).reasons == ()
    unknown = declaration(consignment=unknown_bill)
    assert list(rules.not_manifested(rules.Case.of(unknown, R2))) == []
    assert len(list(rules.not_manifested(rules.Case.of(unknown, REF)))) == 1  # legacy
    # the port call is still the port's
    assert codes(assess_r2(declaration(consignment=consignment(voyage="999E")))) == [
        ("PORT-NO-CALL", None)
    ]


def test_r2_rules_keep_their_order() -> None:
    assert [rule.__name__ for rule in rules.DECLARATION_RULES] == ["no_call", "not_manifested"]


def test_r2_bulk_cargo_has_no_containers_and_needs_none() -> None:
    tanker = consignment(
        bill_of_lading="COSU6182799001", containers=(), package_kind="VL", packages=1
    )
    gasoline = goods(1, "2710121000")
    verdict = assess_r2(declaration(gasoline, dg_declaration=True, consignment=tanker))
    assert codes(verdict) == [("PORT-DG-CHECK", 1)]
    assert "class 3" in verdict.reasons[0].message


def test_r2_containerised_rail_freight_is_not_the_ports() -> None:
    train = ev.Consignment(
        mode=ev.TransportMode.RAIL,
        voyage="X8024",
        bill_of_lading="CIM26DEDUI0042",
        port_of_loading="DEDUI",
        port_of_discharge="CNCKG",
        containers=("CSQU3054383",),
    )
    verdict = assess_r2(declaration(with_un(goods(1, "8471300000"), "UN3481"), consignment=train))
    assert verdict.decision is ev.Decision.CLEAR and verdict.reasons == ()


@pytest.mark.parametrize(
    ("hs_code", "legacy_class", "r2_class"),
    [
        ("2710121000", "3", "3"),  # gasoline
        ("2710191100", "3", "3"),  # aviation kerosene
        ("2710192300", "3", "3"),  # diesel
        ("2710192290", "3", None),  # fuel oil No. 5-7: flash point above 60 °C
        ("2710192410", "3", None),  # low-sulphur marine fuel oil
        ("2710199100", "3", None),  # lubricating oil
        ("2711110000", None, "2.1"),  # LNG
        ("2711120000", None, "2.1"),  # LPG (propane)
        ("3102300000", None, "5.1"),  # ammonium nitrate
        ("2844430000", None, "7"),  # radioactive isotopes
        ("3604100000", "1", "1"),  # fireworks
        ("8507600000", "9", "9"),  # lithium-ion accumulators
        ("8471300000", None, None),
    ],
)
def test_r2_dangerous_goods_list(
    hs_code: str, legacy_class: str | None, r2_class: str | None
) -> None:
    legacy, r2 = REF.dangerous(hs_code), R2.dangerous(hs_code)
    assert (legacy.un_class if legacy else None) == legacy_class
    assert (r2.un_class if r2 else None) == r2_class


def test_r2_fuel_oil_is_not_dangerous_goods_but_lng_is() -> None:
    assert assess_r2(declaration(goods(1, "2710192290"))).reasons == ()
    assert codes(assess(declaration(goods(1, "2710192290")))) == [("PORT-DG-UNDECLARED", 1)]
    lng = assess_r2(declaration(goods(1, "2711110000")))
    assert codes(lng) == [("PORT-DG-UNDECLARED", 1)]
    assert "class 2.1" in lng.reasons[0].message


def test_r2_a_declared_un_number_makes_dangerous_goods_whatever_the_hs_code() -> None:
    laptops = with_un(goods(1, "8471300000"), "UN3481")  # batteries in equipment
    held = assess_r2(declaration(laptops))
    assert codes(held) == [("PORT-DG-UNDECLARED", 1)]
    message = held.reasons[0].message
    assert "UN3481" in message and "class 9" in message and "contained in" in message
    checked = assess_r2(declaration(laptops, dg_declaration=True))
    assert codes(checked) == [("PORT-DG-CHECK", 1)]
    assert checked.checks == (ev.InspectionCheck(agency="port", check="DG_SEGREGATION", item=1),)
    # the legacy version looked at the HS code only
    assert assess(declaration(laptops)).reasons == ()


def test_r2_the_un_number_gives_the_class() -> None:
    hot_fuel_oil = with_un(goods(1, "2710192290"), "UN3256")  # carried above its flash point
    verdict = assess_r2(declaration(hot_fuel_oil))
    assert codes(verdict) == [("PORT-DG-UNDECLARED", 1)]
    assert "UN3256" in verdict.reasons[0].message and "class 3" in verdict.reasons[0].message
    unlisted = assess_r2(declaration(with_un(goods(1, "3824999999"), "UN3265")))
    assert codes(unlisted) == [("PORT-DG-UNDECLARED", 1)]
    assert "UN3265" in unlisted.reasons[0].message


def test_r2_un_numbers_are_valid() -> None:
    import re

    assert len(R2.un_numbers) >= 20
    for number, entry in R2.un_numbers.items():
        assert re.fullmatch(r"UN\d{4}", number) and entry.un_number == number
    assert R2.un_numbers["UN3481"].un_class == "9"
    assert R2.un_numbers["UN1075"].un_class == "2.1"
    assert R2.un_numbers["UN1942"].un_class == "5.1"
