"""``python -m services.bank``: the composition root of the bank process.

The settings are read and checked first (``config``): without a token issuer, an id secret
or a signing key the process exits with a message naming what to set, before it connects
anywhere. Then it runs under ``singlewindow.runtime`` as the intake does
(``services.intake.server``): the producer starts in the background (payments answer 503
until Kafka is there), uvicorn serves, SIGTERM/SIGINT stop it, exit code 0 once stopped.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError

from services.bank.api import Bank, create_app
from services.bank.config import BankSettings
from services.intake.auth import JwtVerifier
from services.intake.config import ConfigError, build_verifier, id_secret
from services.intake.server import IntakeProcess, http_server
from singlewindow import runtime
from singlewindow.kafka.producer import EventProducer
from singlewindow.logs import configure_logging
from singlewindow.settings import SettingsError, get_settings, read_settings
from singlewindow.signing import BANK, SignatureError, SigningKey, signing_key

NAME = BANK


def bank_process(
    own: BankSettings, verifier: JwtVerifier, secret: bytes, signer: SigningKey
) -> IntakeProcess:
    """The bank over Kafka (built in the running loop)."""
    producer = EventProducer(get_settings(), NAME, signer)
    bank = Bank(
        producer,
        verifier=verifier,
        id_secret=secret,
        paid_at_slack=timedelta(seconds=own.paid_at_slack_seconds),
    )
    app = create_app(bank, docs=own.public_docs)
    return IntakeProcess(http_server(app, own.host, own.port), producer, closing=(producer.stop,))


if __name__ == "__main__":
    configure_logging(NAME)
    try:
        own = read_settings(BankSettings)
        verifier, secret = build_verifier(own), id_secret(own)
        signer = signing_key(get_settings())
    except (ConfigError, SettingsError, ValidationError, SignatureError) as exc:
        runtime.refuse_to_start(exc)
    runtime.main(NAME, lambda: bank_process(own, verifier, secret, signer), own.metrics_port)
