"""``make dashboard-picture``: ``docs/operations/dashboard.png``, the Grafana dashboard
(``deploy/monitoring/grafana/dashboards/singlewindow.json``) with real data, without Grafana.

``run``: the platform started as ``make run`` starts it (:mod:`deploy.local.launcher`, on the
local stack), a Prometheus scraping every process every 2 s with the project's rules loaded,
and load for a few minutes: declarations of every demo scenario at a steady rate with one
burst, the trader's journeys over and over (payments, documents, inspections, the gate), and
a few undecodable records written onto ``declarations.submitted`` as the stack's admin, so
that the dead-letter panels show something. Then ``render``.

``render``: every panel's queries, as the dashboard holds them (its variables at their
defaults: ``sla_seconds`` 10, every agency), evaluated by Prometheus' HTTP API over the run's
window, and the panels drawn with matplotlib in the dashboard's grid. Prometheus is the
server of Debian's ``prometheus`` package (2.42, as :mod:`deploy.monitoring.promtool` takes
promtool out of it), cached under ``~/.cache/singlewindow``; its data stay in
``var/dashboard/`` so that the picture can be redrawn without running the platform again.

It runs as the local stack's admin principal, as ``make bench`` does (the launcher waits for
the groups to catch up, and the hostile records need the right to write). Ports: the
platform's as the launcher takes them (``SW_LOCAL_PORT_BASE``; the intake on
``--intake-port``, its ops endpoints on the port base + 90), Prometheus on
``--prometheus-port``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from deploy.local.components import CACHE, VAR
from deploy.local.demo_data import DEMO_BROKER, demo_usccs, sample_declaration_body
from deploy.local.journeys import Window, every_journey
from deploy.local.launcher import PORT_BASE, ROOT, running_platform
from deploy.monitoring import promtool
from services.intake.devissuer import bearer, inspector_bearer
from singlewindow.kafka.producer import new_producer
from singlewindow.settings import get_settings
from singlewindow.topics import DECLARATIONS_SUBMITTED

DASHBOARD = ROOT / "deploy" / "monitoring" / "grafana" / "dashboards" / "singlewindow.json"
RULES = ROOT / "deploy" / "monitoring" / "rules.yaml"
PICTURE = ROOT / "docs" / "operations" / "dashboard.png"
WORK = VAR / "dashboard"
PROMETHEUS = CACHE / f"prometheus-{promtool.DEBIAN_VERSION}" / "prometheus"
SCRAPE_S = 2
LEGEND_MAX = 6  # series named in a panel's legend, the highest first
CAPTION = (
    "The dashboard's panels and queries, evaluated by Prometheus 2.42 on a local run under "
    "load; drawn with matplotlib, not Grafana."
)

app = typer.Typer(help=__doc__, no_args_is_help=True)


# -- Prometheus ------------------------------------------------------------------------------


def prometheus_binary() -> Path:
    """The Prometheus server out of Debian's package (not installed: the package would start
    a daemon), fetched once."""
    return promtool.from_debian(PROMETHEUS, "./usr/bin/prometheus")


def prometheus_config(targets: list[int]) -> str:
    """Every process scraped every 2 s (the dashboard's rates need a few samples a minute
    under a short run), the project's rules evaluated every 5 s."""
    listed = "".join(f'\n          - "127.0.0.1:{port}"' for port in targets)
    return f"""global:
  scrape_interval: {SCRAPE_S}s
  evaluation_interval: 5s
rule_files:
  - {RULES}
scrape_configs:
  - job_name: singlewindow
    static_configs:
      - targets:{listed or " []"}
"""


@contextmanager
def prometheus(port: int, targets: list[int]) -> Iterator[str]:
    """A Prometheus on ``port`` keeping its data in ``var/dashboard/tsdb``; its URL."""
    WORK.mkdir(parents=True, exist_ok=True)
    config = WORK / "prometheus.yml"
    config.write_text(prometheus_config(targets))
    url = f"http://127.0.0.1:{port}"
    log = (WORK / "prometheus.log").open("ab")
    proc = subprocess.Popen(
        [
            str(prometheus_binary()),
            f"--config.file={config}",
            f"--storage.tsdb.path={WORK / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start; see {WORK / 'prometheus.log'}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


# -- load --------------------------------------------------------------------------------------


async def hostile_records(count: int) -> None:
    """``count`` records no agency can decode, written as whoever runs this (the stack's
    admin under ``make``): dead letters."""
    producer = new_producer(get_settings(), "dashboard-picture")
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(
                DECLARATIONS_SUBMITTED.name, b"not an event %d" % i, key=b"hostile-%d" % i
            )
    finally:
        await producer.stop()


def rate_at(elapsed: float, seconds: float, base: float) -> float:
    """Declarations a second: ``base``, and eight times that for a burst of 30 s at 40% of
    the run (lag and latency rise and fall back)."""
    burst = 0.4 * seconds
    return base * 8 if burst <= elapsed < burst + 30 else base


async def load(urls: tuple[str, str, str, str], seconds: float, base: float) -> None:
    """Declarations at :func:`rate_at`, each followed to its first answer; the journeys over
    and over; hostile records at a third and at two thirds of the run."""
    auth = bearer(DEMO_BROKER, demo_usccs())
    start = time.monotonic()
    end = start + seconds
    pending: set[asyncio.Task[Any]] = set()

    async with httpx.AsyncClient(base_url=urls[0], timeout=60, headers=auth) as client:

        async def one(i: int) -> None:
            submitted = await client.post("/v1/declarations", json=sample_declaration_body(i))
            if submitted.status_code == 202:
                await client.get(submitted.headers["location"], params={"wait": 30})

        async def journeys() -> None:
            while time.monotonic() < end:
                window = Window.open(
                    urls, auth, lambda agency: inspector_bearer(f"demo-{agency}-inspector", agency)
                )
                try:
                    await every_journey(window, return_exceptions=True)
                finally:
                    await window.close()

        async def dead_letters() -> None:
            for at in (seconds / 3, 2 * seconds / 3):
                await asyncio.sleep(max(0.0, start + at - time.monotonic()))
                await hostile_records(2)

        background = [asyncio.create_task(journeys()), asyncio.create_task(dead_letters())]
        i = 0
        while (now := time.monotonic()) < end:
            task = asyncio.create_task(one(i))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
            await asyncio.sleep(1 / rate_at(now - start, seconds, base))
        await asyncio.gather(*pending, *background, return_exceptions=True)


@app.command()
def run(
    minutes: Annotated[float, typer.Option(help="how long the load runs")] = 5,
    rate: Annotated[float, typer.Option(help="declarations a second, outside the burst")] = 3,
    intake_port: Annotated[int, typer.Option()] = 28000,
    prometheus_port: Annotated[int, typer.Option()] = 19990,
    out: Annotated[Path, typer.Option()] = PICTURE,
) -> None:
    """The platform under load, scraped; then the picture."""
    import shutil

    shutil.rmtree(WORK / "tsdb", ignore_errors=True)
    metrics_port = PORT_BASE + 90
    os.environ["INTAKE_METRICS_PORT"] = str(metrics_port)
    with running_platform(WORK / "logs", intake_port=intake_port, start_timeout=240) as platform:
        targets = [metrics_port, *platform.metrics_ports.values()]
        with prometheus(prometheus_port, targets) as url:
            start = time.time()
            urls = (platform.url, platform.bank_url, platform.inspection_url, platform.gate_url)
            asyncio.run(load(urls, minutes * 60, rate))
            time.sleep(3 * SCRAPE_S)
            end = time.time()
            (WORK / "window.json").write_text(json.dumps({"start": start, "end": end}))
            draw(url, start, end, out)
    print(out)


@app.command()
def render(
    prometheus_port: Annotated[int, typer.Option()] = 19990,
    out: Annotated[Path, typer.Option()] = PICTURE,
) -> None:
    """The picture again, from the data of the last ``run`` (no platform needed)."""
    window = json.loads((WORK / "window.json").read_text())
    with prometheus(prometheus_port, []) as url:
        draw(url, window["start"], window["end"], out)
    print(out)


# -- the panels --------------------------------------------------------------------------------

VARIABLES = {
    "${sla_seconds:text}": "10",
    "$sla_seconds": "10.0",
    "$agency": ".*",
    "$__rate_interval": "30s",
}


def expression(expr: str, range_s: float) -> str:
    """A panel's query with the dashboard's variables at their defaults (every agency; the
    rate window a 30 s one, which Grafana would take for a 2 s scrape over a wider range)."""
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr.replace("$__range", f"{int(range_s)}s")


def legend(fmt: str | None, labels: dict[str, str]) -> str:
    if fmt:
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)
    shown = {k: v for k, v in labels.items() if k not in ("__name__", "job")}
    return ", ".join(shown.values()) or "value"


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[Any]:
    answer = httpx.get(
        f"{url}/api/v1/query_range",
        params={"query": expr, "start": start, "end": end, "step": step},
        timeout=30,
    )
    answer.raise_for_status()
    return list(answer.json()["data"]["result"])


def query(url: str, expr: str, at: float) -> list[Any]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr, "time": at}, timeout=30)
    answer.raise_for_status()
    return list(answer.json()["data"]["result"])


def formatted(value: float, unit: str | None) -> str:
    if math.isnan(value):
        return "no data"
    if unit == "percentunit":
        return f"{value:.1%}"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "reqps":
        return f"{value:.2f}/s"
    return f"{value:.3g}"


UNIT_LABEL = {"reqps": "per second", "s": "seconds", "percentunit": "share"}


def draw(url: str, start: float, end: float, out: Path) -> None:
    """Every panel of the dashboard in its grid place, from Prometheus at ``url``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import PercentFormatter

    board = json.loads(DASHBOARD.read_text())
    panels = board["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    head, foot = 0.035, 0.02  # title and caption, as shares of the height
    fig = plt.figure(figsize=(16, 22), dpi=100)
    fig.suptitle(
        f"{board['title']}  ·  last {round((end - start) / 60)} minutes  ·  "
        f"{datetime.fromtimestamp(end, UTC):%Y-%m-%d %H:%M} UTC",
        fontsize=16,
        y=1 - head / 3,
    )
    fig.text(0.5, foot / 2, CAPTION, ha="center", fontsize=11, style="italic")
    usable = 1 - head - foot
    pad = 0.006
    step = max(SCRAPE_S, (end - start) / 300)

    def box(g: dict[str, int]) -> tuple[float, float, float, float]:
        left = g["x"] / 24 + pad
        width = g["w"] / 24 - 2 * pad
        top = 1 - head - g["y"] / rows * usable
        height = g["h"] / rows * usable
        return (left + 0.03, top - height + 0.022, width - 0.035, height - 0.045)

    for panel in panels:
        g = panel["gridPos"]
        title = expression(panel["title"], end - start)
        if panel["type"] == "row":
            top = 1 - head - g["y"] / rows * usable
            fig.text(0.01, top - 0.008, title, fontsize=13, weight="bold", va="center")
            continue
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        ax = fig.add_axes(box(g))
        ax.set_title(title, fontsize=10.5, loc="left", pad=6)
        if panel["type"] == "stat":
            draw_stat(ax, panel, url, end, end - start, unit)
            continue
        lines = []  # (peak, line): the legend names the highest ones only
        for target in panel.get("targets", []):
            series = query_range(url, expression(target["expr"], end - start), start, end, step)
            for s in series:
                times = [datetime.fromtimestamp(float(t), UTC) for t, _ in s["values"]]
                values = [float(v) for _, v in s["values"]]
                label = legend(target.get("legendFormat"), s["metric"])
                (line,) = ax.plot(times, values, linewidth=1.2, label=label)
                lines.append((max((v for v in values if not math.isnan(v)), default=0.0), line))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.set_xlim(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        if unit == "percentunit":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax.set_ylim(0, 1.05)
        elif unit in UNIT_LABEL:
            ax.set_ylabel(UNIT_LABEL[unit], fontsize=8)
        if not lines:
            ax.text(
                0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey"
            )
            continue
        lines.sort(key=lambda peak_line: -peak_line[0])
        shown = [line for _, line in lines[:LEGEND_MAX]]
        labels = [str(line.get_label()) for line in shown]
        if len(lines) > LEGEND_MAX:
            shown.append(Line2D([], [], linestyle="none"))
            labels.append(f"+ {len(lines) - LEGEND_MAX} lower series")
        columns = 2 if len(shown) > 4 else 1
        ax.legend(shown, labels, fontsize=6.5, loc="best", ncol=columns, framealpha=0.6)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def draw_stat(
    ax: Any, panel: dict[str, Any], url: str, at: float, range_s: float, unit: str | None
) -> None:
    """A stat panel: one value, or one tile per series (readiness, scrape targets)."""
    from matplotlib.patches import Rectangle

    ax.set_axis_off()
    values: list[tuple[str, float]] = []
    for target in panel.get("targets", []):
        for s in query(url, expression(target["expr"], range_s), at):
            values.append((legend(target.get("legendFormat"), s["metric"]), float(s["value"][1])))
    if not values:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=20, color="grey")
        return
    if len(values) == 1:
        ax.text(0.5, 0.5, formatted(values[0][1], unit), ha="center", va="center", fontsize=34)
        return
    values.sort()
    columns = 4
    tiles = math.ceil(len(values) / columns)
    for n, (name, value) in enumerate(values):
        x, y = (n % columns) / columns, 1 - (n // columns + 1) / tiles
        good = value >= 1
        ax.add_patch(
            Rectangle(
                (x + 0.005, y + 0.01),
                1 / columns - 0.01,
                1 / tiles - 0.02,
                color="#2e7d32" if good else "#c62828",
                alpha=0.85,
            )
        )
        ax.text(
            x + 0.5 / columns,
            y + 0.5 / tiles,
            f"{name}\n{formatted(value, unit)}",
            ha="center",
            va="center",
            color="white",
            fontsize=8,
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)


if __name__ == "__main__":
    app()
