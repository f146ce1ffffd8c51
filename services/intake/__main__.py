"""``python -m services.intake``: the composition root of the intake process.

The settings are read and checked first (``config``): without a token issuer or an id
secret the process exits with a message naming what to set, before it connects anywhere.
Then it runs under ``singlewindow.runtime`` like every other service (``server``): uvloop,
SIGTERM/SIGINT, a bounded shutdown, exit code 0 once stopped.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from services.intake.adapters import KafkaPublisher, MongoIdempotencyStore, MongoReadModel
from services.intake.api import Exposure, IntakeService, Limits, create_app
from services.intake.auth import JwtVerifier
from services.intake.config import (
    ConfigError,
    IntakeSettings,
    build_verifier,
    dev_issuer,
    id_secret,
)
from services.intake.server import IntakeProcess, http_server
from services.intake.webhooks import WebhookRegistry
from services.webhooks.destinations import DestinationPolicy
from services.webhooks.signing import WebhookKeyError, WebhookKeys, load_keys
from services.webhooks.store import DELIVERIES, WEBHOOKS, MongoWebhookStore
from singlewindow import runtime
from singlewindow.db import mongo_client, ping
from singlewindow.health import Health
from singlewindow.kafka.producer import EventProducer
from singlewindow.logs import configure_logging
from singlewindow.readmodel import COLLECTION
from singlewindow.settings import SettingsError, get_settings, read_settings
from singlewindow.signing import SignatureError, SigningKey, signing_key

NAME = "intake"


def kill_after_claim(prefix: str) -> Callable[[str], Awaitable[None]]:
    async def hook(key: str) -> None:
        if prefix and key.startswith(prefix):
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def trust(own: IntakeSettings) -> tuple[JwtVerifier, bytes]:
    """The token verifier and the id secret, or ConfigError (nothing is started yet)."""
    return build_verifier(own), id_secret(own)


def intake_process(
    own: IntakeSettings,
    verifier: JwtVerifier,
    secret: bytes,
    signer: SigningKey,
    health: Health,
    keys: WebhookKeys | None = None,
) -> IntakeProcess:
    """The intake over Kafka and the database (built in the running loop); ready when both
    answer."""
    settings = get_settings()
    producer = EventProducer(settings, NAME, signer)
    client = mongo_client(settings)
    health.probe("kafka", producer.reachable)
    health.probe("database", lambda: ping(client))
    database = client[settings.mongodb_database]
    publisher = KafkaPublisher(producer, database[COLLECTION])
    webhooks = None
    if keys is not None:
        webhooks = WebhookRegistry(
            MongoWebhookStore(database[WEBHOOKS], database[DELIVERIES]),
            keys,
            DestinationPolicy(own.webhook_allow_loopback, own.webhook_allow_private),
            max_per_subject=own.max_webhooks,
        )
    service = IntakeService(
        publisher,
        MongoReadModel(database[COLLECTION]),
        MongoIdempotencyStore(database["idempotency_keys"]),
        verifier=verifier,
        id_secret=secret,
        limits=Limits(
            rate_per_second=own.rate_per_second,
            rate_burst=own.rate_burst,
            max_submissions=own.max_submissions,
            change_after_release_days=own.change_after_release_days,
            max_streams=own.max_streams,
        ),
        after_claim=kill_after_claim(own.fault_kill_after_claim),
    )
    exposure = Exposure(own.public_docs, own.public_metrics, dev_issuer(own))
    app = create_app(service, exposure, health, webhooks)
    return IntakeProcess(
        http_server(app, own.host, own.port),
        producer,
        closing=(publisher.close, producer.stop, client.close),
        stopping=(service.closing,),
    )


if __name__ == "__main__":
    configure_logging(NAME)
    try:
        own = read_settings(IntakeSettings)
        verifier, secret = trust(own)
        dev_issuer(own)  # checked before anything starts
        signer = signing_key(get_settings())
        keys = None if own.webhook_keys_file is None else load_keys(own.webhook_keys_file)
    except (ConfigError, SettingsError, ValidationError, SignatureError, WebhookKeyError) as exc:
        runtime.refuse_to_start(exc)
    if keys is None:
        logging.getLogger(NAME).info("no INTAKE_WEBHOOK_KEYS_FILE: /v1/webhooks not served")
    # INTAKE_METRICS_PORT (0: none): the ops endpoints for an internal scraper, whatever the
    # API port shows publicly
    runtime.main(
        NAME,
        lambda health: intake_process(own, verifier, secret, signer, health, keys),
        own.metrics_port,
    )
