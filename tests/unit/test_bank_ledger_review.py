"""The bank's ledger under retries and odd value dates (review findings): a recorded draw is
always published again on its retry, whatever the clock says now; a repayment is never dated
before the draw it repays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiokafka.errors import KafkaConnectionError

from tests.unit.test_bank import TOPIC, problem
from tests.unit.test_bank_guarantees import counter, drawing


async def test_a_retry_after_the_validity_ended_publishes_the_recorded_draw() -> None:
    """Drawn at 23:59:30 on 31 December (China time), the last day of G-A; Kafka down, 503;
    the retry at 00:00:30 on 1 January finds the draw recorded and publishes it, dated as
    recorded (a 422 guarantee-not-valid would leave a debit nobody ever sees)."""
    start = datetime(2026, 12, 31, 15, 59, 30, tzinfo=UTC)
    async with counter(start=start) as bank:
        bank.broker.fail(TOPIC, KafkaConnectionError())
        problem(await bank.draw(drawing()), 503)
        assert bank.balance() == Decimal("39187.00")
        bank.now[0] = start + timedelta(minutes=1)
        retried = await bank.draw(drawing())
        assert retried.status_code == 202, retried.text
        [draw] = bank.confirmed()
    assert draw.paid_at == start and draw.ledger_sequence == 1
