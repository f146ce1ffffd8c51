"""The consume side of webhooks: each result becomes one delivery per webhook acting for
its declarant, recorded once however often the result is read."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from services.webhooks.outbox import NotYetProjected, record_results
from services.webhooks.service import results_handler
from services.webhooks.store import (
    InMemoryWebhookStore,
    StoreUnavailable,
    Subscription,
    delivery_id,
)
from singlewindow.events import ClearanceStatus
from singlewindow.kafka.consumer import PoisonMessage, is_transient
from singlewindow.readmodel import apply
from singlewindow.topics import CLEARANCE_RESULTS
from tests import factories
from tests.factories import T0

DECLARANT = factories.declaration().declarant.uscc
OTHER = "91110000600037341L"
NOW = T0 + timedelta(seconds=5)


class Declarations:
    """The read model's documents by id (the projector's fold of the declarations)."""

    def __init__(self, *ids: str) -> None:
        self.docs = {i: apply(None, factories.declaration(i)) for i in ids}

    async def documents(
        self, ids: Collection[str], fields: Iterable[str] | None = None
    ) -> dict[str, Any]:
        return {i: self.docs[i] for i in ids if i in self.docs}


def webhook(webhook_id: str, usccs: tuple[str, ...] = (DECLARANT,), **changes: Any) -> Subscription:
    base = Subscription(
        webhook_id=webhook_id,
        subject=f"subject-of-{webhook_id}",
        usccs=usccs,
        url=f"https://hooks.example.com/{webhook_id}",
        events=("status",),
        key_version="v1",
        nonce="00",
        created_at=T0 - timedelta(days=1),
    )
    return replace(base, **changes)


async def store_with(*hooks: Subscription) -> InMemoryWebhookStore:
    store = InMemoryWebhookStore()
    for hook in hooks:
        await store.add_webhook(hook)
    return store


async def test_a_result_is_one_delivery_per_webhook_acting_for_its_declarant() -> None:
    store = await store_with(webhook("WH-A"), webhook("WH-B"), webhook("WH-X", (OTHER,)))
    result = factories.result(
        "D-1", status=ClearanceStatus.INSPECTION_REQUIRED, sequence=2, version=1
    )
    await record_results([result], store, Declarations("D-1"), NOW)
    deliveries = {d.webhook_id: d for d in store.deliveries.values()}
    assert set(deliveries) == {"WH-A", "WH-B"}  # not the other declarant's subscriber
    a = deliveries["WH-A"]
    assert a.delivery_id == delivery_id(result.result_id, "WH-A")
    assert (a.declaration_id, a.status, a.sequence, a.version) == (
        "D-1",
        "INSPECTION_REQUIRED",
        2,
        1,
    )
    assert (a.state, a.due, a.occurred_at, a.subject) == ("pending", NOW, T0, "subject-of-WH-A")


async def test_a_result_read_again_never_makes_a_second_delivery() -> None:
    store = await store_with(webhook("WH-A"))
    result = factories.result("D-1")
    await record_results([result, result], store, Declarations("D-1"), NOW)
    first = dict(store.deliveries)
    # the delivery moved on meanwhile (delivered): a redelivered record leaves it alone
    (key,) = first
    store.deliveries[key] = replace(first[key], state="delivered", due=None)
    await record_results([result], store, Declarations("D-1"), NOW + timedelta(hours=1))
    assert list(store.deliveries) == [key]
    assert store.deliveries[key].state == "delivered"


async def test_a_webhook_receives_only_what_was_decided_after_it_was_registered() -> None:
    store = await store_with(webhook("WH-NEW", created_at=T0 + timedelta(seconds=1)))
    await record_results([factories.result("D-1")], store, Declarations("D-1"), NOW)
    assert store.deliveries == {}


async def test_a_result_whose_declaration_is_not_projected_yet_is_retried_not_dropped() -> None:
    store = await store_with(webhook("WH-A"))
    with pytest.raises(NotYetProjected) as waiting:
        await record_results([factories.result("D-2")], store, Declarations("D-1"), NOW)
    assert is_transient(waiting.value)  # the consume loop retries it, never dead-letters it
    assert store.deliveries == {}
    assert is_transient(StoreUnavailable("the database is away"))  # nor for an outage


def record(value: bytes, key: bytes = b"D-1") -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        CLEARANCE_RESULTS.name, 0, 7, 0, 0, key, value, None, len(key), len(value), []
    )


async def test_the_consume_loop_records_signed_results_and_refuses_unsigned_ones() -> None:
    store = await store_with(webhook("WH-A"))
    handle = results_handler(store, Declarations("D-1"), factories.REGISTRY, lambda: NOW)
    result = factories.result("D-1")
    await handle([record(factories.signed(result))])
    assert [d.result_id for d in store.deliveries.values()] == [result.result_id]
    with pytest.raises(PoisonMessage, match="signature"):
        await handle([record(factories.result("D-1", result_id="R-forged").to_avro())])
    assert len(store.deliveries) == 1
