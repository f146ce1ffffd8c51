"""Benchmark (not a test): Kafka's own performance tools on the platform's broker.

The reference figures the platform is compared with: ``ProducerPerformance`` (the raw
produce throughput of the Java client, acks=all) and ``EndToEndLatency`` (produce one
record, consume it, one at a time: the floor of any hop's latency). Both run on the broker of
the settings (``KAFKA_*`` from the environment), as the principal of those settings (the
stack's ``admin``: ``set -a; . var/credentials/admin.env``), with the jars the local stack
caches (``deploy/local/components.py``). Each run writes to scratch topics ``bench.kafka.<id>``
(6 partitions), deleted afterwards.

``python -m bench.kafkatools [records] [messages]`` (defaults 200,000 and 5,000).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import NewTopic

from singlewindow.kafka.admin import admin_client
from singlewindow.settings import Settings, get_settings

RECORD_SIZE = 1024
JAVA_HEAP = "-Xmx512m"
TOOL_TIMEOUT_S = 900.0
LEADERS_TIMEOUT_S = 60.0
LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
# The tools log only warnings and errors, to stderr (their figures go to stdout).
LOG4J2 = """\
status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %d{HH:mm:ss.SSS} %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = err
"""


@dataclass(frozen=True)
class ProducerFigures:
    """The summary line of ``ProducerPerformance`` (latencies from send to acknowledgement)."""

    records: int
    records_per_s: float
    mb_per_s: float
    avg_ms: float
    max_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float


@dataclass(frozen=True)
class LatencyFigures:
    """What ``EndToEndLatency`` prints: produce-to-consume latency of one record at a time."""

    messages: int
    avg_ms: float
    p50_ms: float
    p99_ms: float
    p999_ms: float


def kafka_libs() -> Path:
    """The folder of the Kafka jars the local stack caches (kafka-tools among them)."""
    from deploy.local.components import Kafka

    libs = Kafka().libs
    if not any(libs.glob("kafka-tools-*.jar")):
        raise RuntimeError(f"no kafka-tools jar in {libs}: run deploy/local/stack.py up once")
    return libs


def _escape_properties(value: str) -> str:
    """A value for a Java properties file (a backslash escapes; leading blanks are dropped)."""
    value = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return "\\" + value if value[:1] in (" ", "\t") else value


def _jaas_quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def client_properties(settings: Settings) -> str:
    """The Java client properties that connect as the principal of ``settings``."""
    protocol = settings.kafka_security_protocol
    lines = [f"security.protocol={protocol}"]
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        mechanism = settings.kafka_sasl_mechanism
        password = settings.kafka_sasl_password
        jaas = (
            f"{LOGIN_MODULES[mechanism]} required"
            f" username={_jaas_quoted(settings.kafka_sasl_username or '')}"
            f" password={_jaas_quoted(password.get_secret_value() if password else '')};"
        )
        lines += [f"sasl.mechanism={mechanism}", f"sasl.jaas.config={_escape_properties(jaas)}"]
    if protocol in ("SSL", "SASL_SSL") and settings.kafka_ssl_cafile:
        lines += [
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={_escape_properties(str(settings.kafka_ssl_cafile))}",
        ]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


@contextlib.contextmanager
def tool_config(settings: Settings) -> Iterator[Path]:
    """A private temp folder holding ``client.properties`` (0600: it holds the password)
    and the tools' log4j2 configuration; removed on exit."""
    with tempfile.TemporaryDirectory(prefix="sw-kafkatools-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o700)
        _write_private(folder / "client.properties", client_properties(settings))
        (folder / "log4j2.properties").write_text(LOG4J2)
        yield folder


@contextlib.asynccontextmanager
async def scratch_topics(
    settings: Settings, names: list[str], partitions: int = 6, replication_factor: int = 1
) -> AsyncIterator[list[str]]:
    """Create topics, wait until every partition has a leader, delete them on exit."""
    admin = await admin_client(settings)
    try:
        await admin.create_topics(
            [
                NewTopic(n, num_partitions=partitions, replication_factor=replication_factor)
                for n in names
            ]
        )
        deadline = asyncio.get_running_loop().time() + LEADERS_TIMEOUT_S
        while True:
            try:
                described = await admin.describe_topics(names)
                led = all(
                    not t["error_code"]
                    and len(t["partitions"]) == partitions
                    and all(p["leader"] >= 0 for p in t["partitions"])
                    for t in described
                )
            except Exception:
                led = False
            if led:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"scratch topics {names} have no leaders after creation")
            await asyncio.sleep(0.2)
        yield names
    finally:
        try:
            await admin.delete_topics(names)
        except Exception as exc:  # report, do not mask the original error
            print(f"deleting scratch topics {names} failed: {exc!r}", file=sys.stderr)
        await admin.close()


async def delete_groups(settings: Settings, groups: list[str]) -> None:
    """Remove consumer groups (aiokafka's admin has no call for it: the request itself).
    Best effort: a leftover empty group is harmless, so failures are only reported."""
    from aiokafka.protocol.admin import DeleteGroupsRequest

    if not groups:
        return
    admin = await admin_client(settings)
    try:
        for group in groups:
            coordinator = await admin.find_coordinator(group)
            response = await admin._send_request_to_node(coordinator, DeleteGroupsRequest([group]))
            for name, error_code in response.results:
                if error_code:
                    print(f"deleting group {name}: error {error_code}", file=sys.stderr)
    except Exception as exc:
        print(f"deleting the groups {groups} failed: {exc!r}", file=sys.stderr)
    finally:
        await admin.close()


async def _group_names(settings: Settings) -> set[str]:
    admin = await admin_client(settings)
    try:
        return {name for name, _ in await admin.list_consumer_groups()}
    finally:
        await admin.close()


def scratch_name(prefix: str = "bench.kafka") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


async def run_tool(config: Path, tool: str, args: list[str]) -> str:
    """Run ``org.apache.kafka.tools.<tool>`` with a small heap; its stdout (raises on failure)."""
    command = [
        "java",
        "-Xms128m",
        JAVA_HEAP,
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={config / 'log4j2.properties'}",
        "-cp",
        f"{kafka_libs()}/*",
        f"org.apache.kafka.tools.{tool}",
        *args,
    ]
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=config,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TOOL_TIMEOUT_S)
    except BaseException:  # a timeout, a cancellation: the JVM does not outlive the call
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join((stdout + stderr).splitlines()[-30:])
        raise RuntimeError(f"{tool} exited with {proc.returncode}:\n{tail}")
    return stdout


_NUMBER = r"([0-9][0-9.,]*)"
PRODUCER_SUMMARY = re.compile(
    rf"{_NUMBER} records sent, {_NUMBER} records/sec \({_NUMBER} MB/sec\), "
    rf"{_NUMBER} ms avg latency, {_NUMBER} ms max latency, {_NUMBER} ms 50th, "
    rf"{_NUMBER} ms 95th, {_NUMBER} ms 99th, {_NUMBER} ms 99.9th"
)
TOOL_GROUP = re.compile(r"test-group-([0-9]+)")
LATENCY_AVG = re.compile(rf"Avg latency: {_NUMBER} ms")
LATENCY_PERCENTILES = re.compile(
    rf"Percentiles: 50th = {_NUMBER}, 99th = {_NUMBER}, 99\.9th = {_NUMBER}"
)


def _number(text: str) -> float:
    return float(text.replace(",", "").rstrip("."))


def parse_producer(output: str) -> ProducerFigures:
    """The last summary line of ``ProducerPerformance`` (the overall one)."""
    matches = PRODUCER_SUMMARY.findall(output)
    if not matches:
        raise RuntimeError(f"no summary line in ProducerPerformance's output:\n{output[-2000:]}")
    values = [_number(v) for v in matches[-1]]
    return ProducerFigures(int(values[0]), *values[1:])


def parse_latency(output: str, messages: int) -> LatencyFigures:
    """The average and percentile lines of ``EndToEndLatency``."""
    avg = LATENCY_AVG.search(output)
    percentiles = LATENCY_PERCENTILES.search(output)
    if not (avg and percentiles):
        raise RuntimeError(f"no figures in EndToEndLatency's output:\n{output[-2000:]}")
    p50, p99, p999 = (_number(v) for v in percentiles.groups())
    return LatencyFigures(messages, _number(avg.group(1)), p50, p99, p999)


async def kafka_producer(
    settings: Settings, records: int = 200_000, record_size: int = RECORD_SIZE
) -> ProducerFigures:
    """``ProducerPerformance``: ``records`` of ``record_size`` bytes, acks=all, unthrottled,
    into a scratch topic of ``settings.topic_partitions`` partitions."""
    topic = scratch_name()
    with tool_config(settings) as config:
        async with scratch_topics(settings, [topic], settings.topic_partitions):
            output = await run_tool(
                config,
                "ProducerPerformance",
                [
                    "--bootstrap-server",
                    settings.kafka_bootstrap_servers,
                    "--topic",
                    topic,
                    "--num-records",
                    str(records),
                    "--record-size",
                    str(record_size),
                    "--throughput",
                    "-1",
                    "--command-config",
                    str(config / "client.properties"),
                    "--command-property",
                    "acks=all",
                ],
            )
    return parse_producer(output)


async def kafka_latency(
    settings: Settings, messages: int = 5_000, record_size: int = RECORD_SIZE
) -> LatencyFigures:
    """``EndToEndLatency``: ``messages`` of ``record_size`` bytes, acks=all, each sent once the
    previous one was consumed, through a scratch topic of ``settings.topic_partitions``."""
    topic = scratch_name()
    # The tool's consumer names its group "test-group-<epoch ms>" whatever the config says:
    # the groups of that form made during the run are removed afterwards.
    before, since = await _group_names(settings), int(time.time() * 1000)
    with tool_config(settings) as config:
        async with scratch_topics(settings, [topic], settings.topic_partitions):
            try:
                output = await run_tool(
                    config,
                    "EndToEndLatency",
                    [
                        "--bootstrap-server",
                        settings.kafka_bootstrap_servers,
                        "--topic",
                        topic,
                        "--num-records",
                        str(messages),
                        "--producer-acks",
                        "all",
                        "--record-size",
                        str(record_size),
                        "--command-config",
                        str(config / "client.properties"),
                    ],
                )
            finally:
                until = int(time.time() * 1000)
                made = [
                    name
                    for name in await _group_names(settings) - before
                    if (m := TOOL_GROUP.fullmatch(name)) and since <= int(m.group(1)) <= until
                ]
                await delete_groups(settings, made)
    return parse_latency(output, messages)


async def _main(records: int, messages: int) -> None:
    settings = get_settings()
    produced = await kafka_producer(settings, records)
    print(
        f"ProducerPerformance: {produced.records:,} x {RECORD_SIZE} B, acks=all: "
        f"{produced.records_per_s:,.0f} records/s ({produced.mb_per_s:.1f} MB/s), "
        f"latency avg {produced.avg_ms:.0f} ms, p99 {produced.p99_ms:.0f} ms"
    )
    latency = await kafka_latency(settings, messages)
    print(
        f"EndToEndLatency: {latency.messages:,} x {RECORD_SIZE} B, acks=all: "
        f"avg {latency.avg_ms:.2f} ms, p50 {latency.p50_ms:.0f} ms, "
        f"p99 {latency.p99_ms:.0f} ms, p99.9 {latency.p999_ms:.0f} ms"
    )


def main() -> None:
    """``python -m bench.kafkatools [records] [messages]``."""
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(_main(*(args + [200_000, 5_000][len(args) :])))


if __name__ == "__main__":
    main()
