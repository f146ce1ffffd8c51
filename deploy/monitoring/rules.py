"""The Prometheus rules of the platform, from its metrics (docs/operations.md lists them), its
monitoring settings (:mod:`deploy.monitoring.settings`) and the agency registry.

Recording rules compute once what the alerts and the dashboard both read: the SLA (the share
of declarations whose first consolidated result came within N seconds of the submission),
per-agency verdict latency quantiles, each group's lag, the TIMED_OUT share. Alerts: a
lagging agency, a lagging platform consumer (aggregator, projector), a stuck partition, dead
letters, too many TIMED_OUT results, the SLA breached, a process not ready, a target down.
Each alert carries ``severity``, ``summary``, ``description`` and a ``runbook_url`` pointing
at its paragraph in docs/operations.md (``#<alert name in lower case>``).

The agencies' groups come from the registry, so an agency that joins is covered by the
lagging-agency alert once the rules are regenerated (``make monitoring``), as its Deployment
is once the manifests are.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.utils import floatToGoString

from deploy.monitoring.settings import MonitoringSettings
from singlewindow.registry import AgencyRegistry

# the metrics (docs/operations.md, "Metrics")
MESSAGES = "singlewindow_messages_total"
HANDLE = "singlewindow_handle_seconds"
PUBLISHED = "singlewindow_published_total"
STEPS = "singlewindow_clearance_steps_total"
HTTP = "singlewindow_http_request_duration_seconds"
LAG = "singlewindow_consumer_lag"
SUBMIT_TO_FINAL = "singlewindow_submit_to_final_seconds"
VERDICT = "singlewindow_verdict_latency_seconds"
DEAD_LETTERS = "singlewindow_dead_letters_total"
COMMIT = "singlewindow_transaction_commit_seconds"
JOIN_STATES = "singlewindow_join_states_open"
DEADLINES = "singlewindow_deadlines_pending"
READY = "singlewindow_ready"
METRICS = (
    MESSAGES,
    HANDLE,
    PUBLISHED,
    STEPS,
    HTTP,
    LAG,
    SUBMIT_TO_FINAL,
    VERDICT,
    DEAD_LETTERS,
    COMMIT,
    JOIN_STATES,
    DEADLINES,
    READY,
)
HISTOGRAMS = (HANDLE, HTTP, SUBMIT_TO_FINAL, VERDICT, COMMIT)
UP = "up"  # Prometheus' own, per scrape target

# the recorded series (level:metric:operations, as Prometheus' naming practice has it)
FINAL_RATE = "status:singlewindow_submit_to_final_seconds_count:rate5m"
WITHIN_SLA_BY_STATUS = "status:singlewindow_submit_to_final:within_sla_ratio"
WITHIN_SLA = ":singlewindow_submit_to_final:within_sla_ratio"
FINAL_QUANTILES = ":singlewindow_submit_to_final_seconds:quantile_rate5m"
VERDICT_QUANTILES = "agency:singlewindow_verdict_latency_seconds:quantile_rate5m"
PARTITION_LAG = "group_topic_partition:singlewindow_consumer_lag:max"
GROUP_LAG = "group:singlewindow_consumer_lag:sum"
TIMED_OUT_SHARE = ":singlewindow_clearance_steps:timed_out_ratio"
QUANTILES = ("0.5", "0.9", "0.99")


def le(seconds: float) -> str:
    """A bucket bound as its ``le`` label value reads in Prometheus: as the services' client
    library writes it (``10.0``, ``0.25``), which is also the form Prometheus 3 normalises
    every ``le`` to; ``le="10"`` would match no series."""
    value: str = floatToGoString(seconds)
    return value


def share_within(bound: str, window: str, by: str = "") -> str:
    """The share of the declarations final within the bucket bound ``bound`` (an ``le`` label
    value, or a Grafana variable holding one), over ``window``, per ``by``: the bucket's rate
    over the count's. 0/0 (nothing final) is NaN, which no comparison matches."""
    total = f"sum by ({by}) " if by else "sum"
    return (
        f'{total}(rate({SUBMIT_TO_FINAL}_bucket{{le="{bound}"}}[{window}]))\n'
        f"/\n{total}(rate({SUBMIT_TO_FINAL}_count[{window}]))"
    )


def group_regex(groups: list[str]) -> str:
    """A PromQL regex matching exactly these consumer group names (a ``.`` is literal)."""
    return "|".join(g.replace(".", "[.]") for g in groups)


def recording_rules(settings: MonitoringSettings) -> list[dict[str, Any]]:
    sla = settings.sla
    n = f"{sla.final_within_seconds:g}"
    steps_window = settings.timed_out.window
    rules: list[dict[str, Any]] = [
        {
            "record": FINAL_RATE,
            "expr": f"sum by (status) (rate({SUBMIT_TO_FINAL}_count[5m]))",
        },
        {
            "record": WITHIN_SLA_BY_STATUS,
            "expr": share_within(le(sla.final_within_seconds), sla.window, by="status"),
            "labels": {"sla_seconds": n},
        },
        {
            "record": WITHIN_SLA,
            "expr": share_within(le(sla.final_within_seconds), sla.window),
            "labels": {"sla_seconds": n},
        },
    ]
    rules += [
        {
            "record": FINAL_QUANTILES,
            "expr": f"histogram_quantile({q}, sum by (le) (rate({SUBMIT_TO_FINAL}_bucket[5m])))",
            "labels": {"quantile": q},
        }
        for q in QUANTILES
    ]
    rules += [
        {
            "record": VERDICT_QUANTILES,
            "expr": f"histogram_quantile({q}, sum by (agency, le) (rate({VERDICT}_bucket[5m])))",
            "labels": {"quantile": q},
        }
        for q in QUANTILES
    ]
    rules += [
        {
            # each member reports the partitions assigned to it; during a rebalance two may
            # report one partition for a moment: the larger lag counts
            "record": PARTITION_LAG,
            "expr": f"max by (group, topic, partition) ({LAG})",
        },
        {"record": GROUP_LAG, "expr": f"sum by (group) ({PARTITION_LAG})"},
        {
            "record": TIMED_OUT_SHARE,
            "expr": f'sum(rate({STEPS}{{status="TIMED_OUT"}}[{steps_window}]))\n'
            f"/\nsum(rate({STEPS}[{steps_window}]))",
        },
    ]
    return rules


def _alert(
    settings: MonitoringSettings,
    name: str,
    expr: str,
    duration: str | None,
    severity: str,
    summary: str,
    description: str,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if duration:
        rule["for"] = duration
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{settings.runbook.url}#{name.lower()}",
    }
    return rule


def alerting_rules(settings: MonitoringSettings, registry: AgencyRegistry) -> list[dict[str, Any]]:
    lag, sla, timed_out, health = settings.lag, settings.sla, settings.timed_out, settings.health
    agencies = group_regex([a.group for a in registry])
    letters = settings.dead_letters.window
    n = f"{sla.final_within_seconds:g}"
    by_kind = "sum by (service, source_topic, error)"
    return [
        _alert(
            settings,
            "SingleWindowAgencyLagging",
            f'{GROUP_LAG}{{group=~"{agencies}"}} > {lag.agency_records}',
            lag.for_,
            "warning",
            "Agency group {{ $labels.group }} is {{ $value }} records behind",
            f"The consumer group {{{{ $labels.group }}}} has been more than "
            f"{lag.agency_records} records behind on declarations.submitted (summed over its "
            f"partitions) for {lag.for_}: the declarations it has not read wait for its "
            "verdict, and their consolidated results wait with them.",
        ),
        _alert(
            settings,
            "SingleWindowConsumerLagging",
            f'{GROUP_LAG}{{group!~"{agencies}"}} > {lag.platform_records}',
            lag.for_,
            "warning",
            "Consumer group {{ $labels.group }} is {{ $value }} records behind",
            f"The platform's consumer group {{{{ $labels.group }}}} has been more than "
            f"{lag.platform_records} records behind on its topics (summed over its partitions) "
            f"for {lag.for_}: results (aggregator) or the trader's view (projector) lag behind "
            "the verdicts.",
        ),
        _alert(
            settings,
            "SingleWindowPartitionStuck",
            f"min_over_time({PARTITION_LAG}[{lag.stuck_window}]) > 0\n"
            f"and\nresets({PARTITION_LAG}[{lag.stuck_window}]) == 0",
            lag.stuck_for,
            "critical",
            "{{ $labels.group }} makes no progress on {{ $labels.topic }} "
            "partition {{ $labels.partition }}",
            f"The lag of group {{{{ $labels.group }}}} on {{{{ $labels.topic }}}} partition "
            f"{{{{ $labels.partition }}}} has stayed above 0 ({{{{ $value }}}} records at least) "
            f"without decreasing once over {lag.stuck_window}, for {lag.stuck_for}: the "
            "member that holds the partition does not commit (a hung handler, a record it "
            "retries forever, a dead member the group has not yet evicted) or cannot keep "
            "up at all.",
        ),
        _alert(
            settings,
            "SingleWindowDeadLetters",
            f"{by_kind} (increase({DEAD_LETTERS}[{letters}])) > 0\nor\n"
            f"{by_kind} ({DEAD_LETTERS} > 0 unless {DEAD_LETTERS} offset {letters})",
            None,
            "warning",
            "{{ $labels.service }} dead-lettered records from {{ $labels.source_topic }} "
            "({{ $labels.error }})",
            f"{{{{ $labels.service }}}} wrote records it could not decode or validate from "
            f"{{{{ $labels.source_topic }}}} to the deadletters topic within the last "
            f"{letters} (error: {{{{ $labels.error }}}}). The declarations they carried get "
            "no verdict or result until the letters are redriven after a fix.",
        ),
        _alert(
            settings,
            "SingleWindowTimedOutRate",
            f"{TIMED_OUT_SHARE} > {timed_out.share:g}",
            timed_out.for_,
            "warning",
            "{{ $value | humanizePercentage }} of the results are TIMED_OUT",
            f"More than {timed_out.share:.0%} of the results the aggregator committed over "
            f"{timed_out.window} are TIMED_OUT, for {timed_out.for_}: agencies do not rule "
            "by the deadline (or inspectors record no finding by the order's deadline), and "
            "those declarations escalate to an officer.",
        ),
        _alert(
            settings,
            "SingleWindowSlaBreached",
            f"{WITHIN_SLA} < {sla.target:g}",
            sla.for_,
            "critical",
            f"Only {{{{ $value | humanizePercentage }}}} of declarations final within {n}s",
            f"Fewer than {sla.target:.0%} of the declarations submitted over {sla.window} had "
            f"their first consolidated result within {n} seconds (target {sla.target:.0%}), "
            f"for {sla.for_}.",
        ),
        _alert(
            settings,
            "SingleWindowNotReady",
            f"{READY} == 0",
            health.for_,
            "critical",
            "{{ $labels.service }} ({{ $labels.instance }}) is not ready",
            f"{{{{ $labels.service }}}} at {{{{ $labels.instance }}}} has answered 503 on "
            f"/readyz for {health.for_}: it is not connected to Kafka, has no partitions "
            "while it should, or cannot reach its database; it consumes or serves nothing.",
        ),
        _alert(
            settings,
            "SingleWindowTargetDown",
            f'{UP}{{job=~"{health.job_regex}"}} == 0',
            health.for_,
            "critical",
            "{{ $labels.instance }} cannot be scraped",
            f"Prometheus has not scraped /metrics at {{{{ $labels.instance }}}} (job "
            f"{{{{ $labels.job }}}}) for {health.for_}: the process is down, hung, or "
            "unreachable.",
        ),
    ]


def rule_groups(settings: MonitoringSettings, registry: AgencyRegistry) -> dict[str, Any]:
    """The rule file's content: ``{"groups": [...]}``."""
    return {
        "groups": [
            {"name": "singlewindow.recording", "rules": recording_rules(settings)},
            {"name": "singlewindow.alerts", "rules": alerting_rules(settings, registry)},
        ]
    }


def alert_names(settings: MonitoringSettings, registry: AgencyRegistry) -> list[str]:
    return [rule["alert"] for rule in alerting_rules(settings, registry)]
