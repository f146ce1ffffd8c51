"""``python -m services.inspection``: the composition root of the inspection station.

The settings are read and checked first (``config``): without a token issuer, an id secret
or a signing key the process exits with a message naming what to set, before it connects
anywhere. Then it runs under ``singlewindow.runtime`` as the bank does: the producer starts
in the background (findings answer 503 until Kafka is there), uvicorn serves, SIGTERM/SIGINT
stop it, exit code 0 once stopped.
"""

from __future__ import annotations

from pydantic import ValidationError

from services.inspection.api import Station, create_app
from services.inspection.config import InspectionSettings, build_inspector_verifier
from services.intake.auth import ClaimsVerifier, Inspector
from services.intake.config import ConfigError, id_secret
from services.intake.server import IntakeProcess, http_server
from singlewindow import runtime
from singlewindow.health import Health
from singlewindow.kafka.producer import EventProducer
from singlewindow.logs import configure_logging
from singlewindow.settings import SettingsError, get_settings, read_settings
from singlewindow.signing import INSPECTION, SignatureError, SigningKey, signing_key

NAME = INSPECTION


def inspection_process(
    own: InspectionSettings,
    verifier: ClaimsVerifier[Inspector],
    secret: bytes,
    signer: SigningKey,
    health: Health,
) -> IntakeProcess:
    """The station over Kafka (built in the running loop); ready when Kafka answers."""
    producer = EventProducer(get_settings(), NAME, signer)
    health.probe("kafka", producer.reachable)
    station = Station(producer, verifier=verifier, id_secret=secret)
    app = create_app(station, docs=own.public_docs, health=health)
    return IntakeProcess(http_server(app, own.host, own.port), producer, closing=(producer.stop,))


if __name__ == "__main__":
    configure_logging(NAME)
    try:
        own = read_settings(InspectionSettings)
        verifier, secret = build_inspector_verifier(own), id_secret(own)
        signer = signing_key(get_settings())
    except (ConfigError, SettingsError, ValidationError, SignatureError) as exc:
        runtime.refuse_to_start(exc)
    runtime.main(
        NAME,
        lambda health: inspection_process(own, verifier, secret, signer, health),
        own.metrics_port,
    )
