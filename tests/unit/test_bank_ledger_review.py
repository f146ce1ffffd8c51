"""The bank's ledger under retries and odd value dates (review findings): a recorded draw is
always published again on its retry, whatever the clock says now; a repayment is never dated
before the draw it repays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiokafka.errors import KafkaConnectionError

from tests.unit.test_bank import TOPIC, problem
from tests.unit.test_bank_guarantees import T0, counter, drawing


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


async def test_a_repayment_is_never_dated_before_its_draw() -> None:
    """A draw dated 4 minutes ahead (within the bank's slack), a repayment dated 30 minutes
    back (within the hour a payment may be backdated): it would repay a draw not made yet."""
    async with counter() as bank:
        ahead = (T0 + timedelta(minutes=4)).isoformat()
        assert (await bank.draw(drawing(paid_at=ahead))).status_code == 202
        early = await bank.repay(["N-1"], paid_at=T0 - timedelta(minutes=30))
        document = problem(early, 409)
        assert bank.balance() == Decimal("39187.00")
        assert len(bank.confirmed()) == 1
    assert document["type"].endswith("repaid-before-drawn")


def test_verify_flags_a_repayment_dated_before_its_draw() -> None:
    """The draw at T0 + 1 h (27 November); a repayment dated 26 November."""
    from tests.unit.test_verify import kinds
    from tests.unit.test_verify_guarantees import DRAW, REPAID, drawn_life

    early = REPAID.model_copy(update={"paid_at": DRAW.paid_at - timedelta(days=1)})
    report = drawn_life().verify(payments=[DRAW, early])
    assert kinds(report) == ["repayment before its draw"]


async def test_a_draw_recorded_and_never_published_is_published_by_the_sweep() -> None:
    """The bank stops between the debit and the publish (here: Kafka refuses it) and the
    client never retries: the sweep publishes the recorded entry, once; then nothing more."""
    async with counter() as bank:
        bank.broker.fail(TOPIC, KafkaConnectionError())
        problem(await bank.draw(drawing()), 503)
        assert bank.confirmed() == [] and bank.balance() == Decimal("39187.00")
        assert await bank.bank.publish_pending() == 1
        [draw] = bank.confirmed()
        assert (draw.notice_id, draw.ledger_sequence) == ("N-1", 1)
        assert draw.balance_after == Decimal("39187.00")
        assert await bank.bank.publish_pending() == 0
        assert len(bank.confirmed()) == 1


async def test_a_repayment_never_published_is_published_by_the_sweep() -> None:
    async with counter() as bank:
        assert (await bank.draw(drawing())).status_code == 202
        bank.broker.fail(TOPIC, KafkaConnectionError())
        problem(await bank.repay(["N-1"], paid_at=T0 + timedelta(minutes=1)), 503)
        assert await bank.bank.publish_pending() == 1
        _, repaid = bank.confirmed()
        assert repaid.ledger_sequence == 2 and repaid.balance_after == Decimal("100000.00")
        assert await bank.bank.publish_pending() == 0


async def test_a_dated_draw_retried_hours_later_publishes_the_recorded_draw() -> None:
    """A draw dated T0 (the client gives its value date), 503; the retry, the same body and
    key, 2 hours later: the draw is recorded, so it is published again, not refused as
    backdated (a new draw dated so is)."""
    dated = drawing(paid_at=T0.isoformat())
    async with counter() as bank:
        bank.broker.fail(TOPIC, KafkaConnectionError())
        problem(await bank.draw(dated), 503)
        bank.now[0] = T0 + timedelta(hours=2)
        retried = await bank.draw(dated)
        assert retried.status_code == 202, retried.text
        [draw] = bank.confirmed()
        assert draw.paid_at == T0 and bank.balance() == Decimal("39187.00")
        fresh = await bank.draw(drawing("N-2", "1.00", paid_at=T0.isoformat()), key="k-2")
        assert problem(fresh, 422)["type"].endswith("invalid-payment")
        assert bank.balance() == Decimal("39187.00")


async def test_a_dated_repayment_retried_hours_later_publishes_the_recorded_one() -> None:
    async with counter() as bank:
        assert (await bank.draw(drawing())).status_code == 202
        bank.broker.fail(TOPIC, KafkaConnectionError())
        paid = T0 + timedelta(minutes=1)
        bank.now[0] = paid
        problem(await bank.repay(["N-1"], paid_at=paid), 503)
        bank.now[0] = T0 + timedelta(hours=3)
        retried = await bank.repay(["N-1"], paid_at=paid)
        assert retried.status_code == 202, retried.text
        _, repaid = bank.confirmed()
        assert repaid.paid_at == paid and bank.balance() == Decimal("100000.00")


def test_verify_flags_two_different_entries_under_one_payment_id() -> None:
    """A redelivery is the same entry again (counted once, clean); an entry under a draw's
    payment id that says something else (another sequence and balance) is no redelivery:
    it was silently dropped."""
    from tests.unit.test_verify import kinds
    from tests.unit.test_verify_guarantees import DRAW, REPAID, drawn_life

    assert kinds(drawn_life().verify(payments=[DRAW, REPAID, DRAW, REPAID])) == []
    other = DRAW.model_copy(update={"ledger_sequence": 3, "balance_after": Decimal("3.00")})
    report = drawn_life().verify(payments=[DRAW, REPAID, other])
    assert kinds(report) == ["ledger entry redelivered changed"]


async def test_the_bank_process_sweeps_every_interval_and_survives_a_failure() -> None:
    import asyncio

    from services.bank.__main__ import BankProcess

    calls: list[int] = []

    class Swept:
        async def publish_pending(self) -> int:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("Kafka is down")
            return 0

    process = BankProcess.__new__(BankProcess)
    process.bank, process.every = Swept(), 0.01  # type: ignore[assignment]
    sweep = asyncio.create_task(process._sweep())
    await asyncio.sleep(0.1)
    sweep.cancel()
    assert len(calls) >= 2  # the failed sweep is logged, the next one runs
