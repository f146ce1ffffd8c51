"""The benchmark's table (Markdown) and plot (PNG) from ``var/bench/results.json``.

``python -m bench.report`` redraws both from the last run's figures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from deploy.local.components import VAR
from deploy.local.launcher import services

OUT = VAR / "bench"
SERVICES = (*services(), "kafka", "ferretdb")  # the platform's processes, then the stack's


def _s(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None or seconds != seconds else f"{1000 * seconds:,.0f} ms"


def _refused(phase: dict[str, Any]) -> str:
    refused = phase.get("refused")
    if refused is None:
        return "-"
    return ", ".join(f"{code}: {n:,}" for code, n in sorted(refused.items())) or "none"


def markdown(f: dict[str, Any]) -> str:
    producer, latency, pipe = f["kafka_producer"], f["kafka_latency"], f["pipe"]
    phases = {p["name"]: p for p in f["phases"]}
    down = phases["downstream alone"]
    lines = [
        f"Measured {f['date']} on {f['machine']}; every figure below from this one run.",
        "",
        "| what | throughput | latency |",
        "|---|---|---|",
        f"| Kafka `ProducerPerformance` ({producer['records']:,} x 1 KiB, acks=all) "
        f"| {_s(producer['records_per_s'])} records/s | - |",
        f"| Kafka `EndToEndLatency` (1 KiB, acks=all) | - "
        f"| avg {latency['avg_ms']:.1f} ms, p99 {latency['p99_ms']:.0f} ms |",
        f"| bare aiokafka pipe of the platform's shape ({pipe['ids']:,} ids) "
        f"| {_s(pipe['ids_per_s'])} ids/s | - |",
        f"| platform downstream alone ({down['submitted']:,} declarations into "
        f"`declarations.submitted`) | {_s(down['final_per_s'])} declarations/s "
        f"({100 * down['final_per_s'] / pipe['ids_per_s']:.0f}% of the bare pipe) "
        f"| backlog: p50 {_ms(down['latency_s']['p50'])} |",
        f"| auditors' replay (read, decode, validate, signed events) "
        f"| {_s(f['replay_events_per_s'])} events/s | - |",
        "",
        "Through the intake (HTTP, validation, 202 after `acks=all`), the rest of the platform "
        "running; load from vegeta, whose CPU is shown (1.0 = a whole core):",
        "",
        "| offered | achieved | accepted | not accepted (HTTP status: count; 0: timed out) "
        "| final | submit-to-final p50 / p95 / p99 | HTTP p99 | generator CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in f["phases"]:
        if p["name"] == "downstream alone":
            continue
        offered = "saturation" if p["offered_per_s"] is None else f"{p['offered_per_s']}/s"
        lat = p["latency_s"]
        lines.append(
            f"| {offered} | {_s(p['achieved_per_s'])}/s | {p['accepted']:,} "
            f"({_s(p['accepted_per_s'])}/s) | {_refused(p)} "
            f"| {p['final']:,} ({_s(p['final_per_s'])}/s) "
            f"| {_ms(lat['p50'])} / {_ms(lat['p95'])} / {_ms(lat['p99'])} "
            f"| {_s(p['http_p99_ms'])} ms | {_s(p['generator_cpu_share'], 2)} |"
        )
    lines += [
        "",
        "CPU time per final declaration (ms), by process and phase:",
        "",
        "| phase | " + " | ".join(SERVICES) + " | total |",
        "|---|" + "---|" * (len(SERVICES) + 1),
    ]
    for p in f["phases"]:
        cpu = p["cpu_ms_per_declaration"]
        cells = [_s(cpu.get(s), 1) for s in SERVICES]
        lines.append(f"| {p['name']} | " + " | ".join(cells) + f" | {_s(sum(cpu.values()), 1)} |")
    rss = f["rss_mib"]
    lines += [
        "",
        "Resident memory (MiB), after the warm-up and at the end:",
        "",
        "| " + " | ".join(SERVICES) + " |",
        "|" + "---|" * len(SERVICES),
        "| "
        + " | ".join(f"{_s(rss['start'].get(s))} → {_s(rss['end'].get(s))}" for s in SERVICES)
        + " |",
        "",
    ]
    lines += ["## Capacity on paper", "", capacity(f)]
    return "\n".join(lines)


def capacity(
    f: dict[str, Any], per_day: float = 12e6, peak_factor: float = 10, busy: float = 0.6
) -> str:
    """Instances of each service a national single window needs, on paper, from the CPU per
    declaration measured here: ``per_day`` declarations, peaks ``peak_factor`` x the average,
    each instance kept ``busy`` (a share of one core) at the peak. Python services use one
    core each; Kafka and the database are sized in cores."""
    # the whole path at the most the intake could take: what a sized deployment runs at
    cpu = next(p for p in f["phases"] if p["name"] == "intake, saturation")[
        "cpu_ms_per_declaration"
    ]
    peak = per_day / 86_400 * peak_factor
    lines = [
        f"{per_day / 1e6:.0f} million declarations a day is {per_day / 86_400:,.0f}/s on "
        f"average; at a peak of {peak_factor:.0f}x, {peak:,.0f}/s. With the CPU per declaration "
        f"measured above through the intake at saturation, and every process kept at "
        f"{busy:.0%} of a core at the peak:",
        "",
        "| process | CPU ms per declaration | per core at that load | at the peak |",
        "|---|---|---|---|",
    ]
    for service in SERVICES:
        ms = cpu.get(service, 0.0)
        per_core = busy * 1000 / ms if ms else float("inf")
        need = peak / per_core
        unit = "cores" if service in ("kafka", "ferretdb") else "instances"
        lines.append(f"| {service} | {ms:.1f} | {per_core:,.0f}/s | {need:,.1f} {unit} |")
    widest = max(
        peak * cpu.get(s, 0.0) / 1000 / busy for s in SERVICES if s not in ("kafka", "ferretdb")
    )
    lines += [
        "",
        "Every topic is co-partitioned and one partition is read by one instance of a group, "
        f"so the partition count bounds the instances of the widest service ({widest:,.1f} "
        f"here, so at least {math.ceil(widest)} partitions). Choose it once with room to grow "
        "(48, say): adding partitions later moves keys, which breaks co-partitioning.",
        "",
    ]
    return "\n".join(lines)


def plot(f: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    http = [p for p in f["phases"] if p["name"] not in ("downstream alone", "warm-up")]
    fixed = sorted((p for p in http if p["offered_per_s"]), key=lambda p: p["offered_per_s"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    offered = [p["offered_per_s"] for p in fixed]
    for q in ("p50", "p95", "p99"):
        left.plot(offered, [1000 * p["latency_s"][q] for p in fixed], marker="o", label=q)
    left.set(
        xlabel="offered load (declarations/s)",
        ylabel="submit-to-final latency (ms)",
        title="Latency against offered load",
        yscale="log",
    )
    left.legend()
    left.grid(True, which="both", alpha=0.3)
    phases = {p["name"]: p for p in f["phases"]}
    bars = {
        "Kafka producer\n(records/s)": f["kafka_producer"]["records_per_s"],
        "bare pipe\n(ids/s)": f["pipe"]["ids_per_s"],
        "downstream\n(decl./s)": phases["downstream alone"]["final_per_s"],
        "intake\n(accepted/s)": phases["intake, saturation"]["accepted_per_s"],
    }
    right.bar(list(bars), list(bars.values()), color=["#888", "#4a7", "#37c", "#c73"])
    right.set(yscale="log", title="Throughput, same broker, same run")
    for i, v in enumerate(bars.values()):
        right.annotate(f"{v:,.0f}", (i, v), ha="center", va="bottom")
    figure.suptitle(f"Single Window benchmark, {f['date']}: {f['machine']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    figures = json.loads((OUT / "results.json").read_text())
    (OUT / "results.md").write_text(markdown(figures))
    plot(figures, OUT / "plot.png")
    print((OUT / "results.md").read_text())


if __name__ == "__main__":
    main()
