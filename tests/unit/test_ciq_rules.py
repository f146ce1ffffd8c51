"""Inspection and quarantine rules: catalogue, certificates, quarantine alerts, first imports.

The tests down to "each rule, called alone" exercise the legacy version ``ciq-2026.11`` (its
verdicts must recompute as decided); those after it, ``ciq-2026.11-r2``."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ciq import rules
from services.ciq.reference import load_reference
from services.customs.reference import load_reference as load_customs
from singlewindow import events as ev
from singlewindow.identifiers import validate_country, validate_uscc
from singlewindow.reference import UnknownReferenceVersion
from singlewindow.verdicts import verdict_id
from tests import factories

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
REF = load_reference("ciq-2026.11")  # the legacy version; R2 below for the current rules
HC = ev.DocumentType.HEALTH_CERTIFICATE
PC = ev.DocumentType.PHYTOSANITARY_CERTIFICATE
# The released ciq-2026.11 lists its importers under codes whose embedded organisation code
# is impossible (GB 11714 check wrong); its rules look them up as listed. ciq-2026.11-r2
# lists the corrected codes (the *_R2 parties).
REGISTERED = ev.Party(uscc="91330200MNJFN5BBF7", name="宁波港城食品进出口有限公司")
FIRST_TIMER = ev.Party(uscc="915101008KJD3KPXQW", name="成都天府新食品有限公司")
REGISTERED_R2 = ev.Party(uscc="91330200MNJFN5BB1U", name="宁波港城食品进出口有限公司")
FIRST_TIMER_R2 = ev.Party(uscc="915101008KJD3KPX8B", name="成都天府新食品有限公司")


def item(line: int, hs_code: str, origin: str, quantity: str = "1000") -> ev.GoodsItem:
    return ev.GoodsItem(
        line=line,
        hs_code=hs_code,
        description=f"goods {hs_code}",
        origin_country=origin,
        quantity=Decimal(quantity),
        unit="KG",
        customs_value=Decimal("25000.00"),
        currency="EUR",
    )


def declaration(
    *items: ev.GoodsItem,
    certificates: tuple[ev.DocumentType, ...] = (),
    declarant: ev.Party = REGISTERED,
    **changes: Any,
) -> ev.DeclarationSubmitted:
    documents = (
        ev.Document(type=ev.DocumentType.COMMERCIAL_INVOICE, reference="INV-1"),
        *(ev.Document(type=kind, reference=f"{kind}-1") for kind in certificates),
    )
    return factories.declaration(items=items, documents=documents, declarant=declarant, **changes)


def assess(d: ev.DeclarationSubmitted, now: datetime = NOW) -> ev.AgencyVerdict:
    return rules.assess(d, REF, now)


def codes(verdict: ev.AgencyVerdict) -> list[tuple[str, int | None]]:
    return [(reason.code, reason.item) for reason in verdict.reasons]


# --- the factory declaration and the catalogue ----------------------------------------------


def test_factory_declaration_clears() -> None:
    verdict = assess(factories.declaration())
    assert verdict.decision is ev.Decision.CLEAR
    assert (verdict.reasons, verdict.checks, verdict.duties) == ((), (), ())
    assert verdict.total_duties == 0
    assert verdict.agency == "ciq"
    assert verdict.rules_version == REF.version == "ciq-2026.11"
    assert verdict.verdict_id == verdict_id("D-0001", "ciq", "ciq-2026.11")
    assert verdict.decided_at == NOW


@pytest.mark.parametrize(
    ("hs_code", "expected"),
    [
        ("0203290000", True),  # pork
        ("0207142200", True),  # chicken feet
        ("0303130000", True),  # frozen salmon
        ("0402210000", True),  # milk powder
        ("0809290000", True),  # cherries
        ("1201900000", True),  # soybeans
        ("1901101000", True),  # infant formula
        ("2204210000", True),  # wine
        ("4407110000", True),  # sawn pine
        ("8471300000", False),  # laptops
        ("2208300000", False),  # whisky: not in this catalogue
        ("1902000000", False),  # heading 1902 is not 1901
        ("9503008900", False),
    ],
)
def test_statutory_catalogue(hs_code: str, expected: bool) -> None:
    assert rules.in_statutory_catalogue(hs_code, REF) is expected


def test_items_outside_the_catalogue_draw_no_action_even_from_alert_countries() -> None:
    verdict = assess(declaration(item(1, "8471300000", "PL"), declarant=FIRST_TIMER))
    assert verdict.decision is ev.Decision.CLEAR


# --- quarantine alerts ----------------------------------------------------------------------


def test_pork_from_poland_on_line_two_is_rejected() -> None:
    verdict = assess(
        declaration(item(1, "0202300000", "AU"), item(2, "0203290000", "PL"), certificates=(HC,))
    )
    assert verdict.decision is ev.Decision.REJECT
    assert codes(verdict) == [("CIQ-QUARANTINE-ALERT", 2)]
    message = verdict.reasons[0].message
    assert "ASF-2014-PL" in message and "African swine fever" in message


@pytest.mark.parametrize("country", ["PL", "DE", "IT"])
@pytest.mark.parametrize("hs_code", ["0203290000", "0210120000", "0206490000"])
def test_swine_products_under_african_swine_fever_alert(hs_code: str, country: str) -> None:
    verdict = assess(declaration(item(1, hs_code, country), certificates=(HC,)))
    assert codes(verdict) == [("CIQ-QUARANTINE-ALERT", 1)]


@pytest.mark.parametrize("country", ["ES", "DK", "NL", "BR", "US"])
def test_pork_from_countries_without_alert_clears(country: str) -> None:
    verdict = assess(declaration(item(1, "0203290000", country), certificates=(HC,)))
    assert verdict.decision is ev.Decision.CLEAR


def test_german_beef_is_not_covered_by_the_swine_fever_alert() -> None:
    verdict = assess(declaration(item(1, "0202300000", "DE"), certificates=(HC,)))
    assert verdict.decision is ev.Decision.CLEAR


def test_poultry_under_avian_influenza_alert() -> None:
    hungarian = assess(declaration(item(1, "0207142200", "HU"), certificates=(HC,)))
    assert codes(hungarian) == [("CIQ-QUARANTINE-ALERT", 1)]
    assert "HPAI-2021-HU" in hungarian.reasons[0].message
    brazilian = assess(declaration(item(1, "0207142200", "BR"), certificates=(HC,)))
    assert brazilian.decision is ev.Decision.CLEAR


def test_alert_applies_from_its_date_in_china_time() -> None:
    # ASF-2020-DE is issued on 2020-09-12: midnight in Beijing is 16:00 UTC the day before
    pork = declaration(item(1, "0203290000", "DE"), certificates=(HC,))
    before = assess(pork, datetime(2020, 9, 11, 15, 59, 59, tzinfo=UTC))
    after = assess(pork, datetime(2020, 9, 11, 16, 0, 0, tzinfo=UTC))
    assert before.decision is ev.Decision.CLEAR
    assert codes(after) == [("CIQ-QUARANTINE-ALERT", 1)]


def test_lifted_alert_no_longer_applies() -> None:
    lifted = tuple(
        dataclasses.replace(alert, lifted_on=date(2026, 6, 1))
        if alert.alert_id == "ASF-2020-DE"
        else alert
        for alert in REF.alerts
    )
    reference = dataclasses.replace(REF, alerts=lifted)
    pork = declaration(item(1, "0203290000", "DE"), certificates=(HC,))
    assert rules.assess(pork, reference, NOW).decision is ev.Decision.CLEAR
    in_force = rules.assess(pork, reference, datetime(2026, 5, 31, 12, tzinfo=UTC))
    assert in_force.decision is ev.Decision.REJECT


# --- certificates ---------------------------------------------------------------------------


def test_cherries_without_phytosanitary_certificate_are_held() -> None:
    verdict = assess(declaration(item(1, "0809290000", "CL")))
    assert verdict.decision is ev.Decision.HOLD
    assert codes(verdict) == [("CIQ-CERT-MISSING", 1)]
    assert "PHYTOSANITARY_CERTIFICATE" in verdict.reasons[0].message


def test_the_wrong_certificate_does_not_count() -> None:
    verdict = assess(declaration(item(1, "0809290000", "CL"), certificates=(HC,)))
    assert codes(verdict) == [("CIQ-CERT-MISSING", 1)]
    assert assess(declaration(item(1, "0809290000", "CL"), certificates=(PC,))).reasons == ()


@pytest.mark.parametrize(
    ("hs_code", "certificate"),
    [
        ("0202300000", HC),  # beef: animal product
        ("0303630000", HC),  # cod
        ("1901101000", HC),  # infant formula: food
        ("2204210000", HC),  # wine: food
        ("1201900000", PC),  # soybeans: plant product
        ("4403210000", PC),  # pine logs: wood
        ("4407110000", PC),  # sawn pine: wood
    ],
)
def test_each_category_requires_its_certificate(hs_code: str, certificate: ev.DocumentType) -> None:
    without = assess(declaration(item(1, hs_code, "NZ")))
    assert codes(without) == [("CIQ-CERT-MISSING", 1)]
    assert certificate in without.reasons[0].message
    assert assess(declaration(item(1, hs_code, "NZ"), certificates=(certificate,))).reasons == ()


def test_one_certificate_per_kind_covers_every_item() -> None:
    verdict = assess(
        declaration(
            item(1, "0202300000", "AU"),
            item(2, "0402210000", "NZ"),
            item(3, "0805100000", "ZA"),
            certificates=(HC, PC),
        )
    )
    assert verdict.decision is ev.Decision.CLEAR


# --- first import ---------------------------------------------------------------------------


def test_first_import_of_animal_products_is_sampled() -> None:
    verdict = assess(
        declaration(item(1, "0303130000", "NO"), certificates=(HC,), declarant=FIRST_TIMER)
    )
    assert verdict.decision is ev.Decision.INSPECT
    assert codes(verdict) == [("CIQ-FIRST-IMPORT", 1)]
    assert FIRST_TIMER.uscc in verdict.reasons[0].message
    assert verdict.checks == (ev.InspectionCheck(agency="ciq", check="QUARANTINE_SAMPLE", item=1),)


def test_first_import_of_food_is_sampled_but_not_of_plants() -> None:
    verdict = assess(
        declaration(
            item(1, "0809290000", "CL"),
            item(2, "2204210000", "FR"),
            certificates=(HC, PC),
            declarant=FIRST_TIMER,
        )
    )
    assert codes(verdict) == [("CIQ-FIRST-IMPORT", 2)]


def test_registration_counts_from_its_date() -> None:
    # 91350200WY7UT95N14 registered on 2025-01-09
    party = ev.Party(uscc="91350200WY7UT95N14", name="厦门鹭江汽车贸易有限公司")
    cheese = declaration(item(1, "0406900000", "FR"), certificates=(HC,), declarant=party)
    assert assess(cheese).decision is ev.Decision.CLEAR
    early = assess(cheese, datetime(2025, 1, 8, 12, tzinfo=UTC))
    assert codes(early) == [("CIQ-FIRST-IMPORT", 1)]


# --- combinations and exports ---------------------------------------------------------------


def test_all_findings_reported_and_checks_kept_under_reject() -> None:
    verdict = assess(declaration(item(1, "0203290000", "PL"), declarant=FIRST_TIMER))
    assert verdict.decision is ev.Decision.REJECT
    assert codes(verdict) == [
        ("CIQ-QUARANTINE-ALERT", 1),
        ("CIQ-CERT-MISSING", 1),
        ("CIQ-FIRST-IMPORT", 1),
    ]
    assert [(c.check, c.item) for c in verdict.checks] == [("QUARANTINE_SAMPLE", 1)]


def test_export_applies_only_the_certificate_rule() -> None:
    export = ev.DeclarationType.EXPORT
    pork = item(1, "0203290000", "PL")  # alert country and first-time trader: irrelevant
    held = assess(declaration(pork, declarant=FIRST_TIMER, declaration_type=export))
    assert codes(held) == [("CIQ-CERT-MISSING", 1)]
    cleared = assess(
        declaration(pork, certificates=(HC,), declarant=FIRST_TIMER, declaration_type=export)
    )
    assert cleared.decision is ev.Decision.CLEAR


def test_verdict_is_deterministic() -> None:
    d = declaration(item(1, "0203290000", "PL"), item(2, "4407110000", "RU"))
    assert assess(d) == assess(d)
    assert assess(d).to_avro() == assess(d).to_avro()


@given(
    st.sampled_from(sorted(load_customs().tariff)),
    st.sampled_from(["PL", "DE", "IT", "HU", "BE", "AU", "NZ", "BR", "FR", "US", "CL"]),
    st.sets(st.sampled_from([HC, PC])),
    st.booleans(),
)
def test_decision_follows_the_reasons(
    hs_code: str, origin: str, certificates: set[ev.DocumentType], registered: bool
) -> None:
    party = REGISTERED if registered else FIRST_TIMER
    d = declaration(
        item(1, hs_code, origin), certificates=tuple(sorted(certificates)), declarant=party
    )
    verdict = assess(d)
    assert verdict == assess(d)
    if not rules.in_statutory_catalogue(hs_code, REF):
        assert verdict.reasons == ()
    decision_of = {
        "CIQ-QUARANTINE-ALERT": ev.Decision.REJECT,
        "CIQ-CERT-MISSING": ev.Decision.HOLD,
        "CIQ-FIRST-IMPORT": ev.Decision.INSPECT,
    }
    strictest = [decision_of[r.code] for r in verdict.reasons]
    order = [ev.Decision.REJECT, ev.Decision.HOLD, ev.Decision.INSPECT, ev.Decision.CLEAR]
    expected = min(strictest, key=order.index, default=ev.Decision.CLEAR)
    assert verdict.decision is expected
    assert (verdict.decision is ev.Decision.INSPECT) <= bool(verdict.checks)


# --- reference data -------------------------------------------------------------------------


def test_reference_is_loaded_once_per_version() -> None:
    assert load_reference() is load_reference(rules.RULES_VERSION)
    with pytest.raises(UnknownReferenceVersion):
        load_reference("ciq-1999.01")


def test_reference_data_is_consistent() -> None:
    for alert in REF.alerts:
        validate_country(alert.country)
        assert alert.issued_on <= NOW.date()
        for prefix in alert.hs_prefixes:
            assert rules.in_statutory_catalogue(prefix.ljust(10, "0"), REF), alert.alert_id
    for uscc in REF.registered_importers:
        validate_uscc(uscc, organisation_code=False)  # released codes: GB 32100 form only
    certificates = {entry.category.certificate for entry in REF.catalogue.values()}
    assert certificates == {HC, PC}
    alerted = {(a.country, p) for a in REF.alerts for p in a.hs_prefixes}
    assert {("PL", "0203"), ("DE", "0203"), ("IT", "0203"), ("PL", "0207")} <= alerted


def test_catalogue_matches_the_intake_routing_table() -> None:
    """Every catalogued prefix is routed to CIQ, and every CIQ-routed prefix is catalogued."""
    table = (
        Path(__file__).parents[2]
        / "services"
        / "intake"
        / "routing_tables"
        / "routing-2026.11.json"
    )
    if not table.exists():
        pytest.skip("no intake routing table")
    routed = {p["prefix"] for p in json.loads(table.read_text())["agencies"]["ciq"]["hs_prefixes"]}
    for prefix in routed:
        assert rules.in_statutory_catalogue(prefix.ljust(10, "0"), REF), prefix
    for prefix in REF.catalogue:
        assert any(prefix.startswith(r) for r in routed), prefix


# --- each rule, called alone ----------------------------------------------------------------


def on_item(rule: rules.CatalogueRule, goods: ev.GoodsItem, **changes: Any) -> list[str]:
    """The codes ``rule`` gives on ``goods`` (catalogued), alone in a declaration."""
    entry = REF.catalogue_entry(goods.hs_code)
    assert entry is not None
    case = rules.Case.of(declaration(goods, **changes), REF, NOW)
    return [r.reason.code for r in rule(case, goods, entry)]


def test_the_rules_run_in_the_documented_order() -> None:
    expected = [
        "quarantine_alert",
        "cert_missing",
        "export_certification",
        "manufacturer_unregistered",
        "commodity_inspection",
        "first_import",
    ]
    assert [rule.__name__ for rule in rules.CATALOGUE_RULES] == expected
    assert [rule.__name__ for rule in rules.DECLARATION_RULES] == ["importer_not_registered"]


def test_the_new_rules_do_not_fire_under_the_legacy_version() -> None:
    assert REF.legacy
    pork = item(1, "0203290000", "ES")  # food, no manufacturer registration
    export = ev.DeclarationType.EXPORT
    assert on_item(rules.export_certification, pork, declaration_type=export) == []
    assert on_item(rules.manufacturer_unregistered, pork, declarant=FIRST_TIMER) == []
    unregistered = rules.Case.of(declaration(pork, declarant=FIRST_TIMER), REF, NOW)
    assert list(rules.importer_not_registered(unregistered)) == []


def test_rule_quarantine_alert() -> None:
    pork = item(1, "0203290000", "PL")
    export = ev.DeclarationType.EXPORT
    assert on_item(rules.quarantine_alert, pork) == ["CIQ-QUARANTINE-ALERT"]
    assert on_item(rules.quarantine_alert, item(1, "0203290000", "ES")) == []
    assert on_item(rules.quarantine_alert, pork, declaration_type=export) == []


def test_rule_cert_missing() -> None:
    cherries = item(1, "0809290000", "CL")
    assert on_item(rules.cert_missing, cherries) == ["CIQ-CERT-MISSING"]
    assert on_item(rules.cert_missing, cherries, certificates=(PC,)) == []


def test_rule_first_import() -> None:
    cod = item(1, "0303130000", "NO")
    assert on_item(rules.first_import, cod, declarant=FIRST_TIMER) == ["CIQ-FIRST-IMPORT"]
    assert on_item(rules.first_import, cod, declarant=REGISTERED) == []
    cherries = item(1, "0809290000", "CL")  # plants: no first-import sampling
    assert on_item(rules.first_import, cherries, declarant=FIRST_TIMER) == []


# === ciq-2026.11-r2: the version in force from 2026-11-01 ====================================

R2 = load_reference("ciq-2026.11-r2")
BROKER = factories.declaration().declarant  # a customs broker, itself on the register
EXPORT = ev.DeclarationType.EXPORT
BEEF_AU = "CAUS02012201150031"  # registered for 0201 0202 0206 from AU
SALMON_NZ = "CNZL03012201200042"
WINE_FR_EXPIRED = "CFRA22042112010016"  # expired on 2026-11-20
WINE_FR = "CFRA22042611210002"  # its renewal, from 2026-11-21
WHISKY_GB = "CGBR22082201100014"
COFFEE_CO = "CCOL09012201100007"


def food(line: int, hs_code: str, origin: str, registration: str | None) -> ev.GoodsItem:
    return item(line, hs_code, origin).model_copy(
        update={"manufacturer_registration": registration}
    )


def lodged(
    *items: ev.GoodsItem,
    certificates: tuple[ev.DocumentType, ...] = (),
    owner: ev.Party = REGISTERED_R2,
    **changes: Any,
) -> ev.DeclarationSubmitted:
    """A declaration lodged by the broker for ``owner``, the importer or exporter."""
    return declaration(
        *items, certificates=certificates, declarant=BROKER, domestic_party=owner, **changes
    )


def assess_r2(d: ev.DeclarationSubmitted, now: datetime = NOW) -> ev.AgencyVerdict:
    return rules.assess(d, R2, now)


def test_r2_is_in_force_from_november_2026_and_the_service_uses_it() -> None:
    assert not R2.legacy
    accepted = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # 1 November in China
    assert rules.reference_on(accepted) is R2
    with pytest.raises(UnknownReferenceVersion):
        rules.reference_on(datetime(2026, 10, 31, 15, 59, tzinfo=UTC))
    verdict = rules.assess_on_acceptance(factories.declaration(), NOW)
    assert verdict.rules_version == "ciq-2026.11-r2"
    assert verdict == assess_r2(factories.declaration())
    assert verdict.decision is ev.Decision.CLEAR and verdict.reasons == ()


@pytest.mark.parametrize(
    ("hs_code", "category"),
    [
        ("0901110000", "PLANT_FOOD"),  # green coffee
        ("0901210000", "PROCESSED_FOOD"),  # roasted coffee
        ("0901900000", None),  # husks and substitutes
        ("1511100000", "PROCESSED_FOOD"),  # crude palm oil
        ("2203000000", "PROCESSED_FOOD"),  # beer
        ("2204210000", "PROCESSED_FOOD"),  # wine: no certificate any more
        ("2208300000", "PROCESSED_FOOD"),  # whisky
        ("1901101000", "FOOD"),  # infant formula: health certificate
        ("2709000000", "FUEL"),
        ("2710121000", "FUEL"),  # gasoline
        ("2710192300", "FUEL"),  # diesel
        ("2710199100", None),  # lubricating oil
        ("2711120000", "FUEL"),  # LPG
        ("8703800000", "VEHICLE"),  # electric car
        ("2807000010", "HAZARDOUS_CHEMICAL"),  # sulphuric acid
        ("3102300000", "HAZARDOUS_CHEMICAL"),  # ammonium nitrate
        ("4403210000", "WOOD"),  # pine logs
        ("4407110000", "WOOD"),  # sawn pine
        ("4401310000", None),  # wood pellets: processed
        ("4412310000", None),  # plywood
        ("4418100000", None),  # windows of wood
        ("8471300000", None),
    ],
)
def test_r2_catalogue(hs_code: str, category: str | None) -> None:
    entry = R2.catalogue_entry(hs_code)
    assert (entry.category.name if entry else None) == category


def test_r2_export_is_certified_by_the_authority_not_held() -> None:
    pork, cherries = item(1, "0203290000", "CN"), item(2, "0809290000", "CN")
    laptops = item(3, "8471300000", "CN")
    verdict = assess_r2(lodged(pork, cherries, laptops, declaration_type=EXPORT))
    assert verdict.decision is ev.Decision.INSPECT
    assert codes(verdict) == [("CIQ-EXPORT-CERTIFICATION", 1), ("CIQ-EXPORT-CERTIFICATION", 2)]
    assert "HEALTH_CERTIFICATE" in verdict.reasons[0].message
    assert "PHYTOSANITARY_CERTIFICATE" in verdict.reasons[1].message
    assert [(c.check, c.item) for c in verdict.checks] == [
        ("EXPORT_CERTIFICATION", 1),
        ("EXPORT_CERTIFICATION", 2),
    ]
    # a certificate lodged by the exporter changes nothing: the authority issues its own
    with_certificates = lodged(pork, certificates=(HC,), declaration_type=EXPORT)
    assert codes(assess_r2(with_certificates)) == [("CIQ-EXPORT-CERTIFICATION", 1)]
    # an export is neither registered nor quarantined as an import is
    by_unregistered = lodged(pork, owner=FIRST_TIMER_R2, declaration_type=EXPORT)
    assert codes(assess_r2(by_unregistered)) == [("CIQ-EXPORT-CERTIFICATION", 1)]
    wine = lodged(item(1, "2204210000", "CN"), declaration_type=EXPORT)
    assert assess_r2(wine).decision is ev.Decision.CLEAR  # no certificate to issue


def test_r2_unregistered_food_importer_is_held_once() -> None:
    beef = food(1, "0202300000", "AU", BEEF_AU)
    salmon = food(2, "0303130000", "NZ", SALMON_NZ)
    verdict = assess_r2(lodged(beef, salmon, certificates=(HC,), owner=FIRST_TIMER_R2))
    assert verdict.decision is ev.Decision.HOLD
    assert codes(verdict) == [("CIQ-IMPORTER-NOT-REGISTERED", None)]
    assert FIRST_TIMER_R2.uscc in verdict.reasons[0].message
    assert "item 1, 2" in verdict.reasons[0].message
    assert verdict.checks == ()  # held, not sampled
    registered = assess_r2(lodged(beef, salmon, certificates=(HC,), owner=REGISTERED_R2))
    assert registered.decision is ev.Decision.CLEAR


def test_r2_the_importer_is_the_owner_not_the_broker() -> None:
    beef = food(1, "0202300000", "AU", BEEF_AU)
    unregistered_broker = declaration(
        beef, certificates=(HC,), declarant=FIRST_TIMER_R2, domestic_party=REGISTERED_R2
    )
    assert assess_r2(unregistered_broker).decision is ev.Decision.CLEAR
    for_unregistered_owner = declaration(
        beef, certificates=(HC,), declarant=REGISTERED_R2, domestic_party=FIRST_TIMER_R2
    )
    assert codes(assess_r2(for_unregistered_owner)) == [("CIQ-IMPORTER-NOT-REGISTERED", None)]
    # an event from before the parties were declared: the declarant is the owner
    old = declaration(beef, certificates=(HC,), declarant=FIRST_TIMER_R2, domestic_party=None)
    assert codes(assess_r2(old)) == [("CIQ-IMPORTER-NOT-REGISTERED", None)]


def test_r2_importer_registration_counts_from_its_date() -> None:
    # 91350200WY7UT95NXT registered on 2025-01-09 (China time)
    party = ev.Party(uscc="91350200WY7UT95NXT", name="厦门鹭江汽车贸易有限公司")
    beef = lodged(food(1, "0202300000", "AU", BEEF_AU), certificates=(HC,), owner=party)
    assert assess_r2(beef).decision is ev.Decision.CLEAR
    early = assess_r2(beef, datetime(2025, 1, 8, 15, 59, tzinfo=UTC))
    assert codes(early) == [("CIQ-IMPORTER-NOT-REGISTERED", None)]
    assert assess_r2(beef, datetime(2025, 1, 8, 16, 0, tzinfo=UTC)).reasons == ()


def test_r2_first_import_sampling_is_kept_for_live_animals_only() -> None:
    cattle = item(1, "0102290000", "AU")  # live animals: not food, sampled
    verdict = assess_r2(lodged(cattle, certificates=(HC,), owner=FIRST_TIMER_R2))
    assert verdict.decision is ev.Decision.INSPECT
    assert codes(verdict) == [("CIQ-FIRST-IMPORT", 1)]
    assert f"importer {FIRST_TIMER_R2.uscc}" in verdict.reasons[0].message
    assert verdict.checks == (ev.InspectionCheck(agency="ciq", check="QUARANTINE_SAMPLE", item=1),)
    assert assess_r2(lodged(cattle, certificates=(HC,))).decision is ev.Decision.CLEAR
    # cherries (plants, not food) from an unregistered importer: neither sampled nor held
    cherries = lodged(item(1, "0809290000", "CL"), certificates=(PC,), owner=FIRST_TIMER_R2)
    assert assess_r2(cherries).decision is ev.Decision.CLEAR


@pytest.mark.parametrize(
    ("registration", "why"),
    [
        (None, "names no registration number"),
        ("CAUS02012201159999", "not registered"),
        ("CNZL02012201200017", "of NZ, but the goods originate in AU"),
        (SALMON_NZ, "of NZ"),  # another country first: the country is checked before goods
        ("CDEU22032201100006", "of DE"),
    ],
)
def test_r2_food_needs_its_registered_manufacturer(registration: str | None, why: str) -> None:
    beef = food(1, "0202300000", "AU", registration)
    verdict = assess_r2(lodged(beef, certificates=(HC,)))
    assert verdict.decision is ev.Decision.HOLD
    assert codes(verdict) == [("CIQ-MANUFACTURER-UNREGISTERED", 1)]
    assert why in verdict.reasons[0].message and "Decree 248" in verdict.reasons[0].message


def test_r2_a_registration_covers_its_goods_only() -> None:
    offal = food(1, "0206290000", "AU", BEEF_AU)  # 0206 is registered
    assert assess_r2(lodged(offal, certificates=(HC,))).decision is ev.Decision.CLEAR
    lamb = food(1, "0204420000", "AU", BEEF_AU)  # 0204 is not
    verdict = assess_r2(lodged(lamb, certificates=(HC,)))
    assert codes(verdict) == [("CIQ-MANUFACTURER-UNREGISTERED", 1)]
    assert "does not cover these goods" in verdict.reasons[0].message


def test_r2_a_registration_is_valid_from_and_until_its_dates() -> None:
    expired = lodged(food(1, "2204210000", "FR", WINE_FR_EXPIRED))
    verdict = assess_r2(expired)
    assert codes(verdict) == [("CIQ-MANUFACTURER-UNREGISTERED", 1)]
    assert "to 2026-11-20 only" in verdict.reasons[0].message
    last_day = datetime(2026, 11, 20, 15, 59, tzinfo=UTC)  # 23:59 on 20 November in China
    assert assess_r2(expired, last_day).decision is ev.Decision.CLEAR
    renewed = lodged(food(1, "2204210000", "FR", WINE_FR))
    assert assess_r2(renewed).decision is ev.Decision.CLEAR
    before = datetime(2026, 11, 20, 15, 59, tzinfo=UTC)
    assert codes(assess_r2(renewed, before)) == [("CIQ-MANUFACTURER-UNREGISTERED", 1)]


def test_r2_wine_beer_whisky_palm_oil_roasted_coffee_need_no_certificate() -> None:
    goods = (
        food(1, "2204210000", "FR", WINE_FR),
        food(2, "2203000000", "DE", "CDEU22032201100006"),
        food(3, "2208300000", "GB", WHISKY_GB),
        food(4, "1511100000", "MY", "CMYS15112201100023"),
        food(5, "0901210000", "IT", "CITA09012201100035"),
    )
    assert assess_r2(lodged(*goods)).decision is ev.Decision.CLEAR
    # under ciq-2026.11 wine needed a health certificate, and the rest was not catalogued
    assert codes(assess(lodged(*goods))) == [("CIQ-CERT-MISSING", 1)]


def test_r2_green_coffee_needs_a_phytosanitary_certificate_and_a_manufacturer() -> None:
    beans = food(1, "0901110000", "CO", None)
    verdict = assess_r2(lodged(beans))
    assert codes(verdict) == [("CIQ-CERT-MISSING", 1), ("CIQ-MANUFACTURER-UNREGISTERED", 1)]
    assert "PHYTOSANITARY_CERTIFICATE" in verdict.reasons[0].message
    certified = lodged(food(1, "0901110000", "CO", COFFEE_CO), certificates=(PC,))
    assert assess_r2(certified).decision is ev.Decision.CLEAR


def test_r2_processed_wood_is_not_quarantined() -> None:
    assert assess_r2(lodged(item(1, "4412310000", "ID"))).reasons == ()
    logs = assess_r2(lodged(item(1, "4403210000", "NZ")))
    assert codes(logs) == [("CIQ-CERT-MISSING", 1)]
    assert assess_r2(lodged(item(1, "4403210000", "NZ"), certificates=(PC,))).reasons == ()


def test_r2_cars_fuels_and_chemicals_are_inspected() -> None:
    goods = (
        item(1, "8703800000", "DE"),  # car
        item(2, "2710121000", "SG"),  # gasoline
        item(3, "3102300000", "RU"),  # ammonium nitrate
        item(4, "8471300000", "NL"),  # laptops: not catalogued
    )
    verdict = assess_r2(lodged(*goods))
    assert verdict.decision is ev.Decision.INSPECT
    assert codes(verdict) == [("CIQ-COMMODITY-INSPECTION", n) for n in (1, 2, 3)]
    assert [(c.check, c.item) for c in verdict.checks] == [
        ("COMMODITY_INSPECTION", n) for n in (1, 2, 3)
    ]
    assert "import" in verdict.reasons[0].message
    # neither food nor quarantine: an unregistered importer is no matter
    assert codes(assess_r2(lodged(*goods, owner=FIRST_TIMER_R2))) == codes(verdict)
    # on export only the hazardous chemical's packaging is inspected
    exported = assess_r2(lodged(*goods, declaration_type=EXPORT))
    assert codes(exported) == [("CIQ-COMMODITY-INSPECTION", 3)]
    assert "export" in exported.reasons[0].message


def test_r2_all_findings_reported_in_the_documented_order() -> None:
    pork = food(1, "0203290000", "PL", None)  # alert, no certificate, no manufacturer
    cattle = item(2, "0102290000", "AU")  # first import of live animals
    verdict = assess_r2(lodged(pork, cattle, owner=FIRST_TIMER_R2))
    assert verdict.decision is ev.Decision.REJECT
    assert codes(verdict) == [
        ("CIQ-QUARANTINE-ALERT", 1),
        ("CIQ-CERT-MISSING", 1),
        ("CIQ-MANUFACTURER-UNREGISTERED", 1),
        ("CIQ-CERT-MISSING", 2),
        ("CIQ-FIRST-IMPORT", 2),
        ("CIQ-IMPORTER-NOT-REGISTERED", None),
    ]
    assert "(item 1)" in verdict.reasons[-1].message  # live animals are not food
    assert [(c.check, c.item) for c in verdict.checks] == [("QUARANTINE_SAMPLE", 2)]


def test_r2_reference_data_is_consistent() -> None:
    for alert in R2.alerts:
        for prefix in alert.hs_prefixes:
            assert R2.catalogue_entry(prefix.ljust(10, "0")) is not None, alert.alert_id
    assert len(R2.manufacturers) >= 20
    for number, maker in R2.manufacturers.items():
        assert number == maker.registration
        assert number.startswith("C") and number[4:].isdigit() and len(number) == 18
        validate_country(maker.country)
        for prefix in maker.hs_prefixes:
            entry = R2.catalogue_entry(prefix.ljust(10, "0"))
            assert entry is not None and entry.category.food, (number, prefix)
    categories = {entry.category.name: entry.category for entry in R2.catalogue.values()}
    food_categories = {name for name, category in categories.items() if category.food}
    assert food_categories == {"ANIMAL_PRODUCT", "PLANT_FOOD", "FOOD", "PROCESSED_FOOD"}
    sampled = {name for name, category in categories.items() if category.first_import_sampling}
    assert sampled == {"LIVE_ANIMAL"}


def test_r2_manufacturers_are_read_and_checked(tmp_path: Path) -> None:
    from services.ciq import reference
    from singlewindow.reference import ReferenceDataError, ReferenceFolder

    header = ",".join(reference.MANUFACTURER_COLUMNS)
    good = "CAUS02012201150031,A,AU,0201 0202,2022-01-15,2027-01-14"
    for bad, message in [
        ("CAUS02012201150030,A,XX,0201,2022-01-15,2027-01-14", "country code"),
        ("CAUS02012201150032,A,AU,,2022-01-15,2027-01-14", "at least one HS prefix"),
        ("CAUS02012201150033,A,AU,0201,2022-01-15,2021-01-14", "must not precede"),
        (good, "duplicate registration"),
    ]:
        (tmp_path / reference.MANUFACTURERS).write_text(f"{header}\n{good}\n{bad}\n")
        folder = ReferenceFolder("services.test", "test-1", tmp_path)
        with pytest.raises(ReferenceDataError, match=f"line 3: .*{message}"):
            reference._manufacturers(folder)
