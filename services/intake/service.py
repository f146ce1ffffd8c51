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
  after waiting (long-polling), if asked, until it moves on from the status the caller last
  saw (``seen``), or, without ``seen``, until it is answered (any status but SUBMITTED and
  IN_REVIEW: the first answer, as before versions, and every later step).
- :meth:`IntakeService.amend` (a new version with a new body), :meth:`add_documents` (a new
  version: the current one's content with documents added) and :meth:`withdraw`: on a
  versioned declaration the principal acts for (read from the read model), not closed
  (RELEASED, REJECTED, WITHDRAWN, SANCTIONED, RECALLED) nor released on condition
  (CONDITIONALLY_RELEASED), and no new version after an inspection order, nor a withdrawal
  while it is unfinished (INSPECTION_REQUIRED, REMEDIATION_REQUIRED, or TIMED_OUT after the
  order: its escalation; one inspection) (:func:`refusal`). After
  release (RELEASED, or AMENDMENT_REFUSED: the release before stands), :meth:`amend` lodges a
  change after release instead (放行后修改, 报关单修改和撤销管理办法): a version marked
  ``after_release``, routed to customs alone, whose approval it needs
  (:func:`services.intake.routing.route_after_release`); within
  ``Limits.change_after_release_days`` of the latest step (beyond, the aggregator may have
  dropped the life: ``too-late``), with the containers released (:class:`ContainersChanged`;
  ``raced`` when the version shown is an amendment that raced the release, whose containers
  may not be those released),
  and not while one is assessed or its supplementary duty is unpaid (``change-pending``).
  Released under guarantee pending a price consultation (CONDITIONALLY_RELEASED with
  ``valuation_pending``: :func:`consulting`), :meth:`amend` lodges the value agreed the same
  way, for customs' approval, with no time limit (the valuation is awaited however long).
  Documents and withdrawals stay refused after release. Each
  version is claimed in the idempotency store (``ids.version_key``) before it is published:
  the first claim of a version wins, so two amendments computed from one read model never
  both become version n+1, and a read model that does not show the version lodged last yet
  is told apart (:class:`NotYetVisible`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.intake import ids
from services.intake.auth import (
    InvalidToken,
    KeysUnavailable,
    P,
    Principal,
    TokenVerifier,
    Verifier,
)
from services.intake.errors import Problem
from services.intake.listing import BadCursor, listing, page_from
from services.intake.ports import (
    Claim,
    IdempotencyStore,
    IdempotencyUnavailable,
    InMemoryIdempotencyStore,
    Published,
    Publisher,
    PublishUnavailable,
    ReadModel,
    ReadModelUnavailable,
)
from services.intake.ratelimit import RateLimiter
from services.intake.routing import RoutingTable, load_table, route, route_after_release
from services.intake.schema import (
    ANSWERED,
    CLOSED,
    INSPECTED,
    RELEASED,
    REOPENABLE,
    DeclarationRequest,
    DeclarationStatus,
    DocumentsRequest,
    WithdrawalRequest,
)
from services.intake.streams import Stream, Streams, TooManyStreams, Unreadable
from services.intake.traderview import declarant_of, trader_view
from services.intake.waiters import TooManyWaiters, Waiters
from singlewindow import correlation
from singlewindow.events import (
    ClearanceStatus,
    DeclarationSubmitted,
    DeclarationWithdrawn,
    Document,
)

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
    # how long after its latest step a released declaration may be changed (with customs'
    # approval): well within the aggregator's retention of a released life (60 days), so
    # that the change never reaches a life already dropped
    change_after_release_days: float = 30.0
    # status streams (GET /v1/declarations/{id}/events) open at once; 503 beyond
    max_streams: int = 1000
    stream_keep_alive: float = 15.0  # seconds without an event before a keep-alive comment
    stream_lifetime: float = 600.0  # seconds; then the client reconnects (token checked again)


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


class NotAmendable(Refused):
    """The declaration may not change (so): ``reason`` is ``closed`` (its life ended:
    rejected, withdrawn, sanctioned or recalled; released, when documents or a withdrawal
    are asked: after release only an amendment, which customs must approve), ``released``
    (released on condition, or a supplementary notice due: the goods are out),
    ``inspected`` (an inspection order: no new version, one inspection), ``change-pending``
    (a change after release is assessed, or its supplementary notice is unpaid), ``too-late``
    (released longer ago than changes after release are taken), ``raced`` (released, but the
    version shown is an amendment that raced the release: the containers released, which a
    change after release keeps, are not known here) or ``no-versions`` (lodged
    before amendments existed: its life ended at its first answer)."""

    def __init__(self, declaration_id: str, reason: str, status: str) -> None:
        if reason == "closed":
            why = (
                f"declaration {declaration_id} is {status}: it can no longer be amended, "
                "completed or withdrawn (after release, only amended, with customs' approval)"
            )
        elif reason == "change-pending":
            why = (
                f"declaration {declaration_id} is {status}: customs is assessing a change "
                "after release, or its supplementary notice is unpaid; no other change until "
                "then"
            )
        elif reason == "raced":
            why = (
                f"declaration {declaration_id} was released on an earlier version than the one "
                "it shows (an amendment that raced the release, which was not taken): a change "
                "after release must keep the containers released, which cannot be checked "
                "here: ask customs directly"
            )
        elif reason == "too-late":
            why = (
                f"declaration {declaration_id} was released too long ago for a change here: "
                "ask customs directly"
            )
        elif reason == "released":
            why = (
                f"declaration {declaration_id} is {status}: the goods are released; it can "
                "no longer be amended, completed or withdrawn"
            )
        elif reason == "inspected":
            why = (
                f"declaration {declaration_id} is {status}: one inspection: after an "
                "inspection order the declaration can no longer be amended or completed, "
                "nor withdrawn until the inspection is finished"
            )
        else:
            why = (
                f"declaration {declaration_id} was lodged before amendments existed: it "
                "cannot be amended, completed or withdrawn here; lodge a new declaration"
            )
        super().__init__(why)
        self.reason = reason


class NotYetVisible(Refused):
    """Version ``version`` of the declaration was lodged already, but the status database does
    not show it yet (the projector lags): retry in a moment, on what it will show."""

    def __init__(self, declaration_id: str, version: int) -> None:
        super().__init__(
            f"version {version} of declaration {declaration_id} was lodged a moment ago and "
            "the status database does not show it yet; retry shortly (a change is made to the "
            "latest version)"
        )


class VersionTaken(Refused):
    """Another request made version ``version`` of the declaration first (a lost race)."""

    def __init__(self, declaration_id: str, version: int) -> None:
        super().__init__(
            f"version {version} of declaration {declaration_id} was made by another request; "
            "read the declaration and make the change again"
        )


class ContainersChanged(Refused):
    """A change after release names other containers than those released: the goods
    released are leaving the port; a change corrects what was declared of them (a price, a
    quantity), not which goods were released."""

    def __init__(self) -> None:
        super().__init__(
            "a change after release keeps the containers released; correct the other "
            "particulars only"
        )


class NothingNew(Refused):
    """Every document supplied is lodged already: no new version."""

    def __init__(self) -> None:
        super().__init__("every document supplied is already lodged with this declaration")


class KeyInProgress(Refused):
    """A request with the subject's Idempotency-Key is still being processed here."""

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still being processed; retry")


MAX_DOCUMENTS = 50  # as a declaration's body allows


class TooManyDocuments(Refused):
    """The documents would exceed what a declaration may carry."""

    def __init__(self, count: int) -> None:
        super().__init__(f"a declaration carries at most {MAX_DOCUMENTS} documents, not {count}")


# the changes a trader makes to a declaration: an amendment (a new body), documents (a new
# version of the same body), a withdrawal
AMENDMENT, NEW_VERSION, WITHDRAWAL = "amendment", "new-version", "withdrawal"


def refusal(
    status: str,
    change: str,
    ordered: bool = False,
    after_release: bool = False,
    consulting: bool = False,
) -> str | None:
    """Why a declaration in ``status`` refuses ``change`` (a :class:`NotAmendable` reason), or
    None: the join would ignore it (:mod:`services.aggregator.join`). ``ordered``: its current
    version has an inspection order (one inspection: no new version after it, whatever the
    step it is at now; and TIMED_OUT after the order is its escalation: the inspection is
    still unfinished); ``after_release``: the version shown is a change after release.

    After release (RELEASED, AMENDMENT_REFUSED) an amendment is taken as a change after
    release, for customs' approval. Not while one is assessed (shown IN_REVIEW) or its
    supplementary notice is due: the join would not take it, and two changes in flight would
    make the duties of neither clear. Not while CONDITIONALLY_RELEASED either: the laboratory
    may still recall the goods, and its result is on the version released; but released under
    guarantee pending a price consultation (``consulting``, :func:`consulting`), an amendment
    is the value lodged for customs' valuation, a change after release too."""
    if change == AMENDMENT and (status in REOPENABLE or consulting):
        return None
    if status in CLOSED:
        return "closed"
    if consulting:  # the goods are out under guarantee, no change pending (a value refused)
        return "released"
    if after_release:
        return "released" if change == WITHDRAWAL else "change-pending"
    if status in RELEASED:
        return "released"
    if change != WITHDRAWAL and (status in INSPECTED or ordered):
        return "inspected"
    unfinished = status in INSPECTED or (status == ClearanceStatus.TIMED_OUT and ordered)
    if change == WITHDRAWAL and unfinished:
        return "inspected"  # not while an inspection is unfinished (the join refuses it too)
    return None


def _scope(operation: str, declaration_id: str, body_hash: str) -> str:
    """What an Idempotency-Key of a change is bound to: the operation, the declaration, the
    body (a key reused for another change is KeyReused)."""
    return hashlib.sha256(json.dumps([operation, declaration_id, body_hash]).encode()).hexdigest()


def consulting(document: dict[str, Any]) -> bool:
    """Whether the goods are released under guarantee pending customs' valuation (价格磋商):
    the trader lodges the value agreed as a change, for customs' approval."""
    result = document.get("result") or {}
    return document.get("status") == ClearanceStatus.CONDITIONALLY_RELEASED and bool(
        result.get("valuation_pending")
    )


def has_order(document: dict[str, Any]) -> bool:
    """Whether the version the join is deciding has had an inspection order: the version of
    the latest step, not the document's, which may be an amendment that raced the order (the
    join ignored it: one inspection, and the order, its escalation and its steps stand; a
    version the join did take after the latest step follows one without an order)."""
    steps = document.get("steps") or ()
    if not steps:
        return False
    version = steps[-1].get("version")
    return any(
        step.get("status") == "INSPECTION_REQUIRED" and step.get("version") == version
        for step in steps
    )


@dataclass(frozen=True)
class _Open:
    """A declaration a change may be made to: its id, current version and content."""

    declaration_id: str
    version: int
    declared: DeclarationSubmitted
    after_release: bool = False  # an amendment of it is a change after release


async def authenticate(verifier: TokenVerifier[P], token: str | None) -> P:
    """The verified principal of a bearer token (any service that takes bearer tokens: the
    traders' :class:`Principal`, the inspection station's ``Inspector``).

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


def view_of(document: dict[str, Any]) -> dict[str, Any]:
    """The body ``GET /v1/declarations/{id}`` answers for a read-model document."""
    status = DeclarationStatus.model_validate(trader_view(document))
    return status.model_dump(mode="json", exclude_unset=True)


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
        self.streams = Streams(
            self.waiters,
            max_streams=limits.max_streams,
            keep_alive=limits.stream_keep_alive,
            lifetime=limits.stream_lifetime,
            monotonic=monotonic,
        )
        self.in_flight: set[str] = set()  # scoped idempotency keys being processed here
        self.submitting = asyncio.Semaphore(limits.max_submissions)

    async def start(self) -> None:
        """Start the shared long-poll loop (it also starts with the first waiter)."""
        self.waiters.start()

    def closing(self) -> None:
        """The process is stopping: end the status streams (a graceful shutdown waits for
        every response to end)."""
        self.streams.close()

    async def stop(self) -> None:
        self.closing()
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
        self,
        principal: Principal,
        declaration_id: str,
        wait: float | None = None,
        seen: str | None = None,
    ) -> DeclarationStatus:
        """The trader's view of the declaration; with ``wait`` (seconds), once it moved on
        or the time is up, whichever comes first: moved on from ``seen`` (the status the
        caller last saw) to any other status, or, without ``seen``, to an answer (any
        status but SUBMITTED and IN_REVIEW: the first answer, or a later step: a payment
        notice, a release, an escalation...). An answer already there is returned at once.

        Raises UnknownDeclaration (also for a declaration whose declarant the principal does
        not act for), Unavailable (the read model cannot answer, too many wait)."""
        current = await self._read(principal, declaration_id)
        if wait is None or (current.status in ANSWERED if seen is None else current.status != seen):
            return current
        try:
            await self.waiters.wait_change(declaration_id, seen, wait)
        except TooManyWaiters as exc:
            raise Unavailable("too many requests are waiting", "too-many-waiters") from exc
        return await self._read(principal, declaration_id)

    async def declarations(
        self, principal: Principal, status: str | None, limit: int, after: str | None
    ) -> dict[str, Any]:
        """A page of the principal's declarations (those of the declarants it acts for),
        newest first (:mod:`services.intake.listing`).

        Raises Problem 422 for a cursor this listing did not give, Unavailable when the read
        model cannot answer."""
        try:
            page = None if after is None else page_from(after)
        except BadCursor as exc:
            raise Problem(422, str(exc), kind="invalid-cursor") from None
        try:
            docs = await self.read_model.lodged_by(principal.usccs, status, limit + 1, page)
        except ReadModelUnavailable as exc:
            raise Unavailable("the status database is unavailable", "read-model") from exc
        return listing(docs, limit)

    async def follow(
        self, principal: Principal, declaration_id: str, last_event_id: int | None
    ) -> Stream:
        """The status stream of a declaration the principal acts for (``streams``), from
        the revision after ``last_event_id`` (the client's ``Last-Event-ID``).

        Raises UnknownDeclaration (as :meth:`status`), Unavailable (the read model cannot
        answer, every place for a stream is taken)."""
        document = await self._document(principal, declaration_id)

        async def read() -> dict[str, Any] | None:
            try:
                return await self._document(principal, declaration_id)
            except UnknownDeclaration:
                return None
            except Unavailable as exc:
                raise Unreadable(str(exc)) from exc

        try:
            return self.streams.follow(declaration_id, document, last_event_id, read, view_of)
        except TooManyStreams as exc:
            raise Unavailable("too many status streams are open", "too-many-streams") from exc

    async def _document(self, principal: Principal, declaration_id: str) -> dict[str, Any]:
        """The read-model document, if the principal acts for its declarant."""
        try:
            document = await self.read_model.get(declaration_id)
        except ReadModelUnavailable as exc:
            raise Unavailable("the status database is unavailable", "read-model") from exc
        if document is None or not principal.acts_for(declarant_of(document) or ""):
            raise UnknownDeclaration(declaration_id)
        return document

    async def _read(self, principal: Principal, declaration_id: str) -> DeclarationStatus:
        """The trader's view of the declaration, if the principal acts for its declarant."""
        document = await self._document(principal, declaration_id)
        return DeclarationStatus.model_validate(trader_view(document))

    async def _open(self, principal: Principal, declaration_id: str, change: str) -> _Open:
        """The declaration ``change`` is made to: the principal's, versioned, and in a status
        that takes it (:func:`refusal`)."""
        document = await self._document(principal, declaration_id)
        status = str(document.get("status"))
        declared = DeclarationSubmitted.model_validate(document["declaration"])
        valuing = consulting(document)
        refused = refusal(status, change, has_order(document), declared.after_release, valuing)
        if refused is not None:
            raise NotAmendable(declaration_id, refused, status)
        version = document.get("version")
        if not isinstance(version, int):
            raise NotAmendable(declaration_id, "no-versions", status)
        after_release = change == AMENDMENT and (status in REOPENABLE or valuing)
        # the goods released under guarantee wait for the value however long it takes: the
        # aggregator keeps a life going on until it ends
        if after_release and not valuing and self._too_late(document):
            raise NotAmendable(declaration_id, "too-late", status)
        if after_release and (document.get("result") or {}).get("version") != version:
            # the version shown is an amendment that raced the release (the join ignored it):
            # the containers released, which a change must keep, are not the ones it shows
            raise NotAmendable(declaration_id, "raced", status)
        return _Open(declaration_id, version, declared, after_release)

    def _too_late(self, document: dict[str, Any]) -> bool:
        """Whether the latest step is older than changes after release are taken: the
        aggregator keeps a released life for its retention from its last event (at least
        the latest step's time), and a change that came after it was dropped would lead
        nowhere."""
        decided = (document.get("result") or {}).get("decided_at")
        if not isinstance(decided, str):
            return True
        window = timedelta(days=self.limits.change_after_release_days)
        return datetime.fromisoformat(decided) + window <= self.clock()

    async def amend(
        self,
        principal: Principal,
        declaration_id: str,
        declaration: DeclarationRequest,
        key: str | None = None,
    ) -> None:
        """Publish ``declaration`` as the next version of ``declaration_id`` (re-routed),
        once Kafka acknowledged it.

        After release, a change after release: marked ``after_release``, routed to customs
        alone; ContainersChanged if it names other containers than those released.

        Raises UnknownDeclaration, NotAmendable, NotYourDeclarant (the new body's declarant),
        NotYetVisible, VersionTaken; with a ``key``, KeyReused or KeyInProgress; Unavailable.
        A retry with the ``key`` of this very amendment, published already, is answered again
        whatever the declaration's status now (:meth:`_answered`)."""
        body_hash = declaration.body_hash()
        try:
            current = await self._open(principal, declaration_id, AMENDMENT)
        except NotAmendable:
            if await self._answered(principal, key, "amend", declaration_id, body_hash):
                return
            raise
        if not principal.acts_for(declaration.declarant.uscc):
            raise NotYourDeclarant(declaration.declarant.uscc)
        event = self._declared(
            declaration, declaration_id, current.version + 1, current.after_release
        )
        if current.after_release and set(event.consignment.containers) != set(
            current.declared.consignment.containers
        ):
            raise ContainersChanged()
        await self._new_version(principal, current, event, "amend", body_hash, key)

    async def add_documents(
        self,
        principal: Principal,
        declaration_id: str,
        request: DocumentsRequest,
        key: str | None = None,
    ) -> None:
        """Publish the next version of ``declaration_id``: the current one's content with the
        documents added (those lodged already are ignored), re-routed.

        Raises NothingNew when every document is lodged already (but to the retry of this very
        request, published already: :meth:`_answered`), the rest as :meth:`amend`."""
        asked = sorted({(str(d.type), d.reference) for d in request.documents})
        digest = hashlib.sha256(repr(asked).encode()).hexdigest()
        try:
            current = await self._open(principal, declaration_id, NEW_VERSION)
        except NotAmendable:
            if await self._answered(principal, key, "documents", declaration_id, digest):
                return
            raise
        lodged = current.declared.documents
        known = {(d.type, d.reference) for d in lodged}
        added: list[Document] = []
        for document in request.documents:
            if (document.type, document.reference) not in known:
                known.add((document.type, document.reference))
                added.append(Document(type=document.type, reference=document.reference))
        if not added:
            if await self._answered(principal, key, "documents", declaration_id, digest):
                return
            raise NothingNew()
        documents = (*lodged, *added)
        if len(documents) > MAX_DOCUMENTS:
            raise TooManyDocuments(len(documents))
        content = current.declared.model_copy(update={"documents": documents})
        agencies, table = route(content, self.table)
        event = content.model_copy(
            update={
                "event_id": ids.random_event_id(),
                "submitted_at": self.clock(),
                "required_agencies": agencies,
                "routing_version": table,
                "version": current.version + 1,
                "after_release": False,
                "signature": None,
            }
        )
        await self._new_version(principal, current, event, "documents", digest, key)

    async def withdraw(
        self,
        principal: Principal,
        declaration_id: str,
        request: WithdrawalRequest,
        key: str | None = None,
    ) -> None:
        """Publish the trader's withdrawal of the current version, once Kafka acknowledged it.

        ``requested_by`` is the owner's USCC (the domestic party's) if the principal acts for
        it, else the declarant's (the principal acts for it: it may read the declaration).
        Raises UnknownDeclaration, NotAmendable; with a ``key``, KeyReused or KeyInProgress;
        Unavailable. A retry with the ``key`` of this very withdrawal, published already, is
        answered again (:meth:`_answered`), though the declaration is WITHDRAWN by then."""
        try:
            current = await self._open(principal, declaration_id, WITHDRAWAL)
        except NotAmendable:
            if await self._answered(
                principal, key, "withdrawal", declaration_id, request.body_hash()
            ):
                return
            raise
        owner = current.declared.owner.uscc
        event = DeclarationWithdrawn(
            event_id=ids.random_event_id(),
            declaration_id=declaration_id,
            withdrawn_at=self.clock(),
            version=current.version,
            requested_by=owner if principal.acts_for(owner) else current.declared.declarant.uscc,
            reason=request.reason,
        )
        if key is None:
            await self._publish_event(event, "the withdrawal")
            return
        async with self._keyed(
            principal,
            key,
            "withdrawal",
            declaration_id,
            request.body_hash(),
            event.withdrawn_at,
            current.version,
        ) as claim:
            if claim is not None:
                event = event.model_copy(
                    update={
                        "event_id": claim.event_id,
                        "withdrawn_at": claim.submitted_at,
                        "version": claim.version or current.version,
                    }
                )
                await self._publish_event(event, "the withdrawal")

    def _declared(
        self,
        declaration: DeclarationRequest,
        declaration_id: str,
        version: int,
        after_release: bool = False,
    ) -> DeclarationSubmitted:
        if after_release:
            agencies, table = route_after_release(self.table)
        else:
            agencies, table = route(declaration, self.table)
        event = declaration.to_event(
            declaration_id=declaration_id,
            event_id=ids.random_event_id(),
            submitted_at=self.clock(),
            agencies=agencies,
            routing_version=table,
            version=version,
        )
        return event.model_copy(update={"after_release": True}) if after_release else event

    async def _new_version(
        self,
        principal: Principal,
        current: _Open,
        event: DeclarationSubmitted,
        operation: str,
        body_hash: str,
        key: str | None,
    ) -> None:
        """Claim the event's version, then publish it (with a ``key``: the key's claim first,
        which keeps the version, ids and time of its first request)."""
        if key is None:
            await self._publish_version(current, event)
            return
        assert event.version is not None
        async with self._keyed(
            principal,
            key,
            operation,
            current.declaration_id,
            body_hash,
            event.submitted_at,
            event.version,
        ) as claim:
            if claim is not None:
                event = event.model_copy(
                    update={
                        "event_id": claim.event_id,
                        "submitted_at": claim.submitted_at,
                        "version": claim.version or event.version,
                    }
                )
                await self._publish_version(current, event)

    async def _publish_version(self, current: _Open, event: DeclarationSubmitted) -> None:
        """Publish a new version unless another event made it first (refused: NotYetVisible
        while the read model does not show that version, else VersionTaken)."""
        assert event.version is not None
        content = event.model_dump(mode="json", exclude={"event_id", "submitted_at"})
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        stored = ids.version_key(event.declaration_id, event.version)
        new = Claim(digest, event.declaration_id, event.event_id, event.submitted_at)
        try:
            claim = await self.store.claim(stored, new)
        except IdempotencyUnavailable as exc:
            raise Unavailable("the idempotency store is unavailable", "idempotency") from exc
        if claim.body_hash != digest:
            if current.version < event.version:
                raise NotYetVisible(event.declaration_id, event.version)
            raise VersionTaken(event.declaration_id, event.version)
        if claim.published:
            return  # the same change again, acknowledged already
        event = event.model_copy(
            update={
                "event_id": claim.event_id or event.event_id,
                "submitted_at": claim.submitted_at,
            }
        )
        await self._publish_event(event, "the declaration")
        try:
            await self.store.mark_published(stored)
        except IdempotencyUnavailable as exc:
            log.warning("publish state of a version not recorded: %r", exc)

    async def _answered(
        self,
        principal: Principal,
        key: str | None,
        operation: str,
        declaration_id: str,
        body_hash: str,
    ) -> bool:
        """Whether ``key`` is the subject's Idempotency-Key of this very change (operation,
        declaration, body), known published: its retry, after a lost answer, is answered 202
        again rather than refused by the status the change itself led to."""
        if key is None:
            return False
        try:
            claim = await self.store.find(ids.scoped_key(principal.subject, key))
        except IdempotencyUnavailable as exc:
            raise Unavailable("the idempotency store is unavailable", "idempotency") from exc
        return (
            claim is not None
            and claim.published
            and claim.body_hash == _scope(operation, declaration_id, body_hash)
        )

    @asynccontextmanager
    async def _keyed(
        self,
        principal: Principal,
        key: str,
        operation: str,
        declaration_id: str,
        body_hash: str,
        at: datetime,
        version: int,
    ) -> AsyncIterator[Claim | None]:
        """The subject's Idempotency-Key claimed for a change of a declaration: yields the
        claim to publish (its first request's ids, time and version), or None when it is
        known published; marks it published after the block."""
        scoped = ids.scoped_key(principal.subject, key)
        if scoped in self.in_flight:
            raise KeyInProgress()
        new = Claim(
            body_hash=_scope(operation, declaration_id, body_hash),
            declaration_id=declaration_id,
            event_id=self.keyed_ids.event_id(principal.subject, key),
            submitted_at=at,
            version=version,
        )
        self.in_flight.add(scoped)
        try:
            try:
                claim = await self.store.claim(scoped, new)
            except IdempotencyUnavailable as exc:
                raise Unavailable("the idempotency store is unavailable", "idempotency") from exc
            if claim.body_hash != new.body_hash:
                raise KeyReused()
            if claim.published:
                yield None
                return
            await self.after_claim(key)
            yield claim
            try:
                await self.store.mark_published(scoped)
            except IdempotencyUnavailable as exc:
                log.warning("publish state of a key not recorded: %r", exc)
        finally:
            self.in_flight.discard(scoped)

    async def _publish_event(self, event: Published, what: str) -> None:
        correlation.about(event.declaration_id)  # the request's log lines name it from here
        try:
            async with asyncio.timeout(self.limits.publish_timeout):
                await self.publisher.publish(event)
        except (PublishUnavailable, TimeoutError) as exc:
            raise Unavailable(f"Kafka did not acknowledge {what}", "publish") from exc

    async def _publish(
        self,
        declaration: DeclarationRequest,
        declaration_id: str,
        event_id: str,
        submitted_at: datetime,
    ) -> None:
        agencies, table = route(declaration, self.table)
        event = declaration.to_event(
            declaration_id=declaration_id,
            event_id=event_id,
            submitted_at=submitted_at,
            agencies=agencies,
            routing_version=table,
            version=1,
        )
        await self._publish_event(event, "the declaration")

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
