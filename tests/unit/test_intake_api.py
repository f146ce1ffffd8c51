"""The intake's HTTP API, through the real FastAPI app with the in-memory ports.

Every request is authenticated: the client carries a token of a test issuer whose key pair
is generated when the module loads (``tests.unit.intake_tokens``). Access control itself
(401, 403, 404 without an oracle, scoped keys, 429, the trader's view, exposure) is tested in
``test_intake_access``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from services.intake.api import Exposure, IntakeService, Limits, create_app
from services.intake.auth import Verifier
from services.intake.ids import scoped_key
from services.intake.ports import (
    Claim,
    InMemoryIdempotencyStore,
    InMemoryPublisher,
    InMemoryReadModel,
    PublishUnavailable,
    ReadModelUnavailable,
)
from services.intake.routing import current_version
from singlewindow import asyncapi
from singlewindow.events import DeclarationSubmitted
from tests.unit.intake_tokens import USCC_A, TestIssuer
from tests.unit.test_intake_schema import DELETE, changed, valid_body

T0 = datetime(2026, 11, 27, 8, 30, 15, 123000, tzinfo=UTC)
FAST = Limits(poll_interval=0.02, rate_burst=1000)
ISSUER = TestIssuer()  # a key pair generated for this test run
SECRET = secrets.token_bytes(32)  # the id secret of this test run
OPEN = Exposure(docs=True, metrics=True)
CLOSED = Exposure()


@dataclass
class Intake:
    app: FastAPI
    client: httpx.AsyncClient  # authenticated: subject trader-a, acting for USCC_A
    bare: httpx.AsyncClient  # no Authorization header
    publisher: InMemoryPublisher
    read_model: InMemoryReadModel
    store: InMemoryIdempotencyStore

    async def submit(
        self, body: Any, key: str | None = None, auth: dict[str, str] | None = None
    ) -> httpx.Response:
        headers = {} if key is None else {"Idempotency-Key": key}
        headers.update(auth or {})
        return await self.client.post("/v1/declarations", json=body, headers=headers)

    async def post_raw(self, content: Any, **headers: str) -> httpx.Response:
        headers = {"content-type": "application/json", **headers}
        return await self.client.post("/v1/declarations", content=content, headers=headers)

    def claim(self, key: str, subject: str = "trader-a") -> Claim:
        """The stored claim of ``subject``'s Idempotency-Key."""
        return self.store.claims[scoped_key(subject, key)]


@asynccontextmanager
async def running(
    limits: Limits = FAST,
    publisher: InMemoryPublisher | None = None,
    read_model: InMemoryReadModel | None = None,
    *,
    secret: bytes = SECRET,
    exposure: Exposure = CLOSED,
    verifier: Verifier | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Intake]:
    publisher = publisher or InMemoryPublisher()
    read_model = read_model or InMemoryReadModel()
    store = InMemoryIdempotencyStore()
    app = create_app(
        IntakeService(
            publisher,
            read_model,
            store,
            verifier=verifier or ISSUER.verifier(),
            id_secret=secret,
            clock=lambda: T0,
            limits=limits,
            monotonic=monotonic,
        ),
        exposure,
    )
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://intake") as bare,
        httpx.AsyncClient(
            transport=transport, base_url="http://intake", headers=ISSUER.auth()
        ) as client,
    ):
        yield Intake(app, client, bare, publisher, read_model, store)


@pytest.fixture
async def intake() -> AsyncIterator[Intake]:
    async with running() as it:
        yield it


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


def named(response: httpx.Response) -> set[str]:
    return {error["field"] for error in problem(response, 422)["errors"]}


def status_document(
    declaration_id: str, status: str = "IN_REVIEW", uscc: str = USCC_A
) -> dict[str, Any]:
    """A read-model document (as the projector writes it) of a declaration by ``uscc``."""
    verdict = {
        "declaration_id": declaration_id,
        "verdict_id": "V-1",
        "agency": "customs",
        "decision": "CLEAR",
        "reasons": [],
        "checks": [],
        "duties": [],
        "total_duties": "0.00",
        "rules_version": "customs-2026.11",
        "decided_at": "2026-11-27T08:31:00.000Z",
    }
    declaration = {"declaration_id": declaration_id, "declarant": {"uscc": uscc, "name": "某"}}
    return {"_id": declaration_id, "status": status, "declaration": declaration,
            "verdicts": {"customs": verdict}, "result": None}  # fmt: skip


# --- POST: acceptance -----------------------------------------------------------------


async def test_a_valid_declaration_is_accepted_once_published(intake: Intake) -> None:
    response = await intake.submit(valid_body())
    assert response.status_code == 202
    declaration_id = response.json()["declaration_id"]
    assert response.json() == {"declaration_id": declaration_id, "status": "SUBMITTED"}
    assert response.headers["location"] == f"/v1/declarations/{declaration_id}"
    assert declaration_id.startswith("DEC-") and len(declaration_id) == 36
    [event] = intake.publisher.events
    assert event.declaration_id == declaration_id and event.submitted_at == T0
    assert event.required_agencies == ("customs", "port")
    assert event.routing_version == current_version()  # the newest table, routing-2026.11-r2
    assert [item.line for item in event.items] == [1]
    assert DeclarationSubmitted.from_avro(event.to_avro()) == event


async def test_statutory_goods_are_routed_to_ciq_too(intake: Intake) -> None:
    response = await intake.submit(changed("items[0].hs_code", "0201100000"))
    assert response.status_code == 202
    [event] = intake.publisher.events
    assert event.required_agencies == ("customs", "ciq", "port")


async def test_two_declarations_get_two_ids(intake: Intake) -> None:
    first, second = await intake.submit(valid_body()), await intake.submit(valid_body())
    assert first.json()["declaration_id"] != second.json()["declaration_id"]
    assert len({e.event_id for e in intake.publisher.events}) == 2


# --- POST: bad input is never published ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"declaration_type": ', "not JSON"),
        (b"", "empty"),
        (b'{"declaration_type": "IMPORT\xff"}', "invalid UTF-8"),
        (b"\xef\xbb\xbf{}", "byte order mark"),
        (b"[" * 10000 + b"]" * 10000, "nesting depth 10000"),
        (b'{"a":' * 10000 + b"1" + b"}" * 10000, "nesting depth 10000 of objects"),
        (b"[" * 100000, "unbalanced nesting 100000"),
        (b"[" * 33 + b"]" * 33, "nesting depth 33"),
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (json.dumps(valid_body()).replace('"120.5"', "NaN").encode(), "NaN literal"),
        (b'{"q": ' + b"9" * 5000 + b"}", "integer beyond the digit limit"),
    ],
)
async def test_unparseable_json_is_400(intake: Intake, content: bytes, why: str) -> None:
    assert problem(await intake.post_raw(content), 400)["type"].endswith("invalid-json"), why
    assert intake.publisher.events == []


async def test_nesting_up_to_32_levels_is_parsed(intake: Intake) -> None:
    named_fields = named(await intake.post_raw(b"[" * 32 + b"]" * 32))
    assert named_fields == {"body"}  # parsed: then refused as not being an object


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml", "multipart/x"])
async def test_other_media_types_are_415(intake: Intake, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    content = json.dumps(valid_body()).encode()  # httpx sets no content type for raw bytes
    response = await intake.client.post("/v1/declarations", content=content, headers=headers)
    problem(response, 415)
    assert intake.publisher.events == []


async def test_json_with_a_charset_is_fine(intake: Intake) -> None:
    content = json.dumps(valid_body()).encode()
    response = await intake.post_raw(content, **{"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 202


async def test_a_body_above_the_default_limit_of_1_mib_is_413(intake: Intake) -> None:
    problem(await intake.post_raw(b" " * (1024 * 1024 + 1)), 413)
    assert intake.publisher.events == []


async def test_the_body_limit_is_enforced_whatever_content_length_says() -> None:
    async with running(Limits(max_body_bytes=2000)) as intake:
        big = json.dumps(changed("declarant.name", "x" * 3000)).encode()

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(big), 500):
                yield big[start : start + 500]

        problem(await intake.post_raw(big), 413)  # honest length
        problem(await intake.post_raw(chunks()), 413)  # no length: chunked
        problem(await intake.post_raw(big, **{"content-length": "100"}), 413)  # a lie
        problem(await intake.post_raw(b"{}", **{"content-length": "999999"}), 413)  # announced
        assert intake.publisher.events == []
        assert (await intake.submit(valid_body())).status_code == 202  # small enough


async def test_a_content_length_of_5000_digits_is_400_not_500(intake: Intake) -> None:
    response = await intake.post_raw(b"{}", **{"content-length": "9" * 5000})
    assert problem(response, 400)["type"].endswith("bad-length")
    assert intake.publisher.events == []


MIB = 1024 * 1024
WORST_CASES = {  # 1 MiB each; escaped quotes made the former pre-parse check quadratic
    "escaped quotes": (b'"' + b'\\"' * MIB)[:MIB],
    "quotes and brackets": (b'["\\' * MIB)[:MIB],
    "open strings": (b'"[' * MIB)[:MIB],
}


@pytest.mark.parametrize("name", WORST_CASES)
async def test_a_hostile_1_mib_body_is_answered_while_healthz_stays_responsive(
    intake: Intake, name: str
) -> None:
    body = WORST_CASES[name]
    assert len(body) == MIB
    started = time.monotonic()

    async def healthz() -> float:
        await asyncio.sleep(0)  # asked while the hostile body is being handled
        assert (await intake.client.get("/healthz")).status_code == 200
        return time.monotonic() - started

    answer, health_s = await asyncio.gather(intake.post_raw(body), healthz())
    elapsed = time.monotonic() - started
    problem(answer, 400)
    # Generous bounds for a loaded machine: the quadratic check took hours at this size.
    assert elapsed < 10 and health_s < 10, (elapsed, health_s)


async def test_a_422_lists_a_bounded_number_of_errors(intake: Intake) -> None:
    body = {**valid_body(), **{f"{n:x}": 0 for n in range(100_000)}}
    response = await intake.post_raw(json.dumps(body, separators=(",", ":")))  # < 1 MiB
    document = problem(response, 422)
    assert len(document["errors"]) == 50
    assert "99950 more errors not listed" in document["detail"]
    assert len(response.content) < 20_000


SEA_ONLY = ("vessel_imo",)  # a voyage (or train number) is also needed by RAIL


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (changed("transport.vessel_imo", DELETE), "transport.vessel_imo"),  # SEA without vessel
        (changed("transport.mode", "AIR"), "transport.vessel_imo"),  # AIR with a vessel
        (changed("transport.package_kind", "VL"), "transport.containers"),  # bulk in containers
        (changed("declaration_type", "SMUGGLE"), "declaration_type"),
        (changed("documents[0].type", "LOVE_LETTER"), "documents[0].type"),
        (changed("items", []), "items"),
        (changed("items[0].quantity", "-1"), "items[0].quantity"),
        (changed("items[0].invoice_price", "-0.01"), "items[0].invoice_price"),
        (changed("items[0].quantity", "NaN"), "items[0].quantity"),
        (changed("items[0].invoice_price", "Infinity"), "items[0].invoice_price"),
        (changed("items[0].invoice_price", 45000.10), "items[0].invoice_price"),
        (changed("items[0].quantity", 120), "items[0].quantity"),
        (changed("items[0].description", "d" * 501), "items[0].description"),
        (changed("declarant.uscc", "91350100M000100Y44"), "declarant.uscc"),  # check char
        (changed("transport.containers", ["CSQU3054384"]), "transport.containers[0]"),
        (changed("transport.vessel_imo", "9074728"), "transport.vessel_imo"),
        (changed("items[0].hs_code", "84713000"), "items[0].hs_code"),
        (changed("items[0].origin_country", "QQ"), "items[0].origin_country"),
        (changed("valuation.currency", "ABC"), "valuation.currency"),
        (changed("transport.port_of_discharge", "CNSH"), "transport.port_of_discharge"),
        (changed("unexpected", True), "unexpected"),
        ([valid_body()], "body"),
    ],
)
async def test_invalid_declarations_are_422_naming_the_field(
    intake: Intake, body: Any, field: str
) -> None:
    response = await intake.submit(body)
    assert field in named(response)
    assert problem(response, 422)["type"].endswith("invalid-declaration")
    assert intake.publisher.events == []


async def test_every_bad_field_is_named(intake: Intake) -> None:
    body = changed("transport.mode", "RAIL")
    body["declarant"]["uscc"] = "91350100M000100Y4"
    body["valuation"]["currency"] = "EURO"
    body["items"].append({**body["items"][0], "quantity": 1.5})
    body["documents"].append({"type": "MEMO", "reference": "r" * 65})
    assert named(await intake.submit(body)) == {
        "declarant.uscc",
        "valuation.currency",
        *(f"transport.{name}" for name in SEA_ONLY),
        "items[1].quantity",
        "documents[1].type",
        "documents[1].reference",
    }
    assert intake.publisher.events == []


# --- POST: Kafka down, idempotency ----------------------------------------------------


async def test_kafka_unavailable_is_503_and_the_retry_publishes(intake: Intake) -> None:
    intake.publisher.fail_with = PublishUnavailable("no acknowledgement")
    response = await intake.submit(valid_body(), key="order-17")
    problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert intake.publisher.events == []
    assert not intake.claim("order-17").published  # claimed, not known published
    intake.publisher.fail_with = None
    retried = await intake.submit(valid_body(), key="order-17")
    assert retried.status_code == 202
    [event] = intake.publisher.events
    assert event.declaration_id == retried.json()["declaration_id"]
    assert intake.claim("order-17").published


async def test_a_crashing_publisher_is_500_and_the_retry_publishes(intake: Intake) -> None:
    intake.publisher.fail_with = RuntimeError("bug")
    problem(await intake.submit(valid_body(), key="k"), 500)
    intake.publisher.fail_with = None
    assert (await intake.submit(valid_body(), key="k")).status_code == 202
    assert len(intake.publisher.events) == 1


class Crash(BaseException):
    """The process dies: nothing after this point runs (like SIGKILL)."""


async def test_a_death_between_claim_and_publish_never_yields_a_202_for_nothing() -> None:
    """The claim survives (a shared store), the process does not; the retry, on a new
    process, publishes the same event and only then answers 202."""
    store, publisher = InMemoryIdempotencyStore(), InMemoryPublisher()

    async def die(_: str) -> None:
        raise Crash

    trust: dict[str, Any] = {"verifier": ISSUER.verifier(), "id_secret": SECRET}
    headers = {"Idempotency-Key": "k", **ISSUER.auth()}
    dying = create_app(
        IntakeService(
            publisher, InMemoryReadModel(), store, clock=lambda: T0, after_claim=die, **trust
        )
    )
    transport = httpx.ASGITransport(dying, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        with pytest.raises(Crash):
            await client.post("/v1/declarations", json=valid_body(), headers=headers)
    assert publisher.events == [] and not store.claims[scoped_key("trader-a", "k")].published
    later = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    restarted = create_app(
        IntakeService(publisher, InMemoryReadModel(), store, clock=lambda: later, **trust)
    )
    transport = httpx.ASGITransport(restarted)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        retried = await client.post("/v1/declarations", json=valid_body(), headers=headers)
        again = await client.post("/v1/declarations", json=valid_body(), headers=headers)
    assert retried.status_code == again.status_code == 202
    [event] = publisher.events  # published once, by the retry; the third answer needed none
    assert (
        event.declaration_id == retried.json()["declaration_id"] == again.json()["declaration_id"]
    )
    assert event.submitted_at == T0  # the claim's time: a republish writes the same event


class SlowPublisher(InMemoryPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def publish(self, event: DeclarationSubmitted) -> None:
        self.entered.set()
        await self.gate.wait()
        await super().publish(event)

    async def entered_by(self, request: asyncio.Task[Any]) -> None:
        """Until ``request`` is publishing; a failure at once, not a hang, if it is answered
        without publishing (a body the intake refuses, say)."""
        entered = asyncio.ensure_future(self.entered.wait())
        await asyncio.wait((entered, request), return_when=asyncio.FIRST_COMPLETED)
        if not entered.done():
            entered.cancel()
            answer = request.result()  # raises what the request raised
            pytest.fail(f"answered before publishing: {getattr(answer, 'text', answer)}")


async def test_a_publish_slower_than_the_timeout_is_503() -> None:
    async with running(Limits(publish_timeout=0.05), publisher=SlowPublisher()) as intake:
        response = await intake.submit(valid_body(), key="slow")
        assert problem(response, 503)["type"].endswith("publish")
        assert intake.publisher.events == [] and not intake.claim("slow").published


async def test_an_intake_at_capacity_answers_503_at_once_and_takes_the_next_when_free() -> None:
    publisher = SlowPublisher()
    async with running(Limits(max_submissions=1), publisher=publisher) as intake:
        first = asyncio.create_task(intake.submit(valid_body()))
        await publisher.entered_by(first)
        refused = await intake.submit(valid_body())
        assert problem(refused, 503)["type"].endswith("overloaded")
        assert int(refused.headers["retry-after"]) > 0
        publisher.gate.set()
        assert (await first).status_code == 202
        assert (await intake.submit(valid_body())).status_code == 202
        assert len(publisher.events) == 2  # the refused one was never published


async def test_no_202_before_the_acknowledgement_even_for_a_concurrent_retry() -> None:
    publisher = SlowPublisher()
    async with running(publisher=publisher) as intake:
        first = asyncio.create_task(intake.submit(valid_body(), key="k-1"))
        await publisher.entered_by(first)
        concurrent = await intake.submit(valid_body(), key="k-1")
        assert problem(concurrent, 409)["type"].endswith("idempotency-in-progress")
        assert not first.done()
        publisher.gate.set()
        assert (await first).status_code == 202
        assert len(publisher.events) == 1


async def test_same_key_same_body_answers_the_same_without_publishing_again(
    intake: Intake,
) -> None:
    first = await intake.submit(valid_body(), key="trader-42/0001")
    same = await intake.submit(changed("items[0].invoice_price", "45000.1"), key="trader-42/0001")
    assert first.status_code == same.status_code == 202
    assert first.json() == same.json()
    assert first.headers["location"] == same.headers["location"]
    assert len(intake.publisher.events) == 1


async def test_same_key_different_body_is_409(intake: Intake) -> None:
    assert (await intake.submit(valid_body(), key="k")).status_code == 202
    response = await intake.submit(changed("items[0].quantity", "121"), key="k")
    assert problem(response, 409)["type"].endswith("idempotency-key-reused")
    assert len(intake.publisher.events) == 1


async def test_the_id_derives_from_the_key_so_a_retry_after_a_crash_reuses_it() -> None:
    async with running() as one, running() as other:  # e.g. before and after a restart
        a = await one.submit(valid_body(), key="k")
        b = await other.submit(valid_body(), key="k")
        assert a.json()["declaration_id"] == b.json()["declaration_id"]
        assert one.publisher.events[0].event_id == other.publisher.events[0].event_id
        c = await other.submit(valid_body(), key="another key")
        assert c.json()["declaration_id"] != a.json()["declaration_id"]


async def test_the_claim_keeps_the_ids_so_a_retry_republishes_them_whatever_the_secret() -> None:
    async with running(publisher=InMemoryPublisher()) as intake:
        intake.publisher.fail_with = PublishUnavailable("no acknowledgement")
        problem(await intake.submit(valid_body(), key="k"), 503)
        claimed = intake.claim("k")
    store = intake.store  # the claim survives a restart with a rotated secret
    async with running(secret=secrets.token_bytes(32)) as restarted:
        restarted.store.claims.update(store.claims)
        retried = await restarted.submit(valid_body(), key="k")
    assert retried.json()["declaration_id"] == claimed.declaration_id
    [event] = restarted.publisher.events
    assert (event.declaration_id, event.event_id) == (claimed.declaration_id, claimed.event_id)


async def test_an_overlong_idempotency_key_is_refused(intake: Intake) -> None:
    assert named(await intake.submit(valid_body(), key="k" * 129)) == {"Idempotency-Key"}
    assert intake.publisher.events == []


# --- GET ------------------------------------------------------------------------------


async def test_the_status_is_read_from_the_read_model(intake: Intake) -> None:
    intake.read_model.put(status_document("DEC-1"))
    response = await intake.client.get("/v1/declarations/DEC-1")
    assert response.status_code == 200
    assert response.json() == {
        "declaration_id": "DEC-1",
        "status": "IN_REVIEW",
        "verdicts": [
            {
                "agency": "customs",
                "decision": "CLEAR",
                "reasons": [],
                "duties": [],
                "tax_totals": [],
                "total_duties": "0.00",
                "security": None,
                "charges": [],
                "decided_at": "2026-11-27T08:31:00.000Z",
            }
        ],
        "result": None,
    }


async def test_an_unknown_declaration_is_404(intake: Intake) -> None:
    assert problem(await intake.client.get("/v1/declarations/DEC-NOPE"), 404)["type"].endswith(
        "unknown-declaration"
    )


class DownReadModel(InMemoryReadModel):
    async def get(self, declaration_id: str) -> dict[str, Any] | None:
        raise ReadModelUnavailable("connection refused")

    async def final_among(self, ids: Collection[str]) -> set[str]:
        raise ReadModelUnavailable("connection refused")


async def test_read_model_unavailable_is_503() -> None:
    async with running(read_model=DownReadModel()) as intake:
        response = await intake.client.get("/v1/declarations/DEC-1?wait=1")
        problem(response, 503)
        assert response.headers["retry-after"] == "5"


async def test_wait_returns_as_soon_as_the_status_is_final(intake: Intake) -> None:
    intake.read_model.put(status_document("DEC-1"))

    async def release_soon() -> None:
        await asyncio.sleep(0.1)
        intake.read_model.set_status("DEC-1", "RELEASED")

    started = time.monotonic()
    releasing = asyncio.create_task(release_soon())
    response = await intake.client.get("/v1/declarations/DEC-1", params={"wait": 10})
    await releasing
    assert response.status_code == 200 and response.json()["status"] == "RELEASED"
    assert time.monotonic() - started < 2


async def test_wait_answers_the_current_status_when_time_is_up(intake: Intake) -> None:
    intake.read_model.put(status_document("DEC-1", "SUBMITTED"))
    started = time.monotonic()
    response = await intake.client.get("/v1/declarations/DEC-1", params={"wait": 0.2})
    assert response.status_code == 200 and response.json()["status"] == "SUBMITTED"
    assert time.monotonic() - started >= 0.2
    assert intake.app.state.waiters.waiting == 0


async def test_a_final_status_does_not_wait(intake: Intake) -> None:
    intake.read_model.put(status_document("DEC-1", "HELD"))
    started = time.monotonic()
    response = await intake.client.get("/v1/declarations/DEC-1", params={"wait": 30})
    assert response.json()["status"] == "HELD" and time.monotonic() - started < 1


@pytest.mark.parametrize("wait", ["0", "-1", "30.5", "nan", "inf", "soon"])
async def test_wait_must_be_within_0_and_30_seconds(intake: Intake, wait: str) -> None:
    intake.read_model.put(status_document("DEC-1"))
    assert named(await intake.client.get(f"/v1/declarations/DEC-1?wait={wait}")) == {"wait"}


async def test_waiters_beyond_the_limit_are_503() -> None:
    async with running(Limits(max_waiters=2, poll_interval=0.02)) as intake:
        intake.read_model.put(status_document("DEC-1"))
        intake.read_model.put(status_document("DEC-2"))
        waiting = [
            asyncio.create_task(intake.client.get(f"/v1/declarations/{d}?wait=10"))
            for d in ("DEC-1", "DEC-2")
        ]
        while intake.app.state.waiters.waiting < 2:
            await asyncio.sleep(0.01)
        response = await intake.client.get("/v1/declarations/DEC-1?wait=10")
        problem(response, 503)
        assert response.headers["retry-after"] == "5"
        assert (await intake.client.get("/v1/declarations/DEC-1")).status_code == 200
        intake.read_model.set_status("DEC-1", "REJECTED")
        intake.read_model.set_status("DEC-2", "TIMED_OUT")
        answers = [(await task).json()["status"] for task in waiting]
        assert answers == ["REJECTED", "TIMED_OUT"]


async def test_all_waiters_share_one_query_loop() -> None:
    async with running(Limits(poll_interval=0.05)) as intake:
        ids = [f"DEC-{n}" for n in range(10)]
        for declaration_id in ids:
            intake.read_model.put(status_document(declaration_id))
        started = time.monotonic()
        responses = await asyncio.gather(
            *(intake.client.get(f"/v1/declarations/{d}?wait=0.3") for d in ids * 5)
        )
        elapsed = time.monotonic() - started
        assert all(r.json()["status"] == "IN_REVIEW" for r in responses)
        assert 1 <= intake.read_model.queries <= elapsed / 0.05 + 2  # not 50 waiters' worth
        idle = intake.read_model.queries
        await asyncio.sleep(0.2)
        assert intake.read_model.queries <= idle + 1  # nobody waits: no more queries


# --- the rest of the surface ----------------------------------------------------------


async def test_health_docs_and_openapi_when_docs_are_public() -> None:
    async with running(exposure=OPEN) as intake:
        assert (await intake.bare.get("/healthz")).json() == {"status": "live", "loops": {}}
        assert (await intake.bare.get("/docs")).status_code == 200
        spec = (await intake.bare.get("/openapi.json")).json()
        contract = await intake.bare.get("/asyncapi.json")
    # the event contract next to the API's: this deployment's, as docs/asyncapi.json has it
    assert contract.headers["content-type"] == "application/json"
    assert contract.json() == asyncapi.load_committed()
    assert "DeclarationRequest" in spec["components"]["schemas"]
    post = spec["paths"]["/v1/declarations"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/DeclarationRequest"
    assert "application/problem+json" in post["responses"]["422"]["content"]
    assert {"401", "403", "429"} <= post["responses"].keys()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert post["security"] == [{"HTTPBearer": []}]


async def test_no_event_contract_when_docs_are_closed(intake: Intake) -> None:
    assert (await intake.bare.get("/asyncapi.json")).status_code == 404


def requests_seen(method: str, route: str, status: int) -> float:
    """How many requests the process's latency histogram has seen so far (the registry is
    the process's: other tests count too)."""
    labels = {"service": "intake", "method": method, "route": route, "status": str(status)}
    count = REGISTRY.get_sample_value("singlewindow_http_request_duration_seconds_count", labels)
    return count or 0.0


async def test_metrics_time_requests_by_route_template_and_status_when_public() -> None:
    asked = [
        ("POST", "/v1/declarations", 202),
        ("POST", "/v1/declarations", 422),
        ("GET", "/v1/declarations/{declaration_id}", 404),
        ("GET", "unmatched", 404),
    ]
    before = [requests_seen(*a) for a in asked]
    async with running(exposure=OPEN) as intake:
        await intake.submit(valid_body())
        await intake.submit(changed("items", []))
        await intake.client.get("/v1/declarations/DEC-NOPE")
        await intake.client.get("/v2/nothing")
        text = (await intake.bare.get("/metrics")).text
    assert [requests_seen(*a) - b for a, b in zip(asked, before, strict=True)] == [1, 1, 1, 1]
    assert "DEC-NOPE" not in text and "/v2/nothing" not in text  # bounded label values
    # the process's whole registry, the process's own metrics too
    assert "singlewindow_http_request_duration_seconds_bucket" in text
    assert "process_cpu_seconds_total" in text


async def test_framework_errors_are_problems_too(intake: Intake) -> None:
    problem(await intake.client.get("/v2/nothing"), 404)
    response = await intake.client.delete("/v1/declarations")
    problem(response, 405)
    assert response.headers["allow"] == "POST"
