"""``make bench``: the platform beside its broker and a bare pipe of its shape, in one run.

In order, on the same broker (the local stack, or yours with ``KAFKA_BOOTSTRAP_SERVERS``),
as its admin principal:

1. Kafka's own tools: ``ProducerPerformance`` and ``EndToEndLatency`` (:mod:`bench.kafkatools`).
2. A bare aiokafka pipe of the platform's shape (:mod:`bench.barepipe`).
3. The platform started as ``make run`` starts it (:mod:`deploy.local.launcher`), then:
   - downstream alone: signed declarations written straight into ``declarations.submitted``
     as the intake would (its principal, its key), timed to their results;
   - the intake at saturation (HTTP, full validation, 202 after ``acks=all``), with the rest
     of the platform running, and the submit-to-final latency of what it accepted;
   - fixed offered rates (50, 200, 500/s): offered, achieved, accepted, submit-to-final
     latency p50/p95/p99 (submit: when the request was sent; final: the result's timestamp).
   The load generator is vegeta (compiled, :mod:`bench.vegeta`); its own CPU is reported.
   CPU time per declaration and resident memory of every process are measured per phase;
   each phase starts once the platform is quiet (the projector done with the last one's).
4. The auditors' replay rate (:mod:`bench.replay`).

Writes ``var/bench/results.md``, ``results.json`` and ``plot.png``. The sizes are settings:
``BENCH_DECLARATIONS`` (downstream and saturation), ``BENCH_RATE_SECONDS`` (each fixed
rate), ``BENCH_RATES``, ``BENCH_PIPE_IDS``, ``BENCH_KAFKA_RECORDS``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform as host
import statistics
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer

from bench.barepipe import bare_pipe
from bench.kafkatools import kafka_latency, kafka_producer
from bench.replay import replay_rate
from bench.vegeta import AttackResults, Target, attack, vegeta_binary
from deploy.local.components import VAR
from deploy.local.demo_data import DEMO_BROKER, demo_usccs, sample_declaration_body
from deploy.local.launcher import Platform, running_platform
from deploy.local.trust import LocalTrust, read_env_file
from services.intake import ids
from services.intake.devissuer import bearer
from services.intake.routing import load_table, route
from services.intake.schema import DeclarationRequest
from singlewindow.kafka.options import kafka_options
from singlewindow.kafka.producer import new_producer
from singlewindow.kafka.reader import topic_partitions
from singlewindow.runtime import run_loop
from singlewindow.settings import Settings, get_settings
from singlewindow.signing import SigningKey, signing_key
from singlewindow.topics import CLEARANCE_RESULTS, DECLARATIONS_SUBMITTED

OUT = VAR / "bench"
SETTLE_S = 300.0  # how long results may lag behind the last submission of a phase


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# -- measuring -------------------------------------------------------------------------------


class ResultWatcher:
    """Tails the results topic from its end: declaration id -> the result's timestamp."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **kafka_options(self.settings),
            enable_auto_commit=False,
            isolation_level="read_committed",
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        partitions = await topic_partitions(consumer, CLEARANCE_RESULTS.name)
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    if r.key is not None:
                        self.seen.setdefault(r.key.decode(errors="replace"), r.timestamp / 1000)

    async def final(self, wanted: set[str], timeout_s: float = SETTLE_S) -> dict[str, float]:
        """The result times of ``wanted``, once all are there or ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        while not wanted <= self.seen.keys() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        return {k: self.seen[k] for k in wanted if k in self.seen}

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()


class Usage:
    """CPU seconds and resident memory of the platform's processes, Kafka and the database."""

    def __init__(self, platform: Platform) -> None:
        self.procs: dict[str, psutil.Process] = {
            name: psutil.Process(p.pid) for name, p in platform.procs.items()
        }
        for proc in psutil.process_iter(["name", "cmdline"]):
            line = " ".join(proc.info["cmdline"] or ())
            if "kafka.Kafka" in line and str(VAR) in line:
                self.procs["kafka"] = proc
            elif (proc.info["name"] or "").startswith("ferretdb") and str(VAR) in line:
                self.procs["ferretdb"] = proc

    def cpu(self) -> dict[str, float]:
        return {n: sum(p.cpu_times()[:2]) for n, p in self.procs.items()}

    async def quiet(self, below: float = 0.1, window_s: float = 2.0, bound_s: float = 300) -> None:
        """Until every process together uses less than ``below`` of a core (the projector
        and the database done with what the last phase left), at most ``bound_s``."""
        deadline = time.monotonic() + bound_s
        while time.monotonic() < deadline:
            before = sum(self.cpu().values())
            await asyncio.sleep(window_s)
            if (sum(self.cpu().values()) - before) / window_s < below:
                return

    def rss_mib(self) -> dict[str, float]:
        return {n: p.memory_info().rss / 2**20 for n, p in self.procs.items()}


def pct(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


@dataclass
class Phase:
    """One measured phase of the platform."""

    name: str
    offered_per_s: float | None = None  # the rate asked of the generator (None: saturation)
    achieved_per_s: float | None = None  # the rate it sent at
    submitted: int = 0
    accepted: int = 0
    accepted_per_s: float = 0.0
    final: int = 0
    final_per_s: float = 0.0  # first submission to last result
    latency_s: dict[str, float] = field(default_factory=dict)  # submit-to-final percentiles
    http_p99_ms: float | None = None
    refused: dict[str, int] = field(default_factory=dict)  # HTTP status (0: none) -> count
    generator_cpu_share: float | None = None  # of one core
    cpu_ms_per_declaration: dict[str, float] = field(default_factory=dict)


def settle(
    phase: Phase, sent: dict[str, float], results: dict[str, float], cpu: dict[str, float]
) -> Phase:
    latencies = [results[k] - sent[k] for k in results]
    phase.final = len(results)
    if results:
        phase.final_per_s = len(results) / max(max(results.values()) - min(sent.values()), 1e-3)
    phase.latency_s = {f"p{p}": pct(latencies, p) for p in (50, 95, 99)}
    phase.cpu_ms_per_declaration = {n: 1000 * s / max(phase.final, 1) for n, s in cpu.items()}
    return phase


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {n: after[n] - before[n] for n in before}


# -- the phases on the platform --------------------------------------------------------------


def intake_settings() -> Settings:
    """The intake's own principal and signing key, from the local stack's files."""
    env = {**read_env_file(VAR / "credentials" / "intake.env")}
    env.update(LocalTrust(VAR).signing_env("intake"))
    return Settings.model_validate({k.lower(): v for k, v in env.items()})


def signed_declarations(count: int, signer: SigningKey) -> list[tuple[str, bytes]]:
    """``count`` declarations as the intake writes them: routed, signed (id, payload)."""
    table, offset, now = load_table(), uuid.uuid4().int % 10**6, datetime.now(UTC)
    out = []
    for i in range(count):
        request = DeclarationRequest.model_validate(sample_declaration_body(offset + i))
        agencies, version = route(request, table)
        event = request.to_event(
            declaration_id=ids.random_declaration_id(),
            event_id=ids.random_event_id(),
            submitted_at=now,
            agencies=agencies,
            routing_version=version,
        )
        out.append((event.declaration_id, signer.sign(event, now)[1]))
    return out


async def downstream(watcher: ResultWatcher, usage: Usage, count: int) -> Phase:
    """Declarations written straight into ``declarations.submitted``, timed to their results."""
    await usage.quiet()
    settings = intake_settings()
    payloads = signed_declarations(count, signing_key(settings))
    producer = new_producer(settings, "bench-downstream")
    await producer.start()
    try:
        before, sent = usage.cpu(), {}
        futures = []
        for declaration_id, payload in payloads:
            sent[declaration_id] = time.time()
            futures.append(
                await producer.send(
                    DECLARATIONS_SUBMITTED.name, payload, key=declaration_id.encode()
                )
            )
        await asyncio.gather(*futures)
        injected = time.time() - min(sent.values())
    finally:
        await producer.stop()
    results = await watcher.final(set(sent))
    phase = Phase("downstream alone", submitted=count, accepted=count)
    phase.accepted_per_s = count / max(injected, 1e-3)
    return settle(phase, sent, results, cpu_delta(before, usage.cpu()))


def targets(count: int) -> list[Target]:
    auth = bearer(DEMO_BROKER, demo_usccs())
    offset = uuid.uuid4().int % 10**6
    headers = {**auth, "Content-Type": "application/json"}
    return [
        (headers, json.dumps(sample_declaration_body(offset + i)).encode()) for i in range(count)
    ]


def accepted_ids(results: AttackResults) -> dict[str, float]:
    return {json.loads(r.body)["declaration_id"]: r.timestamp for r in results if r.status == 202}


async def over_http(
    url: str,
    watcher: ResultWatcher,
    usage: Usage,
    name: str,
    rate: int | None,
    count: int,
) -> Phase:
    """``count`` declarations through the intake at ``rate``/s (None: as fast as it takes)."""
    await usage.quiet()
    before = usage.cpu()
    results = await asyncio.to_thread(
        attack,
        f"{url}/v1/declarations",
        targets(count),
        rate=rate,
        count=count,
        # at a fixed rate, enough workers to keep it while responses slow down (up to 20 s)
        workers=64 if rate is None else 32,
        max_workers=64 if rate is None else max(256, 20 * rate),
    )
    sent = accepted_ids(results)
    stamps = sorted(r.timestamp for r in results)
    ends = [r.end for r in results if r.status == 202]
    span = max(stamps[-1] - stamps[0], 1e-3)
    phase = Phase(
        name,
        offered_per_s=rate,
        achieved_per_s=(len(stamps) - 1) / span if len(stamps) > 1 else None,
        submitted=len(results),
        accepted=len(sent),
        accepted_per_s=len(sent) / max(max(ends, default=0) - stamps[0], 1e-3),
        http_p99_ms=1000 * pct([r.latency_s for r in results], 99),
        generator_cpu_share=results.cpu_s / max(results.wall_s, 1e-3),
        refused=dict(Counter(str(r.status) for r in results if r.status != 202)),
    )
    final = await watcher.final(set(sent))
    return settle(phase, sent, final, cpu_delta(before, usage.cpu()))


async def platform_phases(platform: Platform, settings: Settings) -> dict[str, Any]:
    declarations = env_int("BENCH_DECLARATIONS", 5000)
    seconds = env_int("BENCH_RATE_SECONDS", 20)
    rates = [int(r) for r in os.environ.get("BENCH_RATES", "50,200,500").split(",")]
    watcher = ResultWatcher(settings)
    await watcher.start()
    usage = Usage(platform)
    try:
        warm = await over_http(platform.url, watcher, usage, "warm-up", 20, 100)
        print(f"warm-up: {warm.final}/{warm.accepted} final")
        rss_start = usage.rss_mib()
        phases = [await downstream(watcher, usage, declarations)]
        show(phases[-1])
        phases.append(
            await over_http(platform.url, watcher, usage, "intake, saturation", None, declarations)
        )
        show(phases[-1])
        for rate in rates:
            name = f"fixed rate {rate}/s"
            phases.append(await over_http(platform.url, watcher, usage, name, rate, rate * seconds))
            show(phases[-1])
        return {
            "phases": [asdict(p) for p in phases],
            "rss_mib": {"start": rss_start, "end": usage.rss_mib()},
        }
    finally:
        await watcher.stop()


def show(phase: Phase) -> None:
    lat = phase.latency_s
    print(
        f"{phase.name}: {phase.accepted}/{phase.submitted} accepted"
        f" ({phase.accepted_per_s:,.0f}/s), {phase.final} final ({phase.final_per_s:,.0f}/s);"
        f" submit-to-final p50 {lat['p50']:.3f} s, p95 {lat['p95']:.3f} s, p99 {lat['p99']:.3f} s",
        flush=True,
    )


# -- the whole run ---------------------------------------------------------------------------


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        host.processor() or "unknown CPU",
    )
    memory = psutil.virtual_memory().total / 2**30
    return f"{psutil.cpu_count()} x {model}, {memory:.0f} GiB, {host.system()} {host.release()}"


async def broker_phases(settings: Settings) -> dict[str, Any]:
    producer = await kafka_producer(settings, records=env_int("BENCH_KAFKA_RECORDS", 200_000))
    print(f"Kafka ProducerPerformance: {producer.records_per_s:,.0f} records/s", flush=True)
    latency = await kafka_latency(settings)
    print(f"Kafka EndToEndLatency: avg {latency.avg_ms} ms, p99 {latency.p99_ms} ms", flush=True)
    pipe = await bare_pipe(settings, count=env_int("BENCH_PIPE_IDS", 20_000))
    print(f"bare aiokafka pipe: {pipe.ids_per_s:,.0f} ids/s", flush=True)
    return {
        "kafka_producer": asdict(producer),
        "kafka_latency": asdict(latency),
        "pipe": asdict(pipe),
    }


def main() -> None:
    settings = get_settings()
    vegeta_binary()  # built before anything is timed
    OUT.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    figures: dict[str, Any] = {"date": started.isoformat(timespec="seconds"), "machine": machine()}
    figures.update(run_loop(broker_phases(settings)))
    logs = OUT / "logs"
    logs.mkdir(exist_ok=True)
    with running_platform(logs, env_int("BENCH_INTAKE_PORT", 18100)) as platform:
        figures.update(run_loop(platform_phases(platform, settings)))
    figures["replay_events_per_s"] = run_loop(replay_rate(settings, 20_000))
    print(f"replay: {figures['replay_events_per_s']:,.0f} events/s", flush=True)
    (OUT / "results.json").write_text(json.dumps(figures, indent=2) + "\n")
    from bench.report import markdown, plot

    (OUT / "results.md").write_text(markdown(figures))
    plot(figures, OUT / "plot.png")
    print((OUT / "results.md").read_text())


if __name__ == "__main__":
    main()
