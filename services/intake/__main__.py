"""``python -m services.intake``: the composition root of the intake process.

The settings are read and checked first (``config``): without a token issuer or an id
secret the process exits with a message naming what to set, before it connects anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

import uvicorn
from prometheus_client import start_http_server
from pydantic import ValidationError

from services.intake.adapters import KafkaPublisher, MongoIdempotencyStore, MongoReadModel
from services.intake.api import Exposure, Limits, create_app
from services.intake.auth import JwtVerifier
from services.intake.config import ConfigError, IntakeSettings, build_verifier, id_secret
from singlewindow.db import mongo_client
from singlewindow.kafka.producer import EventProducer
from singlewindow.logs import configure_logging
from singlewindow.readmodel import COLLECTION
from singlewindow.runtime import run_loop
from singlewindow.settings import SettingsError, get_settings, read_settings
from singlewindow.signing import SignatureError, SigningKey, signing_key

log = logging.getLogger("services.intake")


def kill_after_claim(prefix: str) -> Callable[[str], Awaitable[None]]:
    async def hook(key: str) -> None:
        if prefix and key.startswith(prefix):
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def trust(own: IntakeSettings) -> tuple[JwtVerifier, bytes]:
    """The token verifier and the id secret, or ConfigError (nothing is started yet)."""
    return build_verifier(own), id_secret(own)


async def main(
    own: IntakeSettings, verifier: JwtVerifier, secret: bytes, signer: SigningKey
) -> None:
    settings = get_settings()
    producer = EventProducer(settings, "intake", signer)
    client = mongo_client(settings)
    database = client[settings.mongodb_database]
    publisher = KafkaPublisher(producer, database[COLLECTION])
    app = create_app(
        publisher,
        MongoReadModel(database[COLLECTION]),
        MongoIdempotencyStore(database["idempotency_keys"]),
        verifier=verifier,
        id_secret=secret,
        limits=Limits(
            rate_per_second=own.intake_rate_per_second,
            rate_burst=own.intake_rate_burst,
            max_submissions=own.intake_max_submissions,
        ),
        exposure=Exposure(docs=own.intake_public_docs, metrics=own.intake_public_metrics),
        after_claim=kill_after_claim(own.intake_fault_kill_after_claim),
    )
    if own.intake_metrics_port:  # for an internal scraper, whatever /metrics shows publicly
        start_http_server(
            own.intake_metrics_port, addr=own.intake_host, registry=app.state.metrics_registry
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
            # h11, not httptools (which uvicorn picks when installed): uvicorn bounds a
            # request's headers (16 KiB) only with h11, and no caller is authenticated yet
            http="h11",
        )
    )
    for sig in (signal.SIGTERM, signal.SIGINT):  # what uvicorn re-raises after its shutdown
        signal.signal(sig, lambda *_: None)
    try:
        await server.serve()  # returns on SIGTERM/SIGINT after in-flight requests finish
    finally:
        stopping.set()
        await starting
        await publisher.close()
        await producer.stop()
        await client.close()


if __name__ == "__main__":
    configure_logging("intake")
    try:
        own = read_settings(IntakeSettings)
        verifier, secret = trust(own)
        signer = signing_key(get_settings())
    except (ConfigError, SettingsError, ValidationError, SignatureError) as exc:
        log.error("refusing to start: %s", exc)
        sys.exit(2)
    run_loop(main(own, verifier, secret, signer))
