"""The example agency outside services/ (examples/vet_agency): its rules, figures computed by
hand with the example tariff (vet-2026.12/parameters.json: 120.00 CNY per concerned item plus
8.50 CNY per started tonne), and its service in memory on the SDK's FakeBroker."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from vet_agency.reference import load_reference
from vet_agency.rules import assess, certified_establishment

from singlewindow.agency import agency_service
from singlewindow.events import (
    EARLIEST,
    AgencyVerdict,
    Decision,
    DeclarationType,
    Document,
    DocumentType,
)
from singlewindow.registry import load_registry
from singlewindow.settings import Settings
from singlewindow.signing import KeyRegistry, SigningKey, register
from singlewindow.testing import FakeBroker
from tests import factories

REFERENCE = load_reference()
NOW = factories.T0


def goods(hs_code: str, origin: str, quantity: str, unit: str = "KGM", line: int = 1) -> Any:
    return (
        factories.declaration()
        .items[0]
        .model_copy(
            update={
                "line": line,
                "hs_code": hs_code,
                "origin_country": origin,
                "quantity": Decimal(quantity),
                "unit": unit,
            }
        )
    )


def declared(*items: Any, certificate: str | None = None, **changes: Any) -> Any:
    documents = [Document(type=DocumentType.COMMERCIAL_INVOICE, reference="INV-1")]
    if certificate is not None:
        documents.append(Document(type=DocumentType.HEALTH_CERTIFICATE, reference=certificate))
    return factories.declaration(
        items=items, documents=tuple(documents), required_agencies=("customs", "vet"), **changes
    )


def test_registered_beef_is_cleared_and_charged_per_item_and_started_tonne() -> None:
    verdict = assess(
        declared(goods("0202300000", "AU", "24000"), certificate="AU-EST0142-26000002"),
        REFERENCE,
        NOW,
    )
    assert verdict.decision is Decision.CLEAR and verdict.reasons == ()
    # 120.00 + 24 x 8.50 = 324.00
    assert [(c.code, c.amount, c.item) for c in verdict.charges] == [
        ("VET_INSPECTION_FEE", Decimal("324.00"), 1)
    ]


@pytest.mark.parametrize(
    ("quantity", "unit", "fee"),
    [
        ("1", "KGM", "128.50"),  # 1 kg starts a tonne: 120.00 + 8.50
        ("1000", "KGM", "128.50"),  # exactly one tonne
        ("1000.001", "KGM", "137.00"),  # a second tonne started: 120.00 + 2 x 8.50
        ("2.5", "TNE", "145.50"),  # 3 started tonnes: 120.00 + 25.50
        ("800", "KG", "128.50"),  # the unit code traders write today
        ("40", "CTN", "120.00"),  # no mass: the fee per item alone
    ],
)
def test_the_fee_per_started_tonne(quantity: str, unit: str, fee: str) -> None:
    item = goods("0406900000", "FR", quantity, unit)
    verdict = assess(declared(item, certificate="FR-FR2912001CE-1"), REFERENCE, NOW)
    assert [c.amount for c in verdict.charges] == [Decimal(fee)]


def test_pork_from_a_suspended_origin_and_an_unregistered_establishment_is_rejected() -> None:
    cheese = goods("0406900000", "DE", "1200", line=1)
    pork = goods("0203290000", "DE", "22000", line=2)
    verdict = assess(declared(cheese, pork, certificate="DE-DE-BY-10022-EG-7"), REFERENCE, NOW)
    assert verdict.decision is Decision.REJECT
    assert {(r.code, r.item) for r in verdict.reasons} == {
        ("VET-ORIGIN-SUSPENDED", 2),  # African swine fever, since 2020-09-12
        ("VET-EST-UNREGISTERED", 2),  # the dairy on the certificate exports no meat
    }
    # cheese 120.00 + 2 x 8.50 = 137.00; pork 120.00 + 22 x 8.50 = 307.00
    assert [c.amount for c in verdict.charges] == [Decimal("137.00"), Decimal("307.00")]


def test_a_certificate_that_names_no_establishment_is_held_not_rejected() -> None:
    verdict = assess(
        declared(goods("0202300000", "AU", "500"), certificate="HC-AU-2026-000002"),
        REFERENCE,
        NOW,
    )
    assert verdict.decision is Decision.HOLD
    assert [r.code for r in verdict.reasons] == ["VET-CERT-UNREADABLE"]


def test_meat_without_a_health_certificate_is_held() -> None:
    verdict = assess(declared(goods("0201300000", "NZ", "500")), REFERENCE, NOW)
    assert verdict.decision is Decision.HOLD
    assert [r.code for r in verdict.reasons] == ["VET-CERT-MISSING"]


def test_goods_that_are_not_meat_or_dairy_and_exports_are_no_concern() -> None:
    laptops = declared(goods("8471300000", "DE", "10", "PCE"))
    beef_export = declared(
        goods("0202300000", "CN", "500"), declaration_type=DeclarationType.EXPORT
    )
    for declaration in (laptops, beef_export):
        verdict = assess(declaration, REFERENCE, NOW)
        assert (verdict.decision, verdict.reasons, verdict.charges) == (Decision.CLEAR, (), ())


@pytest.mark.parametrize(
    ("reference", "named"),
    [
        ("AU-EST0142-26000002", ("AU", "EST0142")),
        ("DE-DE-BY-10022-EG-7", ("DE", "DE-BY-10022-EG")),
        ("HC-AU-2026-000002", None),  # HC is no country: the demo's own reference format
        ("AU-EST0142", None),
        ("nonsense", None),
    ],
)
def test_a_certificate_names_its_establishment(reference: str, named: Any) -> None:
    assert certified_establishment(reference) == named


async def test_the_vet_service_rules_in_memory_through_the_sdk(tmp_path: Path) -> None:
    """The example's service as ``python -m vet_agency`` builds it, on the SDK's FakeBroker:
    a declaration routed to it gets a signed verdict with its fee; one that is not, none."""
    registry = load_registry(factories.registry_file_with(tmp_path))
    key = SigningKey.generate("vet-test")
    (tmp_path / "vet.pem").write_bytes(key.private_pem())
    keys = KeyRegistry(version=1, keys=(*factories.REGISTRY.keys, register(key, "vet", EARLIEST)))
    keys.save(tmp_path / "registry.json")
    settings = Settings().model_copy(
        update={
            "signing_key_file": tmp_path / "vet.pem",
            "signing_key_id": "vet-test",
            "key_registry_file": tmp_path / "registry.json",
        }
    )
    routed = declared(goods("0202300000", "AU", "24000"), certificate="AU-EST0142-26000002")
    not_routed = factories.declaration("D-0002")  # customs and port only

    def rule(declaration: Any, now: Any) -> AgencyVerdict:
        return assess(declaration, REFERENCE, now)

    async with FakeBroker() as broker:
        service = agency_service("vet", rule, settings, registry=registry, transport=broker)
        await broker.start(service)
        intake = factories.SIGNING["intake"]
        await broker.publish("declarations.submitted", routed, signer=intake)
        await broker.publish("declarations.submitted", not_routed, signer=intake)
        await broker.run_until_idle()
    (verdict,) = broker.events("verdicts.vet", AgencyVerdict)
    assert (verdict.declaration_id, verdict.agency) == ("D-0001", "vet")
    assert verdict.signature is not None and verdict.signature.key_id == "vet-test"
    assert [c.amount for c in verdict.charges] == [Decimal("324.00")]
    assert broker.dead_letters() == []
