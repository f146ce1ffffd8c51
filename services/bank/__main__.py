"""``python -m services.bank``: the composition root of the bank process.

The settings are read and checked first (``config``): without a token issuer, an id secret
or a signing key, or with an invalid ``BANK_GUARANTEES_FILE``, the process exits with a
message naming what to set, before it connects anywhere. Then it runs under
``singlewindow.runtime`` as the intake does (``services.intake.server``): the producer starts
in the background (payments answer 503 until Kafka is there), the ledger's database client
connects on first use (a draw answers 503 while it is down; payments do not need it),
uvicorn serves, SIGTERM/SIGINT stop it, exit code 0 once stopped. Every
``BANK_REPUBLISH_SECONDS`` it publishes the ledger entries it recorded and never published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from services.bank.api import Bank, create_app
from services.bank.config import BankSettings
from services.bank.guarantees import Guarantee, GuaranteeFileError, load_guarantees
from services.bank.store import COLLECTION, MongoGuaranteeStore
from services.intake.auth import JwtVerifier
from services.intake.config import ConfigError, build_verifier, id_secret
from services.intake.server import IntakeProcess, http_server
from singlewindow import runtime
from singlewindow.db import mongo_client, ping
from singlewindow.health import Health
from singlewindow.kafka.producer import EventProducer
from singlewindow.logs import configure_logging
from singlewindow.settings import SettingsError, get_settings, read_settings
from singlewindow.signing import BANK, SignatureError, SigningKey, signing_key

NAME = BANK
log = logging.getLogger(__name__)


class BankProcess(IntakeProcess):
    """The intake's process, and the sweep of the ledger entries recorded and never
    published (every ``every`` seconds, the first once serving starts)."""

    def __init__(self, bank: Bank, every: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bank, self.every = bank, every

    async def run(self) -> None:
        sweep = asyncio.create_task(self._sweep())
        try:
            await super().run()
        finally:
            sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweep

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.bank.publish_pending()
            except Exception as exc:  # Kafka or the ledger down: the next sweep goes on
                log.warning("the sweep of unpublished ledger entries failed: %r", exc)


def bank_process(
    own: BankSettings,
    verifier: JwtVerifier,
    secret: bytes,
    signer: SigningKey,
    guarantees: dict[str, Guarantee],
    health: Health,
) -> BankProcess:
    """The bank over Kafka and its ledger's database (built in the running loop); ready when
    both answer."""
    settings = get_settings()
    producer = EventProducer(settings, NAME, signer)
    client = mongo_client(settings)
    health.probe("kafka", producer.reachable)
    health.probe("database", lambda: ping(client))
    bank = Bank(
        producer,
        verifier=verifier,
        id_secret=secret,
        paid_at_slack=timedelta(seconds=own.paid_at_slack_seconds),
        guarantees=guarantees,
        store=MongoGuaranteeStore(client[own.database][COLLECTION]),
    )
    app = create_app(bank, docs=own.public_docs, health=health)
    return BankProcess(
        bank,
        own.republish_seconds,
        http_server(app, own.host, own.port),
        producer,
        closing=(producer.stop, client.close),
    )


if __name__ == "__main__":
    configure_logging(NAME)
    try:
        own = read_settings(BankSettings)
        verifier, secret = build_verifier(own), id_secret(own)
        signer = signing_key(get_settings())
        guarantees = load_guarantees(own.guarantees_file)
    except (
        ConfigError,
        SettingsError,
        ValidationError,
        SignatureError,
        GuaranteeFileError,
    ) as exc:
        runtime.refuse_to_start(exc)
    runtime.main(
        NAME,
        lambda health: bank_process(own, verifier, secret, signer, guarantees, health),
        own.metrics_port,
    )
