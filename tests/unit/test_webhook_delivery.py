"""The delivery loop against real HTTP receivers (``http.server`` on 127.0.0.1, a port the
system picks) with the in-memory outbox: signed, retried with backoff until the receiver
recovers, bounded, logged try by try, and a receiver that hangs holds only its own places
while the others are delivered."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from services.webhooks.deliverer import Deliverer, Options, backoff_s
from services.webhooks.destinations import DestinationPolicy
from services.webhooks.service import view_of
from services.webhooks.signing import parse_keys, verify
from services.webhooks.store import Delivery, InMemoryWebhookStore, Subscription
from singlewindow.readmodel import apply
from tests import factories

KEYS = parse_keys("test:" + "ab" * 32, "test keys")
QUICK = Options(first_backoff_s=0.01, max_backoff_s=0.02, timeout_s=60, poll_interval_s=0.01)
DOC = apply(None, factories.declaration("DEC-1"))


# -- receivers -----------------------------------------------------------------------------


@dataclass
class Receiver:
    """What a trader runs: answers ``statuses`` in turn (then the last one for ever), or
    hangs while ``hang`` is set; keeps what it received."""

    statuses: list[int] = field(default_factory=lambda: [200])
    hang: threading.Event | None = None
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    url: str = ""

    def answer(self) -> int:
        if len(self.statuses) > 1:
            return self.statuses.pop(0)
        return self.statuses[0]


@contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.received.append((dict(self.headers.items()), body))
            receiver.arrived.release()
            if receiver.hang is not None:
                receiver.hang.wait()
            self.send_response(receiver.answer())
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        if receiver.hang is not None:
            receiver.hang.set()
        server.shutdown()
        server.server_close()


# -- the outbox and the loop ---------------------------------------------------------------


def subscription(webhook_id: str, url: str) -> Subscription:
    return Subscription(
        webhook_id=webhook_id,
        subject="trader-a",
        usccs=("91350100M000100Y43",),
        url=url,
        events=("status",),
        key_version="test",
        nonce="0102",
        created_at=factories.T0,
    )


def delivery(delivery_id: str, webhook_id: str) -> Delivery:
    now = datetime.now(UTC)
    return Delivery(
        delivery_id=delivery_id,
        webhook_id=webhook_id,
        subject="trader-a",
        declaration_id="DEC-1",
        result_id=f"R-{delivery_id}",
        status="RELEASED",
        sequence=2,
        version=1,
        occurred_at=factories.T0,
        created_at=now,
        due=now,
    )


async def view(declaration_id: str) -> dict[str, Any] | None:
    return view_of(DOC if declaration_id == "DEC-1" else None)


@asynccontextmanager
async def delivering(
    store: InMemoryWebhookStore,
    options: Options = QUICK,
    policy: DestinationPolicy | None = None,
    views: Callable[[str], Awaitable[dict[str, Any] | None]] = view,
) -> AsyncIterator[Deliverer]:
    async with httpx.AsyncClient(trust_env=False) as client:
        deliverer = Deliverer(
            store, KEYS, views, client, policy or DestinationPolicy(allow_loopback=True), options
        )
        running = asyncio.create_task(deliverer.run())
        try:
            yield deliverer
        finally:
            deliverer.stop()
            await running


async def until(done: Callable[[], bool], timeout_s: float = 30) -> None:
    """Wait for a condition (the timeout only ends a broken test)."""
    async with asyncio.timeout(timeout_s):
        while not done():
            await asyncio.sleep(0.01)


def state(store: InMemoryWebhookStore, delivery_id: str) -> str:
    return store.deliveries[delivery_id].state


async def outbox(*pairs: tuple[str, str], hooks: dict[str, str]) -> InMemoryWebhookStore:
    store = InMemoryWebhookStore()
    for webhook_id, url in hooks.items():
        await store.add_webhook(subscription(webhook_id, url))
    await store.record([delivery(d, w) for d, w in pairs])
    return store


# -- the tests -----------------------------------------------------------------------------


def test_the_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() -> None:
    low = [backoff_s(n, 10, 300, lambda: 0.0) for n in range(1, 8)]
    high = [backoff_s(n, 10, 300, lambda: 1.0) for n in range(1, 8)]
    assert high == [10, 20, 40, 80, 160, 300, 300]
    assert low == [5, 10, 20, 40, 80, 150, 150]
    assert backoff_s(3, 10, 300, lambda: 0.5) == 30


async def test_a_receiver_that_fails_twice_then_recovers_gets_it_signed() -> None:
    with receiving(Receiver(statuses=[500, 503, 204])) as receiver:
        store = await outbox(("DLV-1", "WH-1"), hooks={"WH-1": receiver.url})
        async with delivering(store):
            await until(lambda: state(store, "DLV-1") == "delivered")
    done = store.deliveries["DLV-1"]
    assert [a.status_code for a in done.attempts] == [500, 503, 204]
    assert all(a.error is None and a.duration_ms >= 0 for a in done.attempts)
    assert done.delivered_at == done.attempts[-1].at and done.due is None
    assert len(receiver.received) == 3
    secret = KEYS.secret("test", "WH-1", bytes.fromhex("0102"))
    for headers, body in receiver.received:
        assert headers["SW-Delivery"] == "DLV-1"
        assert headers["Content-Type"] == "application/json"
        verify(secret, headers["SW-Signature"], body, now=time.time())
    payload = json.loads(receiver.received[-1][1])
    assert payload == {
        "delivery_id": "DLV-1",
        "webhook_id": "WH-1",
        "declaration_id": "DEC-1",
        "event": "status",
        "status": "RELEASED",
        "sequence": 2,
        "version": 1,
        "occurred_at": "2026-11-27T08:30:15.123000Z",
        "view": view_of(DOC),
    }
    assert payload["view"]["declaration_id"] == "DEC-1"


async def test_a_hanging_receiver_holds_only_its_own_places() -> None:
    options = Options(
        first_backoff_s=0.01, timeout_s=120, poll_interval_s=0.01, concurrency=4, per_webhook=2
    )
    with (
        receiving(Receiver(hang=threading.Event())) as slow,
        receiving(Receiver()) as quick,
    ):
        pairs = [(f"DLV-S{i}", "WH-SLOW") for i in range(5)]
        pairs += [(f"DLV-Q{i}", "WH-QUICK") for i in range(6)]
        store = await outbox(*pairs, hooks={"WH-SLOW": slow.url, "WH-QUICK": quick.url})
        async with delivering(store, options) as deliverer:
            await until(lambda: all(state(store, f"DLV-Q{i}") == "delivered" for i in range(6)))
            # meanwhile the slow receiver has had two requests (its places), both unanswered
            for _ in range(2):
                await asyncio.to_thread(slow.arrived.acquire)
            assert len(slow.received) == 2
            assert sorted(deliverer.busy.items()) == [("WH-SLOW", 2)]
            assert all(state(store, f"DLV-S{i}") == "pending" for i in range(5))
            assert slow.hang is not None
            slow.hang.set()  # it recovers: the rest follow
            await until(lambda: all(state(store, f"DLV-S{i}") == "delivered" for i in range(5)))
    assert len(quick.received) == 6


async def test_a_receiver_that_never_recovers_ends_failed_after_the_last_try() -> None:
    options = Options(
        first_backoff_s=0.01, max_backoff_s=0.02, max_attempts=3, poll_interval_s=0.01
    )
    with receiving(Receiver(statuses=[500])) as receiver:
        store = await outbox(("DLV-1", "WH-1"), hooks={"WH-1": receiver.url})
        async with delivering(store, options):
            await until(lambda: state(store, "DLV-1") == "failed")
            await asyncio.sleep(0.1)  # nothing more is tried once failed
        assert len(receiver.received) == 3
        assert [a.status_code for a in store.deliveries["DLV-1"].attempts] == [500] * 3
        # the trader redelivers once the receiver is fixed
        receiver.statuses[:] = [200]
        await store.reschedule("DLV-1", datetime.now(UTC))
        async with delivering(store, options):
            await until(lambda: state(store, "DLV-1") == "delivered")
    assert [a.status_code for a in store.deliveries["DLV-1"].attempts] == [500, 500, 500, 200]


async def test_an_unreachable_receiver_is_an_error_in_the_log() -> None:
    with receiving(Receiver()) as gone:
        url = gone.url  # the port is free again once its server closed
    options = Options(first_backoff_s=0.01, max_attempts=2, poll_interval_s=0.01, timeout_s=5)
    store = await outbox(("DLV-1", "WH-1"), hooks={"WH-1": url})
    async with delivering(store, options):
        await until(lambda: state(store, "DLV-1") == "failed")
    attempts = store.deliveries["DLV-1"].attempts
    assert [a.status_code for a in attempts] == [None, None]
    assert all(a.error and "Connect" in a.error for a in attempts)


async def test_a_url_the_policy_refuses_now_is_never_called() -> None:
    with receiving(Receiver()) as receiver:
        store = await outbox(("DLV-1", "WH-1"), hooks={"WH-1": receiver.url})
        options = Options(first_backoff_s=0.01, max_attempts=1, poll_interval_s=0.01)
        async with delivering(store, options, policy=DestinationPolicy()):
            await until(lambda: state(store, "DLV-1") == "failed")
    assert receiver.received == []
    assert "refused" in (store.deliveries["DLV-1"].attempts[0].error or "")


async def test_a_deleted_webhook_gets_nothing_more() -> None:
    with receiving(Receiver()) as receiver:
        store = await outbox(("DLV-1", "WH-1"), hooks={"WH-1": receiver.url})
        await store.delete_webhook("WH-1")
        async with delivering(store):
            await until(lambda: state(store, "DLV-1") == "failed")
    assert receiver.received == []
    assert store.deliveries["DLV-1"].attempts[0].error == "the webhook was deleted"


async def test_the_view_is_null_when_the_read_model_cannot_be_read() -> None:
    async def unreadable(_: str) -> dict[str, Any] | None:
        raise ConnectionError("the database is away")

    with receiving(Receiver()) as receiver:
        store = await outbox(("DLV-1", "WH-1"), hooks={"WH-1": receiver.url})
        async with delivering(store, views=unreadable):
            await until(lambda: state(store, "DLV-1") == "delivered")
    assert json.loads(receiver.received[0][1])["view"] is None


async def test_two_delivery_loops_never_try_one_delivery_at_once() -> None:
    with receiving(Receiver(hang=threading.Event())) as receiver:
        store = await outbox(("DLV-1", "WH-1"), hooks={"WH-1": receiver.url})
        async with delivering(store) as first, delivering(store) as second:
            await asyncio.to_thread(receiver.arrived.acquire)
            for _ in range(20):  # both loops look again, many times
                await first.dispatch()
                await second.dispatch()
            assert len(first.inflight) + len(second.inflight) == 1
            assert receiver.hang is not None
            receiver.hang.set()
            await until(lambda: state(store, "DLV-1") == "delivered")
    assert len(receiver.received) == 1
