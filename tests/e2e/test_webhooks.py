"""Webhooks through the whole platform: a trader registers receivers (local HTTP servers on
127.0.0.1, which the local platform allows), lodges a declaration, pays and is released,
and each receiver gets every status change of it, signed with its own secret, at least
once, one of them only after it failed and recovered; the delivery log shows the tries,
another trader cannot read it, and a redelivery sends the same delivery again.

The delivery service's backoff is its default (10 s, then doubling, with jitter): the
receiver that fails twice is delivered within about 30 s of its first try.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from deploy.local import journeys
from deploy.local.demo_data import demo_usccs, scenario_body
from deploy.local.journeys import Window
from services.intake.devissuer import bearer
from services.webhooks.signing import verify
from tests.e2e.checks import inspector, unsampled_keys
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e
PATIENCE_S = 180


@dataclass
class Receiver:
    """A trader's endpoint: answers 500 to the first ``failures`` requests of each delivery
    (by ``SW-Delivery``), then 200."""

    failures: int = 0
    tries: dict[str, int] = field(default_factory=dict)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def payloads(self, declaration_id: str) -> list[tuple[dict[str, str], bytes, dict[str, Any]]]:
        """What it received about ``declaration_id``: headers (lower-case names), the raw
        body, the body parsed."""
        with self.lock:
            got = [(h, b, json.loads(b)) for h, b in self.received]
        return [(h, b, p) for h, b, p in got if p["declaration_id"] == declaration_id]


@contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with receiver.lock:
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                delivery = self.headers["SW-Delivery"]
                receiver.tries[delivery] = receiver.tries.get(delivery, 0) + 1
                failing = receiver.tries[delivery] <= receiver.failures
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/sw"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


async def until(done: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Wait for a condition (``PATIENCE_S`` only ends a broken test)."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        outcome = done()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {PATIENCE_S} s: {what}")
        await asyncio.sleep(0.25)


def delivered_statuses(receiver: Receiver, declaration_id: str, secret: str) -> list[str]:
    """The statuses ``receiver`` was sent about the declaration, each signature checked,
    by sequence, once each (a delivery may come more than once: at least once)."""
    seen: dict[str, dict[str, Any]] = {}
    for headers, body, payload in receiver.payloads(declaration_id):
        verify(secret, headers["sw-signature"], body, now=time.time())  # the bytes received
        assert headers["sw-delivery"] == payload["delivery_id"]
        seen[payload["delivery_id"]] = payload
    return [p["status"] for p in sorted(seen.values(), key=lambda p: p["sequence"])]


async def test_a_trader_receives_its_status_changes_signed_even_after_failing(
    platform: Platform,
) -> None:
    subject = f"webhook-e2e-{uuid.uuid4().hex[:8]}"
    auth = bearer(subject, demo_usccs())
    urls = (platform.url, platform.bank_url, platform.inspection_url, platform.gate_url)
    window = Window.open(urls, auth, inspector, unsampled_keys(subject))
    other = httpx.AsyncClient(base_url=platform.url, headers=bearer("someone-else", demo_usccs()))
    try:
        with receiving(Receiver()) as steady, receiving(Receiver(failures=2)) as flaky:
            hooks = {}
            for receiver in (steady, flaky):
                created = await window.intake.post(
                    "/v1/webhooks", json={"url": receiver.url, "events": ["status"]}
                )
                assert created.status_code == 201, created.text
                hooks[receiver.url] = created.json()
            views = await journeys.pay_and_release(window, scenario_body("clear-laptops"))
            declaration_id = views[-1]["declaration_id"]
            wanted = ["AWAITING_PAYMENT", "RELEASED"]

            def sent_everything(receiver: Receiver) -> Callable[[], bool]:
                secret = hooks[receiver.url]["secret"]
                return lambda: delivered_statuses(receiver, declaration_id, secret) == wanted

            for receiver in (steady, flaky):
                await until(sent_everything(receiver), f"{wanted} sent to {receiver.url}")
            (*_, last) = steady.payloads(declaration_id)[-1]
            assert last["event"] == "status" and last["view"]["declaration_id"] == declaration_id
            assert last["webhook_id"] == hooks[steady.url]["webhook_id"]

            # the flaky receiver's log: each delivery two 500s, then delivered
            flaky_id = hooks[flaky.url]["webhook_id"]
            log_path = f"/v1/webhooks/{flaky_id}/deliveries"

            async def flaky_log() -> list[dict[str, Any]]:
                answer = await window.intake.get(log_path, params={"limit": 100})
                assert answer.status_code == 200, answer.text
                return [
                    d for d in answer.json()["deliveries"] if d["declaration_id"] == declaration_id
                ]

            async def both_delivered() -> bool:
                logged = await flaky_log()
                return len(logged) == 2 and {d["state"] for d in logged} == {"delivered"}

            await until(both_delivered, "the flaky receiver's log: both delivered")
            logged = await flaky_log()
            assert sorted(d["status"] for d in logged) == sorted(wanted)
            for delivery in logged:  # the log lists the latest try first
                codes = [a["status_code"] for a in reversed(delivery["attempts"])]
                assert codes == [500, 500, 200], delivery
                assert all(a["duration_ms"] >= 0 for a in delivery["attempts"])
            # another trader sees nothing of it
            assert (await other.get(log_path)).status_code == 404
            assert (await other.delete(f"/v1/webhooks/{flaky_id}")).status_code == 404

            # a redelivery sends the same delivery again
            first = logged[0]["delivery_id"]
            before = len(
                [p for *_, p in flaky.payloads(declaration_id) if p["delivery_id"] == first]
            )
            again = await window.intake.post(f"{log_path}/{first}/redeliver")
            assert again.status_code == 202, again.text
            await until(
                lambda: (
                    len(
                        [p for *_, p in flaky.payloads(declaration_id) if p["delivery_id"] == first]
                    )
                    > before
                ),
                "the redelivery",
            )
            for hook in hooks.values():
                gone = await window.intake.delete(f"/v1/webhooks/{hook['webhook_id']}")
                assert gone.status_code == 204
            assert (await window.intake.get("/v1/webhooks")).json() == {"webhooks": []}
    finally:
        await window.close()
        await other.aclose()


async def test_a_webhook_to_the_platforms_own_network_is_refused(platform: Platform) -> None:
    async with httpx.AsyncClient(
        base_url=platform.url, headers=bearer(f"ssrf-{uuid.uuid4().hex[:8]}", demo_usccs())
    ) as client:
        for url in (
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/",
            "http://example.com/",
        ):
            answer = await client.post("/v1/webhooks", json={"url": url})
            assert answer.status_code == 422, (url, answer.text)
