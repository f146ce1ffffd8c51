"""The bank (services/bank): ``POST /v1/payments`` through the real FastAPI app, publishing
with the SDK's EventProducer on the in-memory broker (singlewindow.testing.FakeBroker).

What a payer checks: a 202 means a signed PaymentConfirmed with the body's figures is on
``payments.confirmed``, one per request (the same one again for the same Idempotency-Key);
what is refused publishes nothing; and what the bank confirms is what the aggregator's join
settles a notice with.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError

from services.aggregator import payment
from services.bank.api import create_app
from services.bank.config import BankSettings, local_bank_env
from services.bank.payments import Bank
from services.intake import devissuer
from services.intake.config import ConfigError, build_verifier, id_secret
from singlewindow.events import ClearanceStatus, PaymentConfirmed, PaymentKind
from singlewindow.kafka.consumer import decode_signed
from singlewindow.kafka.producer import EventProducer
from singlewindow.settings import Settings
from singlewindow.signing import BANK
from singlewindow.testing import FakeBroker
from singlewindow.topics import PAYMENTS_CONFIRMED
from tests import factories
from tests.unit import test_lifecycle as life
from tests.unit.intake_tokens import USCC_A, USCC_B, TestIssuer

T0 = factories.T0  # the bank's clock: 2026-11-27T08:30:15.123Z
ISSUER = TestIssuer()
SECRET = secrets.token_bytes(32)
TOPIC = PAYMENTS_CONFIRMED.name


def body(**changes: Any) -> dict[str, Any]:
    """A valid payment of USCC_A (what the test issuer's default token acts for)."""
    base = {
        "declaration_id": "DEC-0123456789ABCDEF0123456789ABCDEF",
        "notice_id": "0f9c2d1e-1111-5222-8333-444455556666",
        "amount": "60813.00",
        "kind": "PAYMENT",
        "payer": USCC_A,
        "paid_at": "2026-11-27T16:00:00+08:00",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@dataclass
class Teller:
    broker: FakeBroker
    client: httpx.AsyncClient  # a token of trader-a, acting for USCC_A

    async def pay(
        self, payment: Any, key: str | None = None, auth: dict[str, str] | None = None
    ) -> httpx.Response:
        headers = {} if key is None else {"Idempotency-Key": key}
        headers.update(ISSUER.auth() if auth is None else auth)
        return await self.client.post("/v1/payments", json=payment, headers=headers)

    def confirmed(self) -> list[PaymentConfirmed]:
        """The payments on the topic, each accepted as the bank's (its signature checked as
        the aggregator checks it)."""
        return [
            decode_signed(PaymentConfirmed, record, factories.REGISTRY)
            for record in self.broker.records(TOPIC)
        ]


@asynccontextmanager
async def teller(clock: Callable[[], datetime] = lambda: T0) -> AsyncIterator[Teller]:
    async with FakeBroker() as broker:
        producer = EventProducer(Settings(), BANK, factories.SIGNING[BANK], transport=broker)
        app = create_app(Bank(producer, verifier=ISSUER.verifier(), id_secret=SECRET, clock=clock))
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://bank") as client:
            yield Teller(broker, client)
        await producer.stop()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document["status"] == status
    return document


# -- accepted ------------------------------------------------------------------------------


async def test_a_payment_is_published_once_signed_by_the_bank_with_the_bodys_figures() -> None:
    async with teller() as bank:
        response = await bank.pay(body(kind="BANK_GUARANTEE"))
        assert response.status_code == 202, response.text
        answer = response.json()
        [payment] = bank.confirmed()
        [record] = bank.broker.records(TOPIC)
    assert answer == {
        "payment_id": payment.payment_id,
        "declaration_id": "DEC-0123456789ABCDEF0123456789ABCDEF",
        "notice_id": "0f9c2d1e-1111-5222-8333-444455556666",
    }
    assert payment.payment_id.startswith("PAY-") and len(payment.payment_id) == 36
    assert record.key == b"DEC-0123456789ABCDEF0123456789ABCDEF"  # co-partitioned with the join
    assert payment.declaration_id == "DEC-0123456789ABCDEF0123456789ABCDEF"
    assert payment.notice_id == "0f9c2d1e-1111-5222-8333-444455556666"
    assert payment.amount == Decimal("60813.00")
    assert payment.kind is PaymentKind.BANK_GUARANTEE
    assert payment.payer == USCC_A
    assert payment.paid_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # 16:00 in China
    assert payment.signature is not None and payment.signature.key_id == "bank-test"


async def test_without_a_value_date_it_is_paid_now_as_a_payment() -> None:
    async with teller() as bank:
        response = await bank.pay(body(paid_at=None, kind=None, amount="0.5"))
        assert response.status_code == 202, response.text
        [payment] = bank.confirmed()
    assert (payment.paid_at, payment.kind, payment.amount) == (
        T0,
        PaymentKind.PAYMENT,
        Decimal("0.50"),
    )


async def test_a_value_date_a_little_ahead_of_the_banks_clock_is_clock_skew() -> None:
    async with teller() as bank:
        ahead = (T0 + timedelta(minutes=2)).isoformat()
        assert (await bank.pay(body(paid_at=ahead))).status_code == 202


async def test_the_202_comes_only_once_kafka_acknowledged() -> None:
    async with teller() as bank:
        hold = bank.broker.hold(TOPIC)
        paying = asyncio.create_task(bank.pay(body()))
        await hold.reached()  # a valid request: its send is held, unacknowledged
        await asyncio.sleep(0.05)
        assert not paying.done() and bank.broker.records(TOPIC) == []
        hold.release()
        assert (await paying).status_code == 202
        assert len(bank.confirmed()) == 1


# -- idempotency ---------------------------------------------------------------------------


async def test_the_same_idempotency_key_gives_the_same_payment_id() -> None:
    async with teller() as bank:
        first = await bank.pay(body(), key="pay-order-17")
        again = await bank.pay(body(), key="pay-order-17")
        other_key = await bank.pay(body(), key="pay-order-18")
        no_key = [await bank.pay(body()) for _ in range(2)]
        ids = [p.payment_id for p in bank.confirmed()]
    assert first.status_code == again.status_code == 202
    assert first.json()["payment_id"] == again.json()["payment_id"] == ids[0] == ids[1]
    assert other_key.json()["payment_id"] == ids[2]
    assert len(set(ids)) == 4  # another key, and each request without a key: new payments
    assert [r.json()["payment_id"] for r in no_key] == ids[3:]


async def test_a_key_reused_for_another_payment_is_another_payment() -> None:
    """The same key on another amount (or notice) is another payment, not a retry the join
    would count once."""
    async with teller() as bank:
        first = await bank.pay(body(), key="k")
        other = await bank.pay(body(amount="1.00"), key="k")
        ids = [p.payment_id for p in bank.confirmed()]
    assert first.status_code == other.status_code == 202
    assert len(set(ids)) == 2 and other.json()["payment_id"] == ids[1]


async def test_a_key_belongs_to_its_subject() -> None:
    async with teller() as bank:
        mine = await bank.pay(body(), key="k1")
        theirs = await bank.pay(body(), key="k1", auth=ISSUER.auth("trader-b", (USCC_A,)))
    assert mine.json()["payment_id"] != theirs.json()["payment_id"]


# -- refused: nothing published --------------------------------------------------------------


async def test_no_token_or_an_invalid_one_is_401() -> None:
    async with teller() as bank:
        bare = await bank.client.post("/v1/payments", json=body())
        forged = await bank.pay(body(), auth=TestIssuer().auth())  # another issuer's key
        expired = await bank.pay(
            body(), auth={"Authorization": f"Bearer {ISSUER.token(exp=T0 - timedelta(days=1))}"}
        )
        assert bank.broker.records(TOPIC) == []
    problem(bare, 401)
    assert bare.headers["WWW-Authenticate"].startswith("Bearer")
    for refused in (forged, expired):
        problem(refused, 401)
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


async def test_a_payer_the_token_does_not_act_for_is_403() -> None:
    async with teller() as bank:
        response = await bank.pay(body(payer=USCC_B))
        assert bank.broker.records(TOPIC) == []
    document = problem(response, 403)
    assert USCC_B in document["detail"]
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "12.345"}, "amount"),  # more than 2 places
        ({"amount": 12.5}, "amount"),  # a JSON number: floats round
        ({"amount": "1e3"}, "amount"),
        ({"amount": "100000000000000.00"}, "amount"),  # 10^14: beyond any notice
        ({"kind": "CASH"}, "kind"),
        ({"payer": "91350100M000100Y44"}, "payer"),  # wrong check character
        ({"payer": None}, "payer"),
        ({"notice_id": ""}, "notice_id"),
        ({"declaration_id": "DEC\n1"}, "declaration_id"),
        ({"paid_at": "2026-11-27T08:00:00"}, "paid_at"),  # naive: which day in China?
        ({"paid_at": "2026-11-28T08:00:00Z"}, "paid_at"),  # tomorrow: a value date is past
        ({"paid_at": "1999-12-31T23:00:00Z"}, "paid_at"),  # outside the platform's range
        ({"paid_at": "2026-11-27T15:00:00+08:00"}, "paid_at"),  # 1 h 30 before: backdated
        ({"paid_at": 1764230400}, "paid_at"),  # a number, not an ISO-8601 time
        ({"tip": "5.00"}, "tip"),  # unknown fields are refused
    ],
)
async def test_an_invalid_payment_is_422_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    async with teller() as bank:
        response = await bank.pay(body(**changes))
        assert bank.broker.records(TOPIC) == []
    document = problem(response, 422)
    assert field in {e["field"] for e in document["errors"]}, document


async def test_a_bad_idempotency_key_and_a_body_that_is_not_json_are_refused() -> None:
    async with teller() as bank:
        long_key = await bank.pay(body(), key="k" * 129)
        not_json = await bank.client.post(
            "/v1/payments",
            content=b"amount=5",
            headers={**ISSUER.auth(), "content-type": "application/json"},
        )
        form = await bank.client.post("/v1/payments", data={"amount": "5"}, headers=ISSUER.auth())
        assert bank.broker.records(TOPIC) == []
    problem(long_key, 422)
    problem(not_json, 400)
    problem(form, 415)


async def test_kafka_down_is_503_with_retry_after_and_the_retry_publishes_the_same_id() -> None:
    async with teller() as bank:
        bank.broker.fail(TOPIC, KafkaConnectionError())
        down = await bank.pay(body(), key="k-retry")
        assert bank.broker.records(TOPIC) == []  # nothing promised, nothing there
        up = await bank.pay(body(), key="k-retry")
        assert up.status_code == 202
        [payment] = bank.confirmed()
    document = problem(down, 503)
    assert down.headers["Retry-After"] == "5" and "payment_id" not in document
    assert up.json()["payment_id"] == payment.payment_id


async def test_liveness_and_readiness_are_open() -> None:
    async with teller() as bank:
        answers = {p: await bank.client.get(p) for p in ("/livez", "/healthz", "/readyz")}
    assert {p: r.status_code for p, r in answers.items()} == dict.fromkeys(answers, 200)
    assert answers["/healthz"].json() == answers["/livez"].json() == {"status": "live", "loops": {}}
    assert answers["/readyz"].json() == {"status": "ready", "checks": {}}


# -- what the join makes of it ---------------------------------------------------------------


async def test_what_the_bank_confirms_is_what_the_join_settles_the_notice_with() -> None:
    """The car of test_lifecycle: 60,813.00 CNY due by 12 December. Paid on 22 December
    (value date, China) it is 10 days late: 304.07 CNY of interest remain outstanding."""
    events: list[object] = [life.declared(), *life.cleared()]
    notice = life.notice_of(events)
    declaration_id = factories.declaration().declaration_id
    async with teller(clock=lambda: life.china(22, hour=10)) as bank:
        paid = await bank.pay(
            body(
                declaration_id=declaration_id,
                notice_id=notice,
                paid_at="2026-12-22T10:00:00+08:00",
            )
        )
        assert paid.status_code == 202, paid.text
        [payment] = bank.confirmed()
    _, results = life.run([*events, payment])
    assert results[-1].status is ClearanceStatus.AWAITING_PAYMENT
    assert results[-1].payment_notice is not None
    assert results[-1].payment_notice.outstanding == Decimal("304.07")


# -- settings --------------------------------------------------------------------------------


def test_the_bank_refuses_to_start_without_an_issuer_naming_its_own_variables() -> None:
    with pytest.raises(ConfigError) as refused:
        build_verifier(BankSettings())
    assert "the bank has no token issuer" in str(refused.value)
    assert "BANK_JWT_ISSUER" in str(refused.value) and "INTAKE_" not in str(refused.value)
    with pytest.raises(ConfigError, match="BANK_ID_SECRET_FILE"):
        id_secret(BankSettings())


async def test_the_local_bank_takes_the_local_issuers_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_bank_env(tmp_path / "issuer", tmp_path / "bank-id").items():
        monkeypatch.setenv(name, value)
    own = BankSettings()
    assert (own.host, own.port, own.metrics_port, own.public_docs) == (
        "127.0.0.1",
        8081,
        9107,
        True,
    )
    async with FakeBroker() as broker:
        producer = EventProducer(Settings(), BANK, factories.SIGNING[BANK], transport=broker)
        app = create_app(
            Bank(producer, verifier=build_verifier(own), id_secret=id_secret(own)),
            docs=own.public_docs,
        )
        headers = devissuer.bearer("local", [USCC_A], directory=tmp_path / "issuer")
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bank") as client:
            paid = await client.post("/v1/payments", json=body(paid_at=None), headers=headers)
            docs = await client.get("/openapi.json")
        await producer.stop()
        assert paid.status_code == 202, paid.text
        assert len(broker.records(TOPIC)) == 1
    assert "/v1/payments" in docs.json()["paths"]


async def test_a_security_notice_takes_a_bank_guarantee_and_nothing_else() -> None:
    """A price consultation's security notice (``SEC-``): cash or a draw on a general
    guarantee would be taken for nothing (the join releases only on a bank guarantee), so
    the bank refuses them (422, nothing published) and confirms the guarantee."""
    notice = payment.security_notice_id("DEC-0123456789ABCDEF0123456789ABCDEF", 1)
    async with teller() as bank:
        refused = await bank.pay(body(notice_id=notice))
        assert bank.broker.records(TOPIC) == []
        accepted = await bank.pay(body(notice_id=notice, kind="BANK_GUARANTEE"))
        assert accepted.status_code == 202, accepted.text
        assert len(bank.broker.records(TOPIC)) == 1
    document = problem(refused, 422)
    assert "only a BANK_GUARANTEE" in str(document), document
