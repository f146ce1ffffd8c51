"""Builders of valid events for tests: real identifiers with correct check digits."""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.customs.sampling import Keyring, SamplingKey
from singlewindow import events as ev
from singlewindow.settings import Settings
from singlewindow.signing import (
    KeyRegistry,
    ServiceKeys,
    SigningKey,
    register,
    signer_of,
    signers,
)

T0 = datetime(2026, 11, 27, 8, 30, 15, 123000, tzinfo=UTC)


def declaration(declaration_id: str = "D-0001", **changes: Any) -> ev.DeclarationSubmitted:
    """A general-trade import of laptops by sea, lodged by a broker for the consignee, CIF."""
    base = ev.DeclarationSubmitted(
        event_id="0b0c5a52-3b9e-4e7e-9d38-5c3b2b4c1d01",
        declaration_id=declaration_id,
        submitted_at=T0,
        declaration_type=ev.DeclarationType.IMPORT,
        declarant=ev.Party(
            uscc="91350100M000100Y43", name="厦门某某报关有限公司", customs_code="3502980123"
        ),
        consignment=ev.Consignment(
            mode=ev.TransportMode.SEA,
            vessel_imo="9074729",
            voyage="001E",
            bill_of_lading="COSU6182736450",
            port_of_loading="NLRTM",
            port_of_discharge="CNSHA",
            containers=("CSQU3054383",),
            gross_weight_kg=Decimal("150.000"),
            net_weight_kg=Decimal("120.500"),
            packages=12,
            package_kind="CT",
            trade_country="NL",
            departure_country="NL",
            entry_customs="2248",
            entry_port="CNSHA",
        ),
        items=(
            ev.GoodsItem(
                line=1,
                hs_code="8471300000",
                description="Laptop computers",
                origin_country="NL",
                quantity=Decimal("120"),
                unit="H87",
                second_quantity=Decimal("120.5"),
                second_unit="KGM",
                customs_value=Decimal("45000.10"),
                currency="EUR",
                invoice_price=Decimal("45000.10"),
                declaration_elements="0|0|portable|Dell|XPS 13",
            ),
        ),
        documents=(ev.Document(type=ev.DocumentType.COMMERCIAL_INVOICE, reference="INV-2026-001"),),
        required_agencies=("customs", "port"),
        routing_version="routing-2026.11",
        trade_mode="0110",
        levy_nature="101",
        declaration_office="2248",
        domestic_party=ev.Party(
            uscc="91350100M000100Y43", name="厦门某某贸易有限公司", customs_code="3502960123"
        ),
        overseas_party=ev.OverseasParty(name="Dell Products B.V.", country="NL"),
        valuation=ev.Valuation(incoterm="CIF", currency="EUR"),
    )
    return type(base).model_validate({**base.model_dump(), **changes})


def declaration_body(**changes: Any) -> dict[str, Any]:
    """The JSON body of ``POST /v1/declarations`` (decimals as strings) of the declaration
    :func:`declaration` builds: laptops from the Netherlands by sea, a general-trade import
    (0110, no record number) lodged by a broker for the consignee, CIF, so the customs value
    is the invoice price (45,000.10 EUR); ``changes`` replace top-level fields.

    Its transport is the bill ``COSU6182736450`` as the customs manifest of
    ``customs-2026.11-r2`` has it (one container, 12 cartons, 150 kg)."""
    body: dict[str, Any] = {
        "declaration_type": "IMPORT",
        "trade_mode": "0110",
        "levy_nature": "101",
        "declaration_office": "2248",
        "declarant": {
            "uscc": "91350100M000100Y43",
            "customs_code": "3502980123",
            "name": "厦门某某报关有限公司",
        },
        "domestic_party": {
            "uscc": "91350100M000100Y43",
            "customs_code": "3502960123",
            "name": "厦门某某贸易有限公司",
        },
        "overseas_party": {"name": "Dell Products B.V.", "country": "NL"},
        "valuation": {
            "incoterm": "CIF",
            "currency": "EUR",
            "special_relationship": False,
            "price_influenced": False,
            "royalties_payable": False,
        },
        "transport": {
            "mode": "SEA",
            "vessel_imo": "9074729",
            "voyage": "001E",
            "bill_of_lading": "COSU6182736450",
            "port_of_loading": "NLRTM",
            "port_of_discharge": "CNSHA",
            "containers": ["CSQU3054383"],
            "gross_weight_kg": "150",
            "net_weight_kg": "120.5",
            "packages": 12,
            "package_kind": "CT",
            "trade_country": "NL",
            "departure_country": "NL",
            "entry_customs": "2248",
            "entry_port": "CNSHA",
        },
        "items": [
            {
                "hs_code": "8471300000",
                "description": "Laptop computers",
                "declaration_elements": "0|0|portable|Dell|XPS 13",
                "origin_country": "NL",
                "quantity": "120",
                "unit": "H87",
                "second_quantity": "120.5",
                "second_unit": "KGM",
                "invoice_price": "45000.10",
            }
        ],
        "documents": [{"type": "COMMERCIAL_INVOICE", "reference": "INV-2026-001"}],
    }
    return {**body, **changes}


def verdict(
    declaration_id: str = "D-0001",
    agency: str = "customs",
    decision: ev.Decision = ev.Decision.CLEAR,
    **changes: Any,
) -> ev.AgencyVerdict:
    base = ev.AgencyVerdict(
        verdict_id=f"V-{declaration_id}-{agency}",
        declaration_id=declaration_id,
        agency=agency,
        decision=decision,
        reasons=(ev.Reason(code="CUS-OK", message="all rules passed"),),
        total_duties=Decimal("0"),
        rules_version=f"{agency}-2026.11",
        decided_at=T0,
    )
    return type(base).model_validate({**base.model_dump(), **changes})


def result(declaration_id: str = "D-0001", **changes: Any) -> ev.ClearanceResult:
    base = ev.ClearanceResult(
        result_id=f"R-{declaration_id}",
        declaration_id=declaration_id,
        status=ev.ClearanceStatus.RELEASED,
        decisions=(
            ev.AgencyDecision(agency="customs", decision=ev.Decision.CLEAR, verdict_id="V1"),
        ),
        total_duties=Decimal("1234.56"),
        decided_at=T0,
    )
    return type(base).model_validate({**base.model_dump(), **changes})


def join_state(declaration_id: str = "D-0001", **changes: Any) -> ev.JoinState:
    base = ev.JoinState(
        declaration_id=declaration_id,
        required_agencies=("customs", "port"),
        submitted_at=T0,
        deadline=T0 + timedelta(seconds=120),
        verdicts=(verdict(declaration_id),),
    )
    return type(base).model_validate({**base.model_dump(), **changes})


def withdrawal(declaration_id: str = "D-0001", **changes: Any) -> ev.DeclarationWithdrawn:
    base = ev.DeclarationWithdrawn(
        declaration_id=declaration_id,
        event_id=f"W-{declaration_id}",
        withdrawn_at=T0 + timedelta(seconds=30),
        version=1,
        requested_by="91310000MA1FL0XQ2B",
        reason="lodged in error",
    )
    return type(base).model_validate({**base.model_dump(), **changes})


def payment(
    declaration_id: str = "D-0001", notice_id: str = "N-1", **changes: Any
) -> ev.PaymentConfirmed:
    base = ev.PaymentConfirmed(
        declaration_id=declaration_id,
        payment_id=f"P-{declaration_id}",
        notice_id=notice_id,
        kind=ev.PaymentKind.PAYMENT,
        amount=Decimal("1234.56"),
        paid_at=T0 + timedelta(hours=1),
        payer="91310000MA1FL0XQ2B",
    )
    return type(base).model_validate({**base.model_dump(), **changes})


def finding(
    declaration_id: str = "D-0001",
    agency: str = "customs",
    outcome: ev.FindingOutcome = ev.FindingOutcome.COMPLIANT,
    **changes: Any,
) -> ev.InspectionFinding:
    base = {
        "declaration_id": declaration_id,
        "finding_id": f"F-{declaration_id}-{agency}",
        "order_id": "O-1",
        "version": 1,
        "agency": agency,
        "inspector": f"{agency}-inspector-1",
        "outcome": outcome,
        "recorded_at": T0 + timedelta(hours=2),
    }
    return ev.InspectionFinding.model_validate({**base, **changes})


def gate_out(declaration_id: str = "D-0001", **changes: Any) -> ev.GateOut:
    """Goods of ``declaration()`` out of the port under its release ``result()``."""
    base = {
        "declaration_id": declaration_id,
        "gate_out_id": f"G-{declaration_id}",
        "result_id": f"R-{declaration_id}",
        "gate": "CNSHA-WGQ-3",
        "vehicle": "沪A12345",
        "containers": ("CSQU3054383",),
        "passed_at": T0 + timedelta(hours=3),
        "officer": "port-gate-officer-1",
    }
    return ev.GateOut.model_validate({**base, **changes})


def sampling_key(version: str = "test-1") -> SamplingKey:
    """A customs sampling key for tests only: its secret is derived from its version."""
    seed = f"singlewindow unit-test sampling key {version}".encode()
    return SamplingKey(version, hashlib.sha256(seed).digest())


def keyring(*versions: str, current: str | None = None) -> Keyring:
    """A keyring of test keys (default: ``test-1``), drawing with ``current`` or the last."""
    versions = versions or ("test-1",)
    return Keyring({v: sampling_key(v) for v in versions}, current or versions[-1])


# -- event-signing keys of the tests: one per signing service, registered valid since 2000 --

SIGNING: dict[str, SigningKey] = {s: SigningKey.generate(f"{s}-test") for s in signers()}
REGISTRY = KeyRegistry(
    version=1, keys=tuple(register(key, s, ev.EARLIEST) for s, key in SIGNING.items())
)
_KEY_FILES: Path | None = None


def signed(event: ev.Event, at: datetime = T0) -> bytes:
    """The payload of ``event`` signed by the test key of the service that must sign it."""
    return SIGNING[signer_of(event)].sign(event, at)[1]


def service_keys(signer: str) -> ServiceKeys:
    """What the service ``signer`` holds in tests: its test key and the test registry."""
    return ServiceKeys(SIGNING[signer], REGISTRY)


def key_files() -> Path:
    """A folder with the test registry (``registry.json``) and each ``<signer>.pem``."""
    global _KEY_FILES
    if _KEY_FILES is None:
        folder = Path(tempfile.mkdtemp(prefix="sw-test-keys-"))
        for signer, key in SIGNING.items():
            (folder / f"{signer}.pem").write_bytes(key.private_pem())
        REGISTRY.save(folder / "registry.json")
        _KEY_FILES = folder
    return _KEY_FILES


def with_keys(settings: Settings, signer: str | None = None) -> Settings:
    """``settings`` with the test registry and, for a ``signer``, its test signing key."""
    folder = key_files()
    update: dict[str, Any] = {"key_registry_file": folder / "registry.json"}
    if signer is not None:
        update |= {"signing_key_file": folder / f"{signer}.pem", "signing_key_id": f"{signer}-test"}
    return settings.model_copy(update=update)


# -- a fourth agency: the registry entry of examples/vet_agency --

VET_ENTRY = """
[[agency]]
code = "vet"
name = "Veterinary and Food Safety Authority"
name_zh = "兽医和食品安全局"
module = "vet_agency"
metrics_port = 9106
rules = "vet_agency.rules:assess"
reference = "vet_agency.reference:load_reference"
"""


def registry_file_with(folder: Path, entries: str = VET_ENTRY) -> Path:
    """The platform's registry plus ``entries`` (TOML), written to ``folder/agencies.toml``."""
    from singlewindow.registry import default_file

    path = folder / "agencies.toml"
    path.write_text(default_file().read_text(encoding="utf-8") + entries, encoding="utf-8")
    return path
