"""The whole platform as separate processes, as ``make run`` starts it, on the real broker
and database; tests talk to it over HTTP only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "customs", "ciq", "port", "aggregator", "projector")
INTAKE_PORT = int(os.environ.get("E2E_INTAKE_PORT", "18000"))
DEADLINE_SECONDS = 600  # longer than any stall the chaos tests cause: nothing times out


class Platform:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.url = f"http://127.0.0.1:{INTAKE_PORT}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics_ports = {s: 19100 + i for i, s in enumerate(SERVICES) if s != "intake"}
        self.env = {
            **os.environ,
            "INTAKE_PORT": str(INTAKE_PORT),
            "AGGREGATOR_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
            **{f"{s.upper()}_METRICS_PORT": str(p) for s, p in self.metrics_ports.items()},
        }

    def start(self, name: str) -> None:
        """Start ``name`` (a service, or ``service#n`` for one more instance of it)."""
        module = name.split("#")[0]
        env = dict(self.env)
        if "#" in name:  # an extra instance serves no metrics port: the first one has it
            env[f"{module.upper()}_METRICS_PORT"] = "0"
        log = (self.logs / f"{name.replace('#', '-')}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", f"services.{module}"],
            cwd=ROOT,
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

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.procs.items()}

    def log_tail(self, name: str) -> str:
        return (self.logs / f"{name.replace('#', '-')}.log").read_text(errors="replace")[-3000:]


@pytest.fixture(scope="package")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    platform = Platform(tmp_path_factory.mktemp("platform-logs"))
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", INTAKE_PORT)) == 0:
            pytest.fail(f"port {INTAKE_PORT} is taken: is a platform from another run alive?")
    for name in SERVICES:
        platform.start(name)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{platform.url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        dead = [n for n, p in platform.procs.items() if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            details = "\n".join(f"--- {n}\n{platform.log_tail(n)}" for n in dead or SERVICES)
            for name in list(platform.procs):
                platform.stop(name)
            pytest.fail(f"platform did not start: {dead or 'timeout'}\n{details}")
        time.sleep(0.3)
    yield platform
    codes = {name: platform.stop(name) for name in list(platform.procs)}
    bad = {n: c for n, c in codes.items() if c != 0}
    assert not bad, "services did not exit cleanly on SIGTERM: " + "\n".join(
        f"--- {n} ({c})\n{platform.log_tail(n)}" for n, c in bad.items()
    )
