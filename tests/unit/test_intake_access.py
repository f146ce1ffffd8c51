"""Who may do what at the intake, over HTTP: tokens (401), declarants (403), no existence
oracle (404), idempotency keys scoped per subject, rate limits (429), the trader's view of a
verdict, and what is exposed besides the API."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import jwt
import pytest

from services.intake.api import Limits
from services.intake.auth import KeysUnavailable, Principal
from services.intake.schema import parse_declaration
from singlewindow.events import (
    AgencyDecision,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    InspectionCheck,
    InspectionOrder,
)
from singlewindow.readmodel import apply
from singlewindow.verdicts import Ruling, build_verdict
from tests.unit.intake_tokens import USCC_A, USCC_B, USCC_C, TestIssuer
from tests.unit.test_intake_api import (
    ISSUER,
    Intake,
    SlowPublisher,
    problem,
    running,
    status_document,
)
from tests.unit.test_intake_schema import changed, valid_body

URL = "/v1/declarations/DEC-1"


@pytest.fixture
async def intake() -> AsyncIterator[Intake]:
    async with running() as it:
        yield it


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge_of(response: httpx.Response) -> str:
    problem(response, 401)
    return response.headers["www-authenticate"]


# --- 401: no token, a bad one, an expired one ------------------------------------------


async def test_no_token_is_401_with_a_bearer_challenge_and_no_error_code(intake: Intake) -> None:
    for response in (
        await intake.bare.post("/v1/declarations", json=valid_body()),
        await intake.bare.get(URL),
        await intake.bare.get(URL, params={"wait": "soon"}),  # 401 before any 422
        await intake.bare.get(URL, headers={"Authorization": "Basic dXNlcjpwdw=="}),
        await intake.bare.get(URL, headers={"Authorization": "Bearer"}),
    ):
        assert challenge_of(response) == 'Bearer realm="singlewindow-intake"'
        assert problem(response, 401)["type"].endswith("unauthenticated")
    assert intake.publisher.events == []


def _other_key() -> str:
    return TestIssuer().token()  # same kid, another key pair: the signature fails


def _hs256() -> str:
    return jwt.encode(
        ISSUER.claims(), "a shared secret" * 4, "HS256", headers={"kid": "test-key-1"}
    )


def _unsigned() -> str:
    return jwt.encode(ISSUER.claims(), None, "none", headers={"kid": "test-key-1"})


def _tampered() -> str:
    header, _, signature = ISSUER.token().split(".")
    claims = ISSUER.claims(usccs=(USCC_A, USCC_B))
    claims = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{body}.{signature}"


INVALID_TOKENS = {
    "not a JWT": lambda: "not-a-jwt",
    "expired": lambda: ISSUER.token(exp=datetime.now(UTC) - timedelta(minutes=5)),
    "not yet valid": lambda: ISSUER.token(nbf=datetime.now(UTC) + timedelta(minutes=5)),
    "no exp": lambda: ISSUER.token(exp=None),
    "no sub": lambda: ISSUER.token(sub=None),
    "other issuer": lambda: ISSUER.token(iss="https://evil.example"),
    "other audience": lambda: ISSUER.token(aud="another-service"),
    "no audience": lambda: ISSUER.token(aud=None),
    "unknown kid": lambda: ISSUER.token(headers={"kid": "nobody"}),
    "other key": _other_key,
    "tampered claims": _tampered,
    "HS256 signed": _hs256,
    "alg none": _unsigned,
    "no USCC list": lambda: ISSUER.token(usccs=None),
    "empty USCC list": lambda: ISSUER.token(usccs=()),
    "USCCs not a list": lambda: ISSUER.token(usccs=USCC_A),
    "an invalid USCC": lambda: ISSUER.token(usccs=(USCC_A, "91350100M000100Y44")),
    "subject with a newline": lambda: ISSUER.token(sub="a\nb"),
    "way too long": lambda: "a" * 9000,
}


@pytest.mark.parametrize("case", INVALID_TOKENS)
async def test_an_invalid_token_is_401_invalid_token(intake: Intake, case: str) -> None:
    token = INVALID_TOKENS[case]()
    for response in (
        await intake.bare.post("/v1/declarations", json=valid_body(), headers=bearer(token)),
        await intake.bare.get(URL, headers=bearer(token)),
    ):
        value = challenge_of(response)
        assert value.startswith('Bearer realm="singlewindow-intake", error="invalid_token"'), case
        description = re.fullmatch(r'.*error_description="([^"\\]*)"', value)
        assert description and problem(response, 401)["detail"] == description[1], case
    assert intake.publisher.events == []


async def test_an_expired_token_says_so(intake: Intake) -> None:
    token = ISSUER.token(exp=datetime.now(UTC) - timedelta(minutes=5))
    response = await intake.bare.get(URL, headers=bearer(token))
    assert 'error_description="the token has expired"' in challenge_of(response)


async def test_a_slightly_late_clock_is_tolerated(intake: Intake) -> None:
    intake.read_model.put(status_document("DEC-1"))
    token = ISSUER.token(exp=datetime.now(UTC) - timedelta(seconds=5))  # leeway: 30 s
    assert (await intake.bare.get(URL, headers=bearer(token))).status_code == 200


class Unreachable:
    async def verify(self, token: str) -> Principal:
        raise KeysUnavailable("connection refused")


async def test_an_unreachable_issuer_is_503_not_401() -> None:
    async with running(verifier=Unreachable()) as intake:
        response = await intake.client.get(URL)
        assert problem(response, 503)["type"].endswith("issuer-keys")
        assert response.headers["retry-after"] == "5"


# --- 403: a declarant the token does not act for ----------------------------------------


async def test_a_declarant_outside_the_token_is_403_and_nothing_is_claimed(intake: Intake) -> None:
    other = ISSUER.auth("trader-b", (USCC_B,))
    response = await intake.submit(valid_body(), key="k", auth=other)
    body = problem(response, 403)
    assert body["type"].endswith("not-your-declarant") and USCC_A in body["detail"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert intake.publisher.events == [] and intake.store.claims == {}


async def test_a_broker_lodges_for_each_declarant_it_acts_for(intake: Intake) -> None:
    broker = ISSUER.auth("broker-1", (USCC_B, USCC_A, USCC_C))
    assert (await intake.submit(valid_body(), auth=broker)).status_code == 202
    body = changed("declarant.uscc", USCC_C)
    assert (await intake.submit(body, auth=broker)).status_code == 202
    declarants = [event.declarant.uscc for event in intake.publisher.events]
    assert declarants == [USCC_A, USCC_C]


async def test_an_invalid_body_is_422_before_the_declarant_is_judged(intake: Intake) -> None:
    other = ISSUER.auth("trader-b", (USCC_B,))
    problem(await intake.submit(changed("items", []), auth=other), 422)


# --- 404: someone else's declaration is no declaration -----------------------------------


async def test_someone_elses_declaration_is_404_exactly_like_an_unknown_one(
    intake: Intake,
) -> None:
    intake.read_model.put(status_document("DEC-1", uscc=USCC_A))
    stranger = ISSUER.auth("trader-b", (USCC_B,))
    theirs = await intake.client.get(URL, headers=stranger)
    unknown = await intake.client.get("/v1/declarations/DEC-1x", headers=stranger)
    mine_unknown = await intake.client.get("/v1/declarations/DEC-1x")
    problem(theirs, 404)
    assert theirs.content == unknown.content.replace(b"DEC-1x", b"DEC-1")
    assert unknown.content == mine_unknown.content
    assert dict(theirs.headers) == {
        **dict(unknown.headers),
        "content-length": theirs.headers["content-length"],
    }
    assert (await intake.client.get(URL)).status_code == 200  # the owner reads it


async def test_long_polling_someone_elses_declaration_is_404_at_once(intake: Intake) -> None:
    intake.read_model.put(status_document("DEC-1", "SUBMITTED", uscc=USCC_A))
    stranger = ISSUER.auth("trader-b", (USCC_B,))
    started = time.monotonic()
    response = await intake.client.get(URL, params={"wait": 10}, headers=stranger)
    problem(response, 404)
    assert time.monotonic() - started < 5 and intake.app.state.waiters.waiting == 0
    owner = await intake.client.get(URL, params={"wait": 0.2})
    assert owner.status_code == 200 and owner.json()["status"] == "SUBMITTED"
    assert time.monotonic() - started >= 0.2  # the owner did wait


async def test_a_broker_reads_the_declarations_of_its_principals(intake: Intake) -> None:
    intake.read_model.put(status_document("DEC-1", uscc=USCC_A))
    broker = ISSUER.auth("broker-1", (USCC_B, USCC_A))
    assert (await intake.client.get(URL, headers=broker)).status_code == 200


# --- idempotency keys belong to their subject ---------------------------------------------


async def test_two_subjects_with_the_same_key_neither_collide_nor_learn(intake: Intake) -> None:
    a, b = ISSUER.auth("trader-a", (USCC_A,)), ISSUER.auth("trader-b", (USCC_A,))
    first = await intake.submit(valid_body(), key="order-1", auth=a)
    other_body = changed("items[0].quantity", "999")  # would be a 409 if the key were shared
    second = await intake.submit(other_body, key="order-1", auth=b)
    assert first.status_code == second.status_code == 202
    assert first.json()["declaration_id"] != second.json()["declaration_id"]
    assert len(intake.publisher.events) == 2
    same_body = await intake.submit(valid_body(), key="order-1", auth=b)  # b's own key again
    assert problem(same_body, 409)["type"].endswith("idempotency-key-reused")
    again = await intake.submit(valid_body(), key="order-1", auth=a)
    assert again.json() == first.json() and len(intake.publisher.events) == 2


async def test_a_key_in_flight_for_one_subject_does_not_block_another() -> None:
    publisher = SlowPublisher()
    async with running(publisher=publisher) as intake:
        first = asyncio.create_task(intake.submit(valid_body(), key="k"))
        await publisher.entered_by(first)
        b = ISSUER.auth("trader-b", (USCC_A,))
        other = asyncio.create_task(intake.submit(valid_body(), key="k", auth=b))
        await asyncio.sleep(0.05)
        assert not other.done()  # waiting for the (shared) slow publisher, not refused
        publisher.gate.set()
        assert (await first).status_code == (await other).status_code == 202


async def test_the_id_cannot_be_derived_from_the_key_without_the_secret() -> None:
    async with running() as one, running(secret=secrets.token_bytes(32)) as other:
        a = await one.submit(valid_body(), key="k")
        b = await other.submit(valid_body(), key="k")
    assert a.json()["declaration_id"] != b.json()["declaration_id"]
    assert re.fullmatch(r"DEC-[0-9A-F]{32}", a.json()["declaration_id"])


async def test_the_claim_is_stored_under_the_subject(intake: Intake) -> None:
    await intake.submit(valid_body(), key="k")
    [stored] = intake.store.claims
    assert stored.startswith("trader-a") and stored.endswith("k") and stored != "k"


# --- 429: a token bucket per subject ---------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_each_subject_has_its_own_rate_limit_on_submissions_and_reads() -> None:
    clock = Clock()
    limits = Limits(poll_interval=0.02, rate_per_second=0.5, rate_burst=2)
    async with running(limits, monotonic=clock) as intake:
        intake.read_model.put(status_document("DEC-1"))
        assert (await intake.submit(valid_body())).status_code == 202
        assert (await intake.client.get(URL)).status_code == 200
        limited = await intake.client.get(URL)
        assert problem(limited, 429)["type"].endswith("rate-limited")
        assert limited.headers["retry-after"] == "2"  # one token every 2 s
        problem(await intake.submit(valid_body()), 429)
        assert len(intake.publisher.events) == 1
        other = ISSUER.auth("trader-b", (USCC_A,))
        assert (await intake.client.get(URL, headers=other)).status_code == 200
        clock.now += 2
        assert (await intake.client.get(URL)).status_code == 200


async def test_requests_without_a_valid_token_take_nothing_from_a_subjects_bucket() -> None:
    limits = Limits(poll_interval=0.02, rate_per_second=0.001, rate_burst=1)
    async with running(limits) as intake:
        intake.read_model.put(status_document("DEC-1"))
        for _ in range(5):
            await intake.bare.get(URL)
        assert (await intake.client.get(URL)).status_code == 200


# --- the trader's view: decisions and what to do, not how risk is targeted --------------

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SECRET_WORDS = (
    "HIGH",
    "risk",
    "30%",
    "reference price",
    "random",
    "0.03",
    "DECLARANT_RISK",
    "RANDOM_SAMPLE",
    "CUS-DECLARANT-RISK",
    "CUS-RANDOM-SAMPLE",
    "verdict_id",
    "rules_version",
    "result_id",
    "sampling_key_version",
    "customs-2026.11",
    "ALERT-2026",
)


def judged_document(declaration_id: str = "DEC-1") -> dict[str, Any]:
    """A read-model document folded from real events: customs inspects for every reason a
    risk engine has, CIQ holds, and the result orders a joint inspection."""
    declaration = parse_declaration(valid_body()).to_event(
        declaration_id=declaration_id,
        event_id="e-1",
        submitted_at=NOW,
        agencies=("customs", "ciq"),
        routing_version="routing-2026.11",
    )
    customs = build_verdict(
        declaration,
        "customs",
        "customs-2026.11",
        [
            Ruling.inspect(
                "CUS-UNDERVALUED",
                "unit value 3.10 CNY/KG is below 30% of the reference price 12.00 CNY/KG",
                "UNIT_VALUE",
                1,
            ),
            Ruling.inspect(
                "CUS-DECLARANT-RISK",
                f"declarant {USCC_A} has risk level HIGH",
                "DECLARANT_RISK",
            ),
            Ruling.inspect(
                "CUS-RANDOM-SAMPLE", "selected by random sampling at rate 0.03", "RANDOM_SAMPLE"
            ),
            Ruling.hold("CUS-SECRET-WATCHLIST", "consignee on watch list W-17 (risk HIGH)"),
        ],
        NOW,
    )
    ciq = build_verdict(
        declaration,
        "ciq",
        "ciq-2026.11",
        [Ruling.inspect("CIQ-FIRST-IMPORT", "declarant is not registered", "QUARANTINE_SAMPLE")],
        NOW,
    )
    checks = (*customs.checks, *ciq.checks)
    result = ClearanceResult(
        declaration_id=declaration_id,
        result_id="R-1",
        status=ClearanceStatus.INSPECTION_REQUIRED,
        decisions=(
            AgencyDecision(agency="customs", decision=Decision.HOLD, verdict_id="V-c"),
            AgencyDecision(agency="ciq", decision=Decision.INSPECT, verdict_id="V-q"),
        ),
        inspection=InspectionOrder(
            order_id="ORDER-1",
            checks=(*checks, InspectionCheck(agency="port", check="ALERT-2026", item=1)),
        ),
        total_duties=Decimal("0"),
        decided_at=NOW,
    )
    doc = None
    for event in (declaration, customs, ciq, result):
        doc = apply(doc, event)
    assert doc is not None
    doc["verdicts"]["customs"]["sampling_key_version"] = "k-2026-11"  # a newer internal field
    return doc


async def test_the_trader_sees_decisions_codes_and_messages_never_criteria(
    intake: Intake,
) -> None:
    intake.read_model.put(judged_document())
    response = await intake.client.get(URL)
    assert response.status_code == 200
    for word in SECRET_WORDS:
        assert word not in response.text, word
    body = response.json()
    customs, ciq = body["verdicts"]
    assert (customs["agency"], customs["decision"]) == ("customs", "HOLD")
    assert [(r["code"], r["item"]) for r in customs["reasons"]] == [
        ("CUS-UNDERVALUED", 1),
        ("CUS-EXAMINATION", None),  # risk and random sample: one neutral reason
        ("CUS-OTHER", None),  # an unknown code: the generic message of a HOLD
    ]
    assert all(r["message"] for r in customs["reasons"])
    assert set(customs) == {
        "agency",
        "decision",
        "reasons",
        "duties",
        "tax_totals",
        "total_duties",
        "security",  # the guarantee a price consultation asks, a figure the trader acts on
        "charges",
        "decided_at",
    }
    assert ciq["reasons"][0]["code"] == "CIQ-FIRST-IMPORT"
    result = body["result"]
    assert result["status"] == "INSPECTION_REQUIRED" and result["inspection"]["order_id"]
    assert result["decisions"] == [
        {"agency": "customs", "decision": "HOLD", "charges": []},
        {"agency": "ciq", "decision": "INSPECT", "charges": []},
    ]
    assert {(c["agency"], c["check"]) for c in result["inspection"]["checks"]} == {
        ("customs", "UNIT_VALUE"),
        ("customs", "EXAMINATION"),
        ("ciq", "QUARANTINE_SAMPLE"),
        ("port", "INSPECTION"),
    }


# --- what is exposed besides the API ------------------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/metrics"])
async def test_docs_and_metrics_are_closed_by_default(intake: Intake, path: str) -> None:
    assert (await intake.bare.get(path)).status_code == 404
    assert (await intake.client.get(path)).status_code == 404  # a token opens nothing more


@pytest.mark.parametrize("path", ["/livez", "/healthz", "/readyz"])
async def test_liveness_and_readiness_need_no_token(intake: Intake, path: str) -> None:
    assert (await intake.bare.get(path)).status_code == 200
