"""The intake with a database outage: submissions keep working (202 after Kafka's ack),
status reads answer 503 with Retry-After instead of hanging or failing loudly."""

from __future__ import annotations

import os

import httpx
import pytest

from deploy.local.demo_data import sample_declaration_body
from services.intake.adapters import KafkaPublisher, MongoIdempotencyStore, MongoReadModel
from services.intake.api import IntakeService, create_app
from singlewindow.db import mongo_client
from singlewindow.kafka.producer import EventProducer
from singlewindow.kafka.reader import key_text, read_topic
from singlewindow.readmodel import COLLECTION
from singlewindow.settings import Settings
from singlewindow.topics import DECLARATIONS_SUBMITTED
from tests import factories
from tests.unit.intake_tokens import TestIssuer

pytestmark = pytest.mark.integration


async def test_database_down_submission_works_status_is_503(settings: Settings) -> None:
    down = settings.model_copy(update={"mongodb_url": "mongodb://127.0.0.1:9/"})  # nothing there
    producer = EventProducer(settings, "intake-test", factories.SIGNING["intake"])
    database = mongo_client(down, timeout_ms=1000)[down.mongodb_database]
    issuer, body = TestIssuer(), sample_declaration_body(3)
    app = create_app(
        IntakeService(
            KafkaPublisher(producer, database[COLLECTION]),
            MongoReadModel(database[COLLECTION]),
            MongoIdempotencyStore(database["idempotency_keys"]),
            verifier=issuer.verifier(),
            id_secret=os.urandom(32),
        )
    )
    await producer.start()
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app),
                base_url="http://intake",
                timeout=30,
                headers=issuer.auth(usccs=(body["declarant"]["uscc"],)),
            ) as client,
        ):
            accepted = await client.post("/v1/declarations", json=body)
            assert accepted.status_code == 202, accepted.text
            declaration_id = accepted.json()["declaration_id"]
            status = await client.get(f"/v1/declarations/{declaration_id}")
            assert status.status_code == 503
            assert int(status.headers["retry-after"]) > 0
            assert status.headers["content-type"].startswith("application/problem+json")
    finally:
        await producer.stop()
    records = await read_topic(settings, DECLARATIONS_SUBMITTED.name)
    ids = {key_text(r) for r in records if r.key}
    assert declaration_id in ids  # durably in Kafka although the database was down
