"""The trader's window's routes on the in-memory intake: the list of one's declarations, the
status stream (Server-Sent Events over a real HTTP connection), the dry-run validation, the
code lists and the tariff lookup, the development sign-in, the page's security headers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.intake import devissuer
from services.intake.api import Exposure, Limits
from services.intake.auth import FileKeys, JwtVerifier
from services.intake.config import ConfigError, IntakeSettings, dev_issuer
from services.intake.schema import DeclarationState
from services.intake.window import CSP, WEB
from singlewindow.events import DeclarationType
from singlewindow.readmodel import apply
from tests import factories
from tests.unit.intake_tokens import USCC_A, USCC_B
from tests.unit.test_intake_api import ISSUER, Intake, intake, named, problem, running
from tests.unit.test_intake_schema import changed, valid_body
from tests.unit.window_server import Served, released, serving

OTHER = ISSUER.auth("trader-b", (USCC_B,))  # another trader, for another declarant


def lodged_at(intake: Intake, declaration_id: str, minutes: int, uscc: str = USCC_A) -> None:
    """A declaration of ``uscc`` lodged ``minutes`` after the factory's time, projected."""
    declared = factories.declaration(
        declaration_id,
        version=1,
        submitted_at=factories.T0 + timedelta(minutes=minutes),
        declarant=factories.declaration().declarant.model_copy(update={"uscc": uscc}),
    )
    intake.read_model.put(apply(None, declared))


async def pages(intake: Intake, **params: Any) -> list[list[str]]:
    """Every page of the caller's list, followed by its ``next`` cursors: the ids of each."""
    found, after = [], None
    while True:
        query = {**params, **({"after": after} if after else {})}
        response = await intake.client.get("/v1/declarations", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        found.append([row["declaration_id"] for row in body["declarations"]])
        after = body["next"]
        if after is None:
            return found


# --- the list ---------------------------------------------------------------------------


async def test_the_list_is_ones_own_declarations_newest_first_in_pages() -> None:
    async with running() as intake:
        for n in range(5):
            lodged_at(intake, f"DEC-MINE-{n}", minutes=n)
        lodged_at(intake, "DEC-THEIRS", minutes=10, uscc=USCC_B)
        assert await pages(intake, limit=2) == [
            ["DEC-MINE-4", "DEC-MINE-3"],
            ["DEC-MINE-2", "DEC-MINE-1"],
            ["DEC-MINE-0"],
        ]
        theirs = await intake.client.get("/v1/declarations", headers=OTHER)
        assert [r["declaration_id"] for r in theirs.json()["declarations"]] == ["DEC-THEIRS"]


async def test_a_row_says_what_a_list_shows() -> None:
    async with running() as intake:
        accepted = await intake.submit(valid_body())
        declaration_id = accepted.json()["declaration_id"]
        served = Served("", intake)
        served.project(intake.publisher.events[-1])
        listed = (await intake.client.get("/v1/declarations")).json()
        assert listed == {
            "declarations": [
                {
                    "declaration_id": declaration_id,
                    "status": "SUBMITTED",
                    "version": 1,
                    "submitted_at": "2026-11-27T08:30:15.123000Z",
                    "updated_at": "2026-11-27T08:30:15.123000Z",
                    "declaration_type": DeclarationType.IMPORT,
                    "next_step": {"code": "WAIT"},
                }
            ],
            "next": None,
        }
        doc = released(served, declaration_id)
        [row] = (await intake.client.get("/v1/declarations")).json()["declarations"]
        assert row["status"] == doc["status"] and row["updated_at"] > row["submitted_at"]
        assert row["next_step"]["code"] != "WAIT"


async def test_the_list_filters_by_status() -> None:
    async with running() as intake:
        for n in range(3):
            lodged_at(intake, f"DEC-{n}", minutes=n)
        intake.read_model.set_status("DEC-1", "HELD")
        assert await pages(intake, status="HELD") == [["DEC-1"]]
        assert await pages(intake, status="RELEASED") == [[]]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "x"},
        {"status": "LOST"},
        {"after": "not-a-cursor"},
        {"after": "W10"},  # base64 of [] : no position
        {"after": "x" * 201},
    ],
)
async def test_a_bad_list_parameter_is_422(intake: Intake, params: dict[str, Any]) -> None:
    problem(await intake.client.get("/v1/declarations", params=params), 422)


async def test_the_list_needs_a_token(intake: Intake) -> None:
    problem(await intake.bare.get("/v1/declarations"), 401)


# --- the status stream ------------------------------------------------------------------


async def read_events(lines: AsyncIterator[str], count: int) -> list[dict[str, Any]]:
    """The next ``count`` events (and comments, as {"comment": ...}) of a stream."""
    found: list[dict[str, Any]] = []
    event: dict[str, Any] = {}
    async for line in lines:
        if line.startswith(":"):
            found.append({"comment": line[1:].strip()})
        elif line:
            name, _, value = line.partition(": ")
            event[name] = json.loads(value) if name == "data" else value
        elif event:
            found.append(event)
            event = {}
        if len(found) == count:
            return found
    raise AssertionError(f"the stream ended after {found}")


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serving() as it:
        yield it


async def lodge(served: Served) -> str:
    """A declaration lodged through the API, its first document projected; its id."""
    response = await served.intake.submit(valid_body())
    assert response.status_code == 202
    served.project(served.intake.publisher.events[-1])
    return str(response.json()["declaration_id"])


async def test_the_stream_sends_the_view_then_every_change_live(served: Served) -> None:
    declaration_id = await lodge(served)
    url = f"/v1/declarations/{declaration_id}/events"
    async with (
        httpx.AsyncClient(base_url=served.url, headers=ISSUER.auth(), timeout=30) as client,
        client.stream("GET", url, timeout=10) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        [first] = await read_events(lines, 1)
        current = (await client.get(f"/v1/declarations/{declaration_id}")).json()
        assert first == {"id": "1", "event": "status", "data": current}
        doc = released(served, declaration_id)
        [moved] = await read_events(lines, 1)  # the release, as it is projected
        assert int(moved["id"]) == doc["revision"] > 1
        assert moved["data"] == (await client.get(f"/v1/declarations/{declaration_id}")).json()
        assert moved["data"]["status"] == doc["status"] != "SUBMITTED"


async def test_last_event_id_resumes_without_resending_what_the_client_has(
    served: Served,
) -> None:
    declaration_id = await lodge(served)
    url = f"/v1/declarations/{declaration_id}/events"
    async with httpx.AsyncClient(base_url=served.url, headers=ISSUER.auth(), timeout=30) as client:
        async with client.stream("GET", url, headers={"Last-Event-ID": "1"}) as response:
            lines = response.aiter_lines()
            waiting = asyncio.ensure_future(read_events(lines, 1))
            await asyncio.sleep(0.2)  # nothing comes: the client has revision 1
            assert not waiting.done()
            doc = released(served, declaration_id)
            [resumed] = await waiting  # the next change is the first event
            assert int(resumed["id"]) == doc["revision"]
        behind = {"Last-Event-ID": "1"}  # a client that missed the release gets it at once
        async with client.stream("GET", url, headers=behind) as response:
            [caught_up] = await read_events(response.aiter_lines(), 1)
            assert caught_up == resumed
        problem(await client.get(url, headers={"Last-Event-ID": "x"}), 422)


async def test_anothers_declaration_has_no_stream_as_it_has_no_status(served: Served) -> None:
    declaration_id = await lodge(served)
    async with httpx.AsyncClient(base_url=served.url, headers=OTHER, timeout=30) as client:
        theirs = await client.get(f"/v1/declarations/{declaration_id}/events")
        unknown = await client.get("/v1/declarations/DEC-NOPE/events")
        status = await client.get(f"/v1/declarations/{declaration_id}")
    assert problem(theirs, 404)["detail"].replace(declaration_id, "ID") == problem(unknown, 404)[
        "detail"
    ].replace("DEC-NOPE", "ID")
    assert theirs.json()["type"] == status.json()["type"]
    async with httpx.AsyncClient(base_url=served.url) as bare:
        problem(await bare.get(f"/v1/declarations/{declaration_id}/events"), 401)


async def test_a_quiet_stream_sends_keep_alive_comments() -> None:
    async with serving(Limits(poll_interval=0.02, rate_burst=1000, stream_keep_alive=0.05)) as it:
        declaration_id = await lodge(it)
        url = f"/v1/declarations/{declaration_id}/events"
        async with (
            httpx.AsyncClient(base_url=it.url, headers=ISSUER.auth(), timeout=30) as client,
            client.stream("GET", url, timeout=10) as response,
        ):
            events = await read_events(response.aiter_lines(), 3)
        assert [e.get("event") or e["comment"] for e in events] == [
            "status",
            "keep-alive",
            "keep-alive",
        ]


async def test_streams_are_bounded_and_give_their_place_back() -> None:
    async with serving(Limits(poll_interval=0.02, rate_burst=1000, max_streams=1)) as it:
        declaration_id = await lodge(it)
        url = f"/v1/declarations/{declaration_id}/events"
        async with httpx.AsyncClient(base_url=it.url, headers=ISSUER.auth(), timeout=30) as client:
            async with client.stream("GET", url) as first:
                await read_events(first.aiter_lines(), 1)
                refused = await client.get(url)
                assert problem(refused, 503)["type"].endswith("too-many-streams")
                assert "retry-after" in refused.headers
            streams = it.intake.app.state.intake.streams
            for _ in range(500):  # the server notices the client has gone
                if streams.open == 0:
                    break
                await asyncio.sleep(0.01)
            assert streams.open == 0
            async with client.stream("GET", url) as again:
                assert again.status_code == 200


async def test_stopping_the_intake_ends_its_streams() -> None:
    """A graceful shutdown waits for every response: the streams end first, cleanly."""
    ended: list[str] = []
    async with serving() as it:
        declaration_id = await lodge(it)
        url = f"/v1/declarations/{declaration_id}/events"
        client = httpx.AsyncClient(base_url=it.url, headers=ISSUER.auth(), timeout=30)

        async def follow() -> None:
            async with client.stream("GET", url, timeout=30) as response:
                async for line in response.aiter_lines():
                    ended.append(line)
            ended.append("END")

        following = asyncio.create_task(follow())
        while not ended:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(following, 10)  # the server stopped: the stream ended, no error
    await client.aclose()
    assert ended[-1] == "END" and ended[0] == "id: 1"


# --- validation, reference data, sign-in, the page ---------------------------------------


async def test_validate_answers_as_a_submission_would_and_lodges_nothing(intake: Intake) -> None:
    ok = await intake.client.post("/v1/declarations/validate", json=valid_body())
    assert ok.status_code == 200 and ok.json()["agencies"] == ["customs", "port"]
    bad = changed("transport.containers", ["CSQU3054384"])
    dry = await intake.client.post("/v1/declarations/validate", json=bad)
    lodged = await intake.submit(bad)
    assert named(dry) == named(lodged) == {"transport.containers[0]"}
    assert dry.json() == lodged.json()
    theirs = changed("declarant.uscc", USCC_B)
    assert problem(await intake.client.post("/v1/declarations/validate", json=theirs), 403)
    assert intake.publisher.events == []
    problem(await intake.bare.post("/v1/declarations/validate", json=valid_body()), 401)


async def test_the_pickers_offer_the_lists_the_validators_check(intake: Intake) -> None:
    lists = (await intake.client.get("/v1/reference")).json()
    countries = {c["alpha_2"] for c in lists["countries"]}
    currencies = {c["alpha_3"] for c in lists["currencies"]}
    assert {"CN", "NL"} <= countries and "XX" not in countries
    assert {"EUR", "CNY"} <= currencies and "XAU" not in currencies  # gold: no invoice currency
    assert {"0110"} <= {t["code"] for t in lists["trade_modes"]}
    problem(await intake.bare.get("/v1/reference"), 401)


async def test_the_tariff_lookup_finds_codes_with_their_descriptions(intake: Intake) -> None:
    by_code = (await intake.client.get("/v1/reference/hs", params={"q": "847130"})).json()
    assert by_code["lines"][0]["hs_code"] == "8471300000"
    assert "laptops" in by_code["lines"][0]["description"].lower()
    by_words = (await intake.client.get("/v1/reference/hs", params={"q": "horses live"})).json()
    assert by_words["lines"] and all(
        line["hs_code"].startswith("0101") for line in by_words["lines"]
    )
    problem(await intake.client.get("/v1/reference/hs", params={"q": "8"}), 422)


async def test_the_development_sign_in_is_offered_only_when_enabled(tmp_path: Path) -> None:
    async with running() as closed:
        assert (await closed.bare.get("/app/config.json")).json() == {"dev_signin": False}
        problem(await closed.bare.post("/v1/dev/token", json={"uscc": USCC_A}), 404)
    issuer = tmp_path / "issuer"
    devissuer.ensure_keys(issuer)
    verifier = JwtVerifier(
        FileKeys(issuer / devissuer.JWKS), issuer=devissuer.ISSUER, audience=devissuer.AUDIENCE
    )
    async with running(exposure=Exposure(dev_issuer=issuer), verifier=verifier) as local:
        assert (await local.bare.get("/app/config.json")).json() == {"dev_signin": True}
        signed = await local.bare.post("/v1/dev/token", json={"uscc": USCC_A})
        token = signed.json()["token"]
        mine = await local.bare.get(
            "/v1/declarations", headers={"Authorization": f"Bearer {token}"}
        )
        assert mine.status_code == 200
        problem(await local.bare.post("/v1/dev/token", json={"uscc": "nope"}), 422)


async def test_the_page_is_served_with_a_strict_content_security_policy(intake: Intake) -> None:
    home = await intake.bare.get("/")
    assert home.status_code == 302 and home.headers["location"] == "/app/"
    page = await intake.bare.get("/app/")
    assert page.status_code == 200 and "<html" in page.text
    for path in ("/app/", "/app/app.js", "/app/app.css", "/app/i18n/zh.json"):
        answer = await intake.bare.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "unsafe-inline" not in CSP and "http" not in CSP
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline
    problem(await intake.bare.get("/app/nothing.js"), 404)


def test_the_example_is_the_declaration_the_tests_lodge() -> None:
    assert json.loads((WEB / "example.json").read_text()) == valid_body()


def test_both_languages_have_every_string() -> None:
    english = json.loads((WEB / "i18n" / "en.json").read_text())
    chinese = json.loads((WEB / "i18n" / "zh.json").read_text())
    assert english.keys() == chinese.keys()
    used = set()
    for name in ("index.html", "app.js"):
        text = (WEB / name).read_text()
        used |= set(re.findall(r'data-i18n(?:-[a-z]+)?="([a-z0-9_.]+)"', text))
        used |= set(re.findall(r"\bt\(\"([a-z0-9_.]+)\"", text))
    assert used and used <= english.keys(), used - english.keys()
    statuses = {f"status.{s}" for s in DeclarationState}
    assert statuses <= english.keys()  # every status the list and the page show


__all__ = ["intake"]  # the fixture, imported


def test_the_development_sign_in_needs_the_development_issuer(tmp_path: Path) -> None:
    """INTAKE_DEV_SIGNIN mints with the key beside INTAKE_JWKS_FILE: none there (a real
    issuer's JWKS, or a JWKS URL), the intake refuses to start, saying why."""
    issuer = tmp_path / "issuer"
    devissuer.ensure_keys(issuer)
    local = IntakeSettings(dev_signin=True, jwks_file=issuer / devissuer.JWKS)
    assert dev_issuer(local) == issuer
    assert dev_issuer(IntakeSettings(jwks_file=issuer / devissuer.JWKS)) is None  # off
    (tmp_path / "real").mkdir()
    with pytest.raises(ConfigError, match="INTAKE_DEV_SIGNIN"):
        dev_issuer(IntakeSettings(dev_signin=True, jwks_file=tmp_path / "real" / "jwks.json"))
    with pytest.raises(ConfigError, match="INTAKE_DEV_SIGNIN"):
        dev_issuer(IntakeSettings(dev_signin=True, jwks_url="https://issuer.example/jwks"))
    assert devissuer.local_intake_env(issuer, tmp_path / "id")["INTAKE_DEV_SIGNIN"] == "true"
