"""The Grafana dashboard of the platform (``grafana/dashboards/singlewindow.json``), from its
metrics, the recorded series of :mod:`deploy.monitoring.rules` and the monitoring settings.

Rows: the flow (submitted, results by status, records consumed), SLA and latency (the share
final within the ``sla_seconds`` variable, one of the histogram's bucket bounds;
submit-to-final and per-agency verdict quantiles), Kafka consumers (lag per group and
partition, handling time), dead letters, the aggregator (commit latency, open join states,
pending deadlines, the TIMED_OUT share), HTTP (latency and requests by route and status),
health (readiness, scrape targets). Every query names its data source through the
``datasource`` variable, so the dashboard works with whatever the Prometheus data source is
called where it is imported.

Generated rather than hand-edited: panel ids and positions stay consistent, thresholds follow
the settings, and the tests can read every query from one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deploy.monitoring import rules as r
from deploy.monitoring.settings import SLA_BOUNDS, MonitoringSettings

UID = "singlewindow"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24  # Grafana's grid
HEIGHT = 8
RATE = "$__rate_interval"
# the SLA variable: its value is a bucket's le label value (10.0), its text the seconds (10)
SLA_LE = "$sla_seconds"
SLA_TEXT = "${sla_seconds:text}"


@dataclass(frozen=True)
class Panel:
    """One panel: its queries as (PromQL, legend) pairs."""

    title: str
    queries: tuple[tuple[str, str], ...]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    description: str = ""
    thresholds: tuple[tuple[str, float | None], ...] = ()  # (colour, from value), None: base
    mappings: tuple[dict[str, Any], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def _q(expr: str, legend: str = "") -> tuple[str, str]:
    return (expr, legend)


def rows(settings: MonitoringSettings) -> tuple[Row, ...]:
    sla, timed_out = settings.sla, settings.timed_out
    submitted = f'{r.PUBLISHED}{{topic="declarations.submitted"}}'
    sla_threshold = (("red", None), ("green", sla.target))
    ready = ({"type": "value", "options": {"0": {"text": "NOT READY", "color": "red"}}},)
    up = ({"type": "value", "options": {"0": {"text": "DOWN", "color": "red"}}},)
    return (
        Row(
            "Flow",
            (
                Panel(
                    "Declarations submitted and final, per second",
                    (
                        _q(f"sum(rate({submitted}[{RATE}]))", "submitted"),
                        _q(f"sum(rate({r.SUBMIT_TO_FINAL}_count[{RATE}]))", "final"),
                    ),
                    unit="reqps",
                    width=8,
                    description="Declarations (and versions) the intake published, and first "
                    "consolidated results the aggregator committed.",
                ),
                Panel(
                    "Results by status, per second",
                    (_q(f"sum by (status) (rate({r.STEPS}[{RATE}]))", "{{status}}"),),
                    unit="reqps",
                    width=8,
                    description="Every step the aggregator committed: answers, payment notices, "
                    "releases, TIMED_OUT escalations.",
                ),
                Panel(
                    "Records consumed by service and outcome, per second",
                    (
                        _q(
                            f"sum by (service, outcome) (rate({r.MESSAGES}[{RATE}]))",
                            "{{service}} {{outcome}}",
                        ),
                    ),
                    unit="reqps",
                    width=8,
                ),
            ),
        ),
        Row(
            "SLA and latency",
            (
                Panel(
                    f"Final within {SLA_TEXT} s (dashboard range)",
                    (_q(r.share_within(SLA_LE, "$__range")),),
                    unit="percentunit",
                    kind="stat",
                    width=6,
                    description=f"Share of declarations whose first consolidated result came "
                    f"within {SLA_TEXT} seconds of the submission; the target is "
                    f"{sla.target:.0%} (red below).",
                    thresholds=sla_threshold,
                ),
                Panel(
                    f"Share final within {SLA_TEXT} s, by outcome",
                    (
                        _q(r.share_within(SLA_LE, "5m", by="status"), "{{status}}"),
                        _q(r.share_within(SLA_LE, "5m"), "all"),
                        _q(
                            r.WITHIN_SLA,
                            f"alert rule: within {sla.final_within_seconds:g}s over {sla.window}",
                        ),
                    ),
                    unit="percentunit",
                    width=9,
                    thresholds=sla_threshold,
                    extra={"custom": {"thresholdsStyle": {"mode": "line"}}},
                ),
                Panel(
                    "Submit to final: p50, p90, p99",
                    (_q(r.FINAL_QUANTILES, "p{{quantile}}"),),
                    unit="s",
                    width=9,
                ),
                Panel(
                    "Verdict latency by agency, p90",
                    (
                        _q(
                            f'{r.VERDICT_QUANTILES}{{quantile="0.9", agency=~"$agency"}}',
                            "{{agency}}",
                        ),
                    ),
                    unit="s",
                    description="From the submission to the agency's verdict, as the aggregator "
                    "reads it.",
                ),
                Panel(
                    "Verdict latency by agency, p99",
                    (
                        _q(
                            f'{r.VERDICT_QUANTILES}{{quantile="0.99", agency=~"$agency"}}',
                            "{{agency}}",
                        ),
                    ),
                    unit="s",
                ),
            ),
        ),
        Row(
            "Kafka consumers",
            (
                Panel(
                    "Lag by group",
                    (_q(r.GROUP_LAG, "{{group}}"),),
                    width=8,
                    description="Records between each group's position and the high watermark, "
                    "summed over its partitions.",
                ),
                Panel(
                    "Lag by partition",
                    (_q(r.PARTITION_LAG, "{{group}} {{topic}}[{{partition}}]"),),
                    width=8,
                ),
                Panel(
                    "Handling time p99 by service and topic",
                    (
                        _q(
                            "histogram_quantile(0.99, sum by (service, topic, le) "
                            f"(rate({r.HANDLE}_bucket[{RATE}])))",
                            "{{service}} {{topic}}",
                        ),
                    ),
                    unit="s",
                    width=8,
                ),
            ),
        ),
        Row(
            "Dead letters",
            (
                Panel(
                    "Dead letters (dashboard range)",
                    (_q(f"sum(increase({r.DEAD_LETTERS}[$__range]))"),),
                    kind="stat",
                    width=6,
                    thresholds=(("green", None), ("red", 1)),
                ),
                Panel(
                    "Dead letters by source topic and error",
                    (
                        _q(
                            f"sum by (source_topic, error) (increase({r.DEAD_LETTERS}[{RATE}]))",
                            "{{source_topic}}: {{error}}",
                        ),
                    ),
                    width=9,
                ),
                Panel(
                    "Records dead-lettered or retried by service, per second",
                    (
                        _q(
                            f"sum by (service, outcome) "
                            f'(rate({r.MESSAGES}{{outcome=~"dead_lettered|retried"}}[{RATE}]))',
                            "{{service}} {{outcome}}",
                        ),
                    ),
                    unit="reqps",
                    width=9,
                ),
            ),
        ),
        Row(
            "Aggregator",
            (
                Panel(
                    "Transaction commit latency",
                    tuple(
                        _q(
                            f"histogram_quantile({q}, sum by (le) "
                            f"(rate({r.COMMIT}_bucket[{RATE}])))",
                            f"p{q}",
                        )
                        for q in ("0.5", "0.99")
                    ),
                    unit="s",
                    width=8,
                ),
                Panel(
                    "Open join states and pending deadlines",
                    (
                        _q(f"sum({r.JOIN_STATES})", "open join states"),
                        _q(f"sum({r.DEADLINES})", "pending deadlines"),
                    ),
                    width=8,
                ),
                Panel(
                    "TIMED_OUT share of results",
                    (_q(r.TIMED_OUT_SHARE, f"over {timed_out.window}"),),
                    unit="percentunit",
                    width=8,
                    thresholds=(("green", None), ("red", timed_out.share)),
                    extra={"custom": {"thresholdsStyle": {"mode": "line"}}},
                ),
            ),
        ),
        Row(
            "HTTP",
            (
                Panel(
                    "HTTP latency p99 by route",
                    (
                        _q(
                            "histogram_quantile(0.99, sum by (service, method, route, le) "
                            f"(rate({r.HTTP}_bucket[{RATE}])))",
                            "{{service}} {{method}} {{route}}",
                        ),
                    ),
                    unit="s",
                ),
                Panel(
                    "HTTP requests by route and status, per second",
                    (
                        _q(
                            f"sum by (service, route, status) (rate({r.HTTP}_count[{RATE}]))",
                            "{{service}} {{route}} {{status}}",
                        ),
                    ),
                    unit="reqps",
                ),
            ),
        ),
        Row(
            "Health",
            (
                Panel(
                    "Readiness (/readyz)",
                    (_q(f"min by (service) ({r.READY})", "{{service}}"),),
                    kind="stat",
                    thresholds=(("red", None), ("green", 1)),
                    mappings=ready,
                    extra={"colorMode": "background"},
                ),
                Panel(
                    "Scrape targets",
                    (_q(f'{r.UP}{{job=~"{settings.health.job_regex}"}}', "{{instance}}"),),
                    kind="stat",
                    thresholds=(("red", None), ("green", 1)),
                    mappings=up,
                    extra={"colorMode": "background"},
                ),
            ),
        ),
    )


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.thresholds:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": c, "value": v} for c, v in panel.thresholds],
        }
    if panel.mappings:
        defaults["mappings"] = list(panel.mappings)
    if "custom" in panel.extra:
        defaults["custom"] = panel.extra["custom"]
    if panel.kind == "stat":
        options: dict[str, Any] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": panel.extra.get("colorMode", "value"),
            "graphMode": "none",
            "textMode": "auto",
        }
    else:
        options = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": HEIGHT, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                "range": True,
            }
            for i, (expr, legend) in enumerate(panel.queries)
        ],
    }


def panels(settings: MonitoringSettings) -> list[dict[str, Any]]:
    """Rows and their panels, laid out left to right, wrapping at the grid's width."""
    out: list[dict[str, Any]] = []
    y = 0
    for row in rows(settings):
        out.append(
            {
                "id": len(out) + 1,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        x = 0
        for panel in row.panels:
            if x + panel.width > WIDTH:
                x, y = 0, y + HEIGHT
            out.append(_panel(panel, len(out) + 1, x, y))
            x += panel.width
        y += HEIGHT
    return out


def templating(settings: MonitoringSettings) -> list[dict[str, Any]]:
    default = settings.sla.final_within_seconds
    # the SLA's share is one bucket's: the choices are the histogram's bounds, each shown
    # as seconds (text) and given to the queries as its le label value (value)
    choices = [(f"{b:g}", r.le(b)) for b in SLA_BOUNDS]
    current = next((text, value) for text, value in choices if value == r.le(default))
    agencies = f"label_values({r.VERDICT}_count, agency)"
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
        },
        {
            "name": "sla_seconds",
            "label": "SLA: final within (s)",
            "type": "custom",
            "query": ",".join(f"{text} : {value}" for text, value in choices),
            "current": {"selected": True, "text": current[0], "value": current[1]},
            "options": [
                {"selected": (text, value) == current, "text": text, "value": value}
                for text, value in choices
            ],
            "hide": 0,
        },
        {
            "name": "agency",
            "label": "Agency",
            "type": "query",
            "datasource": DATASOURCE,
            "definition": agencies,
            "query": {"query": agencies, "refId": "agencies"},
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "refresh": 2,
            "sort": 1,
            "hide": 0,
        },
    ]


def dashboard(settings: MonitoringSettings) -> dict[str, Any]:
    return {
        "uid": UID,
        "title": "Single Window",
        "description": "Declarations flowing, per-agency latency and the SLA, Kafka lag, dead "
        "letters, the aggregator, HTTP, readiness (generated by deploy/monitoring/generate.py)",
        "tags": ["singlewindow"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": templating(settings)},
        "annotations": {"list": []},
        "links": [],
        "panels": panels(settings),
    }


def queries(board: dict[str, Any]) -> list[tuple[int, str]]:
    """Every (panel id, PromQL) of a dashboard, rows' nested panels included."""
    found = []
    for panel in board["panels"]:
        for p in [panel, *panel.get("panels", [])]:
            found += [(p["id"], t["expr"]) for t in p.get("targets", [])]
    return found
