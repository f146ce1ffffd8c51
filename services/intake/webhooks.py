"""Webhooks at the intake: a trader registers a URL, reads its delivery log, re-sends.

- ``POST /v1/webhooks`` ``{"url", "events": ["status"]}`` -> 201 ``{"webhook_id", "url",
  "events", "secret", "created_at"}``: the secret is in this answer only (it is derived
  under the webhook keys, never stored: :mod:`services.webhooks.signing`). The URL must be
  one the platform may call (:mod:`services.webhooks.destinations`: https, a public host),
  else 422 ``webhook-url-refused``; at most ``max_per_subject`` webhooks a subject, else 409
  ``too-many-webhooks``.
- ``GET /v1/webhooks``: the subject's webhooks (no secrets).
- ``DELETE /v1/webhooks/{id}``: 204; its pending deliveries end ``failed`` ("deleted").
- ``GET /v1/webhooks/{id}/deliveries[?limit=n]``: its latest deliveries, newest first, each
  with its state (``pending``, ``delivered``, ``failed``), when it is due next, and every
  try (when, HTTP status or error, duration).
- ``POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver``: 202, the delivery pending
  again at once with a fresh budget of tries (the delivery id stays: receivers deduplicate
  on ``SW-Delivery``).

A webhook belongs to the subject whose token made it, and acts for the USCCs that token
named: it receives the status changes of those declarants' declarations decided from then on
(:mod:`services.webhooks.outbox`). Another subject's webhook is a 404, as an unknown one
(no oracle). Every route takes the caller's token and rate like every ``/v1`` route.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.intake import errors, strictjson
from services.intake.auth import Principal
from services.intake.errors import Problem
from services.intake.schema import parse_body
from services.webhooks.destinations import DestinationPolicy, RefusedDestination
from services.webhooks.signing import WebhookKeys, new_nonce
from services.webhooks.store import Delivery, StoreUnavailable, Subscription, WebhookStore

MAX_PER_SUBJECT = 10
MAX_BODY_BYTES = 8 * 1024
WebhookId = Annotated[str, Path(min_length=1, max_length=64)]
DeliveryId = Annotated[str, Path(min_length=1, max_length=64)]


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="https://... (POSTed to)")
    events: list[Literal["status"]] = Field(
        ["status"], min_length=1, max_length=1, description="what to receive: status changes"
    )


class WebhookOut(BaseModel):
    webhook_id: str
    url: str
    events: list[str]
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret: shown in this answer only")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    delivery_id: str
    webhook_id: str
    declaration_id: str
    event: str
    status: str
    sequence: int
    version: int | None
    occurred_at: datetime
    state: Literal["pending", "delivered", "failed"]
    next_attempt_at: datetime | None = Field(description="pending: not before then")
    delivered_at: datetime | None
    attempts: list[AttemptOut]


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]


def webhook_out(webhook: Subscription) -> WebhookOut:
    return WebhookOut(
        webhook_id=webhook.webhook_id,
        url=webhook.url,
        events=list(webhook.events),
        created_at=webhook.created_at,
    )


def delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        delivery_id=delivery.delivery_id,
        webhook_id=delivery.webhook_id,
        declaration_id=delivery.declaration_id,
        event=delivery.event,
        status=delivery.status,
        sequence=delivery.sequence,
        version=delivery.version,
        occurred_at=delivery.occurred_at,
        state=delivery.state,
        next_attempt_at=delivery.due if delivery.state == "pending" else None,
        delivered_at=delivery.delivered_at,
        attempts=[AttemptOut(**vars(a)) for a in reversed(delivery.attempts)],
    )


def random_webhook_id() -> str:
    return "WH-" + secrets.token_hex(16).upper()


def utcnow() -> datetime:
    return datetime.now(UTC)


class WebhookRegistry:
    """The webhook use cases over the store; refusals are problem documents."""

    def __init__(
        self,
        store: WebhookStore,
        keys: WebhookKeys,
        policy: DestinationPolicy | None = None,
        *,
        max_per_subject: int = MAX_PER_SUBJECT,
        retry_after: int = 5,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store, self.keys = store, keys
        self.policy = policy or DestinationPolicy()
        self.max_per_subject, self.retry_after, self.clock = max_per_subject, retry_after, clock

    def _unavailable(self) -> Problem:
        headers = {"Retry-After": str(self.retry_after)}
        return Problem(
            503, "the webhook store is unavailable; retry later", kind="webhooks", headers=headers
        )

    async def create(self, principal: Principal, request: WebhookRequest) -> WebhookCreated:
        try:
            await self.policy.check(request.url)
        except RefusedDestination as exc:
            raise Problem(
                422, f"this URL may not be used: {exc}", kind="webhook-url-refused"
            ) from None
        try:
            if await self.store.count_webhooks(principal.subject) >= self.max_per_subject:
                raise Problem(
                    409,
                    f"at most {self.max_per_subject} webhooks a subject: delete one first",
                    kind="too-many-webhooks",
                )
            version, nonce = self.keys.current, new_nonce()
            webhook = Subscription(
                webhook_id=random_webhook_id(),
                subject=principal.subject,
                usccs=tuple(sorted(principal.usccs)),
                url=request.url,
                events=tuple(dict.fromkeys(request.events)),
                key_version=version,
                nonce=nonce.hex(),
                created_at=self.clock(),
            )
            await self.store.add_webhook(webhook)
        except StoreUnavailable as exc:
            raise self._unavailable() from exc
        secret = self.keys.secret(version, webhook.webhook_id, nonce)
        return WebhookCreated(**webhook_out(webhook).model_dump(), secret=secret)

    async def mine(self, principal: Principal, webhook_id: str) -> Subscription:
        """The subject's webhook ``webhook_id``; 404 for an unknown one and another's alike."""
        try:
            webhook = await self.store.webhook(webhook_id)
        except StoreUnavailable as exc:
            raise self._unavailable() from exc
        if webhook is None or webhook.subject != principal.subject:
            raise Problem(404, f"no webhook {webhook_id!r}", kind="unknown-webhook")
        return webhook

    async def list(self, principal: Principal) -> WebhookList:
        try:
            webhooks = await self.store.webhooks_of(principal.subject)
        except StoreUnavailable as exc:
            raise self._unavailable() from exc
        return WebhookList(webhooks=[webhook_out(w) for w in webhooks])

    async def delete(self, principal: Principal, webhook_id: str) -> None:
        await self.mine(principal, webhook_id)
        try:
            await self.store.delete_webhook(webhook_id)
        except StoreUnavailable as exc:
            raise self._unavailable() from exc

    async def deliveries(self, principal: Principal, webhook_id: str, limit: int) -> DeliveryList:
        await self.mine(principal, webhook_id)
        try:
            found = await self.store.deliveries_of(webhook_id, limit)
        except StoreUnavailable as exc:
            raise self._unavailable() from exc
        return DeliveryList(deliveries=[delivery_out(d) for d in found])

    async def redeliver(
        self, principal: Principal, webhook_id: str, delivery_id: str
    ) -> DeliveryOut:
        await self.mine(principal, webhook_id)
        try:
            found = await self.store.delivery(delivery_id)
            if found is None or found.webhook_id != webhook_id:
                raise Problem(404, f"no delivery {delivery_id!r}", kind="unknown-delivery")
            again = await self.store.reschedule(delivery_id, self.clock())
        except StoreUnavailable as exc:
            raise self._unavailable() from exc
        assert again is not None  # deliveries are never deleted
        return delivery_out(again)


def webhook_routes(registry: WebhookRegistry, caller: Callable[..., Any]) -> APIRouter:
    """The routes above; ``caller`` is the app's dependency that authenticates a request
    (and takes from its subject's rate)."""
    who = Depends(caller)
    router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
    refused = errors.documented(401, 404, 422, 429, 503)

    @router.post(
        "",
        status_code=201,
        response_model=WebhookCreated,
        responses=errors.documented(400, 401, 409, 413, 415, 422, 429, 503),
        openapi_extra={"requestBody": errors.json_body(WebhookRequest)},
    )
    async def create_webhook(request: Request, principal: Principal = who) -> WebhookCreated:
        """Register a URL for the status changes of the token's declarants' declarations;
        the answer holds the signing secret, once."""
        data = strictjson.parse(await strictjson.read_body(request, MAX_BODY_BYTES), 4)
        return await registry.create(principal, parse_body(WebhookRequest, data, "webhook"))

    @router.get("", response_model=WebhookList, responses=errors.documented(401, 429, 503))
    async def list_webhooks(principal: Principal = who) -> WebhookList:
        """The caller's webhooks."""
        return await registry.list(principal)

    @router.delete("/{webhook_id}", status_code=204, responses=refused)
    async def delete_webhook(webhook_id: WebhookId, principal: Principal = who) -> Response:
        """Delete a webhook: nothing more is delivered to it."""
        await registry.delete(principal, webhook_id)
        return Response(status_code=204)

    @router.get("/{webhook_id}/deliveries", response_model=DeliveryList, responses=refused)
    async def list_deliveries(
        webhook_id: WebhookId,
        principal: Principal = who,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> DeliveryList:
        """A webhook's latest deliveries and their tries, newest first."""
        return await registry.deliveries(principal, webhook_id, limit)

    @router.post(
        "/{webhook_id}/deliveries/{delivery_id}/redeliver",
        status_code=202,
        response_model=DeliveryOut,
        responses=refused,
    )
    async def redeliver(
        webhook_id: WebhookId, delivery_id: DeliveryId, principal: Principal = who
    ) -> DeliveryOut:
        """Send a delivery again (same delivery id), with a fresh budget of tries."""
        return await registry.redeliver(principal, webhook_id, delivery_id)

    return router
