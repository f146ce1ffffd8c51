"""A fourth agency joins by registration: the veterinary authority of ``examples/vet_agency``,
built on the SDK's wheel alone and run from an environment of its own, one entry added to the
agency registry and a routing-table version that routes meat and dairy to it. The platform's
code is not touched: the aggregator, the read model and ``audit verify`` take it as they are.

The test provisions the agency on the local stack as ``make up`` would with that registry
(topic, SCRAM user, signing key, ACLs) and puts the stack back to the default registry's ACLs
afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.components import VAR, Kafka
from deploy.local.demo_data import sample_declaration_body
from deploy.local.launcher import ROOT, Platform, running_platform
from services.intake.routing import TABLES, current_version
from singlewindow.kafka.admin import provision_topics
from singlewindow.registry import FILE_ENV
from tests import factories
from tests.e2e.checks import trader
from tests.e2e.test_audit import read_model_document
from tests.e2e.test_pipeline import final_status, submit

pytestmark = pytest.mark.e2e
EXAMPLE = ROOT / "examples" / "vet_agency"
VET_ROUTING = {
    "hs_prefixes": [
        *({"prefix": f"02{h:02d}", "goods": "meat and edible offal"} for h in range(1, 11)),
        *({"prefix": f"04{h:02d}", "goods": "dairy produce"} for h in range(1, 7)),
    ]
}
INTAKE_PORT = int(os.environ.get("E2E_INTAKE_PORT", "18000"))


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    assert found, "uv is needed to build the SDK wheel (make test exports UV)"
    return found


@pytest.fixture(scope="module")
def sdk_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python environment with the SDK's wheel and nothing of this repository."""
    where = tmp_path_factory.mktemp("sdk")
    subprocess.run([uv(), "build", "--wheel", "--out-dir", where, ROOT / "sdk"], check=True)
    (wheel,) = where.glob("singlewindow_sdk-*.whl")
    venv = where / "venv"
    subprocess.run([uv(), "venv", "--python", sys.executable, venv], check=True)
    python = str(venv / "bin" / "python")
    # the SDK's dependencies at the versions the platform is tested with (uv.lock)
    pinned = where / "constraints.txt"
    export = [uv(), "export", "--frozen", "--no-hashes", "--no-dev", "--no-emit-project"]
    subprocess.run([*export, "--output-file", pinned], cwd=ROOT, check=True)
    subprocess.run(
        [uv(), "pip", "install", "--python", python, "--constraint", pinned, wheel], check=True
    )
    probe = subprocess.run(
        [python, "-c", "import singlewindow, vet_agency.rules; print(singlewindow.__file__)"],
        cwd=EXAMPLE,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(venv) in probe.stdout  # the wheel's SDK, not this repository's
    return python


def provision() -> None:
    """What ``make up`` does for the registry of this environment."""
    kafka = Kafka()
    asyncio.run(provision_topics(kafka.admin_settings()))
    asyncio.run(kafka.secure())


@pytest.fixture(scope="module")
def with_vet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The registry plus the veterinary authority, a routing table that asks it, provisioned."""
    if not (VAR / "credentials" / "admin.env").exists():
        pytest.skip("needs the local stack (make up)")
    where = tmp_path_factory.mktemp("vet-registry")
    registry = factories.registry_file_with(where)
    tables = where / "routing_tables"
    shutil.copytree(TABLES, tables)
    table = json.loads((tables / f"{current_version()}.json").read_text())
    table["version"] = "routing-2026.12"
    table["agencies"]["vet"] = VET_ROUTING
    (tables / "routing-2026.12.json").write_text(json.dumps(table, indent=2))
    changed = {
        FILE_ENV: str(registry),
        "ROUTING_TABLES_DIR": str(tables),
        "ROUTING_TABLE_VERSION": "routing-2026.12",
    }
    before = {k: os.environ.get(k) for k in changed}
    os.environ.update(changed)
    try:
        provision()
        yield registry
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        provision()  # the default registry's ACLs again, exactly


@pytest.fixture(scope="module")
def platform(
    with_vet: Path, sdk_python: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    logs = tmp_path_factory.mktemp("platform-logs")
    with running_platform(logs, INTAKE_PORT, 600, leave_out=("vet",)) as platform:
        platform.start("vet", python=sdk_python, cwd=EXAMPLE, PYTHONPATH="")
        platform.wait_ready("vet")
        platform.wait_caught_up()
        yield platform


def with_certificate(body: dict[str, Any], reference: str) -> dict[str, Any]:
    documents = [d for d in body["documents"] if d["type"] != "HEALTH_CERTIFICATE"]
    return {
        **body,
        "documents": [*documents, {"type": "HEALTH_CERTIFICATE", "reference": reference}],
    }


def decision_of(answer: dict[str, Any], agency: str) -> dict[str, Any]:
    (decision,) = [d for d in answer["result"]["decisions"] if d["agency"] == agency]
    return decision


async def test_a_fourth_agency_joins_by_registration(platform: Platform) -> None:
    assert tomllib.loads(Path(os.environ[FILE_ENV]).read_text())["agency"][-1]["code"] == "vet"
    # demo declaration 2: 24,000 KG of frozen boneless beef (0202300000) from Australia;
    # demo declaration 13: 1,200 KG of cheese (0406900000) and 22,000 KG of frozen pork
    # (0203290000) from Germany
    beef = with_certificate(sample_declaration_body(2), "AU-EST0142-26000002")
    pork = with_certificate(sample_declaration_body(13), "DE-DE-BY-10022-EG-26000013")
    laptops = sample_declaration_body(0)  # not the veterinary authority's concern
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    async with httpx.AsyncClient(base_url=platform.url, timeout=60, headers=trader()) as client:
        ids = [await submit(client, body) for body in (beef, pork, laptops)]
        answers = await asyncio.gather(*(final_status(client, d) for d in ids))
    beef_answer, pork_answer, laptops_answer = answers

    # routed by the new table version, decided by the aggregator with no change to its code
    vet = decision_of(beef_answer, "vet")
    assert vet["decision"] == "CLEAR"
    # the example tariff (examples/vet_agency/.../vet-2026.12/parameters.json): 120.00 CNY per
    # concerned item plus 8.50 CNY per started tonne: 120.00 + 24 x 8.50 = 324.00
    assert [(c["code"], c["amount"], c["item"]) for c in vet["charges"]] == [
        ("VET_INSPECTION_FEE", "324.00", 1)
    ]
    assert beef_answer["result"]["total_charges"] == "324.00"
    (vet_verdict,) = [v for v in beef_answer["verdicts"] if v["agency"] == "vet"]
    assert vet_verdict["charges"] == vet["charges"]  # the read model holds the verdict too

    # cheese from a registered German dairy; pork from Germany: suspended (African swine
    # fever) and no registered meat establishment on the certificate
    assert pork_answer["status"] == "REJECTED"
    vet = decision_of(pork_answer, "vet")
    assert vet["decision"] == "REJECT"
    (vet_verdict,) = [v for v in pork_answer["verdicts"] if v["agency"] == "vet"]
    # the trader is told the generic reason of a new agency's codes, never its officers' text
    assert {(r["code"], r["item"]) for r in vet_verdict["reasons"]} == {("VET-OTHER", 2)}
    assert "Veterinary and Food Safety Authority" in vet_verdict["reasons"][0]["message"]
    # the read model keeps the agency's own reasons (auditors and officers read them)
    recorded = await read_model_document(ids[1])
    assert {(r["code"], r["item"]) for r in recorded["verdicts"]["vet"]["reasons"]} == {
        ("VET-ORIGIN-SUSPENDED", 2),
        ("VET-EST-UNREGISTERED", 2),
    }
    # cheese 1,200 KG: 120.00 + 2 x 8.50 = 137.00; pork 22,000 KG: 120.00 + 22 x 8.50 = 307.00
    assert [(c["amount"], c["item"]) for c in vet["charges"]] == [("137.00", 1), ("307.00", 2)]
    assert pork_answer["result"]["total_charges"] == "444.00"

    assert "vet" not in {d["agency"] for d in laptops_answer["result"]["decisions"]}

    # auditors recompute the new agency's verdicts from its registry entry, signatures too
    audited = subprocess.run(
        [sys.executable, "-m", "services.audit", "verify", "--from", since, "--format", "json"],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(EXAMPLE),
            "AGGREGATOR_DEADLINE_SECONDS": "600",
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert audited.returncode == 0, audited.stdout + audited.stderr
    report = json.loads(audited.stdout)
    assert report["findings"] == []
    assert report["summary"]["declarations"] == 3 and report["summary"]["results"] == 3
    # customs' random sample is the only thing an auditor without its keys leaves unchecked
    assert {n["kind"] for n in report["unchecked"]} <= {"sampling not checked"}
