"""Every overlay of deploy/k8s renders with kustomize (built from its Go module on first use,
deploy/k8s/kustomize.py) and every resource it renders validates: the core kinds with
kubernetes-validate in strict mode, Strimzi's, KEDA's and the Prometheus Operator's against
their CRDs' schemas (tests/data/). Each ships the alert rules and the dashboard of
deploy/monitoring. And what a cluster would need to run it well holds: every
pod meets the restricted Pod Security Standard, waits for its topics before it starts, has
probes and requests and a PodDisruptionBudget; no ConfigMap carries a credential; every topic
of the catalog is a KafkaTopic; the brokers create no topic themselves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy.k8s import kustomize, manifests
from deploy.monitoring import generate
from singlewindow.security import principals
from singlewindow.topics import catalog
from tests.unit import crd_schema

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ROOT / "deploy" / "k8s" / "overlays"
KUBERNETES = "1.35.0"  # the release whose schemas kubernetes-validate checks against
CRDS = {
    ("kafka.strimzi.io/v1", "Kafka"): "strimzi-kafka-v1",
    ("kafka.strimzi.io/v1", "KafkaNodePool"): "strimzi-kafkanodepool-v1",
    ("kafka.strimzi.io/v1", "KafkaTopic"): "strimzi-kafkatopic-v1",
    ("kafka.strimzi.io/v1", "KafkaUser"): "strimzi-kafkauser-v1",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject-v1alpha1",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-triggerauthentication-v1alpha1",
    ("monitoring.coreos.com/v1", "PodMonitor"): "prometheus-podmonitor-v1",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheus-prometheusrule-v1",
}
WORKLOADS = ("Deployment", "StatefulSet")
CREDENTIAL = re.compile(r"(password|secret|token|://[^/\s]*:[^@/\s]*@)", re.IGNORECASE)


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Each overlay's resources, as ``kustomize build`` renders them."""
    return {
        overlay.name: [d for d in yaml.safe_load_all(kustomize.build(overlay)) if d]
        for overlay in sorted(OVERLAYS.iterdir())
    }


def of_kind(resources: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] in kinds]


def by_name(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in of_kind(resources, kind)}


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def test_there_are_the_two_overlays(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert set(rendered) == {"dev", "prod"}


def test_every_resource_validates(rendered: dict[str, list[dict[str, Any]]]) -> None:
    checked = 0
    for overlay, resources in rendered.items():
        for resource in resources:
            what = f"{overlay}: {resource['kind']} {resource['metadata']['name']}"
            crd = CRDS.get((resource["apiVersion"], resource["kind"]))
            if crd is not None:
                assert crd_schema.errors(resource, crd) == [], what
            else:
                group = resource["apiVersion"].rpartition("/")[0]
                assert "." not in group or group.endswith(".k8s.io"), f"{what}: no CRD kept"
                kubernetes_validate.validate(resource, KUBERNETES, strict=True)
            checked += 1
    assert checked > 100


def test_the_crd_validation_finds_what_the_crd_forbids() -> None:
    topic = manifests.kafka_topic(catalog()[0])
    assert crd_schema.errors(topic, "strimzi-kafkatopic-v1") == []
    topic["spec"]["partition"] = 6  # a typo the server would prune silently
    topic["spec"]["replicas"] = 0
    assert len(crd_schema.errors(topic, "strimzi-kafkatopic-v1")) == 2


def test_kubernetes_validate_in_strict_mode_finds_an_unknown_field(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    deployment = of_kind(rendered["prod"], "Deployment")[0]
    pod(deployment)["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_every_pod_meets_the_restricted_pod_security_standard(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay, resources in rendered.items():
        (namespace,) = of_kind(resources, "Namespace")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        for workload in of_kind(resources, *WORKLOADS):
            what = f"{overlay}: {workload['metadata']['name']}"
            spec = pod(workload)
            assert spec["securityContext"]["runAsNonRoot"] is True, what
            assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, what
            assert not spec.get("hostNetwork") and not spec.get("hostPID"), what
            for container in spec.get("initContainers", []) + spec["containers"]:
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, what
                assert context["capabilities"] == {"drop": ["ALL"]}, what
                assert context["readOnlyRootFilesystem"] is True, what
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            assert all("hostPath" not in v for v in volumes.values()), what


def test_every_deployment_waits_for_its_topics_has_probes_requests_and_a_budget(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay, resources in rendered.items():
        budgets = of_kind(resources, "PodDisruptionBudget")
        deployments = of_kind(resources, "Deployment")
        assert len(deployments) >= 9
        for deployment in deployments:
            what = f"{overlay}: {deployment['metadata']['name']}"
            spec = pod(deployment)
            (init,) = spec["initContainers"]
            assert init["command"] == [
                "python", "-m", "singlewindow.kafka.admin", "wait-for-topics"
            ], what  # fmt: skip
            (container,) = spec["containers"]
            env = {e["name"]: e for e in container["env"]}
            # the init container waits as the service's own principal (it sees its topics)
            assert init["env"] == [env["KAFKA_SASL_USERNAME"], env["KAFKA_SASL_PASSWORD"]], what
            assert "metrics" in {p["name"] for p in container["ports"]}, what
            port = "http" if deployment["metadata"]["name"] == "intake" else "metrics"
            assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": port}
            assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), what
            assert "memory" in container["resources"]["limits"], what
            assert spec["topologySpreadConstraints"], what
            labels = spec_labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert {
                "app.kubernetes.io/name",
                "app.kubernetes.io/part-of",
                "app.kubernetes.io/component",
            } <= set(spec_labels), what
            matching = [
                b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
            ]
            assert len(matching) == 1, what


def test_no_configmap_carries_a_credential(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for overlay, resources in rendered.items():
        for config in of_kind(resources, "ConfigMap"):
            for key, value in config.get("data", {}).items():
                assert not CREDENTIAL.search(f"{key}={value}"), (overlay, key, value)
        for workload in of_kind(resources, *WORKLOADS):
            for container in pod(workload)["containers"]:
                for env in container.get("env", []):
                    if (
                        env["name"] in ("MONGODB_URL", "KAFKA_SASL_PASSWORD")
                        or "PASSWORD" in (env["name"])
                    ):
                        assert "secretKeyRef" in env["valueFrom"], (overlay, env)


def test_every_topic_of_the_catalog_is_a_kafka_topic_as_the_catalog_says(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay, resources in rendered.items():
        topics = by_name(resources, "KafkaTopic")
        assert set(topics) == {t.name for t in catalog()}, overlay
        for topic in catalog():
            spec = topics[topic.name]["spec"]
            assert spec["topicName"] == topic.name
            assert spec["partitions"] == manifests.PARTITIONS
            assert {k: str(v) for k, v in spec["config"].items()} == topic.configs(), topic.name
            assert topics[topic.name]["metadata"]["labels"]["strimzi.io/cluster"] == "kafka"


def test_every_principal_is_a_kafka_user(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for resources in rendered.values():
        assert set(by_name(resources, "KafkaUser")) == {p.name for p in principals()}


def test_the_brokers_create_no_topic_and_replicate_as_the_overlay_says(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    expected = {"prod": (3, 2, 3), "dev": (1, 1, 1)}  # replication, min ISR, brokers
    for overlay, resources in rendered.items():
        (kafka,) = of_kind(resources, "Kafka")
        config = kafka["spec"]["kafka"]["config"]
        assert config["auto.create.topics.enable"] is False
        replication, min_isr, brokers = expected[overlay]
        assert config["default.replication.factor"] == replication, overlay
        assert config["min.insync.replicas"] == min_isr, overlay
        assert config["transaction.state.log.min.isr"] == min_isr, overlay
        pools = by_name(resources, "KafkaNodePool")
        assert pools["brokers"]["spec"]["replicas"] == brokers, overlay
        assert pools["brokers"]["spec"]["roles"] == ["broker"]
        assert pools["controllers"]["spec"]["roles"] == ["controller"]
        (listener,) = kafka["spec"]["kafka"]["listeners"]
        assert listener["tls"] is True
        assert listener["authentication"] == {"type": "scram-sha-512"}
        assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
        supers = kafka["spec"]["kafka"]["authorization"]["superUsers"]
        assert supers == [p.name for p in principals() if p.super_user]


def test_each_consumer_group_scales_on_its_lag_up_to_the_partition_count(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay, resources in rendered.items():
        deployments = by_name(resources, "Deployment")
        scaled = by_name(resources, "ScaledObject")
        groups = {
            p.group: p.name for p in principals() if p.group and p.name in deployments
        }  # the consumers that run as Deployments (redrive is a command, not a service)
        assert {s["spec"]["triggers"][0]["metadata"]["consumerGroup"] for s in scaled.values()} == (
            set(groups)
        ), overlay
        for name, scaler in scaled.items():
            assert scaler["spec"]["scaleTargetRef"]["name"] in deployments
            assert scaler["spec"]["maxReplicaCount"] == manifests.PARTITIONS
            assert 1 <= scaler["spec"]["minReplicaCount"] <= scaler["spec"]["maxReplicaCount"]
            (trigger,) = scaler["spec"]["triggers"]
            assert trigger["type"] == "kafka"
            assert trigger["metadata"]["sasl"] == "scram_sha512"
            assert trigger["metadata"]["tls"] == "enable"
            auth = by_name(resources, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
            refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
            assert refs["password"]["name"] == "autoscaler", name


def test_the_network_is_denied_but_for_what_each_service_needs(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for resources in rendered.values():
        policies = by_name(resources, "NetworkPolicy")
        deny = policies["default-deny"]["spec"]
        assert deny["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "singlewindow"}}
        assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
        for name, deployment in by_name(resources, "Deployment").items():
            policy = policies[name]["spec"]
            assert policy["podSelector"] == deployment["spec"]["selector"]
            env = {e["name"] for e in pod(deployment)["containers"][0]["env"]}
            to_database = any(
                rule["ports"] == [{"protocol": "TCP", "port": 27017}] for rule in policy["egress"]
            )
            assert to_database == ("MONGODB_URL" in env), name
        readers = policies["readmodel"]["spec"]["ingress"][0]["from"]
        assert {r["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for r in readers} == {
            "intake",
            "projector",
            "bank",
            "gate",
            "webhooks",
        }


def test_prometheus_scrapes_the_platforms_pods(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for resources in rendered.values():
        (monitor,) = of_kind(resources, "PodMonitor")
        assert monitor["spec"]["selector"]["matchLabels"] == {
            "app.kubernetes.io/part-of": "singlewindow"
        }
        assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} == {"metrics"}


def test_the_alert_rules_and_the_dashboard_ship_with_the_platform(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    (rules_file,) = yaml.safe_load_all(generate.RULES.read_text(encoding="utf-8"))
    dashboard = generate.DASHBOARD.read_text(encoding="utf-8")
    for overlay, resources in rendered.items():
        (rule,) = of_kind(resources, "PrometheusRule")
        assert rule["spec"] == rules_file, overlay
        (config,) = [c for c in of_kind(resources, "ConfigMap") if "singlewindow.json" in c["data"]]
        assert config["metadata"]["labels"]["grafana_dashboard"] == "1", overlay
        assert config["data"]["singlewindow.json"] == dashboard, overlay


def test_the_crd_validation_finds_a_misspelt_rule_field() -> None:
    (rule,) = yaml.safe_load_all(generate.PROMETHEUS_RULE.read_text(encoding="utf-8"))
    assert crd_schema.errors(rule, "prometheus-prometheusrule-v1") == []
    rule["spec"]["groups"][1]["rules"][0]["annotation"] = {}  # for annotations
    assert len(crd_schema.errors(rule, "prometheus-prometheusrule-v1")) == 1
