"""The aggregator task's transactional producer is the SDK's producer, with exactly the
settings it had when the task built its own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.aggregator.tasks import Task
from singlewindow.kafka import producer as producer_module
from singlewindow.kafka.options import kafka_options
from singlewindow.settings import Settings
from tests import factories


class Recorded:
    """Stands in for AIOKafkaProducer: records how it was built."""

    def __init__(self, **options: Any) -> None:
        self.options = options


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_SSL"])
def test_a_task_producer_is_transactional_per_partition_idempotent_acks_all(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    monkeypatch.setattr(producer_module, "AIOKafkaProducer", Recorded)
    settings = Settings(
        kafka_security_protocol=protocol,
        kafka_sasl_username="aggregator",
        kafka_sasl_password="secret",
        kafka_request_timeout_ms=12_345,
    )
    task = Task(settings, "aggregator", 3, timedelta(days=7), factories.service_keys("aggregator"))
    built = task.new_producer()
    assert isinstance(built, Recorded)
    assert built.options == {
        **kafka_options(settings),
        "client_id": "aggregator-p3",
        "transactional_id": "aggregator.join.p3",
        "enable_idempotence": True,
        "acks": "all",
        "request_timeout_ms": 12_345,
        "transaction_timeout_ms": 60_000,
        "linger_ms": 5,
    }


def test_options_never_change_how_a_producer_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(producer_module, "AIOKafkaProducer", Recorded)
    with pytest.raises(TypeError):
        producer_module.new_producer(Settings(), "x", bootstrap_servers="elsewhere:9092")
