"""The whole platform as separate processes, as ``make run`` starts it, for tests, the demo
and benchmarks: start, stop, kill -9 and restart any service, extra instances too."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from singlewindow.registry import agency_registry

ROOT = Path(__file__).resolve().parents[2]
# Metrics ports: the services from here, extra instances from here + 100, extra intakes from
# here + 200 (set it to run two platforms side by side).
PORT_BASE = int(os.environ.get("SW_LOCAL_PORT_BASE", "19100"))
# The bank answers beside the intake: 8081 for 8000 (``make run``), 18081 for 18000 (tests);
# the inspection station beside it: 8082, 18082; the port's gate: 8083, 18083.
BANK_PORT_OFFSET = 81
INSPECTION_PORT_OFFSET = 82
GATE_PORT_OFFSET = 83


def services() -> tuple[str, ...]:
    """Every service of the platform: the intake, each registered agency, the join, the read
    model, the (simulated) bank, the joint inspection station, the port's gate and the
    webhooks' delivery."""
    return (
        "intake",
        *agency_registry().codes,
        "aggregator",
        "projector",
        "bank",
        "inspection",
        "gate",
        "webhooks",
    )


def module_of(service: str) -> str:
    """The module ``python -m`` runs for a service: an agency's is in its registry entry."""
    if service in agency_registry():
        return agency_registry().get(service).module
    return f"services.{service}"


def service_credentials(module: str, env: dict[str, str]) -> dict[str, str]:
    """The settings of ``module``'s own Kafka principal, from the local stack's
    ``var/credentials/<module>.env``: every service connects as itself, never as whoever
    started it. Nothing when there is no such file, or when ``env`` points at another broker
    than the file's (``KAFKA_BOOTSTRAP_SERVERS`` of your own Kafka: its settings stand)."""
    from deploy.local.components import VAR
    from deploy.local.trust import read_env_file

    registry = agency_registry()
    principal = registry.get(module).principal if module in registry else module
    path = VAR / "credentials" / f"{principal}.env"
    if not path.exists():
        return {}
    found = read_env_file(path)
    bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap and bootstrap != found.get("KAFKA_BOOTSTRAP_SERVERS"):
        return {}
    return found


def local_env(module: str, env: dict[str, str]) -> dict[str, str]:
    """The environment of ``module`` on the local platform: the local defaults (customs'
    development sampling key, the development token issuer and the id secrets of the intake,
    the bank, the inspection station and the gate, the service's own event-signing key), then
    ``env``
    (what is set wins over a default), then the service's own Kafka principal. The intake
    and the webhooks' delivery share a development webhook keyring, and take receivers on
    loopback (``http://127.0.0.1:<port>``: local runs and tests)."""
    from deploy.local.components import VAR
    from deploy.local.trust import LocalTrust
    from services.bank.config import local_bank_env
    from services.customs.sampling import local_environment
    from services.gate.config import local_gate_env
    from services.inspection.config import local_inspection_env
    from services.intake.devissuer import local_intake_env
    from services.webhooks.config import local_webhook_env

    defaults: dict[str, str] = LocalTrust(VAR).signing_env(module)
    if module == "customs":
        defaults.update(local_environment(env, VAR / "secrets" / "customs-sampling.keys"))
    if module == "intake":
        defaults.update(local_intake_env())
    if module == "bank":
        defaults.update(local_bank_env())
    if module == "inspection":
        defaults.update(local_inspection_env())
    if module == "gate":
        defaults.update(local_gate_env())
    if module in ("intake", "webhooks"):
        defaults.update(local_webhook_env(module, VAR / "secrets" / "webhook.keys"))
    return {**defaults, **env, **service_credentials(module, env)}


class Platform:
    def __init__(self, logs: Path, intake_port: int, deadline_seconds: float) -> None:
        self.logs = logs
        self.url = f"http://127.0.0.1:{intake_port}"
        self.bank_url = f"http://127.0.0.1:{intake_port + BANK_PORT_OFFSET}"
        self.inspection_url = f"http://127.0.0.1:{intake_port + INSPECTION_PORT_OFFSET}"
        self.gate_url = f"http://127.0.0.1:{intake_port + GATE_PORT_OFFSET}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.intake_urls = {"intake": self.url}
        self.metrics_ports = {s: PORT_BASE + i for i, s in enumerate(services()) if s != "intake"}
        self.env = {
            # tests and benchmarks lodge thousands of declarations a minute as one broker
            "INTAKE_RATE_PER_SECOND": "100000",
            "INTAKE_RATE_BURST": "100000",
            **os.environ,
            "INTAKE_PORT": str(intake_port),
            "BANK_PORT": self.bank_url.rpartition(":")[2],
            "INSPECTION_PORT": self.inspection_url.rpartition(":")[2],
            "GATE_PORT": self.gate_url.rpartition(":")[2],
            "AGGREGATOR_DEADLINE_SECONDS": str(deadline_seconds),
            **{f"{s.upper()}_METRICS_PORT": str(p) for s, p in self.metrics_ports.items()},
        }

    def start(
        self, name: str, python: str = sys.executable, cwd: Path = ROOT, **env_overrides: str
    ) -> None:
        """Start ``name`` (a service, or ``service#n`` for one more instance of it), with
        ``env_overrides`` added to its environment; ``python`` in ``cwd`` runs it (an agency
        built on the SDK's wheel runs in an environment of its own)."""
        module = name.split("#")[0]
        env = {**local_env(module, self.env), **env_overrides}
        if "#" in name and module == "intake":  # an extra intake answers on a port of its own
            self.intake_urls[name] = f"http://127.0.0.1:{PORT_BASE + 200 + len(self.intake_urls)}"
            env["INTAKE_PORT"] = self.intake_urls[name].rpartition(":")[2]
        elif "#" in name:  # an extra instance serves metrics on a port of its own
            self.metrics_ports[name] = PORT_BASE + 100 + len(self.metrics_ports)
            env[f"{module.upper()}_METRICS_PORT"] = str(self.metrics_ports[name])
        log = (self.logs / f"{name.replace('#', '-')}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [python, "-m", module_of(module)],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, name: str, timeout: float = 45) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -9

    def kill(self, name: str) -> None:
        """kill -9: no shutdown, no commit, no goodbye to the group."""
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait()

    def exited(self, name: str, timeout: float) -> int | None:
        """The exit code once ``name`` ended by itself within ``timeout`` s (then it is
        forgotten), else None."""
        try:
            code = self.procs[name].wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        del self.procs[name]
        return code

    def wait_ready(self, name: str, timeout: float = 30) -> None:
        """Until the service's metrics (or the intake's health) answer."""
        url = (
            f"{self.intake_urls[name]}/healthz"
            if name in self.intake_urls
            else f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"{name} did not come up within {timeout}s")

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.procs.items()}

    def wait_caught_up(self, timeout: float = 300) -> None:
        """Until every service's group has consumed the declarations and verdicts already on
        the topics (a backlog left by earlier tests, say), so that what a test lodges next is
        all that moves. Only the groups of the services started count."""
        running = {name.split("#")[0] for name in self.procs}
        asyncio.run(asyncio.wait_for(_caught_up(running), timeout))

    def log_tail(self, name: str) -> str:
        return (self.logs / f"{name.replace('#', '-')}.log").read_text(errors="replace")[-3000:]


# Groups and the non-transactional topics they read (a transactional topic's end offset
# counts its last commit marker, which no consumer commits past).
async def _caught_up(services: set[str], poll_s: float = 0.5) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from singlewindow.kafka.admin import admin_client
    from singlewindow.kafka.options import kafka_options
    from singlewindow.settings import get_settings
    from singlewindow.topics import DECLARATIONS_SUBMITTED, inputs

    settings = get_settings()
    topics = list(inputs())
    agencies = [a.group for a in agency_registry() if a.code in services]
    partitions = [TopicPartition(t, p) for t in topics for p in range(settings.topic_partitions)]
    admin = await admin_client(settings)
    consumer = AIOKafkaConsumer(**kafka_options(settings))
    await consumer.start()
    try:
        end = await consumer.end_offsets(partitions)
        for group in (*agencies, *({"aggregator", "projector"} & services)):
            ins = [tp for tp in partitions if end[tp] > 0]
            if group in agencies:
                ins = [tp for tp in ins if tp.topic == DECLARATIONS_SUBMITTED.name]
            while True:
                committed = await admin.list_consumer_group_offsets(group, partitions=ins)
                if all(tp in committed and committed[tp].offset >= end[tp] for tp in ins):
                    break
                await asyncio.sleep(poll_s)
    finally:
        await consumer.stop()
        await admin.close()


@contextmanager
def running_platform(
    logs: Path,
    intake_port: int = 18000,
    deadline_seconds: float = 600,
    start_timeout: float = 60,
    leave_out: tuple[str, ...] = (),
) -> Iterator[Platform]:
    """Every service started (but ``leave_out``, for the caller to start its own way), the
    intake answering; on exit SIGTERM to all of them.

    Raises RuntimeError when something does not start, or does not stop cleanly (exit 0)."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", intake_port)) == 0:
            raise RuntimeError(f"port {intake_port} is taken: is another platform running?")
    logs.mkdir(parents=True, exist_ok=True)
    platform = Platform(logs, intake_port, deadline_seconds)
    for name in services():
        if name not in leave_out:
            platform.start(name)
    deadline = time.monotonic() + start_timeout
    while True:
        try:
            if httpx.get(f"{platform.url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        dead = [n for n, p in platform.procs.items() if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            details = "\n".join(f"--- {n}\n{platform.log_tail(n)}" for n in dead or platform.procs)
            for name in list(platform.procs):
                platform.stop(name)
            raise RuntimeError(f"platform did not start: {dead or 'timeout'}\n{details}")
        time.sleep(0.3)
    try:
        platform.wait_caught_up()
        yield platform
    finally:
        codes = {name: platform.stop(name) for name in list(platform.procs)}
        codes = {n: c for n, c in codes.items() if "#" not in n or c != -9}
        bad = {n: c for n, c in codes.items() if c != 0}
        if bad:
            raise RuntimeError(
                "services did not exit cleanly on SIGTERM: "
                + "\n".join(f"--- {n} ({c})\n{platform.log_tail(n)}" for n, c in bad.items())
            )
