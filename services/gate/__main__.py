"""``python -m services.gate``: the composition root of the port's gate.

The settings are read and checked first (``config``): without a token issuer, an id secret,
a registered gate agency or a signing key the process exits with a message naming what to
set, before it connects anywhere. Then it runs under ``singlewindow.runtime`` as the
inspection station does: the producer starts in the background (gate-outs answer 503 until
Kafka is there), the read model is the intake's adapter over the shared settings' database
(read only), uvicorn serves, SIGTERM/SIGINT stop it, exit code 0 once stopped.
"""

from __future__ import annotations

from pydantic import ValidationError

from services.gate.api import Gate, create_app
from services.gate.config import GateSettings, build_officer_verifier, gate_agency
from services.intake.adapters import MongoReadModel
from services.intake.auth import ClaimsVerifier, Inspector
from services.intake.config import ConfigError, id_secret
from services.intake.server import IntakeProcess, http_server
from singlewindow import runtime
from singlewindow.db import mongo_client, ping
from singlewindow.health import Health
from singlewindow.kafka.producer import EventProducer
from singlewindow.logs import configure_logging
from singlewindow.readmodel import COLLECTION
from singlewindow.settings import SettingsError, get_settings, read_settings
from singlewindow.signing import GATE, SignatureError, SigningKey, signing_key

NAME = GATE


def gate_process(
    own: GateSettings,
    verifier: ClaimsVerifier[Inspector],
    secret: bytes,
    agency: str,
    signer: SigningKey,
    health: Health,
) -> IntakeProcess:
    """The gate over Kafka and the read model (built in the running loop); ready when both
    answer."""
    settings = get_settings()
    producer = EventProducer(settings, NAME, signer)
    client = mongo_client(settings)
    health.probe("kafka", producer.reachable)
    health.probe("database", lambda: ping(client))
    read_model = MongoReadModel(client[settings.mongodb_database][COLLECTION])
    gate = Gate(producer, read_model, verifier=verifier, id_secret=secret, agency=agency)
    app = create_app(gate, docs=own.public_docs, health=health)
    return IntakeProcess(
        http_server(app, own.host, own.port), producer, closing=(producer.stop, client.close)
    )


if __name__ == "__main__":
    configure_logging(NAME)
    try:
        own = read_settings(GateSettings)
        verifier, secret, agency = build_officer_verifier(own), id_secret(own), gate_agency(own)
        signer = signing_key(get_settings())
    except (ConfigError, SettingsError, ValidationError, SignatureError) as exc:
        runtime.refuse_to_start(exc)
    runtime.main(
        NAME,
        lambda health: gate_process(own, verifier, secret, agency, signer, health),
        own.metrics_port,
    )
