"""The consume side: each result on ``clearance.results`` becomes one delivery per webhook
that acts for its declarant, in the outbox (:mod:`services.webhooks.store`). Nothing else:
no HTTP here, so a slow or failing receiver never holds up the consume loop, whose commit
follows the outbox's write (at least once; the outbox is idempotent by delivery id).

A result does not name its declarant: the read model does (the projector's document of the
declaration, which exists before any result of it, from the intake's seed or the projector).
When it is not there yet (the projector lags or is away), the batch is retried as a
transient fault (:class:`NotYetProjected`) until it is, so a status change is delayed, never
dropped. A webhook receives the changes decided after it was registered (an earlier result
read again, a new consumer group's first pass over the topic, is no news to it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any, Protocol

from services.webhooks.store import Delivery, WebhookStore, delivery_id
from singlewindow.events import ClearanceResult

Doc = dict[str, Any]


class NotYetProjected(TimeoutError):
    """A result's declaration is not in the read model yet: retried (a TimeoutError is a
    transient fault to the consume loop)."""


class Declarations(Protocol):
    async def documents(
        self, ids: Collection[str], fields: Iterable[str] | None = None
    ) -> dict[str, Doc]:
        """The read-model documents of ``ids`` that exist (only ``fields``, if named)."""
        ...


def declarant(doc: Doc | None) -> str | None:
    """The declarant's USCC of a read-model document."""
    uscc = (((doc or {}).get("declaration") or {}).get("declarant") or {}).get("uscc")
    return uscc if isinstance(uscc, str) else None


def deliveries_for(
    results: Iterable[ClearanceResult],
    declarants: dict[str, str],
    webhooks: Iterable[Any],
    now: datetime,
) -> list[Delivery]:
    """One delivery per (result, webhook acting for its declarant and registered before the
    result was decided); pure."""
    webhooks = list(webhooks)
    out: dict[str, Delivery] = {}
    for result in results:
        uscc = declarants[result.declaration_id]
        for hook in webhooks:
            if uscc not in hook.usccs or "status" not in hook.events:
                continue
            if result.decided_at < hook.created_at:
                continue
            key = delivery_id(result.result_id, hook.webhook_id)
            out.setdefault(
                key,
                Delivery(
                    delivery_id=key,
                    webhook_id=hook.webhook_id,
                    subject=hook.subject,
                    declaration_id=result.declaration_id,
                    result_id=result.result_id,
                    status=str(result.status),
                    sequence=result.sequence,
                    version=result.version,
                    occurred_at=result.decided_at,
                    created_at=now,
                    due=now,
                ),
            )
    return list(out.values())


async def record_results(
    results: list[ClearanceResult],
    store: WebhookStore,
    declarations: Declarations,
    now: datetime,
) -> list[Delivery]:
    """Write the deliveries of ``results`` into the outbox (idempotently); what was due.

    One read of the declarants, one query of the subscriptions and one insert per batch.
    Raises NotYetProjected when a result's declaration is not in the read model yet."""
    if not results:
        return []
    ids = {r.declaration_id for r in results}
    docs = await declarations.documents(ids, ["declaration.declarant.uscc"])
    declarants = {i: u for i in ids if (u := declarant(docs.get(i))) is not None}
    missing = sorted(ids - set(declarants))
    if missing:
        raise NotYetProjected(f"not in the read model yet: {', '.join(missing[:5])}")
    webhooks = await store.subscribers(set(declarants.values()))
    deliveries = deliveries_for(results, declarants, webhooks, now)
    await store.record(deliveries)
    return deliveries
