"""The delivery loop: POST each due delivery of the outbox to its webhook, signed; retry
with exponential backoff and jitter; a bounded number of tries, then ``failed``.

Isolation: at most ``Options.concurrency`` tries in flight in the process and at most
``Options.per_webhook`` for one webhook; a webhook with all its places taken is left out of
the next query of due deliveries, so a receiver that hangs holds its own places (each try
bounded by ``Options.timeout_s``, whole, connection to last byte) and never anyone
else's. The consume loop only writes the outbox; nothing here holds up the platform.

A try (:meth:`Deliverer.attempt`): claim the delivery (a lease in the database, so two
processes never try one delivery at once), check the URL again
(:mod:`services.webhooks.destinations`), read the declaration's trader view from the read
model (``null`` in the body if it cannot be read), sign the exact bytes sent
(:mod:`services.webhooks.signing`), POST without following redirects and without reading
the answer's body. A 2xx is ``delivered``; anything else (a status, an error, a timeout, a
refused URL) is logged in the delivery and, below ``Options.max_attempts`` tries, scheduled
again after :func:`backoff_s`; at the last, ``failed`` (the trader may redeliver).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.webhooks.destinations import DestinationPolicy, RefusedDestination
from services.webhooks.signing import WebhookKeys, signature_header
from services.webhooks.store import Attempt, Delivery, StoreUnavailable, WebhookStore, with_attempt
from singlewindow.health import Health

log = logging.getLogger(__name__)
LOOP = "deliver"
USER_AGENT = "SingleWindow-Webhooks/1"
Views = Callable[[str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Options:
    max_attempts: int = 8  # tries before ``failed``
    first_backoff_s: float = 10.0  # after the first failure; doubling
    max_backoff_s: float = 3600.0
    timeout_s: float = 10.0  # one try, whole
    concurrency: int = 64  # tries in flight in the process
    per_webhook: int = 4  # tries in flight for one webhook
    poll_interval_s: float = 1.0  # between queries of the outbox when idle


def backoff_s(tries: int, first_s: float, max_s: float, rand: Callable[[], float]) -> float:
    """The pause after the ``tries``-th failed try: ``first_s * 2**(tries-1)``, at most
    ``max_s``, then "equal jitter": a uniform draw in its upper half, so the pauses still grow
    and receivers that failed together are not all retried in the same second."""
    ceiling: float = min(max_s, first_s * 2.0 ** max(tries - 1, 0))
    return ceiling / 2 + rand() * ceiling / 2


def utcnow() -> datetime:
    return datetime.now(UTC)


def body_of(delivery: Delivery, view: dict[str, Any] | None) -> bytes:
    """The exact bytes POSTed (and signed)."""
    payload = {
        "delivery_id": delivery.delivery_id,
        "webhook_id": delivery.webhook_id,
        "declaration_id": delivery.declaration_id,
        "event": delivery.event,
        "status": delivery.status,
        "sequence": delivery.sequence,
        "version": delivery.version,
        "occurred_at": delivery.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "view": view,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class Deliverer:
    """Delivers the outbox of ``store`` (see the module's notes). ``views(declaration_id)``
    is the trader's view of a declaration or None; ``clock``/``rand`` are injectable."""

    def __init__(
        self,
        store: WebhookStore,
        keys: WebhookKeys,
        views: Views,
        client: httpx.AsyncClient,
        policy: DestinationPolicy | None = None,
        options: Options | None = None,
        *,
        health: Health | None = None,
        clock: Callable[[], datetime] = utcnow,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.store, self.keys, self.views, self.client = store, keys, views, client
        self.policy, self.options, self.health = (
            policy or DestinationPolicy(),
            options or Options(),
            health,
        )
        self.clock, self.rand = clock, rand
        self.inflight: dict[str, asyncio.Task[None]] = {}  # delivery id -> its try
        self.busy: dict[str, int] = {}  # webhook id -> its tries in flight
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Dispatch due deliveries until :meth:`stop`, looking again every
        ``poll_interval_s`` or as soon as a place frees up; then let the tries in flight end
        (each is bounded by the timeout)."""
        try:
            while not self._stopping.is_set():
                if self.health is not None:
                    self.health.progress(LOOP)
                self._wake.clear()
                try:
                    await self.dispatch()
                except StoreUnavailable as exc:
                    log.warning("webhooks: outbox unavailable: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.options.poll_interval_s)
        finally:
            if self.health is not None:
                self.health.ended(LOOP)
            await self.drain()

    def stop(self) -> None:
        """Ask :meth:`run` to end."""
        self._stopping.set()
        self._wake.set()

    async def drain(self) -> None:
        """Wait for the tries in flight."""
        if self.inflight:
            await asyncio.gather(*self.inflight.values(), return_exceptions=True)

    async def dispatch(self) -> int:
        """Claim the due deliveries there are places for and start their tries; how many."""
        options = self.options
        free = options.concurrency - len(self.inflight)
        if free <= 0:
            return 0
        full = {w for w, n in self.busy.items() if n >= options.per_webhook}
        now = self.clock()
        due = await self.store.due(now, free * 2, exclude=full)
        started = 0
        lease = now + timedelta(seconds=options.timeout_s * 2 + 5)
        for delivery in due:
            if len(self.inflight) >= options.concurrency:
                break
            hook = delivery.webhook_id
            if (
                delivery.delivery_id in self.inflight
                or self.busy.get(hook, 0) >= options.per_webhook
            ):
                continue
            if not await self.store.claim(delivery.delivery_id, now, lease):
                continue  # another process took it, or it ended meanwhile
            self.busy[hook] = self.busy.get(hook, 0) + 1
            task = asyncio.create_task(self._try(delivery))
            self.inflight[delivery.delivery_id] = task
            started += 1
        return started

    async def _try(self, delivery: Delivery) -> None:
        try:
            await self.attempt(delivery)
        except Exception:  # its lease runs out and it is tried again
            log.exception("webhooks: try of %s failed", delivery.delivery_id)
        finally:
            del self.inflight[delivery.delivery_id]
            left = self.busy[delivery.webhook_id] - 1
            if left:
                self.busy[delivery.webhook_id] = left
            else:
                del self.busy[delivery.webhook_id]
            self._wake.set()  # a place is free

    # -- one try -----------------------------------------------------------------------------

    async def attempt(self, delivery: Delivery) -> Delivery:
        """One try of a claimed delivery; the delivery as recorded after it."""
        started_at, started = self.clock(), time.monotonic()
        hook = await self.store.webhook(delivery.webhook_id)
        if hook is None:  # deleted since: nobody to deliver to
            outcome = Attempt(started_at, None, "the webhook was deleted", 0)
            done = with_attempt(delivery, outcome, state="failed", due=None)
            await self.store.finish(done)
            return done
        status_code: int | None = None
        error: str | None = None
        try:
            await self.policy.check(hook.url)
            view = await self._view(delivery.declaration_id)
            body = body_of(delivery, view)
            secret = self.keys.secret(hook.key_version, hook.webhook_id, bytes.fromhex(hook.nonce))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "SW-Delivery": delivery.delivery_id,
                "SW-Signature": signature_header(secret, int(time.time()), body),
            }
            async with asyncio.timeout(self.options.timeout_s):
                async with self.client.stream(
                    "POST", hook.url, content=body, headers=headers
                ) as answer:
                    status_code = answer.status_code  # its body is never read
        except RefusedDestination as exc:
            error = f"refused: {exc}"
        except KeyError:
            error = "the webhook's key is no longer configured"
        except TimeoutError:
            error = f"no answer within {self.options.timeout_s:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        duration_ms = round((time.monotonic() - started) * 1000)
        outcome = Attempt(started_at, status_code, error, duration_ms)
        done = self._after(delivery, outcome)
        await self.store.finish(done)
        log.info(
            "webhooks: %s to %s: %s (%s ms) -> %s",
            delivery.delivery_id,
            hook.webhook_id,
            status_code if status_code is not None else error,
            duration_ms,
            done.state,
        )
        return done

    def _after(self, delivery: Delivery, outcome: Attempt) -> Delivery:
        """The delivery after a try with ``outcome``: delivered, due again, or failed."""
        if outcome.status_code is not None and 200 <= outcome.status_code < 300:
            return with_attempt(
                delivery, outcome, state="delivered", due=None, delivered_at=outcome.at
            )
        tries = delivery.tries + 1
        if tries >= self.options.max_attempts:
            return with_attempt(delivery, outcome, state="failed", due=None)
        pause_s = backoff_s(
            tries, self.options.first_backoff_s, self.options.max_backoff_s, self.rand
        )
        return with_attempt(delivery, outcome, due=self.clock() + timedelta(seconds=pause_s))

    async def _view(self, declaration_id: str) -> dict[str, Any] | None:
        """The trader's view, or None when it cannot be read (the delivery goes anyway)."""
        try:
            return await self.views(declaration_id)
        except Exception as exc:
            log.warning("webhooks: no view of %s: %r", declaration_id, exc)
            return None
