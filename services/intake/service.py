"""The intake's use cases, without HTTP: who is calling, lodging a declaration, its status.

:class:`IntakeService` holds the ports (``ports``: publisher, read model, idempotency store)
and the policies around them: per-subject rate limits (``ratelimit``), admission (a bounded
number of submissions in progress, the rest refused at once), ids (random, or derived from
an Idempotency-Key: ``ids``), routing and the shared long-poll loop (``waiters``). It raises
:class:`Refused` exceptions; ``api`` turns HTTP into calls of this class and those
exceptions into problem documents.

- :meth:`IntakeService.authenticate`: the principal of a bearer token, within its subject's
  rate (every submission and every read takes from the bucket).
- :meth:`IntakeService.admitted`: one submission in progress (reading and checking the body
  included), or :class:`Unavailable` ``overloaded`` at once: never queued.
- :meth:`IntakeService.lodge`: publish a validated declaration for a declarant the principal
  acts for; returns only once Kafka acknowledged it. With an Idempotency-Key, the key is
  claimed first (scoped to the subject), and the ids and time kept in the claim, so that a
  retry after a crash publishes the same event.
- :meth:`IntakeService.status`: the trader's view of a declaration the principal acts for,
  after waiting (long-polling) for a final status if asked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from services.intake import ids
from services.intake.auth import InvalidToken, KeysUnavailable, Principal, Verifier
from services.intake.ports import (
    Claim,
    IdempotencyStore,
    IdempotencyUnavailable,
    InMemoryIdempotencyStore,
    Publisher,
    PublishUnavailable,
    ReadModel,
    ReadModelUnavailable,
)
from services.intake.ratelimit import RateLimiter
from services.intake.routing import RoutingTable, load_table, route
from services.intake.schema import FINAL_STATUSES, DeclarationRequest, DeclarationStatus
from services.intake.traderview import declarant_of, trader_view
from services.intake.waiters import TooManyWaiters, Waiters

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1024 * 1024  # 413 above, counted while reading the body
    max_json_depth: int = 32  # 400 above
    max_waiters: int = 1000  # concurrent long-polls; 503 beyond
    poll_interval: float = 0.25  # seconds between the shared final_among queries
    publish_timeout: float = 30.0  # seconds; a publish that takes longer is a 503
    retry_after: int = 5  # seconds, in the Retry-After header of every 503
    rate_per_second: float = 10.0  # per subject: submissions and reads, refill rate
    rate_burst: int = 100  # per subject: requests allowed at once
    # submissions in progress at once in this process; 503 beyond, at once: an overloaded
    # intake answers "retry later" rather than queueing requests until they time out
    max_submissions: int = 500


class Refused(Exception):
    """The service refuses a call; the message is fit for the caller."""


class Unauthenticated(Refused):
    """No token (``description`` None), or one that is not valid (why, client-safe)."""

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description or "no bearer token")
        self.description = description


class RateLimited(Refused):
    """The subject's bucket is empty: a token is due in ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__("too many requests from this subject; retry later")
        self.wait = wait


class Unavailable(Refused):
    """Something the call needs is unavailable or full for now; ``reason`` names it
    (``issuer-keys``, ``overloaded``, ``publish``, ``idempotency``, ``read-model``,
    ``too-many-waiters``): the caller should retry later."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}; retry later")
        self.reason = reason


class NotYourDeclarant(Refused):
    """The principal does not act for the declarant ``uscc``."""

    def __init__(self, uscc: str) -> None:
        super().__init__(f"this token may not lodge declarations for declarant {uscc}")
        self.uscc = uscc


class UnknownDeclaration(Refused):
    """No such declaration, or one whose declarant the principal does not act for: the same
    refusal, so that nobody learns which ids exist."""

    def __init__(self, declaration_id: str) -> None:
        super().__init__(f"no declaration {declaration_id!r}")
        self.declaration_id = declaration_id


class KeyReused(Refused):
    """The subject's Idempotency-Key was used with another body."""

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used with a different body")


class KeyInProgress(Refused):
    """A request with the subject's Idempotency-Key is still being processed here."""

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still being processed; retry")


async def authenticate(verifier: Verifier, token: str | None) -> Principal:
    """The verified principal of a bearer token (any service that takes traders' tokens).

    Raises Unauthenticated (no token, an invalid one) or Unavailable (the issuer's keys
    cannot be read)."""
    if token is None:
        raise Unauthenticated()
    try:
        return await verifier.verify(token)
    except InvalidToken as exc:
        raise Unauthenticated(str(exc)) from None
    except KeysUnavailable as exc:
        raise Unavailable("the token issuer's keys are unavailable", "issuer-keys") from exc


def utcnow() -> datetime:
    return datetime.now(UTC)


async def no_fault(_: str) -> None:
    return None


class IntakeService:
    """The intake's use cases over its ports. ``idempotency`` defaults to an in-memory store
    (one process only), ``routing_table`` to the current one.

    ``verifier`` authenticates bearer tokens (``auth.JwtVerifier``); ``id_secret`` keys the
    ids of idempotent submissions (``ids.KeyedIds``); ``clock`` stamps submissions;
    ``monotonic`` is the rate limiter's clock. ``after_claim(key)`` runs between an
    Idempotency-Key's claim and its publish: a fault injection point for tests
    (``services.intake.__main__`` can kill the process there).
    """

    def __init__(
        self,
        publisher: Publisher,
        read_model: ReadModel,
        idempotency: IdempotencyStore | None = None,
        *,
        verifier: Verifier,
        id_secret: bytes,
        clock: Callable[[], datetime] = utcnow,
        routing_table: RoutingTable | None = None,
        limits: Limits = Limits(),
        after_claim: Callable[[str], Awaitable[None]] = no_fault,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.publisher, self.read_model = publisher, read_model
        self.store = InMemoryIdempotencyStore() if idempotency is None else idempotency
        self.verifier, self.clock, self.limits = verifier, clock, limits
        self.table = load_table() if routing_table is None else routing_table
        self.after_claim = after_claim
        self.keyed_ids = ids.KeyedIds(id_secret)
        self.limiter = RateLimiter(limits.rate_per_second, limits.rate_burst, clock=monotonic)
        self.waiters = Waiters(
            read_model, max_waiters=limits.max_waiters, interval=limits.poll_interval
        )
        self.in_flight: set[str] = set()  # scoped idempotency keys being processed here
        self.submitting = asyncio.Semaphore(limits.max_submissions)

    async def start(self) -> None:
        """Start the shared long-poll loop (it also starts with the first waiter)."""
        self.waiters.start()

    async def stop(self) -> None:
        await self.waiters.stop()

    async def authenticate(self, token: str | None) -> Principal:
        """The verified principal of a bearer token, within its subject's rate.

        Raises Unauthenticated (no token, an invalid one), Unavailable (the issuer's keys
        cannot be read) or RateLimited."""
        principal = await authenticate(self.verifier, token)
        wait = self.limiter.take(principal.subject)
        if wait:
            raise RateLimited(wait)
        return principal

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """A place for one submission (its body read and checked in it too): Unavailable at
        once when every place is taken. Never queued: an overloaded intake says "retry
        later" rather than keeping requests until they time out."""
        if self.submitting.locked():
            raise Unavailable("the intake is at capacity", "overloaded")
        async with self.submitting:
            yield

    async def lodge(
        self, principal: Principal, declaration: DeclarationRequest, key: str | None = None
    ) -> str:
        """Publish ``declaration`` and return its id, once Kafka acknowledged it.

        Raises NotYourDeclarant before anything is claimed or published; with a ``key``
        (the subject's Idempotency-Key), KeyReused or KeyInProgress; Unavailable when Kafka
        does not acknowledge in time or the idempotency store cannot answer."""
        if not principal.acts_for(declaration.declarant.uscc):
            raise NotYourDeclarant(declaration.declarant.uscc)
        if key is None:
            declaration_id = ids.random_declaration_id()
            await self._publish(declaration, declaration_id, ids.random_event_id(), self.clock())
            return declaration_id
        return await self._publish_once(declaration, principal.subject, key)

    async def status(
        self, principal: Principal, declaration_id: str, wait: float | None = None
    ) -> DeclarationStatus:
        """The trader's view of the declaration; with ``wait`` (seconds), once it is final or
        the time is up, whichever comes first.

        Raises UnknownDeclaration (also for a declaration whose declarant the principal does
        not act for), Unavailable (the read model cannot answer, too many wait)."""
        current = await self._read(principal, declaration_id)
        if wait is None or current.status in FINAL_STATUSES:
            return current
        try:
            await self.waiters.wait_final(declaration_id, wait)
        except TooManyWaiters as exc:
            raise Unavailable("too many requests are waiting", "too-many-waiters") from exc
        return await self._read(principal, declaration_id)

    async def _read(self, principal: Principal, declaration_id: str) -> DeclarationStatus:
        """The trader's view of the declaration, if the principal acts for its declarant."""
        try:
            document = await self.read_model.get(declaration_id)
        except ReadModelUnavailable as exc:
            raise Unavailable("the status database is unavailable", "read-model") from exc
        if document is None or not principal.acts_for(declarant_of(document) or ""):
            raise UnknownDeclaration(declaration_id)
        return DeclarationStatus.model_validate(trader_view(document))

    async def _publish(
        self,
        declaration: DeclarationRequest,
        declaration_id: str,
        event_id: str,
        submitted_at: datetime,
    ) -> None:
        agencies, version = route(declaration, self.table)
        event = declaration.to_event(
            declaration_id=declaration_id,
            event_id=event_id,
            submitted_at=submitted_at,
            agencies=agencies,
            routing_version=version,
        )
        try:
            async with asyncio.timeout(self.limits.publish_timeout):
                await self.publisher.publish(event)
        except (PublishUnavailable, TimeoutError) as exc:
            raise Unavailable("Kafka did not acknowledge the declaration", "publish") from exc

    async def _publish_once(self, declaration: DeclarationRequest, subject: str, key: str) -> str:
        """Claim the subject's key, publish unless the claim is known published, then mark it
        published.

        A claim is never released: whatever died when (this process, the store, Kafka), the
        next request with the key publishes the same event again unless Kafka is known to
        have it, so an id returned always means the event is in Kafka.
        """
        scoped = ids.scoped_key(subject, key)
        if scoped in self.in_flight:
            raise KeyInProgress()
        new = Claim(
            body_hash=declaration.body_hash(),
            declaration_id=self.keyed_ids.declaration_id(subject, key),
            event_id=self.keyed_ids.event_id(subject, key),
            submitted_at=self.clock(),
        )
        self.in_flight.add(scoped)
        try:
            try:
                claim = await self.store.claim(scoped, new)
            except IdempotencyUnavailable as exc:
                raise Unavailable("the idempotency store is unavailable", "idempotency") from exc
            if claim.body_hash != new.body_hash:
                raise KeyReused()
            if not claim.published:
                await self.after_claim(key)
                event_id = claim.event_id or new.event_id  # a claim stored without one
                await self._publish(declaration, claim.declaration_id, event_id, claim.submitted_at)
                try:  # if this fails, the next request with the key publishes once more
                    await self.store.mark_published(scoped)
                except IdempotencyUnavailable as exc:
                    log.warning("publish state of a key not recorded: %r", exc)
            return claim.declaration_id
        finally:
            self.in_flight.discard(scoped)
