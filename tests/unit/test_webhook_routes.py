"""``/v1/webhooks`` at the intake, through the real FastAPI app with the in-memory ports:
registration (the secret shown once), URL policy, the bound per subject, authorization (a
webhook is its subject's: another's is a 404 like an unknown one), the delivery log and
redelivery."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta

import httpx
import pytest

from services.intake.api import IntakeService, create_app
from services.intake.ports import InMemoryPublisher, InMemoryReadModel
from services.intake.webhooks import WebhookRegistry
from services.webhooks.destinations import DestinationPolicy
from services.webhooks.signing import WebhookKeys, parse_keys
from services.webhooks.store import Attempt, Delivery, InMemoryWebhookStore
from tests.unit.intake_tokens import USCC_A, USCC_B, TestIssuer
from tests.unit.test_intake_api import FAST, T0

ISSUER = TestIssuer()
KEYS = parse_keys(f"test:{secrets.token_hex(32)}", "test keys")
HOOK = "https://93.184.215.14/hooks/sw"


@dataclass
class Window:
    a: httpx.AsyncClient  # trader-a, acting for USCC_A
    b: httpx.AsyncClient  # trader-b, acting for USCC_B
    store: InMemoryWebhookStore
    keys: WebhookKeys


@pytest.fixture
async def window() -> AsyncIterator[Window]:
    store = InMemoryWebhookStore()
    registry = WebhookRegistry(
        store, KEYS, DestinationPolicy(allow_loopback=True), max_per_subject=3, clock=lambda: T0
    )
    service = IntakeService(
        InMemoryPublisher(),
        InMemoryReadModel(),
        verifier=ISSUER.verifier(),
        id_secret=secrets.token_bytes(32),
        limits=FAST,
    )
    app = create_app(service, webhooks=registry)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    base = "http://intake"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=base, headers=ISSUER.auth()) as a,
        httpx.AsyncClient(
            transport=transport, base_url=base, headers=ISSUER.auth("trader-b", (USCC_B,))
        ) as b,
    ):
        yield Window(a, b, store, KEYS)


async def test_a_registration_shows_its_secret_once_and_stores_no_secret(window: Window) -> None:
    created = await window.a.post("/v1/webhooks", json={"url": HOOK, "events": ["status"]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"webhook_id", "url", "events", "secret", "created_at"}
    assert body["url"] == HOOK and body["events"] == ["status"]
    assert body["webhook_id"].startswith("WH-") and body["secret"].startswith("whsec_")
    stored = window.store.webhooks[body["webhook_id"]]
    assert (stored.subject, stored.usccs) == ("trader-a", (USCC_A,))
    assert body["secret"] not in repr(stored)  # only what it is derived from
    # the delivery service derives the same secret from what is stored
    nonce = bytes.fromhex(stored.nonce)
    assert window.keys.secret(stored.key_version, stored.webhook_id, nonce) == body["secret"]
    listed = (await window.a.get("/v1/webhooks")).json()["webhooks"]
    assert [w["webhook_id"] for w in listed] == [body["webhook_id"]]
    assert "secret" not in listed[0]
    other = (await window.a.post("/v1/webhooks", json={"url": HOOK})).json()
    assert other["secret"] != body["secret"]  # a secret per subscription; events default


async def test_another_traders_webhook_is_404_like_an_unknown_one(window: Window) -> None:
    hook = (await window.a.post("/v1/webhooks", json={"url": HOOK})).json()["webhook_id"]
    for path in (f"/v1/webhooks/{hook}", "/v1/webhooks/WH-NONE"):
        answer = await window.b.delete(path)
        assert answer.status_code == 404
        assert answer.json()["type"] == "urn:singlewindow:problem:unknown-webhook"
    for path in (f"/v1/webhooks/{hook}/deliveries", f"/v1/webhooks/{hook}/deliveries/D/redeliver"):
        method = window.b.post if path.endswith("redeliver") else window.b.get
        assert (await method(path)).status_code == 404
    assert (await window.b.get("/v1/webhooks")).json() == {"webhooks": []}
    assert hook in window.store.webhooks
    assert (await window.a.delete(f"/v1/webhooks/{hook}")).status_code == 204
    assert window.store.webhooks == {}
    assert (await window.a.delete(f"/v1/webhooks/{hook}")).status_code == 404


async def test_no_token_no_webhooks(window: Window) -> None:
    bare = {"Authorization": ""}
    assert (await window.a.get("/v1/webhooks", headers=bare)).status_code == 401
    assert (
        await window.a.post("/v1/webhooks", json={"url": HOOK}, headers=bare)
    ).status_code == 401


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"url": "http://93.184.215.14/hook"}, "webhook-url-refused"),
        ({"url": "https://10.0.0.1/hook"}, "webhook-url-refused"),
        ({"url": "https://169.254.169.254/latest"}, "webhook-url-refused"),
        ({"url": HOOK, "events": ["everything"]}, "invalid-webhook"),
        ({"url": HOOK, "events": []}, "invalid-webhook"),
        ({"url": HOOK, "secret": "mine"}, "invalid-webhook"),
        ({}, "invalid-webhook"),
    ],
)
async def test_a_bad_registration_is_422(
    window: Window, body: dict[str, object], kind: str
) -> None:
    answer = await window.a.post("/v1/webhooks", json=body)
    assert answer.status_code == 422
    assert answer.json()["type"] == f"urn:singlewindow:problem:{kind}"
    assert window.store.webhooks == {}


async def test_a_loopback_receiver_when_the_intake_allows_it(window: Window) -> None:
    answer = await window.a.post("/v1/webhooks", json={"url": "http://127.0.0.1:8765/hook"})
    assert answer.status_code == 201, answer.text


async def test_a_subject_has_a_bounded_number_of_webhooks(window: Window) -> None:
    for _ in range(3):
        assert (await window.a.post("/v1/webhooks", json={"url": HOOK})).status_code == 201
    refused = await window.a.post("/v1/webhooks", json={"url": HOOK})
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:singlewindow:problem:too-many-webhooks"
    assert (await window.b.post("/v1/webhooks", json={"url": HOOK})).status_code == 201


async def test_the_delivery_log_and_a_redelivery(window: Window) -> None:
    hook = (await window.a.post("/v1/webhooks", json={"url": HOOK})).json()["webhook_id"]
    failed = Delivery(
        delivery_id="DLV-1",
        webhook_id=hook,
        subject="trader-a",
        declaration_id="DEC-1",
        result_id="R-1",
        status="RELEASED",
        sequence=1,
        version=1,
        occurred_at=T0,
        created_at=T0,
        state="failed",
        tries=2,
        attempts=(
            Attempt(T0, 500, None, 12),
            Attempt(T0 + timedelta(seconds=10), None, "ConnectError: refused", 3),
        ),
    )
    await window.store.record(
        [failed, replace(failed, delivery_id="DLV-0", created_at=T0 - timedelta(1))]
    )
    log = await window.a.get(f"/v1/webhooks/{hook}/deliveries", params={"limit": 1})
    assert log.status_code == 200
    (shown,) = log.json()["deliveries"]
    assert shown["delivery_id"] == "DLV-1" and shown["state"] == "failed"
    assert [a["status_code"] for a in shown["attempts"]] == [None, 500]  # newest first
    assert shown["attempts"][0]["error"] == "ConnectError: refused"
    again = await window.a.post(f"/v1/webhooks/{hook}/deliveries/DLV-1/redeliver")
    assert again.status_code == 202
    assert again.json()["state"] == "pending" and again.json()["next_attempt_at"] is not None
    assert window.store.deliveries["DLV-1"].tries == 0  # a fresh budget of tries
    assert (
        await window.a.get(f"/v1/webhooks/{hook}/deliveries", params={"limit": 0})
    ).status_code == 422
    missing = await window.a.post(f"/v1/webhooks/{hook}/deliveries/DLV-9/redeliver")
    assert missing.status_code == 404
