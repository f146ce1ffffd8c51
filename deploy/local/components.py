"""The two local servers: how each is installed, started, probed and stopped.

Kafka runs secured (see ``server.properties``): TLS with a CA made for this stack, SCRAM
users made at format time, ``StandardAuthorizer`` with the ACLs of
:mod:`singlewindow.security`. Its trust material and each principal's credentials file are
in ``var/`` (:mod:`deploy.local.trust`). Ports: ``SW_LOCAL_KAFKA_PORT`` (clients; the
controller listens on the next port) and ``SW_LOCAL_MONGODB_PORT``; data: ``SW_LOCAL_VAR``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from deploy.local.trust import BROKER_CN, LocalTrust, write_private

if TYPE_CHECKING:
    from aiokafka.admin import AIOKafkaAdminClient

    from singlewindow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VAR = Path(os.environ.get("SW_LOCAL_VAR", ROOT / "var"))
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "singlewindow"

KAFKA_VERSION = "4.2.0"
FERRETDB_VERSION = "v1.24.2"
# FerretDB v1.24's SQLite backend creates its _id index on `_ferretdb_sjson->"_id"` but queries
# `_ferretdb_sjson->'$._id'`; SQLite matches index expressions textually, so every point read,
# update and replace scans the whole table (measured: 30 ms per read at 2,000 documents, and
# growing). The two expressions mean the same; this one-line patch makes queries use the index.
ID_COLUMN_UPSTREAM = "IDColumn = DefaultColumn + \"->'$._id'\""
ID_COLUMN_PATCHED = 'IDColumn = DefaultColumn + `->"_id"`'
FERRETDB_BUILD = f"{FERRETDB_VERSION}-idindex"
START_TIMEOUT_S = 240.0  # a broker restarted after an unclean stop recovers its logs first
BROKEN_FOR_S = 10.0  # a server that listens but stays broken this long is repaired or restarted
BROKEN_CHECK_S = 5.0  # how often a listening server that is not ready is checked for that
BROKEN_RESTARTS = 2
STOP_TIMEOUT_S = 120.0  # a clean stop on a loaded machine; SIGKILL only after this
MECHANISM = "SCRAM-SHA-512"


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def new_cluster_id(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A KRaft cluster id as Kafka's own ``Uuid.randomUuid`` makes one: 16 random bytes in
    URL-safe base64, drawn again while the text starts with ``-`` (a command line would read
    it as an option: ``-t -Xy…`` made one format in 64 fail)."""
    while True:
        text = base64.urlsafe_b64encode(random_bytes(16)).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class Component:
    """A server process this stack owns, tracked by a pid file in ``var/``."""

    name: str
    host = "127.0.0.1"
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pidfile(self) -> Path:
        return VAR / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return VAR / "logs" / f"{self.name}.out"

    def process(self) -> psutil.Process | None:
        try:
            pid = int(self.pidfile.read_text())
            proc = psutil.Process(pid)
        except (OSError, ValueError, psutil.Error):
            return None
        return proc if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE else None

    def running(self) -> bool:
        return self.process() is not None

    def ports(self) -> list[int]:
        """Every port the server listens on."""
        return [self.port]

    def outdated(self) -> bool:
        """Whether the running server was started with a configuration this stack no longer
        makes (it is then restarted by ``up``)."""
        return False

    def install(self) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Per-data-folder set-up before the first start."""

    def start(self) -> None:
        """Start the server; return once it serves clients. A server that comes up broken
        (:meth:`broken`) is mended in place (:meth:`repair`) or else restarted, up to
        ``BROKEN_RESTARTS`` times, saying why."""
        for port in self.ports():
            if _port_open(self.host, port):
                raise RuntimeError(f"{self.name}: {self.host}:{port} is taken by another process")
        self.prepare()
        for restarts_left in range(BROKEN_RESTARTS, -1, -1):
            why = self._launch_and_wait()
            if why is None:
                return
            self.stop()
            if not restarts_left:
                raise RuntimeError(f"{self.name} {why}{self.diagnosis()}")
            print(f"{self.name} {why}; restarting it{self.diagnosis()}", flush=True)

    def _launch_and_wait(self) -> str | None:
        """Launch the process, wait until it serves: None, or why it came up broken (raises
        RuntimeError when it exits or does not serve in time)."""
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("ab") as log:
            proc = subprocess.Popen(  # detached: outlives this command, stopped by `down`
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=VAR,
            )
        self.pidfile.write_text(str(proc.pid))
        started = time.monotonic()
        broken_since: float | None = None
        next_check = 0.0
        while not (_port_open(self.host, self.port) and self.ready()):
            now = time.monotonic()
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited ({proc.returncode}); see {self.logfile}{self.diagnosis()}"
                )
            if now - started > START_TIMEOUT_S:
                self.stop()
                raise RuntimeError(
                    f"{self.name} not serving after {START_TIMEOUT_S}s{self.diagnosis()}"
                )
            if now >= next_check and _port_open(self.host, self.port):
                next_check = now + BROKEN_CHECK_S
                why = self.broken()
                if why is None:
                    broken_since = None
                elif broken_since is None:
                    broken_since = now
                elif now - broken_since >= BROKEN_FOR_S:
                    if not self.repair(why):
                        return f"{why} for {BROKEN_FOR_S:.0f}s"
                    broken_since = None
            time.sleep(0.2)
        return None

    def ready(self) -> bool:
        """Whether the server serves clients (an open port may only mean it is recovering)."""
        return True

    def broken(self) -> str | None:
        """Why the server, though listening, can never serve (None: it may yet)."""
        return None

    def repair(self, why: str) -> bool:
        """Mend a server found broken in place (True), or leave it to a restart (False)."""
        return False

    def diagnosis(self) -> str:
        """What the server's logs say about a failed start (appended to messages)."""
        return ""

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """A clean stop: SIGTERM, wait for the process to exit; SIGKILL only after ``timeout``.

        Returns whether something was running."""
        return self._end(signal_first=True, timeout=timeout)

    def kill(self) -> bool:
        """kill -9: no shutdown at all (a crash, for fault tests)."""
        return self._end(signal_first=False, timeout=0)

    def _end(self, signal_first: bool, timeout: float) -> bool:
        proc = self.process()
        if proc is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        family = [proc, *proc.children(recursive=True)]
        alive = family
        if signal_first:
            for p in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.terminate()
            _, alive = psutil.wait_procs(family, timeout=timeout)
            if alive:
                print(f"{self.name}: no clean exit within {timeout}s; killing it", flush=True)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        _, unkillable = psutil.wait_procs(alive, timeout=30)
        if unkillable:
            raise RuntimeError(f"{self.name}: {unkillable} did not exit after SIGKILL")
        self.pidfile.unlink(missing_ok=True)
        return True


class Kafka(Component):
    """Apache Kafka, KRaft combined mode, one node, transactions usable."""

    name = "kafka"
    port = int(os.environ.get("SW_LOCAL_KAFKA_PORT", "9092"))

    @property
    def libs(self) -> Path:
        return CACHE / f"kafka-{KAFKA_VERSION}" / "libs"

    def install(self) -> None:
        if (self.libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
            return
        if shutil.which("mvn") is None:
            raise RuntimeError("Maven (mvn) is needed to fetch the Kafka jars")
        tmp = self.libs.with_name("libs.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(HERE / "pom.xml"),
                "dependency:copy-dependencies",
                f"-Dkafka.version={KAFKA_VERSION}",
                f"-DoutputDirectory={tmp}",
                "-DincludeScope=runtime",
            ],
            check=True,
        )
        tmp.replace(self.libs)

    @property
    def properties(self) -> Path:
        return VAR / "kafka" / "server.properties"

    @property
    def data(self) -> Path:
        return VAR / "kafka" / "data"

    @property
    def marker(self) -> Path:
        """Written into the data folder once it is formatted secured: the SCRAM users it
        holds. A data folder without it predates the secured stack."""
        return self.data / "singlewindow-security.json"

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def bootstrap(self) -> str:
        return f"localhost:{self.port}"

    @property
    def stack_port(self) -> int:
        """The loopback listener that takes only the broker's own certificate (mutual TLS)."""
        return self.port + 2

    def ports(self) -> list[int]:
        return [self.port, self.controller_port, self.stack_port]

    def outdated(self) -> bool:
        return not self.marker.exists()

    @property
    def trust(self) -> LocalTrust:
        return LocalTrust(VAR)

    def prepare(self) -> None:
        """Trust material, the broker's configuration, a formatted data folder with the SCRAM
        users, every principal's credentials file. Cheap when all are there already."""
        from singlewindow.security import ADMIN, principals, super_users

        self._retire_unsecured_data()
        trust = self.trust
        if (self.data / "meta.properties").exists() and trust.load_secrets() is None:
            raise RuntimeError(
                f"{trust.secrets_file} is gone, so the passwords of the users in {self.data} "
                f"are unknown: remove {VAR} (`make clean`) to start afresh"
            )
        secrets_ = trust.ensure_secrets(p.name for p in principals())
        trust.ensure_certificates()
        trust.ensure_signing_keys()
        template = (HERE / "server.properties").read_text()
        supers = [f"User:{name}" for name in super_users()] + [f"User:CN={BROKER_CN}"]
        config = template.format(
            port=self.port,
            controller_port=self.controller_port,
            stack_port=self.stack_port,
            data=self.data,
            broker_cn=BROKER_CN,
            admin_user=ADMIN,
            admin_password=secrets_.passwords[ADMIN],
            keystore=trust.broker_pem,
            truststore=trust.ca_cert,
            super_users=";".join(supers),
        )
        write_private(self.properties, config.encode())
        if not (self.data / "meta.properties").exists():
            self._format(secrets_.passwords)
        trust.write_credentials(self.bootstrap, secrets_)

    def _retire_unsecured_data(self) -> None:
        """A data folder formatted before the stack was secured has no SCRAM users and
        cannot be secured in place: one this stack made (its server.properties says so) is
        moved aside, a new one is formatted; any other is left alone, and ``up`` stops."""
        if not (self.data / "meta.properties").exists() or self.marker.exists():
            return
        old = self.properties.read_text() if self.properties.exists() else ""
        made_here = old.startswith("# Local single-node Kafka") and (
            f"log.dirs={self.data}\n" in old
        )
        if not made_here:
            raise RuntimeError(
                f"{self.data} holds Kafka data this stack did not make (or made before it "
                f"was secured and lost track of): remove it, or {VAR} (`make clean`), and "
                "`make up` again"
            )
        aside = self.data.with_name(f"data.unsecured-{dt.datetime.now():%Y%m%d-%H%M%S}")
        self.data.rename(aside)
        print(
            f"kafka: {self.data} predates the secured stack (no SCRAM users, no ACLs): "
            f"moved to {aside} (delete it when you no longer need it); formatting anew",
            flush=True,
        )

    def _format(self, passwords: dict[str, str]) -> None:
        """Format the data folder with every principal's SCRAM credentials; the passwords go
        to the JVM in an argument file (0600), never on a command line."""
        args = [
            *self._java(),
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            f"--cluster-id={new_cluster_id()}",
            "-c",
            str(self.properties),
        ]
        for name, password in sorted(passwords.items()):
            args += ["--add-scram", f"{MECHANISM}=[name={name},password={password}]"]
        argfile = VAR / "kafka" / ".format.args"
        quoted = ('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in args[1:])
        write_private(argfile, ("\n".join(quoted) + "\n").encode())
        try:
            done = subprocess.run(
                [args[0], f"@{argfile}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=VAR
            )
        finally:
            argfile.unlink(missing_ok=True)
        if done.returncode:
            raise RuntimeError(
                f"kafka: formatting {self.data} failed (exit {done.returncode}): "
                + done.stderr.decode(errors="replace").strip()
            )
        write_private(
            self.marker,
            json.dumps({"scram_mechanism": MECHANISM, "scram_users": sorted(passwords)}).encode(),
        )

    def scram_users(self) -> set[str]:
        """The SCRAM users the data folder holds (by the marker)."""
        return set(json.loads(self.marker.read_text())["scram_users"])

    def admin_settings(self) -> Settings:
        """Settings that connect to this broker as the stack's super user."""
        from singlewindow.security import ADMIN

        return self.trust.settings(ADMIN)

    async def secure(self) -> tuple[set[str], int, int]:
        """Give the running broker what the declaration says: SCRAM users added to the
        declaration since the data folder was formatted, and exactly the declared ACLs.
        Returns the users added and the numbers of ACLs created and deleted."""
        from singlewindow.kafka.acls import alter_scram_users, reconcile_acls
        from singlewindow.kafka.admin import admin_client
        from singlewindow.security import acls, principals

        # the broker may have been running since before a principal was declared
        secrets_ = self.trust.ensure_secrets(p.name for p in principals())
        self.trust.ensure_signing_keys()
        self.trust.write_credentials(self.bootstrap, secrets_)
        new = set(secrets_.passwords) - self.scram_users()
        admin = await admin_client(self.admin_settings(), ready_timeout=60)
        try:
            await alter_scram_users(admin, {u: secrets_.passwords[u] for u in new}, (), MECHANISM)
            if new:
                write_private(
                    self.marker,
                    json.dumps(
                        {"scram_mechanism": MECHANISM, "scram_users": sorted(secrets_.passwords)}
                    ).encode(),
                )
            created, deleted = await reconcile_acls(admin, acls())
        finally:
            await admin.close()
        return new, len(created), len(deleted)

    def _java(self) -> list[str]:
        logs = VAR / "logs" / "kafka"
        logs.mkdir(parents=True, exist_ok=True)
        return [
            "java",
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={logs}",
            f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
        ]

    def command(self) -> list[str]:
        return [*self._java(), "kafka.Kafka", str(self.properties)]

    def ready(self) -> bool:
        """The broker answers metadata and every partition of the catalog's topics that
        exist has a leader: after a restart the port opens long before that."""
        try:
            return asyncio.run(asyncio.wait_for(_kafka_serves(self.admin_settings()), 10))
        except Exception:  # not yet: connection refused, timeouts, leaders not elected
            return False

    def broken(self) -> str | None:
        """A broker that serves TLS but refuses the SCRAM credentials of the stack's own
        admin. Kafka 4.2.0 (combined mode) sometimes comes back from a kill -9 so: its
        metadata log holds every SCRAM user, yet its SASL server fails every login at the
        client's first message (an unknown user), its own inter-broker client's included,
        and a restart on the same data does not help. Seen in CI and reproduced here on the
        kept data folder; writing the users again (:meth:`repair`) mends it at once."""
        try:
            refused = asyncio.run(asyncio.wait_for(_credentials_refused(self.admin_settings()), 10))
        except Exception:
            return None
        return "serves but refuses the stack's own SCRAM credentials" if refused else None

    def repair(self, why: str) -> bool:
        """Write every principal's SCRAM credentials again (AlterUserScramCredentials over
        the stack's mutual-TLS listener, as the broker's certificate, a super user): the
        broker's credential cache takes them from that change."""
        from singlewindow.kafka.acls import alter_scram_users

        secrets_ = self.trust.load_secrets()
        if secrets_ is None:
            return False
        print(f"kafka {why}; writing its SCRAM users again{self.diagnosis()}", flush=True)

        async def rewrite() -> None:
            admin = _stack_admin(self)
            await admin.start()
            try:
                await alter_scram_users(admin, secrets_.passwords, (), MECHANISM)
            finally:
                await admin.close()

        try:
            asyncio.run(asyncio.wait_for(rewrite(), 30))
        except Exception as exc:
            print(f"kafka: writing the SCRAM users again failed: {exc!r}", flush=True)
            return False
        return True

    def diagnosis(self) -> str:
        """The errors the broker logged since it was last started (at most 20 lines)."""
        log = VAR / "logs" / "kafka" / "server.log"
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        starts = [i for i, line in enumerate(lines) if "Starting controller" in line]
        since = lines[starts[-1] :] if starts else lines
        errors = [line[:400] for line in since if " ERROR " in line or " FATAL " in line]
        if not errors:
            return f" (no ERROR in {log} since the start)"
        return f"\n--- ERROR lines of {log} since the start:\n" + "\n".join(errors[-20:])


async def _kafka_serves(settings: Settings) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    from singlewindow.kafka.options import kafka_options
    from singlewindow.topics import catalog

    admin = AIOKafkaAdminClient(**kafka_options(settings), request_timeout_ms=5000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [t.name for t in catalog() if t.name in existing]
        for topic in await admin.describe_topics(names) if names else []:
            if topic["error_code"] or any(p["leader"] < 0 for p in topic["partitions"]):
                return False
        return True
    finally:
        await admin.close()


def _stack_admin(kafka: Kafka) -> AIOKafkaAdminClient:
    """An admin client on the broker's mutual-TLS loopback listener, as the broker itself."""
    import ssl

    from aiokafka.admin import AIOKafkaAdminClient

    context = ssl.create_default_context(cafile=str(kafka.trust.ca_cert))
    context.load_cert_chain(str(kafka.trust.broker_pem))
    return AIOKafkaAdminClient(
        bootstrap_servers=f"localhost:{kafka.stack_port}",
        security_protocol="SSL",
        ssl_context=context,
        request_timeout_ms=10_000,
    )


async def _credentials_refused(settings: Settings) -> bool:
    """Whether the broker completes TLS, then refuses these SCRAM credentials."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import SaslAuthenticationFailed

    from singlewindow.kafka.options import kafka_options

    options = kafka_options(settings)
    host, _, port = options.pop("bootstrap_servers").rpartition(":")
    try:
        conn = await create_conn(host, int(port), request_timeout_ms=5000, **options)
    except SaslAuthenticationFailed:
        return True
    except Exception:  # not listening, TLS not ready, a timeout: not a refusal
        return False
    conn.close()
    return False


class FerretDB(Component):
    """FerretDB v1.24 with its SQLite backend: the MongoDB wire protocol, locally."""

    name = "ferretdb"
    port = int(os.environ.get("SW_LOCAL_MONGODB_PORT", "27017"))

    @property
    def binary(self) -> Path:
        return CACHE / f"ferretdb-{FERRETDB_BUILD}" / "ferretdb"

    def install(self) -> None:
        if self.binary.exists():
            return
        if shutil.which("go") is None:
            raise RuntimeError("Go (1.22+) is needed to build FerretDB")
        module = f"github.com/FerretDB/FerretDB@{FERRETDB_VERSION}"
        out = subprocess.run(
            ["go", "mod", "download", "-json", module], check=True, capture_output=True, text=True
        )
        source = Path(json.loads(out.stdout)["Dir"])
        work = self.binary.parent / "src"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(source, work)
        for path in work.rglob("*"):  # the module cache is read-only
            path.chmod(path.stat().st_mode | 0o200)
        # version.txt is git-ignored upstream yet embedded: without it the binary panics.
        (work / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
        metadata = work / "internal" / "backends" / "sqlite" / "metadata" / "metadata.go"
        source_text = metadata.read_text()
        if ID_COLUMN_UPSTREAM not in source_text:
            raise RuntimeError(f"{metadata}: the _id column expression to patch is not there")
        metadata.write_text(source_text.replace(ID_COLUMN_UPSTREAM, ID_COLUMN_PATCHED))
        partial = self.binary.with_name("ferretdb.partial")
        subprocess.run(
            [
                "go",
                "build",
                "-trimpath",
                "-ldflags=-checklinkname=0",
                "-o",
                str(partial),
                "./cmd/ferretdb",
            ],
            check=True,
            cwd=work,
        )
        partial.replace(self.binary)
        shutil.rmtree(work, ignore_errors=True)

    def command(self) -> list[str]:
        data = VAR / "ferretdb"
        data.mkdir(parents=True, exist_ok=True)
        return [
            str(self.binary),
            "--handler=sqlite",
            f"--sqlite-url=file:{data}/",
            f"--listen-addr={self.address}",
            f"--state-dir={data}",
            "--debug-addr=-",
            "--telemetry=disable",
            "--log-level=warn",
        ]
