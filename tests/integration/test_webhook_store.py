"""The webhooks' store on the real database (FerretDB locally): every query it makes is one
the server answers as the in-memory store does (array membership, ``$nin``, counts, sorted
pages, the claim's ``find_one_and_update``, duplicate inserts ignored)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.webhooks.store import (
    DELIVERIES,
    WEBHOOKS,
    Attempt,
    Delivery,
    MongoWebhookStore,
    Subscription,
    with_attempt,
)

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 27, 8, 30, 15, 123000, tzinfo=UTC)


def hook(webhook_id: str, subject: str, *usccs: str) -> Subscription:
    return Subscription(
        webhook_id, subject, usccs, "https://h.example/x", ("status",), "v", "00", T0
    )


def delivery(delivery_id: str, webhook_id: str, due: datetime | None = T0) -> Delivery:
    return Delivery(
        delivery_id,
        webhook_id,
        "s",
        "DEC-1",
        f"R-{delivery_id}",
        "RELEASED",
        1,
        1,
        T0,
        due or T0,
        due=due,
    )


async def test_the_store_on_the_real_database(database: AsyncDatabase[dict[str, object]]) -> None:
    store = MongoWebhookStore(database[WEBHOOKS], database[DELIVERIES])  # type: ignore[arg-type]
    await store.create_indexes()
    await store.add_webhook(hook("WH-1", "a", "U1", "U2"))
    await store.add_webhook(hook("WH-2", "a", "U3"))
    await store.add_webhook(hook("WH-3", "b", "U2"))
    assert await store.count_webhooks("a") == 2
    assert [w.webhook_id for w in await store.webhooks_of("a")] == ["WH-1", "WH-2"]
    assert {w.webhook_id for w in await store.subscribers({"U2"})} == {"WH-1", "WH-3"}
    assert await store.subscribers({"U9"}) == []
    assert await store.webhook("WH-2") == hook("WH-2", "a", "U3")

    first = delivery("D-1", "WH-1", T0)
    await store.record([first, delivery("D-2", "WH-2", T0 + timedelta(seconds=1))])
    await store.record([replace(first, status="CHANGED"), delivery("D-3", "WH-1", None)])
    assert (await store.delivery("D-1")) == first  # the first copy stays
    now = T0 + timedelta(seconds=5)
    assert [d.delivery_id for d in await store.due(now, 10)] == ["D-1", "D-2"]
    assert [d.delivery_id for d in await store.due(now, 10, exclude={"WH-1"})] == ["D-2"]

    lease = now + timedelta(seconds=30)
    assert await store.claim("D-1", now, lease)
    assert not await store.claim("D-1", now, lease)  # taken: no longer due
    done = with_attempt(
        first, Attempt(now, 200, None, 12), state="delivered", due=None, delivered_at=now
    )
    await store.finish(done)
    assert await store.delivery("D-1") == done
    assert [d.delivery_id for d in await store.deliveries_of("WH-1", 1)] == ["D-3"]
    again = await store.reschedule("D-1", now)
    assert again is not None and (again.state, again.due, again.tries) == ("pending", now, 0)
    await store.delete_webhook("WH-1")
    assert await store.webhook("WH-1") is None
