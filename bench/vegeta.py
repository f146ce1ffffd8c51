"""Benchmark (not a test): the HTTP load generator, vegeta, driven from Python.

`vegeta <https://github.com/tsenart/vegeta>`_ (Go) keeps a constant request rate however
slow the server answers (an open model: no coordinated omission), or, with rate 0, saturates
the server with a fixed number of workers. :func:`vegeta_binary` builds it once with
``go install`` into ``~/.cache/singlewindow/vegeta-<version>/bin``; :func:`attack` runs an
attack on JSON targets (one per request, cycled) and returns every result, with the request's
timestamp, latency, status and response body, and vegeta's own CPU time (to show that the
generator was not the bottleneck).

``python -m bench.vegeta [rate] [seconds] [url]``: an attack at ``rate``/s (default 500, for
5 s) on ``url``, by default on a trivial local HTTP server started for the purpose.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "singlewindow"
NO_TARGETS = "no targets to attack"  # vegeta's error once a lazily read targets file is used up

Target = tuple[dict[str, str], bytes]  # (headers, body)


@dataclass(frozen=True)
class Result:
    """One request of an attack."""

    seq: int
    timestamp: float  # when the request was sent, epoch seconds
    latency_s: float  # until the response body was read
    status: int  # HTTP status code; 0 when no response (see ``error``)
    body: bytes
    error: str

    @property
    def end(self) -> float:
        """When the response was read, epoch seconds."""
        return self.timestamp + self.latency_s


class AttackResults(list[Result]):
    """The results of an attack, in request order, and what the attack cost vegeta."""

    def __init__(
        self, results: Iterable[Result], cpu_user_s: float, cpu_sys_s: float, wall_s: float
    ) -> None:
        super().__init__(results)
        self.cpu_user_s, self.cpu_sys_s, self.wall_s = cpu_user_s, cpu_sys_s, wall_s

    @property
    def cpu_s(self) -> float:
        """vegeta's CPU time, user + system."""
        return self.cpu_user_s + self.cpu_sys_s


@dataclass(frozen=True)
class Summary:
    """What vegeta's own report would say, and its CPU use."""

    requests: int
    rate: float  # requests sent per second (first to last request sent)
    throughput: float  # 2xx responses per second (first request to last response)
    success: float  # share of 2xx responses
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    codes: dict[int, int]
    cpu_s: float
    cpu_share: float  # vegeta's CPU time over the attack's wall time (1.0 = one core)


def vegeta_binary() -> Path:
    """vegeta, built with ``go install`` on first use (Go's module proxy), then cached."""
    binary = CACHE / f"vegeta-{VEGETA_VERSION}" / "bin" / "vegeta"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(
            f"Go is needed to build vegeta ({VEGETA_MODULE}@{VEGETA_VERSION}): install Go 1.22+"
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vegeta-build-", dir=binary.parent.parent) as gobin:
        done = subprocess.run(
            [go, "install", f"{VEGETA_MODULE}@{VEGETA_VERSION}"],
            env={**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0"},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"go install {VEGETA_MODULE}@{VEGETA_VERSION} failed:\n{done.stderr}"
            )
        os.replace(Path(gobin) / "vegeta", binary)  # atomic: never a half-written binary
    return binary


def _json_target(url: str, method: str, target: Target) -> str:
    headers, body = target
    line = {
        "method": method,
        "url": url,
        "header": {name: [value] for name, value in headers.items()},
        "body": base64.b64encode(body).decode(),
    }
    return json.dumps(line, separators=(",", ":"))


def _epoch(text: str) -> float:
    """An RFC 3339 timestamp with up to nanoseconds (Go's) as epoch seconds."""
    text = text.replace("Z", "+00:00")
    cut = next((i for i in range(19, len(text)) if text[i] in "+-"), len(text))
    head, zone = text[:cut], text[cut:]
    whole, _, fraction = head.partition(".")
    seconds = dt.datetime.fromisoformat(whole + (zone or "+00:00")).timestamp()
    return seconds + (float("0." + fraction) if fraction else 0.0)


def parse_results(lines: Iterable[str]) -> list[Result]:
    """``vegeta encode -to json`` output, one result a line (the ends of a used-up targets
    file are dropped)."""
    results = []
    for line in lines:
        if not line.strip():
            continue
        raw = json.loads(line)
        if raw.get("error") == NO_TARGETS and not raw.get("code"):
            continue
        results.append(
            Result(
                seq=int(raw["seq"]),
                timestamp=_epoch(raw["timestamp"]),
                latency_s=int(raw["latency"]) / 1e9,
                status=int(raw["code"]),
                body=base64.b64decode(raw["body"]) if raw.get("body") else b"",
                error=raw.get("error") or "",
            )
        )
    results.sort(key=lambda r: r.seq)
    return results


def _run(command: list[str], timeout_s: float) -> tuple[int, float, float]:
    """Run ``command`` to its end (killed after ``timeout_s``): exit code and the user and
    system CPU time of that process alone (``wait4``: its own rusage)."""
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    killer = threading.Timer(timeout_s, proc.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime, usage.ru_stime


def attack(
    url: str,
    targets: Sequence[Target],
    rate: int | None = None,
    duration_s: float | None = None,
    count: int | None = None,
    workers: int = 10,
    max_workers: int | None = None,
    method: str = "POST",
    timeout_s: float = 30.0,
    connections: int | None = None,
) -> AttackResults:
    """Attack ``url`` with ``targets`` (headers, body), cycled, at ``rate`` requests/s (None or
    0: as fast as ``max_workers`` workers go, ``workers`` if not given) for ``duration_s``
    seconds or ``count`` requests (whichever ends first when both are given).

    Every result, in request order, with vegeta's CPU time (``cpu_user_s``, ``cpu_sys_s``)
    and the attack's wall time. Blocking: from async code, ``asyncio.to_thread(attack, ...)``.
    """
    if not targets:
        raise ValueError("no targets")
    if duration_s is None and count is None:
        raise ValueError("give duration_s or count")
    binary = vegeta_binary()
    with tempfile.TemporaryDirectory(prefix="sw-vegeta-") as tmp:
        folder = Path(tmp)
        targets_file, results_file = folder / "targets.jsonl", folder / "results.bin"
        chosen = targets if count is None else [targets[i % len(targets)] for i in range(count)]
        with targets_file.open("w") as out:
            for target in chosen:
                out.write(_json_target(url, method, target) + "\n")
        command = [
            str(binary),
            "attack",
            "-format=json",
            f"-targets={targets_file}",
            f"-output={results_file}",
            f"-timeout={timeout_s}s",
            f"-workers={workers}",
            f"-duration={duration_s or 0}s",
        ]
        if count is not None:
            command.append("-lazy")  # the attack ends when the targets are used up
        if rate:
            command.append(f"-rate={rate}/s")
            if max_workers:
                command.append(f"-max-workers={max_workers}")
        else:
            command += ["-rate=0", f"-max-workers={max_workers or workers}"]
        if connections:
            command.append(f"-max-connections={connections}")
        bound = (duration_s or 0) + (count or 0) / (rate or 100) + timeout_s + 60
        started = time.monotonic()
        code, user, system = _run(command, bound)
        wall = time.monotonic() - started
        if code != 0:
            raise RuntimeError(f"vegeta attack exited with {code}")
        encoded = subprocess.run(
            [str(binary), "encode", "-to", "json", str(results_file)],
            capture_output=True,
            text=True,
            check=True,
        )
    return AttackResults(parse_results(encoded.stdout.splitlines()), user, system, wall)


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def summary(results: AttackResults) -> Summary:
    """The figures of an attack (vegeta's ``report``, plus its CPU use)."""
    if not results:
        return Summary(0, 0, 0, 0, 0, 0, 0, 0, {}, results.cpu_s, 0)
    first = min(r.timestamp for r in results)
    sent = max(r.timestamp for r in results) - first
    ok = [r for r in results if 200 <= r.status < 300]
    answered = max(r.end for r in results) - first
    latencies = sorted(r.latency_s * 1000 for r in results)
    return Summary(
        requests=len(results),
        rate=len(results) / sent if sent > 0 else 0.0,  # as vegeta reports it
        throughput=len(ok) / answered if answered > 0 else 0.0,
        success=len(ok) / len(results),
        p50_ms=statistics.median(latencies),
        p95_ms=_percentile(latencies, 0.95),
        p99_ms=_percentile(latencies, 0.99),
        max_ms=latencies[-1],
        codes=dict(Counter(r.status for r in results)),
        cpu_s=results.cpu_s,
        cpu_share=results.cpu_s / results.wall_s if results.wall_s > 0 else 0.0,
    )


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers every POST 200 with a small JSON body naming the request's length."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a real server
    disable_nagle_algorithm = True  # else headers and body, two writes, wait on a delayed ACK

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(size)
        body = json.dumps({"received": size}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def trivial_server() -> Iterator[str]:
    """A threaded HTTP/1.1 server on a free loopback port, answering POSTs: its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _show(label: str, results: AttackResults) -> None:
    s = summary(results)
    print(
        f"{label}: {s.requests:,} requests, rate {s.rate:,.1f}/s, throughput "
        f"{s.throughput:,.1f}/s, success {s.success:.1%}, codes {s.codes}, latency p50 "
        f"{s.p50_ms:.1f} ms p95 {s.p95_ms:.1f} ms p99 {s.p99_ms:.1f} ms max {s.max_ms:.1f} ms; "
        f"vegeta CPU {s.cpu_s:.2f} s ({s.cpu_share:.0%} of a core over {results.wall_s:.1f} s)"
    )


def main() -> None:
    """``python -m bench.vegeta [rate] [seconds] [url]``."""
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    targets = [
        ({"Content-Type": "application/json"}, json.dumps({"n": i}).encode()) for i in range(10)
    ]
    print(f"vegeta: {vegeta_binary()}")
    with contextlib.ExitStack() as stack:
        url = sys.argv[3] if len(sys.argv) > 3 else stack.enter_context(trivial_server())
        _show(f"{rate}/s for {seconds:g} s on {url}", attack(url, targets, rate, seconds))


if __name__ == "__main__":
    main()
