"""The monitoring files (deploy/monitoring/): generated and current; the alert rules pass
``promtool check rules`` and their unit tests (tests/unit/monitoring/*_test.yaml) under
``promtool test rules``: each alert fires when it should and not when it should not; the
dashboard holds together, every query in it is PromQL that Prometheus parses, names only the
platform's metrics and recorded series, and shows data when the platform's metrics exist.

promtool is Prometheus' own (Debian's, Prometheus 2.42, fetched once into ~/.cache/singlewindow
by :mod:`deploy.monitoring.promtool`), so the rules are checked by the parser and the rule
engine that will run them, in the oldest Prometheus they are written for."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from deploy.monitoring import dashboard, generate, promtool, rules, yamlout
from deploy.monitoring.settings import SLA_BOUNDS, MonitoringSettings, load
from singlewindow.metrics import LATENCY_BUCKETS
from singlewindow.registry import AgencyRegistry, default_file, load_registry
from tests import factories
from tests.unit.manifest_yaml import load_all

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).with_name("monitoring")
RULE_TESTS = sorted(HERE.glob("*_test.yaml"))
# the thresholds the rule tests are written against, whatever an operator sets in
# deploy/monitoring/settings.toml
TEST_SETTINGS = HERE / "settings.toml"
OPERATIONS = ROOT / "docs" / "operations.md"


@pytest.fixture(scope="session")
def promtool_bin() -> Path:
    return promtool.install()


def registry() -> AgencyRegistry:
    return load_registry(default_file())


def run(binary: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def rules_in(tmp_path: Path, settings: MonitoringSettings) -> Path:
    """The rules rendered with ``settings``, beside copies of the rule tests."""
    for test in RULE_TESTS:
        shutil.copy(test, tmp_path / test.name)
    path = tmp_path / "rules.yaml"
    path.write_text(generate.render_rules(settings, registry()), encoding="utf-8")
    return path


# --- generated, current, checked ------------------------------------------------------


def test_the_committed_files_are_the_generators_output() -> None:
    for path, text in generate.outputs(load(), registry()).items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(ROOT)} is out of date: python -m deploy.monitoring.generate"
        )
    assert generate.main(["--check"]) == 0


def test_promtool_checks_the_committed_rules(promtool_bin: Path) -> None:
    done = run(promtool_bin, "check", "rules", str(generate.RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    count = sum(len(g["rules"]) for g in rules.rule_groups(load(), registry())["groups"])
    assert f"SUCCESS: {count} rules found" in done.stdout


def test_the_prometheus_rule_holds_the_same_groups(promtool_bin: Path, tmp_path: Path) -> None:
    """The PrometheusRule's spec is the rule file's content: promtool reads it as one."""
    text = generate.PROMETHEUS_RULE.read_text(encoding="utf-8")
    head, spec = text.split("\nspec:\n")
    assert "kind: PrometheusRule" in head
    groups = "".join(line[2:] + "\n" for line in spec.splitlines())
    assert groups == generate.RULES.read_text(encoding="utf-8").split("\n", 2)[2]
    (tmp_path / "spec.yaml").write_text(groups, encoding="utf-8")
    done = run(promtool_bin, "check", "rules", str(tmp_path / "spec.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr


# --- the alerts fire when they should, and only then ----------------------------------


def test_the_alerts_fire_when_they_should_and_only_then(promtool_bin: Path, tmp_path: Path) -> None:
    rules_in(tmp_path, load(TEST_SETTINGS))
    done = run(promtool_bin, "test", "rules", *(t.name for t in RULE_TESTS), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_TESTS), done.stdout


def test_the_rule_tests_catch_a_changed_threshold(promtool_bin: Path, tmp_path: Path) -> None:
    """The rule tests bite: agencies allowed 2,000 records of lag, the lagging-agency cases
    (1,170 and 1,500 behind) fail."""
    base = load(TEST_SETTINGS)
    lenient = base.model_copy(update={"lag": base.lag.model_copy(update={"agency_records": 2000})})
    rules_in(tmp_path, lenient)
    done = run(promtool_bin, "test", "rules", "lag_test.yaml", cwd=tmp_path)
    assert done.returncode != 0
    assert "SingleWindowAgencyLagging" in done.stdout + done.stderr


def test_every_alert_is_tested_documented_and_labelled() -> None:
    alerts = rules.alerting_rules(load(), registry())
    tested = "".join(t.read_text(encoding="utf-8") for t in RULE_TESTS)
    runbooks = OPERATIONS.read_text(encoding="utf-8")
    for alert in alerts:
        name = alert["alert"]
        assert f"alertname: {name}\n" in tested, f"{name}: no promtool test"
        assert f"\n### {name}\n" in runbooks, f"{name}: no runbook in docs/operations.md"
        assert alert["labels"]["severity"] in {"warning", "critical"}
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        assert alert["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"


def test_an_agency_that_joins_is_watched_for_lag(tmp_path: Path) -> None:
    path = tmp_path / "agencies.toml"
    path.write_text(default_file().read_text(encoding="utf-8") + factories.VET_ENTRY)
    (lagging, platform) = rules.alerting_rules(load(), load_registry(path))[:2]
    assert '{group=~"customs|ciq|port|vet"}' in lagging["expr"]
    assert '{group!~"customs|ciq|port|vet"}' in platform["expr"]


def test_a_dot_in_a_group_name_is_literal() -> None:
    assert rules.group_regex(["customs", "cn.ciq"]) == "customs|cn[.]ciq"


# --- the settings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value", "why"),
    [
        ("sla", "target", "1.5", "less than 1"),
        ("sla", "window", '"30 m"', "pattern"),
        ("sla", "final_within_seconds", "7", "7 is not a bucket bound of singlewindow_submit"),
        ("sla", "final_within_seconds", "15", r"\(singlewindow/metrics.py: 0.1, 0.25, .*, 86400\)"),
        ("lag", "stuck_window", '"0m"', "pattern"),
        ("timed_out", "share", "0", "greater than 0"),
        ("health", "job_regex", '"a\\"b"', "pattern"),
        ("lag", "agency_record", "1000", "Extra inputs"),
    ],
)
def test_a_wrong_setting_stops_the_generator(
    tmp_path: Path, section: str, key: str, value: str, why: str
) -> None:
    text = load_toml_with(section, key, value)
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=why):
        load(path)


def load_toml_with(section: str, key: str, value: str) -> str:
    """settings.toml with ``key = value`` in ``[section]`` (replaced, or added)."""
    text = (ROOT / "deploy" / "monitoring" / "settings.toml").read_text(encoding="utf-8")
    header = f"[{section}]\n"
    before, after = text.split(header)
    line = re.compile(rf"^{key} = .*$", re.M)
    if line.search(after):
        after = line.sub(lambda _: f"{key} = {value}", after, count=1)
    else:
        after = f"{key} = {value}\n" + after
    return before + header + after


def test_the_sla_seconds_reach_the_rules_and_the_dashboard(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(load_toml_with("sla", "final_within_seconds", "30"), encoding="utf-8")
    settings = load(path)
    text = generate.render_rules(settings, registry())
    assert 'singlewindow_submit_to_final_seconds_bucket{le="30.0"}[30m]' in text
    assert "within 30s" in text
    variable = next(v for v in dashboard.templating(settings) if v["name"] == "sla_seconds")
    assert variable["current"] == {"selected": True, "text": "30", "value": "30.0"}


def test_the_sla_reads_the_bucket_as_the_services_expose_it() -> None:
    """The client library writes the bound 10 as le="10.0" (Prometheus 3 stores every le in
    that form too): the SLA rule's matcher is that text."""
    registry = CollectorRegistry()
    histogram = Histogram("h_seconds", "h", ["status"], buckets=LATENCY_BUCKETS, registry=registry)
    histogram.labels(status="CLEARED").observe(3)
    exposed = set(re.findall(r'le="([^"]+)"', generate_latest(registry).decode()))
    assert exposed == {rules.le(b) for b in SLA_BOUNDS} | {"+Inf"}
    (within,) = (r for r in rules.recording_rules(load()) if r["record"] == rules.WITHIN_SLA)
    assert '_bucket{le="10.0"}' in within["expr"]


def test_the_sla_tests_catch_a_bucket_read_as_no_client_writes_it(
    promtool_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "le", lambda seconds: f"{seconds:g}")  # le="10"
    rules_in(tmp_path, load(TEST_SETTINGS))
    done = run(promtool_bin, "test", "rules", "flow_test.yaml", cwd=tmp_path)
    assert done.returncode != 0
    assert "SingleWindowSlaBreached" in done.stdout + done.stderr


# --- the YAML the generator writes -----------------------------------------------------


def test_the_yaml_writer_quotes_what_a_reader_would_misread() -> None:
    doc = {"a": "yes", "b": "10m", "c": "plain", "d": 1, "e": [{"f": "x: y"}], "g": {}}
    assert load_all(yamlout.document(doc)) == [doc]


def test_a_long_text_is_folded_and_reads_back_the_same() -> None:
    text = "word " * 40 + "end"
    out = yamlout.document({"k": text})
    assert out.startswith("k: >-\n  word")
    assert " ".join(line.strip() for line in out.splitlines()[1:]) == text


# --- the dashboard ---------------------------------------------------------------------


def board() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(generate.DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def every_panel(b: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for panel in b["panels"] for p in [panel, *panel.get("panels", [])]]


def test_the_dashboard_holds_together() -> None:
    b = board()
    panels = every_panel(b)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    variables = {v["name"]: v for v in b["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    sla = variables["sla_seconds"]
    assert sla["type"] == "custom"
    # only the histogram's bounds: shown as seconds, given to the queries as le label values
    assert [(o["text"], o["value"]) for o in sla["options"]] == [
        (f"{b:g}", rules.le(b)) for b in SLA_BOUNDS
    ]
    assert sla["query"].split(",") == [f"{o['text']} : {o['value']}" for o in sla["options"]]
    assert sla["current"]["value"] == rules.le(load().sla.final_within_seconds)
    ref = {"type": "prometheus", "uid": "${datasource}"}
    cells: set[tuple[int, int]] = set()
    for p in panels:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= dashboard.WIDTH, p["title"]
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine
        if p["type"] == "row":
            continue
        assert p["datasource"] == ref, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == ref
        used = {v for v in re.findall(r"\$\{?(\w+)", json.dumps(p)) if not v.startswith("__")}
        assert used <= set(variables) | {"labels", "value"}, f"{p['title']}: {used}"
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == [
        "Flow",
        "SLA and latency",
        "Kafka consumers",
        "Dead letters",
        "Aggregator",
        "HTTP",
        "Health",
    ]


KEYWORDS = {"by", "without", "and", "or", "unless", "offset", "bool", "on", "ignoring", "Inf"}


def series_names(expr: str) -> set[str]:
    """The metric and recorded-series names a PromQL expression reads."""
    text = re.sub(r'"[^"]*"', "", expr)  # label values
    text = re.sub(r"\$\w+", "1", text)  # Grafana's variables
    text = re.sub(r"\{[^}]*\}|\[[^]]*\]", " ", text)  # matchers, ranges
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", text)  # grouping labels
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if not rest.startswith("(") and match.group() not in KEYWORDS:
            names.add(match.group())
    return names


def known_series() -> set[str]:
    recorded = {r["record"] for r in rules.recording_rules(load())}
    suffixed = {f"{h}_{s}" for h in rules.HISTOGRAMS for s in ("bucket", "count", "sum")}
    return set(rules.METRICS) | suffixed | recorded | {rules.UP}


def test_the_dashboard_reads_only_the_platforms_metrics_and_recorded_series() -> None:
    known = known_series()
    used: set[str] = set()
    for panel_id, expr in dashboard.queries(board()):
        names = series_names(expr)
        assert names, f"panel {panel_id}: {expr} reads no series"
        assert names <= known, f"panel {panel_id}: {sorted(names - known)} in {expr}"
        used |= names
    # and it shows every metric, directly or through the recorded series it reads
    recorded = {r["record"]: series_names(r["expr"]) for r in rules.recording_rules(load())}
    while any(recorded.get(n, set()) - used for n in list(used)):
        used |= set().union(*(recorded.get(n, set()) for n in list(used)))
    shown = {re.sub(r"_(bucket|count|sum)$", "", n) for n in used}
    assert set(rules.METRICS) <= shown, f"on no panel: {sorted(set(rules.METRICS) - shown)}"


def test_the_metrics_named_in_code_are_the_documented_ones() -> None:
    documented = set(re.findall(r"^\| `(singlewindow_\w+)`", OPERATIONS.read_text(), re.M))
    assert documented == set(rules.METRICS)


GRAFANA_VARIABLES = {
    "$__rate_interval": "4m",
    "$__range": "30m",
    "${sla_seconds:text}": "10",
    "$sla_seconds": "10.0",
    "$agency": ".*",
}


def substituted(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def test_every_dashboard_query_is_promql(promtool_bin: Path, tmp_path: Path) -> None:
    """Each query (Grafana's variables as Grafana would set them) as a recording rule:
    ``promtool check rules`` parses every one."""
    queries = dashboard.queries(board())
    group = {
        "name": "dashboard",
        "rules": [
            {"record": f"panel_{pid}_{i}", "expr": substituted(expr)}
            for i, (pid, expr) in enumerate(queries)
        ],
    }
    path = tmp_path / "queries.yaml"
    path.write_text(yamlout.document({"groups": [group]}), encoding="utf-8")
    done = run(promtool_bin, "check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout


def platform_series() -> list[dict[str, str]]:
    """A minute-by-minute hour of every metric of the platform, labelled as the services
    label them (docs/operations.md), as promtool input series."""
    series: list[tuple[str, str]] = []

    def counter(name: str, labels: str, per_minute: int = 60) -> None:
        series.append((f"{name}{{{labels}}}", f"0+{per_minute}x60"))

    def histogram(name: str, labels: str, bounds: tuple[str, ...]) -> None:
        for i, le in enumerate((*bounds, "+Inf")):
            counter(f"{name}_bucket", f'{labels},le="{le}"', 10 * (i + 1))
        counter(f"{name}_count", labels, 10 * (len(bounds) + 1))
        counter(f"{name}_sum", labels, 30)

    def gauge(name: str, labels: str, value: int) -> None:
        series.append((f"{name}{{{labels}}}", f"{value}x60"))

    secs = ("0.01", "0.1", "1", "10")
    for outcome in ("processed", "dead_lettered", "retried"):
        counter(
            rules.MESSAGES, f'service="customs",topic="declarations.submitted",outcome="{outcome}"'
        )
    histogram(rules.HANDLE, 'service="customs",topic="declarations.submitted"', secs)
    counter(rules.PUBLISHED, 'service="intake",topic="declarations.submitted"')
    for status in ("CLEARED", "TIMED_OUT"):
        counter(rules.STEPS, f'status="{status}"')
        histogram(rules.SUBMIT_TO_FINAL, f'status="{status}"', tuple(map(rules.le, SLA_BOUNDS)))
    histogram(
        rules.HTTP,
        'service="intake",method="POST",route="/v1/declarations",status="202"',
        secs,
    )
    for group, partition, lag in (("customs", "0", 3), ("aggregator", "1", 0)):
        gauge(
            rules.LAG, f'service="{group}",group="{group}",topic="t",partition="{partition}"', lag
        )
    for agency in ("customs", "ciq"):
        histogram(rules.VERDICT, f'agency="{agency}"', ("0.5", "1", "5"))
    counter(
        rules.DEAD_LETTERS,
        'service="customs",source_topic="declarations.submitted",error="SchemaError"',
        1,
    )
    histogram(rules.COMMIT, 'service="aggregator"', secs)
    gauge(rules.JOIN_STATES, 'service="aggregator"', 12)
    gauge(rules.DEADLINES, 'service="aggregator"', 4)
    for service in ("intake", "aggregator"):
        gauge(rules.READY, f'service="{service}"', 1)
    gauge(rules.UP, 'job="singlewindow",instance="127.0.0.1:9104"', 1)
    return [{"series": s, "values": v} for s, v in series]


def test_every_dashboard_query_shows_the_platforms_metrics(
    promtool_bin: Path, tmp_path: Path
) -> None:
    """With every metric of the platform present (and the recording rules running), every
    query of the dashboard returns at least one series: no panel reads a misspelt name, a
    label the services do not set, or a recorded series no rule writes."""
    path = rules_in(tmp_path, load())
    cases = [
        {
            "expr": f"count({substituted(expr)}) > bool 0",
            "eval_time": "40m",
            "exp_samples": [{"labels": "{}", "value": 1}],
        }
        for _, expr in dashboard.queries(board())
    ]
    test = {
        "rule_files": [path.name],
        "evaluation_interval": "1m",
        "group_eval_order": ["singlewindow.recording", "singlewindow.alerts"],
        "tests": [{"interval": "1m", "input_series": platform_series(), "promql_expr_test": cases}],
    }
    (tmp_path / "dashboard_test.yaml").write_text(yamlout.document(test), encoding="utf-8")
    done = run(promtool_bin, "test", "rules", "dashboard_test.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


# --- wiring: provisioning and kustomize -----------------------------------------------


def test_grafana_provisioning_finds_the_datasource_and_the_dashboard() -> None:
    grafana = ROOT / "deploy" / "monitoring" / "grafana" / "provisioning"
    (sources,) = load_all((grafana / "datasources" / "prometheus.yaml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus"
    (providers,) = load_all((grafana / "dashboards" / "singlewindow.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "$SINGLEWINDOW_DASHBOARDS"


def test_the_kustomization_ships_the_rule_and_the_dashboard() -> None:
    here = ROOT / "deploy" / "monitoring"
    (kustomization,) = load_all((here / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (here / resource).is_file(), resource
    assert "k8s/prometheusrule.yaml" in kustomization["resources"]
    (generator,) = kustomization["configMapGenerator"]
    assert generator["options"]["labels"] == {"grafana_dashboard": "1"}
    (entry,) = generator["files"]
    name, _, source = entry.partition("=")
    assert name == "singlewindow.json"
    assert (here / source).resolve() == generate.DASHBOARD
