"""The intake process under ``singlewindow.runtime``: serving while Kafka is away, a stop that
answers the requests in flight first, the adapters closed after, and exit code 0 on SIGTERM.

In process, the real uvicorn server on an ephemeral port of 127.0.0.1 over the in-memory
ports; then ``python -m services.intake`` itself, with nothing behind it (no Kafka, no
database): it must serve anyway and stop cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from services.intake import devissuer
from services.intake.api import IntakeService, create_app
from services.intake.ports import InMemoryPublisher, InMemoryReadModel
from services.intake.server import IntakeProcess, http_server
from singlewindow.signing import SigningKey
from tests.processes import ROOT
from tests.unit.intake_tokens import TestIssuer
from tests.unit.test_intake_api import SlowPublisher
from tests.unit.test_intake_schema import valid_body

ISSUER = TestIssuer()


class AwayProducer:
    """A producer whose Kafka never answers: its start waits until it is told to give up."""

    def __init__(self) -> None:
        self.gave_up = asyncio.Event()

    async def start(self, stopping: asyncio.Event | None = None) -> None:
        assert stopping is not None
        await stopping.wait()
        self.gave_up.set()


@asynccontextmanager
async def serving(
    publisher: InMemoryPublisher, closed: list[str]
) -> AsyncIterator[tuple[IntakeProcess, asyncio.Task[None], httpx.AsyncClient]]:
    """An intake process started and running on an ephemeral port, with a client of it."""
    app = create_app(
        IntakeService(
            publisher, InMemoryReadModel(), verifier=ISSUER.verifier(), id_secret=b"s" * 32
        )
    )

    def closer(name: str) -> Callable[[], Awaitable[None]]:
        async def close() -> None:
            closed.append(name)

        return close

    process = IntakeProcess(
        http_server(app, "127.0.0.1", 0),
        AwayProducer(),
        closing=(closer("publisher"), closer("producer"), closer("database")),
    )
    await process.start()
    running = asyncio.create_task(process.run())
    while not process.server.started:
        assert not running.done(), running
        await asyncio.sleep(0.01)
    port = process.server.servers[0].sockets[0].getsockname()[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        try:
            yield process, running, client
        finally:
            if not running.done():
                await process.stop()
                await running


async def test_it_serves_while_kafka_is_away_and_closes_everything_once_stopped() -> None:
    closed: list[str] = []
    async with serving(InMemoryPublisher(), closed) as (process, running, client):
        assert (await client.get("/healthz")).json() == {"status": "live", "loops": {}}
        producer = process.producer
        assert isinstance(producer, AwayProducer) and not producer.gave_up.is_set()
        await process.stop()
        await asyncio.wait_for(running, 10)
        assert producer.gave_up.is_set()
    assert closed == ["publisher", "producer", "database"]


async def test_a_stop_answers_the_requests_in_flight_first() -> None:
    publisher, closed = SlowPublisher(), list[str]()
    async with serving(publisher, closed) as (process, running, client):
        submitting = asyncio.create_task(
            client.post("/v1/declarations", json=valid_body(), headers=ISSUER.auth())
        )
        await publisher.entered_by(submitting)
        await process.stop()
        await asyncio.sleep(0.3)
        assert not running.done() and closed == []  # the submission is still being answered
        publisher.gate.set()
        assert (await submitting).status_code == 202
        await asyncio.wait_for(running, 10)
    assert closed == ["publisher", "producer", "database"]
    assert len(publisher.events) == 1


def _intake_environment(tmp_path: Path) -> dict[str, str]:
    """``python -m services.intake`` with a development issuer, a signing key, an ephemeral
    port, and nothing behind it."""
    key = SigningKey.generate("intake-test")
    (tmp_path / "intake.pem").write_bytes(key.private_pem())
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INTAKE_", "KAFKA_", "MONGODB_", "SIGNING_"))
    }
    return (
        env
        | devissuer.local_intake_env(tmp_path / "issuer", tmp_path / "id-secret")
        | {
            "INTAKE_PORT": "0",
            "INTAKE_ID_SECRET_FILE": str(tmp_path / "id-secret"),
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "MONGODB_URL": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=500",
            "SIGNING_KEY_FILE": str(tmp_path / "intake.pem"),
            "SIGNING_KEY_ID": "intake-test",
            "PYTHONUNBUFFERED": "1",
        }
    )


def test_the_intake_process_exits_0_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "intake.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.intake"],
            cwd=ROOT,
            env=_intake_environment(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "Application startup complete" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "refusing to start" not in log.read_text()
