"""The generated files of the Kubernetes base (deploy/k8s/base/, by deploy/k8s/manifests.py
from the catalog, the agency registry and the principals): they are current, they parse, each
agency has its Deployment from the one table, and an agency that joins gets its resources
without anything else changing. (The overlays render and validate: test_k8s_overlays.py.)"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from deploy.k8s import manifests
from services.aggregator.config import AggregatorSettings
from services.bank.config import BankSettings
from services.customs.sampling import KEYS_FILE_ENV
from services.gate.config import GateSettings
from services.inspection.config import InspectionSettings
from services.intake.config import IntakeSettings
from services.projector.config import ProjectorSettings
from services.webhooks.config import WebhooksSettings
from singlewindow.registry import AgencyRegistry, default_file, load_registry
from singlewindow.settings import service_settings
from tests import factories
from tests.unit.manifest_yaml import YamlError, load_all

ROOT = Path(__file__).resolve().parents[2]
VET = factories.VET_ENTRY


def registry() -> AgencyRegistry:
    return load_registry(default_file())


def with_entries(tmp_path: Path, entries: str) -> AgencyRegistry:
    """The platform's registry with ``entries`` (TOML) after its own, as a file."""
    path = tmp_path / "agencies.toml"
    path.write_text(default_file().read_text(encoding="utf-8") + entries, encoding="utf-8")
    return load_registry(path)


def generated(registry: AgencyRegistry) -> dict[str, list[dict[str, Any]]]:
    """Each generated file's documents, by file name."""
    return {path.name: load_all(text) for path, text in manifests.render(registry).items()}


def deployments(registry: AgencyRegistry) -> dict[str, dict[str, Any]]:
    found = {}
    for doc in generated(registry)["services.yaml"]:
        if doc["kind"] == "Deployment":
            assert doc["metadata"]["name"] not in found
            found[doc["metadata"]["name"]] = doc
    return found


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def env(deployment: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment)["env"]}


def secret_volumes(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    return {v["name"]: v["secret"] for v in volumes if "secret" in v}


def test_the_committed_files_are_the_generators_output() -> None:
    for path, text in manifests.render(registry()).items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is out of date: python -m deploy.k8s.manifests"
        )
    assert manifests.main(["--check"]) == 0


def test_a_stale_file_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = manifests.render(registry())
    copies = {tmp_path / path.name: text for path, text in files.items()}
    for path, text in copies.items():
        path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(manifests, "render", lambda registry=None: copies)
    assert manifests.main(["--check"]) == 0
    stale = tmp_path / "kafka-topics.yaml"
    stale.write_text(copies[stale].replace("partitions: 6", "partitions: 1"), encoding="utf-8")
    assert manifests.main(["--check"]) == 1


def test_the_same_registry_gives_the_same_bytes(tmp_path: Path) -> None:
    copy = tmp_path / "agencies.toml"
    copy.write_bytes(default_file().read_bytes())
    assert manifests.render(load_registry(copy)) == manifests.render(registry())


def test_the_services_file_parses_and_every_deployment_holds_together() -> None:
    docs = generated(registry())["services.yaml"]
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    names = [
        "intake",
        *registry().codes,
        "aggregator",
        "projector",
        "bank",
        "inspection",
        "gate",
        "webhooks",
    ]
    assert kinds[0] == ("ConfigMap", "singlewindow")
    assert [n for k, n in kinds if k == "Deployment"] == names
    assert [n for k, n in kinds if k == "PodDisruptionBudget"] == names
    assert [n for k, n in kinds if k == "Service"] == ["intake", "bank", "inspection", "gate"]
    images = set()
    for name, deployment in deployments(registry()).items():
        spec = deployment["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        assert labels["app.kubernetes.io/name"] == name
        pod = spec["template"]["spec"]
        volumes = [v["name"] for v in pod["volumes"]]
        assert len(set(volumes)) == len(volumes), name
        mounts = [m["name"] for m in container(deployment)["volumeMounts"]]
        assert sorted(mounts) == sorted(volumes), name
        paths = [m["mountPath"] for m in container(deployment)["volumeMounts"]]
        assert len(set(paths)) == len(paths), name
        names_ = [e["name"] for e in container(deployment)["env"]]
        assert len(set(names_)) == len(names_), name
        images.add(container(deployment)["image"])
        images.update(c["image"] for c in pod["initContainers"])
    assert len(images) == 1


def test_each_agency_runs_its_module_as_its_principal_with_its_key_and_port() -> None:
    found = deployments(registry())
    for agency in registry():
        deployment = found[agency.code]
        assert container(deployment)["name"] == agency.code
        assert container(deployment)["command"] == ["python", "-m", agency.module]
        assert container(deployment)["ports"] == [
            {"name": "metrics", "containerPort": agency.metrics_port}
        ]
        variables = env(deployment)
        assert variables["KAFKA_SASL_USERNAME"] == agency.principal
        assert variables["KAFKA_SASL_PASSWORD"] == {
            "secretKeyRef": {"name": agency.principal, "key": "password"}
        }
        assert variables["SIGNING_KEY_ID"] == {
            "secretKeyRef": {"name": f"{agency.code}-signing-key", "key": "key-id"}
        }
        assert secret_volumes(deployment)["signing-key"]["secretName"] == (
            f"{agency.code}-signing-key"
        )


def test_customs_mounts_its_sampling_keys_where_its_variable_points() -> None:
    customs = registry().get("customs")
    assert [f.env for f in customs.secret_files] == [KEYS_FILE_ENV]
    found = deployments(registry())
    path = "/etc/singlewindow/secrets/customs-sampling-keys"
    assert env(found["customs"])[KEYS_FILE_ENV] == f"{path}/keys"
    assert {"name": "customs-sampling-keys", "mountPath": path, "readOnly": True} in container(
        found["customs"]
    )["volumeMounts"]
    assert secret_volumes(found["customs"])["customs-sampling-keys"] == {
        "secretName": "customs-sampling-keys",
        "items": [{"key": "keys", "path": "keys"}],
    }
    for code in registry().codes:  # the others have none
        if code != "customs":
            assert set(secret_volumes(found[code])) == {"kafka-ca", "signing-key"}


def test_an_agency_that_joins_gets_its_resources_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    before = generated(registry())
    after = generated(with_entries(tmp_path, VET))
    added: dict[str, list[tuple[str, str]]] = {}
    for name, docs in after.items():
        old = [json.dumps(d, sort_keys=True) for d in before[name]]
        new = [d for d in docs if json.dumps(d, sort_keys=True) not in old]
        added[name] = [(d["kind"], d["metadata"]["name"]) for d in new]
    assert added["services.yaml"] == [("Deployment", "vet"), ("PodDisruptionBudget", "vet")]
    assert added["kafka-topics.yaml"] == [("KafkaTopic", "verdicts.vet")]
    assert added["autoscaling.yaml"] == [("ScaledObject", "vet")]
    assert ("NetworkPolicy", "vet") in added["network-policies.yaml"]
    assert ("KafkaUser", "vet") in added["kafka-users.yaml"]
    vet = deployments(with_entries(tmp_path, VET))["vet"]
    assert container(vet)["command"] == ["python", "-m", "vet_agency"]
    assert env(vet)["KAFKA_SASL_USERNAME"] == "vet"
    # the same Deployment as an agency of the platform's, its names put in
    ciq = json.dumps(deployments(registry())["ciq"])
    ciq = ciq.replace('"services.ciq"', '"vet_agency"').replace("9102", "9106")
    assert json.loads(ciq.replace("ciq", "vet")) == vet


def test_an_agencys_principal_and_secret_files_are_its_own(tmp_path: Path) -> None:
    entries = (
        VET.replace('code = "vet"', 'code = "vet_food"')
        + 'principal = "vet-food.agency"\n'
        + "secret_files = [\n"
        + '  { env = "VET_LAB_KEYS_FILE", secret = "vet-lab", key = "keys" },\n'
        + '  { env = "VET_LAB_CA_FILE", secret = "vet-lab", key = "ca.pem" },\n'
        + '  { env = "VET_TOKEN_FILE", secret = "vet-token", key = "token" },\n'
        + "]\n"
    )
    vet = deployments(with_entries(tmp_path, entries))["vet-food"]  # "_" is no letter of a name
    assert container(vet)["name"] == "vet-food"
    variables = env(vet)
    assert variables["KAFKA_SASL_USERNAME"] == "vet-food.agency"
    assert variables["KAFKA_SASL_PASSWORD"]["secretKeyRef"]["name"] == "vet-food.agency"
    assert variables["SIGNING_KEY_ID"]["secretKeyRef"]["name"] == "vet-food-signing-key"
    assert variables["VET_LAB_KEYS_FILE"] == "/etc/singlewindow/secrets/vet-lab/keys"
    assert variables["VET_LAB_CA_FILE"] == "/etc/singlewindow/secrets/vet-lab/ca.pem"
    assert variables["VET_TOKEN_FILE"] == "/etc/singlewindow/secrets/vet-token/token"
    volumes = secret_volumes(vet)
    assert volumes["vet-lab"] == {
        "secretName": "vet-lab",
        "items": [{"key": "keys", "path": "keys"}, {"key": "ca.pem", "path": "ca.pem"}],
    }
    assert volumes["vet-token"]["items"] == [{"key": "token", "path": "token"}]
    mounts = {m["name"]: m["mountPath"] for m in container(vet)["volumeMounts"]}
    assert mounts["vet-lab"] == "/etc/singlewindow/secrets/vet-lab"


def test_a_code_yaml_would_misread_is_quoted(tmp_path: Path) -> None:
    entry = VET.replace('code = "vet"', 'code = "no"') + 'principal = "on"\n'
    vet = deployments(with_entries(tmp_path, entry))["no"]
    assert vet["metadata"]["name"] == "no"
    assert env(vet)["KAFKA_SASL_USERNAME"] == "on"
    assert secret_volumes(vet)["signing-key"]["secretName"] == "no-signing-key"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ('principal = "vet.user."\n', "cannot name a Secret"),
        ('code = "vet_"\n', "not a Kubernetes name"),
        (
            'secret_files = [{ env = "SIGNING_KEY_FILE", secret = "vet-x", key = "k" }]\n',
            "sets SIGNING_KEY_FILE itself",
        ),
        (
            'secret_files = [{ env = "VET_X", secret = "signing-key", key = "k" }]\n',
            "name of a volume",
        ),
    ],
)
def test_what_the_manifest_cannot_express_is_refused(
    tmp_path: Path, extra: str, error: str
) -> None:
    entry = VET.replace('code = "vet"\n', "") + extra
    if "code =" not in extra:
        entry += 'code = "vet"\n'
    with pytest.raises(ValueError, match=error):
        manifests.render(with_entries(tmp_path, entry))


@pytest.mark.parametrize(
    ("secret_files", "error"),
    [
        ('[{ env = "X", secret = "Vet_Keys", key = "k" }]', "secret"),
        ('[{ env = "X-Y", secret = "vet-keys", key = "k" }]', "env"),
        ('[{ env = "X", secret = "vet-keys", key = "../k" }]', "key"),
        ('[{ env = "X", secret = "vet-keys", key = "k", mode = "0400" }]', "mode"),
        (
            '[{ env = "X", secret = "a", key = "k" }, { env = "X", secret = "b", key = "k" }]',
            "same env",
        ),
    ],
)
def test_the_registry_checks_secret_files(tmp_path: Path, secret_files: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        with_entries(tmp_path, f"{VET}secret_files = {secret_files}\n")


# -- the YAML reader the tests parse with ------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a: [1, 2\n",
        "a: on\n",
        "a: 1\na: 2\n",
        "a:\n  b: 1\n c: 2\n",
        "a: b: c\n",
        "a: {b: 1, b: 2}\n",
        "a: [x y] z\n",
        "- a\nb: 1\n",
        "a: 1 # comment\n",
        'a: "x\n',
        "a: |\n  x\n",
    ],
)
def test_the_yaml_reader_refuses_what_it_cannot_read_for_sure(text: str) -> None:
    with pytest.raises(YamlError):
        load_all(text)


@pytest.mark.parametrize("path", sorted(manifests.render()), ids=lambda p: p.name)
def test_pyyaml_reads_the_generated_files_as_the_yaml_reader_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert [d for d in yaml.safe_load_all(text) if d is not None] == load_all(text)


# --- every probe and every scrape asks a port the process serves that path on ----------------

OPS = {"/metrics", "/livez", "/readyz"}
PREFIXES = {"INTAKE", "BANK", "INSPECTION", "GATE", "AGGREGATOR", "PROJECTOR", "WEBHOOKS"}
SETTINGS: dict[str, type[BaseSettings]] = {
    "services.intake": IntakeSettings,
    "services.bank": BankSettings,
    "services.inspection": InspectionSettings,
    "services.gate": GateSettings,
    "services.aggregator": AggregatorSettings,
    "services.projector": ProjectorSettings,
    "services.webhooks": WebhooksSettings,
}


def served(
    module: str, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> dict[int, set[str]]:
    """What the process of ``module`` serves, by port, read from its settings as the
    environment ``environ`` (the manifest's) sets them: the ops server on its metrics port
    (runtime.main), an HTTP service's API port its /livez and /readyz, and /metrics there
    only when the intake is told to show it (INTAKE_PUBLIC_METRICS)."""
    for name in list(os.environ):
        if name.split("_", 1)[0] in PREFIXES:
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    agencies = {a.module: a for a in registry()}
    if module in agencies:
        entry = agencies[module]
        settings: Any = service_settings(entry.code, entry.metrics_port)
    else:
        settings = SETTINGS[module]()
    out: dict[int, set[str]] = {}
    if settings.metrics_port:
        out[settings.metrics_port] = set(OPS)
    if hasattr(settings, "port"):
        api = {
            "/livez",
            "/readyz",
            *(["/metrics"] if getattr(settings, "public_metrics", 0) else []),
        }
        out.setdefault(settings.port, set()).update(api)
    return out


def scraped(name: str, ports: dict[str, int]) -> list[tuple[str, str]]:
    """(port name, path) Prometheus scrapes on a pod named ``name`` (base/monitoring.yaml)."""
    (monitor,) = load_all((manifests.BASE / "monitoring.yaml").read_text(encoding="utf-8"))
    out = []
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        keep = [r for r in endpoint.get("relabelings", []) if r["action"] == "keep"]
        if any(not re.fullmatch(r["regex"], name) for r in keep):
            continue
        if endpoint["port"] in ports:  # no such port on the pod: no target
            out.append((endpoint["port"], endpoint["path"]))
    return out


def test_every_probe_and_scrape_asks_a_port_the_process_serves_that_path_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = generated(registry())["services.yaml"]
    config = docs[0]["data"]
    for name, deployment in deployments(registry()).items():
        box = container(deployment)
        environ = {**config, **{e["name"]: e["value"] for e in box["env"] if "value" in e}}
        serves = served(box["command"][-1], monkeypatch, environ)
        ports = {p["name"]: p["containerPort"] for p in box["ports"]}
        asked = [
            (box[probe]["httpGet"]["port"], box[probe]["httpGet"]["path"])
            for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        ]
        for port, path in [*asked, *scraped(name, ports)]:
            assert path in serves.get(ports[port], set()), (
                f"{name}: {path} on its port {port} ({ports[port]}), which serves "
                f"{sorted(serves.get(ports[port], set()))}"
            )
        assert any(path == "/metrics" for _, path in scraped(name, ports)), (
            f"{name}: Prometheus scrapes no /metrics of it"
        )


def test_the_webhooks_delivery_may_call_public_https_hosts_only() -> None:
    """It posts to URLs traders name: beside Kafka and the database, HTTPS to addresses
    outside every private, shared, loopback and link-local range (pods, nodes, the cloud's
    metadata service), whatever a URL resolves to (SSRF, below the application's check)."""
    policies = {p["metadata"]["name"]: p for p in manifests.network_policies(registry())}
    egress = policies["webhooks"]["spec"]["egress"]
    assert all("to" in rule for rule in egress)  # no rule lets it anywhere
    (outside,) = [r for r in egress if r["ports"] == [{"protocol": "TCP", "port": 443}]]
    blocks = {b["ipBlock"]["cidr"]: set(b["ipBlock"]["except"]) for b in outside["to"]}
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= blocks[
        "0.0.0.0/0"
    ]
    assert {"fc00::/7", "fe80::/10", "::1/128"} <= blocks["::/0"]
    # the HTTP services reach their token issuer's keys; no one else calls out
    for name, policy in policies.items():
        if name not in ("webhooks", "intake", "bank", "inspection", "gate"):
            for rule in policy["spec"].get("egress", []):
                assert rule.get("ports") != [{"protocol": "TCP", "port": 443}], name
