"""Inspection and quarantine rules: catalogue, certificates, quarantine alerts, first imports."""

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
REF = load_reference()
HC = ev.DocumentType.HEALTH_CERTIFICATE
PC = ev.DocumentType.PHYTOSANITARY_CERTIFICATE
# The released ciq-2026.11 lists its importers under codes whose embedded organisation code
# is impossible (GB 11714 check wrong); rules look them up as listed. Switch to the corrected
# codes (91330200MNJFN5BB1U, 915101008KJD3KPX8B, 91350200WY7UT95NXT) with the next version.
REGISTERED = ev.Party(uscc="91330200MNJFN5BBF7", name="宁波港城食品进出口有限公司")
FIRST_TIMER = ev.Party(uscc="915101008KJD3KPXQW", name="成都天府新食品有限公司")


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
    assert verdict.rules_version == rules.RULES_VERSION == "ciq-2026.11"
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
    expected = ["quarantine_alert", "cert_missing", "first_import"]
    assert [rule.__name__ for rule in rules.CATALOGUE_RULES] == expected


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
