"""``python -m services.intake``: the composition root of the intake process."""

from __future__ import annotations

import asyncio
import signal

import uvicorn
from pydantic_settings import BaseSettings

from services.intake.adapters import KafkaPublisher, MongoIdempotencyStore, MongoReadModel
from services.intake.api import create_app
from singlewindow.db import mongo_client
from singlewindow.kafka.producer import EventProducer
from singlewindow.readmodel import COLLECTION
from singlewindow.runtime import configure_logging
from singlewindow.settings import get_settings


class IntakeSettings(BaseSettings):
    intake_host: str = "127.0.0.1"
    intake_port: int = 8000


async def main() -> None:
    settings, own = get_settings(), IntakeSettings()
    producer = EventProducer(settings, "intake")
    client = mongo_client(settings)
    database = client[settings.mongodb_database]
    app = create_app(
        KafkaPublisher(producer, database[COLLECTION]),
        MongoReadModel(database[COLLECTION]),
        MongoIdempotencyStore(database["idempotency_keys"]),
    )
    await producer.start()
    server = uvicorn.Server(
        uvicorn.Config(app, host=own.intake_host, port=own.intake_port, log_level="info")
    )
    for sig in (signal.SIGTERM, signal.SIGINT):  # what uvicorn re-raises after its shutdown
        signal.signal(sig, lambda *_: None)
    try:
        await server.serve()  # returns on SIGTERM/SIGINT after in-flight requests finish
    finally:
        await producer.stop()
        await client.close()


if __name__ == "__main__":
    configure_logging("intake")
    asyncio.run(main())
