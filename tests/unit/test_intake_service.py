"""The intake's use cases without HTTP: ``IntakeService`` over the in-memory ports.

What the HTTP layer makes of the refusals (statuses, headers, problem documents) is tested
through the app in ``test_intake_api`` and ``test_intake_access``; here, only which refusal
comes when, and what was published or claimed by then.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import pytest

from services.intake.api import problem_of
from services.intake.auth import InvalidToken, KeysUnavailable, Principal
from services.intake.ids import scoped_key
from services.intake.ports import (
    Claim,
    IdempotencyUnavailable,
    InMemoryIdempotencyStore,
    InMemoryPublisher,
    InMemoryReadModel,
    PublishUnavailable,
    ReadModelUnavailable,
)
from services.intake.schema import DeclarationRequest, parse_declaration
from services.intake.service import (
    IntakeService,
    KeyInProgress,
    KeyReused,
    Limits,
    NotYourDeclarant,
    RateLimited,
    Refused,
    Unauthenticated,
    Unavailable,
    UnknownDeclaration,
)
from tests.unit.intake_tokens import USCC_A, USCC_B
from tests.unit.test_intake_api import SlowPublisher, status_document
from tests.unit.test_intake_schema import changed, valid_body

T0 = datetime(2026, 11, 27, 8, 30, 15, 123000, tzinfo=UTC)
TRADER = Principal("trader-a", frozenset({USCC_A}))
STRANGER = Principal("trader-b", frozenset({USCC_B}))
PRINCIPALS = {"good": TRADER, "other": STRANGER}
FAST = Limits(poll_interval=0.02)


class Verifier:
    """Tokens by name: ``good`` and ``other`` verify, ``down`` finds the keys unavailable,
    anything else is invalid."""

    async def verify(self, token: str) -> Principal:
        if token == "down":
            raise KeysUnavailable("the issuer does not answer")
        if token not in PRINCIPALS:
            raise InvalidToken("the token is not valid")
        return PRINCIPALS[token]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_service(
    *,
    publisher: InMemoryPublisher | None = None,
    read_model: InMemoryReadModel | None = None,
    store: InMemoryIdempotencyStore | None = None,
    limits: Limits = FAST,
    monotonic: Clock | None = None,
) -> IntakeService:
    return IntakeService(
        publisher or InMemoryPublisher(),
        read_model or InMemoryReadModel(),
        store or InMemoryIdempotencyStore(),
        verifier=Verifier(),
        id_secret=secrets.token_bytes(32),
        clock=lambda: T0,
        limits=limits,
        monotonic=monotonic or Clock(),
    )


def declaration(body: dict[str, Any] | None = None) -> DeclarationRequest:
    return parse_declaration(body or valid_body())


@pytest.fixture
def service() -> IntakeService:
    return new_service()


def published(service: IntakeService) -> list[str]:
    publisher = service.publisher
    assert isinstance(publisher, InMemoryPublisher)
    return [event.declaration_id for event in publisher.events]


def claims(service: IntakeService) -> dict[str, Claim]:
    store = service.store
    assert isinstance(store, InMemoryIdempotencyStore)
    return store.claims


# --- authenticate -----------------------------------------------------------------------


async def test_a_valid_token_names_the_principal(service: IntakeService) -> None:
    assert await service.authenticate("good") == TRADER


async def test_no_token_and_an_invalid_one_are_refused_differently(service: IntakeService) -> None:
    with pytest.raises(Unauthenticated) as none:
        await service.authenticate(None)
    assert none.value.description is None  # no token: a challenge without an error
    with pytest.raises(Unauthenticated) as invalid:
        await service.authenticate("forged")
    assert invalid.value.description == "the token is not valid"


async def test_unreadable_issuer_keys_are_the_intakes_problem(service: IntakeService) -> None:
    with pytest.raises(Unavailable) as refused:
        await service.authenticate("down")
    assert refused.value.reason == "issuer-keys"


async def test_each_subject_has_its_own_bucket() -> None:
    clock = Clock()
    service = new_service(limits=Limits(rate_per_second=2, rate_burst=2), monotonic=clock)
    await service.authenticate("good")
    await service.authenticate("good")
    with pytest.raises(RateLimited) as limited:
        await service.authenticate("good")
    assert limited.value.wait == pytest.approx(0.5)
    assert await service.authenticate("other") == STRANGER  # another subject, another bucket
    clock.now += 0.5
    assert await service.authenticate("good") == TRADER


# --- lodge ------------------------------------------------------------------------------


async def test_a_declaration_is_routed_and_published_with_the_clocks_time(
    service: IntakeService,
) -> None:
    declaration_id = await service.lodge(TRADER, declaration())
    publisher = service.publisher
    assert isinstance(publisher, InMemoryPublisher)
    [event] = publisher.events
    assert event.declaration_id == declaration_id and event.submitted_at == T0
    assert event.required_agencies == ("customs", "port")
    assert await service.lodge(TRADER, declaration()) != declaration_id  # random ids


async def test_a_declarant_the_principal_does_not_act_for_is_refused_before_anything(
    service: IntakeService,
) -> None:
    with pytest.raises(NotYourDeclarant) as refused:
        await service.lodge(STRANGER, declaration(), "k")
    assert refused.value.uscc == USCC_A
    assert published(service) == [] and claims(service) == {}


async def test_a_key_publishes_once_and_answers_the_same_id_again(service: IntakeService) -> None:
    first = await service.lodge(TRADER, declaration(), "order-17")
    again = await service.lodge(TRADER, declaration(), "order-17")
    assert first == again and published(service) == [first]
    assert claims(service)[scoped_key("trader-a", "order-17")].published
    with pytest.raises(KeyReused):
        await service.lodge(TRADER, declaration(changed("items[0].quantity", "121")), "order-17")
    assert published(service) == [first]


async def test_an_unacknowledged_publish_is_unavailable_and_the_retry_publishes() -> None:
    publisher = InMemoryPublisher()
    service = new_service(publisher=publisher)
    publisher.fail_with = PublishUnavailable("no acknowledgement")
    with pytest.raises(Unavailable) as refused:
        await service.lodge(TRADER, declaration(), "k")
    assert refused.value.reason == "publish"
    claim = claims(service)[scoped_key("trader-a", "k")]
    assert not claim.published
    publisher.fail_with = None
    assert await service.lodge(TRADER, declaration(), "k") == claim.declaration_id
    assert published(service) == [claim.declaration_id]


async def test_a_publish_slower_than_the_timeout_is_unavailable() -> None:
    service = new_service(publisher=SlowPublisher(), limits=Limits(publish_timeout=0.05))
    with pytest.raises(Unavailable) as refused:
        await service.lodge(TRADER, declaration())
    assert refused.value.reason == "publish" and published(service) == []


class DownStore(InMemoryIdempotencyStore):
    async def claim(self, key: str, claim: Claim) -> Claim:
        raise IdempotencyUnavailable("connection refused")


async def test_an_unavailable_idempotency_store_publishes_nothing() -> None:
    service = new_service(store=DownStore())
    with pytest.raises(Unavailable) as refused:
        await service.lodge(TRADER, declaration(), "k")
    assert refused.value.reason == "idempotency" and published(service) == []


async def test_a_key_in_progress_is_refused_until_its_first_request_is_done() -> None:
    publisher = SlowPublisher()
    service = new_service(publisher=publisher)
    first = asyncio.create_task(service.lodge(TRADER, declaration(), "k"))
    await publisher.entered_by(first)
    with pytest.raises(KeyInProgress):
        await service.lodge(TRADER, declaration(), "k")
    publisher.gate.set()
    assert await first == await service.lodge(TRADER, declaration(), "k")
    assert len(publisher.events) == 1


async def test_admission_refuses_at_once_when_every_place_is_taken() -> None:
    service = new_service(limits=Limits(max_submissions=1))
    async with service.admitted():
        with pytest.raises(Unavailable) as refused:
            async with service.admitted():
                pass  # pragma: no cover
        assert refused.value.reason == "overloaded"
    async with service.admitted():  # the place is free again
        pass


# --- status -----------------------------------------------------------------------------


async def test_the_status_is_the_traders_view_of_the_read_model() -> None:
    read_model = InMemoryReadModel()
    read_model.put(status_document("DEC-1"))
    service = new_service(read_model=read_model)
    status = await service.status(TRADER, "DEC-1")
    assert status.status == "IN_REVIEW"
    assert [v.agency for v in status.verdicts] == ["customs"]


async def test_unknown_and_someone_elses_declarations_are_the_same_refusal() -> None:
    read_model = InMemoryReadModel()
    read_model.put(status_document("DEC-1"))
    service = new_service(read_model=read_model)
    for principal, declaration_id in ((TRADER, "DEC-NOPE"), (STRANGER, "DEC-1")):
        with pytest.raises(UnknownDeclaration) as refused:
            await service.status(principal, declaration_id)
        assert str(refused.value) == f"no declaration {declaration_id!r}"


class DownReadModel(InMemoryReadModel):
    async def get(self, declaration_id: str) -> dict[str, Any] | None:
        raise ReadModelUnavailable("connection refused")

    async def final_among(self, ids: Collection[str]) -> set[str]:
        raise ReadModelUnavailable("connection refused")


async def test_an_unavailable_read_model_is_unavailable() -> None:
    service = new_service(read_model=DownReadModel())
    with pytest.raises(Unavailable) as refused:
        await service.status(TRADER, "DEC-1", wait=1)
    assert refused.value.reason == "read-model"


async def test_wait_answers_once_the_status_is_final() -> None:
    read_model = InMemoryReadModel()
    read_model.put(status_document("DEC-1"))
    service = new_service(read_model=read_model)
    await service.start()
    try:
        waiting = asyncio.create_task(service.status(TRADER, "DEC-1", wait=10))
        while service.waiters.waiting < 1:
            await asyncio.sleep(0.01)
        read_model.set_status("DEC-1", "RELEASED")
        assert (await waiting).status == "RELEASED"
    finally:
        await service.stop()


async def test_waiters_beyond_the_limit_are_unavailable() -> None:
    read_model = InMemoryReadModel()
    read_model.put(status_document("DEC-1"))
    service = new_service(read_model=read_model, limits=Limits(max_waiters=1, poll_interval=0.02))
    waiting = asyncio.create_task(service.status(TRADER, "DEC-1", wait=10))
    while service.waiters.waiting < 1:
        await asyncio.sleep(0.01)
    with pytest.raises(Unavailable) as refused:
        await service.status(TRADER, "DEC-1", wait=10)
    assert refused.value.reason == "too-many-waiters"
    assert (await service.status(TRADER, "DEC-1")).status == "IN_REVIEW"  # no wait: fine
    read_model.set_status("DEC-1", "HELD")
    assert (await waiting).status == "HELD"
    await service.stop()


# --- what HTTP makes of a refusal -------------------------------------------------------


@pytest.mark.parametrize(
    ("refused", "status", "kind", "header"),
    [
        (Unauthenticated(), 401, None, "WWW-Authenticate"),
        (RateLimited(0.2), 429, "rate-limited", "Retry-After"),
        (Unavailable("the intake is at capacity", "overloaded"), 503, "overloaded", "Retry-After"),
        (NotYourDeclarant(USCC_B), 403, "not-your-declarant", "WWW-Authenticate"),
        (UnknownDeclaration("DEC-1"), 404, "unknown-declaration", None),
        (KeyReused(), 409, "idempotency-key-reused", None),
        (KeyInProgress(), 409, "idempotency-in-progress", "Retry-After"),
    ],
)
def test_every_refusal_has_its_problem_document(
    refused: Refused, status: int, kind: str | None, header: str | None
) -> None:
    problem = problem_of(refused, retry_after_s=5)
    assert problem.status == status
    assert problem.type.endswith(kind or "unauthenticated")
    assert header is None or header in problem.headers
    if status == 503:
        assert problem.headers["Retry-After"] == "5"
        assert problem.detail == "the intake is at capacity; retry later"
