"""The agency registry and what derives from it; agency codes on the wire; every agency's
charges in the consolidated result."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastavro import schemaless_reader

from services.aggregator.join import fold
from services.audit.verify import recomputers
from singlewindow.avro.codec import HEADER_LEN
from singlewindow.avro.registry import default_registry
from singlewindow.events import AgencyVerdict, Charge, ClearanceStatus, Decision
from singlewindow.registry import PLATFORM_TOPICS, AgencyRegistry, default_file, load_registry
from singlewindow.security import acls, principal, principals
from singlewindow.topics import catalog, inputs, verdict_topics
from tests import factories

VET = factories.VET_ENTRY


def with_vet(tmp_path: Path, extra: str = VET) -> AgencyRegistry:
    return load_registry(factories.registry_file_with(tmp_path, extra))


def test_the_platform_registry_lists_customs_ciq_and_port_in_order() -> None:
    registry = load_registry(default_file())
    assert registry.codes == ("customs", "ciq", "port")
    port = registry.get("port")
    assert (port.topic, port.group, port.principal) == ("verdicts.port", "port", "port")


def test_a_new_agency_gets_its_topic_principal_acls_and_join_input(tmp_path: Path) -> None:
    registry = with_vet(tmp_path)
    assert verdict_topics(registry)["vet"].name == "verdicts.vet"
    assert verdict_topics(registry)["vet"].writer == "vet"
    assert "verdicts.vet" in inputs(registry)
    vet = principal("vet", registry)
    assert (vet.reads, vet.writes, vet.group) == (
        ("declarations.submitted",),
        ("verdicts.vet", "deadletters"),
        "vet",
    )
    # the join, the read model and the auditors read it; re-driving may put letters back
    for reader in ("aggregator", "projector", "audit"):
        assert "verdicts.vet" in principal(reader, registry).reads
    assert "verdicts.vet" in principal("redrive", registry).writes
    added = set(acls(registry)) - set(acls(load_registry(default_file())))
    assert {(a.principal, a.name, a.operation.value) for a in added} >= {
        ("vet", "verdicts.vet", "Write"),
        ("vet", "vet", "Read"),  # its consumer group
        ("aggregator", "verdicts.vet", "Read"),
    }
    assert {t.name for t in catalog(registry)} - {t.name for t in catalog()} == {"verdicts.vet"}
    assert len(principals(registry)) == len(principals()) + 1


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        (VET.replace('code = "vet"', 'code = "customs"'), "share a code"),
        (VET.replace("9106", "9101"), "share a metrics_port"),
        (VET.replace('code = "vet"', 'code = "aggregator"'), "platform's own services"),
        (VET.replace('code = "vet"', 'code = "Vet"'), "pattern"),
        (VET.replace('module = "vet_agency"', 'module = "vet agency"'), "pattern"),
        (VET + 'colour = "green"\n', "Extra inputs"),
        (VET + 'topic = "clearance.results"\n', "is the platform's"),
        (VET + 'group = "aggregator"\n', "is the platform's"),
        (VET + 'principal = "aggregator"\n', "is the platform's"),
        (VET + 'principal = "../x"\n', "pattern"),
        (VET + 'group = "ciq"\n', "share a group"),
        (VET + 'principal = "port"\n', "share a principal"),
        (  # one agency's group is another's principal
            VET
            + 'principal = "vetsvc"\n'
            + VET.replace('code = "vet"', 'code = "vetx"').replace("9106", "9107")
            + 'group = "vetsvc"\n',
            "names both",
        ),
    ],
)
def test_a_malformed_registry_is_refused_naming_why(tmp_path: Path, entry: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        with_vet(tmp_path, entry)


def test_the_platform_topics_an_agency_may_not_take_are_the_catalog_s() -> None:
    assert {t.name for t in catalog()} - {
        t.name for t in verdict_topics().values()
    } == PLATFORM_TOPICS


def test_no_event_names_a_platform_service_as_an_agency() -> None:
    """A verdict "of the intake" would pass the check of the intake's own signature."""
    with pytest.raises(ValueError, match="platform's own services"):
        factories.verdict(agency="intake")


def test_auditors_recompute_an_agency_with_the_rules_its_entry_names(tmp_path: Path) -> None:
    registry = with_vet(tmp_path)
    assert set(recomputers(registry=registry)) == {"customs", "ciq", "port", "vet"}
    assert set(recomputers()) == {"customs", "ciq", "port"}


# --- agency codes on the wire ------------------------------------------------------------


def test_an_agency_the_enum_never_knew_round_trips() -> None:
    verdict = factories.verdict(agency="vet")
    assert AgencyVerdict.from_avro(verdict.to_avro()).agency == "vet"


def test_writers_write_the_string_branch_never_the_legacy_enum() -> None:
    """Union branch 0 is the string: a reader of today's data needs no enum symbol."""
    payload = factories.verdict(agency="customs").to_avro()
    schema = default_registry().reader("cn.singlewindow.events.AgencyVerdict")
    union = {f["name"]: f["type"] for f in schema["fields"]}["agency"]
    assert union[0] == "string"
    # verdict_id and declaration_id come first, then the agency's union branch index
    body = io.BytesIO(payload[HEADER_LEN:])
    assert schemaless_reader(body, "string", None).startswith("V-")  # verdict_id
    assert schemaless_reader(body, "string", None) == "D-0001"
    assert schemaless_reader(body, "long", None) == 0  # branch 0: the string
    assert schemaless_reader(body, "string", None) == "customs"


def test_verdicts_written_with_the_enum_read_as_codes() -> None:
    """Golden payloads of the released versions that wrote the enum still decode."""
    golden = Path(__file__).parents[1] / "golden"
    old = sorted(golden.glob("cn.singlewindow.events.AgencyVerdict.006268848fed7adc.avro"))
    assert old, "the first released AgencyVerdict's golden payload"
    verdict = AgencyVerdict.from_avro(old[0].read_bytes())
    assert verdict.agency in {"customs", "ciq", "port"}
    assert verdict.charges == ()


def test_an_agency_code_must_look_like_one() -> None:
    with pytest.raises(ValueError, match="pattern"):
        factories.verdict(agency="UNKNOWN")


# --- charges in the consolidated result ----------------------------------------------------


def test_every_agency_charges_reach_the_result_per_agency_exactly() -> None:
    port_dues = Charge(code="PORT_DUES", description="port dues", amount=Decimal("75.40"))
    fees = (
        Charge(code="VET_INSPECTION_FEE", description="item 1", amount=Decimal("324.00"), item=1),
        Charge(code="VET_INSPECTION_FEE", description="item 2", amount=Decimal("0.05"), item=2),
    )
    events = [
        factories.declaration(required_agencies=("customs", "port", "vet")),
        factories.verdict(agency="vet", charges=fees),
        factories.verdict(agency="customs", total_duties=Decimal("1234.56")),
        factories.verdict(agency="port", charges=(port_dues,), total_duties=Decimal("0.44")),
    ]
    _, (result,) = fold(events, timedelta(seconds=120))
    assert result.status is ClearanceStatus.RELEASED
    # listed in the declaration's order of agencies, whatever order the verdicts came in
    assert [d.agency for d in result.decisions] == ["customs", "port", "vet"]
    assert [d.charges for d in result.decisions] == [(), (port_dues,), fees]
    # 75.40 + 324.00 + 0.05 = 399.45; duties of every agency: 1,234.56 + 0.44 = 1,235.00
    assert result.total_charges == Decimal("399.45")
    assert result.total_duties == Decimal("1235.00")
    assert all(d.decision is Decision.CLEAR for d in result.decisions)


def test_sums_the_join_makes_stay_in_range() -> None:
    """The join adds the duties of every agency asked: each verdict's below 10^14 CNY and at
    most 64 agencies per declaration keep the sum a Money (below 10^16); a verdict or a
    declaration beyond is refused where it is decoded (and so dead-lettered)."""
    with pytest.raises(ValueError, match="less than"):
        factories.verdict(total_duties=Decimal("100000000000000.00"))
    with pytest.raises(ValueError, match="at most 64"):
        factories.declaration(required_agencies=tuple(f"a{i:02d}" for i in range(65)))
    many = [f"a{i:02d}" for i in range(64)]
    top = Decimal("99999999999999.99")
    events = [
        factories.declaration(required_agencies=tuple(many)),
        *(factories.verdict(agency=a, total_duties=top) for a in many),
    ]
    _, (result,) = fold(events, timedelta(seconds=120))
    assert result.total_duties == top * 64  # 6,399,999,999,999,999.36 < 10^16


def test_an_agency_whose_rules_cannot_be_imported_is_reported_per_verdict(
    tmp_path: Path,
) -> None:
    registry = with_vet(tmp_path, VET.replace("vet_agency.rules:assess", "no_such.rules:assess"))
    recompute = recomputers(registry=registry)["vet"]
    with pytest.raises(LookupError, match="vet's rules cannot be loaded"):
        recompute(factories.declaration(), factories.verdict(agency="vet"))
