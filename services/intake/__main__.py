"""``python -m services.intake``: the composition root of the intake process."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable

import uvicorn
from pydantic_settings import BaseSettings

from services.intake.adapters import KafkaPublisher, MongoIdempotencyStore, MongoReadModel
from services.intake.api import create_app
from singlewindow.db import mongo_client
from singlewindow.kafka.producer import EventProducer
from singlewindow.logs import configure_logging
from singlewindow.readmodel import COLLECTION
from singlewindow.settings import get_settings


class IntakeSettings(BaseSettings):
    intake_host: str = "127.0.0.1"
    intake_port: int = 8000
    # Fault injection for tests only: SIGKILL this process between the claim of an
    # Idempotency-Key starting with this prefix and its publish. Empty: never.
    intake_fault_kill_after_claim: str = ""


def kill_after_claim(prefix: str) -> Callable[[str], Awaitable[None]]:
    async def hook(key: str) -> None:
        if prefix and key.startswith(prefix):
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


async def main() -> None:
    settings, own = get_settings(), IntakeSettings()
    producer = EventProducer(settings, "intake")
    client = mongo_client(settings)
    database = client[settings.mongodb_database]
    app = create_app(
        KafkaPublisher(producer, database[COLLECTION]),
        MongoReadModel(database[COLLECTION]),
        MongoIdempotencyStore(database["idempotency_keys"]),
        after_claim=kill_after_claim(own.intake_fault_kill_after_claim),
    )
    stopping = asyncio.Event()
    # Kafka may be away: serve anyway (submissions answer 503 until the producer started)
    starting = asyncio.create_task(producer.start(stopping))
    server = uvicorn.Server(
        # log_config=None: uvicorn logs through the process's (rate-limited) logging
        uvicorn.Config(
            app,
            host=own.intake_host,
            port=own.intake_port,
            log_level="info",
            log_config=None,
            # longer than clients and proxies keep idle connections (often 60 s), so the
            # server never closes one just as a client sends on it
            timeout_keep_alive=65,
        )
    )
    for sig in (signal.SIGTERM, signal.SIGINT):  # what uvicorn re-raises after its shutdown
        signal.signal(sig, lambda *_: None)
    try:
        await server.serve()  # returns on SIGTERM/SIGINT after in-flight requests finish
    finally:
        stopping.set()
        await starting
        await producer.stop()
        await client.close()


if __name__ == "__main__":
    configure_logging("intake")
    asyncio.run(main())
