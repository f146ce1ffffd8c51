"""Customs' match of the declaration with the cargo manifest (舱单, ``CUS-MANIFEST``), under
``customs-2026.11-r2``, the first version that ships a manifest. Every expectation is
computed by hand from ``manifest.json`` and the factory declaration (bill COSU6182736450:
vessel 9074729 voyage 001E, NLRTM -> CNSHA, 12 packages, 150 kg, container CSQU3054383)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.customs import reference as customs_reference
from services.customs import rules
from services.customs.reference import load_reference
from singlewindow import events as ev
from singlewindow.reference import ReferenceDataError, ReferenceFolder
from tests import factories

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
R2 = load_reference("customs-2026.11-r2")
LEGACY = load_reference("customs-2026.11")
KEY = factories.sampling_key("test-1")
D = Decimal
FACTORY_BILL = "COSU6182736450"
OTHER_VESSEL_BILL = "EGLV142600418251"  # 9811000 voyage 0261E, NLRTM -> CNSHA
TANKER_BILL = "PEXSIN2611001"  # gasoline, 9612349 voyage 2611E, SGSIN -> CNSHA, bulk
TRAIN_BILL = "CIMSMGS26110042"  # train X8024, Duisburg -> Chongqing, two containers


def consignment(**changes: Any) -> ev.Consignment:
    base = factories.declaration().consignment
    return ev.Consignment.model_validate({**base.model_dump(), **changes})


def declared(reference: customs_reference.ReferenceData, number: str) -> ev.Consignment:
    """A consignment declared exactly as bill ``number`` was filed."""
    assert reference.manifest is not None
    bill = reference.manifest.bills[number]
    return consignment(
        mode=bill.mode,
        vessel_imo=bill.vessel_imo,
        voyage=bill.voyage,
        bill_of_lading=bill.bill_of_lading,
        port_of_loading=bill.port_of_loading,
        port_of_discharge=bill.port_of_discharge,
        packages=bill.packages,
        package_kind=bill.package_kind,
        gross_weight_kg=bill.gross_weight_kg,
        containers=bill.containers,
    )


def mismatches(reference: customs_reference.ReferenceData = R2, **changes: Any) -> list[str]:
    """The messages of ``manifest_mismatch`` on the factory declaration with its consignment
    changed (every ruling is a CUS-MANIFEST HOLD)."""
    declaration = factories.declaration(consignment=consignment(**changes))
    case = rules.Case.of(declaration, reference, rules.SampleDraw("test-1", False))
    found = list(rules.manifest_mismatch(case))
    assert all(r.reason.code == "CUS-MANIFEST" for r in found)
    assert all(r.decision is ev.Decision.HOLD and r.reason.item is None for r in found)
    return [r.reason.message for r in found]


def test_the_factory_declaration_matches_its_bill_and_clears() -> None:
    assert mismatches() == []
    verdict = rules.assess(factories.declaration(), R2, NOW, KEY)
    assert "CUS-MANIFEST" not in {r.code for r in verdict.reasons}


def test_every_filed_bill_declared_as_filed_matches() -> None:
    assert R2.manifest is not None
    for number in R2.manifest.bills:
        assert mismatches(**declared(R2, number).model_dump()) == [], number


def test_a_bill_on_no_manifest_is_held_once() -> None:
    assert mismatches(bill_of_lading="COSU0000000000", packages=99) == [
        "bill of lading COSU0000000000 is on no SEA manifest"
    ]


def test_a_bill_of_another_vessel_does_not_clear() -> None:
    found = mismatches(bill_of_lading=OTHER_VESSEL_BILL)
    bill = R2.manifest.bills[OTHER_VESSEL_BILL] if R2.manifest else None
    assert bill is not None
    assert found == [
        f"vessel IMO: declared 9074729, the manifest of bill {OTHER_VESSEL_BILL} has 9811000",
        f"voyage: declared 001E, the manifest of bill {OTHER_VESSEL_BILL} has 0261E",
        f"number of packages: declared 12, the manifest of bill {OTHER_VESSEL_BILL} has "
        f"{bill.packages}",
        f"gross weight (kg, tolerance 5%): declared 150.000, the manifest of bill "
        f"{OTHER_VESSEL_BILL} has {bill.gross_weight_kg}",
        f"container CSQU3054383 is not on the manifest of bill {OTHER_VESSEL_BILL}",
        f"container EGHU6749771 is on the manifest of bill {OTHER_VESSEL_BILL} but not declared",
        f"container EGHU3688820 is on the manifest of bill {OTHER_VESSEL_BILL} but not declared",
    ]
    declaration = factories.declaration(consignment=consignment(bill_of_lading=OTHER_VESSEL_BILL))
    verdict = rules.assess(declaration, R2, NOW, KEY)
    assert verdict.decision is ev.Decision.HOLD
    assert [r.code for r in verdict.reasons].count("CUS-MANIFEST") == 7


def test_the_same_bill_on_the_declared_vessel_but_another_voyage() -> None:
    assert mismatches(voyage="001W") == [
        f"voyage: declared 001W, the manifest of bill {FACTORY_BILL} has 001E"
    ]
    assert mismatches(vessel_imo=None) == [
        f"vessel IMO: declared none, the manifest of bill {FACTORY_BILL} has 9074729"
    ]


def test_ports_are_matched() -> None:
    assert mismatches(port_of_loading="DEHAM", port_of_discharge="CNNGB") == [
        f"port of loading: declared DEHAM, the manifest of bill {FACTORY_BILL} has NLRTM",
        f"port of discharge: declared CNNGB, the manifest of bill {FACTORY_BILL} has CNSHA",
    ]


def test_packages_are_matched_exactly() -> None:
    assert mismatches(packages=13) == [
        f"number of packages: declared 13, the manifest of bill {FACTORY_BILL} has 12"
    ]
    assert mismatches(packages=None) == [
        f"number of packages: declared none, the manifest of bill {FACTORY_BILL} has 12"
    ]


@pytest.mark.parametrize(
    ("weight", "matches"),
    [
        ("150.000", True),
        ("157.500", True),  # 150 + 5 % = 157.5: at the tolerance
        ("142.500", True),  # 150 - 5 %
        ("157.501", False),
        ("142.499", False),
        ("1500.000", False),  # a slip of a digit
    ],
)
def test_gross_weight_within_the_tolerance(weight: str, matches: bool) -> None:
    assert R2.manifest_weight_tolerance == D("0.05")
    found = mismatches(gross_weight_kg=D(weight))
    expected = (
        []
        if matches
        else [
            f"gross weight (kg, tolerance 5%): declared {weight}, the manifest of bill "
            f"{FACTORY_BILL} has 150.000"
        ]
    )
    assert found == expected


def test_a_missing_gross_weight_does_not_match() -> None:
    assert mismatches(gross_weight_kg=None) == [
        f"gross weight (kg, tolerance 5%): declared none, the manifest of bill "
        f"{FACTORY_BILL} has 150.000"
    ]


def test_containers_are_matched_both_ways() -> None:
    assert mismatches(containers=("CSQU3054383", "CSQU3325926")) == [
        f"container CSQU3325926 is not on the manifest of bill {FACTORY_BILL}"
    ]
    assert mismatches(containers=()) == [
        f"container CSQU3054383 is on the manifest of bill {FACTORY_BILL} but not declared"
    ]


def test_bulk_cargo_has_no_containers() -> None:
    tanker = declared(R2, TANKER_BILL)
    assert tanker.containers == () and tanker.package_kind == "VL"
    assert mismatches(**tanker.model_dump()) == []
    boxed = {**tanker.model_dump(), "containers": ("CSQU3054383",)}
    assert mismatches(**boxed) == [
        f"container CSQU3054383 is not on the manifest of bill {TANKER_BILL}"
    ]
    # a 1,000 t parcel of gasoline: 5 % is 50 t
    assert mismatches(**{**tanker.model_dump(), "gross_weight_kg": D("950000")}) == []
    assert len(mismatches(**{**tanker.model_dump(), "gross_weight_kg": D("949999.999")})) == 1


def test_containerised_rail_freight_is_matched_by_train() -> None:
    train = declared(R2, TRAIN_BILL)
    assert train.mode is ev.TransportMode.RAIL and train.vessel_imo is None
    assert train.containers == ("TBJU2611046", "TBJU2611051")
    assert mismatches(**train.model_dump()) == []
    assert mismatches(**{**train.model_dump(), "voyage": "X8025"}) == [
        f"train: declared X8025, the manifest of bill {TRAIN_BILL} has X8024"
    ]
    by_sea = {**train.model_dump(), "mode": ev.TransportMode.SEA}
    assert mismatches(**by_sea) == [
        f"transport mode: declared SEA, the manifest of bill {TRAIN_BILL} has RAIL"
    ]


def test_modes_the_manifest_does_not_list_are_not_matched() -> None:
    assert R2.manifest is not None
    assert R2.manifest.modes == {ev.TransportMode.SEA, ev.TransportMode.RAIL}
    by_air = consignment(
        mode=ev.TransportMode.AIR,
        vessel_imo=None,
        voyage=None,
        bill_of_lading="784-12345675",
        port_of_loading="NLAMS",
        port_of_discharge="CNPVG",
        containers=(),
    )
    assert mismatches(**by_air.model_dump()) == []


def test_legacy_versions_are_untouched() -> None:
    assert LEGACY.manifest is None
    assert mismatches(LEGACY, bill_of_lading="COSU0000000000") == []
    with_manifest = dataclasses.replace(LEGACY, manifest=R2.manifest)  # even so: legacy
    assert mismatches(with_manifest, bill_of_lading="COSU0000000000") == []


def test_the_versions_after_r2_inherit_the_manifest() -> None:
    december = load_reference("customs-2026.12")
    assert december.manifest is not None and R2.manifest is not None
    assert december.manifest.bills == R2.manifest.bills
    assert december.manifest_weight_tolerance == D("0.05")


def test_the_manifest_rule_runs_first_of_the_declaration_rules() -> None:
    assert rules.DECLARATION_RULES[0] is rules.manifest_mismatch
    high_risk = ev.Party(uscc="91440100Y98KW9045B", name="广州南沙速通贸易有限公司")
    declaration = factories.declaration(
        consignment=consignment(packages=13), domestic_party=high_risk
    )
    verdict = rules.assess(declaration, R2, NOW, KEY)
    declaration_reasons = [r.code for r in verdict.reasons if r.item is None]
    assert declaration_reasons[:2] == ["CUS-MANIFEST", "CUS-OWNER-RISK"]
    assert verdict.decision is ev.Decision.HOLD


def test_the_manifest_data_is_consistent() -> None:
    assert R2.manifest is not None
    bills = R2.manifest.bills
    assert len(bills) >= 25
    assert {b.mode for b in bills.values()} == {ev.TransportMode.SEA, ev.TransportMode.RAIL}
    bulk = [b for b in bills.values() if b.package_kind in customs_reference.BULK_PACKAGE_KINDS]
    assert len(bulk) >= 2 and all(b.containers == () for b in bulk)
    port = json.loads(
        (
            Path(__file__).parents[2] / "services/port/reference/port-2026.11/manifest.json"
        ).read_text()
    )
    for filed in port["bills_of_lading"]:  # every bill of the port's manifest, same voyage
        bill = bills[filed["bill_of_lading"]]
        assert (bill.vessel_imo, bill.voyage) == (filed["vessel_imo"], filed["voyage"])
        assert set(bill.containers) <= set(filed["containers"])


def _folder(tmp_path: Path, manifest: Any) -> ReferenceFolder:
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return ReferenceFolder(package="services.test", version="test-1", root=tmp_path)


GOOD_BILL = {
    "bill_of_lading": "B1",
    "mode": "SEA",
    "vessel_imo": "9074729",
    "voyage": "001E",
    "port_of_loading": "NLRTM",
    "port_of_discharge": "CNSHA",
    "packages": 1,
    "package_kind": "CT",
    "gross_weight_kg": "10.5",
    "containers": ["CSQU3054383"],
}


@pytest.mark.parametrize(
    ("bills", "message"),
    [
        ([GOOD_BILL, GOOD_BILL], "filed twice"),
        ([{**GOOD_BILL, "mode": "AIR"}], "not a mode of the manifest"),
        ([{**GOOD_BILL, "vessel_imo": None}], "for SEA only, and always"),
        ([{**GOOD_BILL, "package_kind": "VL"}], "bulk cargo"),
        ([GOOD_BILL, {**GOOD_BILL, "bill_of_lading": "B2"}], "on two bills"),
        ([{**GOOD_BILL, "vessel_imo": "9074728"}], "check digit"),
        ([{**GOOD_BILL, "packages": 0}], "at least one package"),
        ([{**GOOD_BILL, "gross_weight_kg": "heavy"}], "not a decimal"),
        ([{k: v for k, v in GOOD_BILL.items() if k != "packages"}], "packages"),
    ],
)
def test_a_bad_manifest_is_refused(tmp_path: Path, bills: list[Any], message: str) -> None:
    folder = _folder(tmp_path, {"modes": ["SEA", "RAIL"], "bills_of_lading": bills})
    with pytest.raises(ReferenceDataError, match=message):
        customs_reference._manifest(folder)
    good = customs_reference._manifest(
        _folder(tmp_path, {"modes": ["SEA"], "bills_of_lading": [GOOD_BILL]})
    )
    assert good.bills["B1"].gross_weight_kg == D("10.5")
