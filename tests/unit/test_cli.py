"""``sw``, the trader's command line, against the intake's real app (the in-memory ports)
served over a real socket by uvicorn, invoked with typer's CliRunner: what a trader types and
what a script reads (standard output, standard error, the exit status).

The agencies are a read model that moves every declaration asked about one step along a
script each time the intake's long polls look (:class:`Agencies`), so a watch sees the
changes in order, with no sleeps. What the in-memory intake does not serve yet (the status
stream, the list of declarations) is answered by httpx's MockTransport, as the contract
says (/v1/declarations/{id}/events, GET /v1/declarations).
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import socket
import stat
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from services.intake import devissuer
from services.intake.api import IntakeService, create_app
from services.intake.auth import JwtVerifier, StaticKeys
from services.intake.ports import (
    Head,
    InMemoryIdempotencyStore,
    InMemoryPublisher,
    InMemoryReadModel,
    Published,
    ReadModelUnavailable,
)
from singlewindow import events as ev
from singlewindow.readmodel import apply
from singlewindow_cli import sse
from singlewindow_cli.api import ExitCode, Failure
from singlewindow_cli.main import Options, app
from singlewindow_cli.watch import Backoff, Trouble
from tests.factories import T0, result, verdict
from tests.unit.intake_tokens import USCC_A, USCC_B
from tests.unit.test_intake_api import FAST, ISSUER, SECRET, status_document
from tests.unit.test_intake_schema import changed, valid_body

ROOT = Path(__file__).resolve().parents[2]
Step = Callable[[str], list[ev.Event]]


# --- the fake platform: the intake's app, served ---------------------------------------------


class Agencies(InMemoryReadModel):
    """The read model as the projector keeps it, and agencies that answer: whenever the
    intake's shared poller (long polls and status streams) asks for the heads, each
    declaration asked about takes the next step of ``script`` (its events folded in as the
    projector folds them)."""

    def __init__(self, *script: Step) -> None:
        super().__init__()
        self.script, self.taken = script, dict[str, int]()
        self.outages: list[bool] = []  # whether each next get fails (the database away)

    async def get(self, declaration_id: str) -> dict[str, Any] | None:
        if self.outages and self.outages.pop(0):
            raise ReadModelUnavailable("the database is away")
        return await super().get(declaration_id)

    async def heads(self, ids: Collection[str]) -> dict[str, Head]:
        for declaration_id in ids:
            n = self.taken.get(declaration_id, 0)
            if n < len(self.script) and declaration_id in self.documents:
                document = self.documents[declaration_id]
                for event in self.script[n](declaration_id):
                    document = apply(document, event)
                self.documents[declaration_id], self.taken[declaration_id] = document, n + 1
        return await super().heads(ids)


class Seeding(InMemoryPublisher):
    """Publishes, then inserts the declaration's first read-model document, as the intake's
    Kafka publisher does (``adapters.ReadModelSeeder``)."""

    def __init__(self, read_model: InMemoryReadModel) -> None:
        super().__init__()
        self.read_model = read_model

    async def publish(self, event: Published) -> None:
        await super().publish(event)
        if isinstance(event, ev.DeclarationSubmitted):
            self.read_model.put(apply(None, event))


def in_review(declaration_id: str) -> list[ev.Event]:
    return [verdict(declaration_id, "port")]


def rejected(declaration_id: str) -> list[ev.Event]:
    reasons = (ev.Reason(code="CUS-HS-UNKNOWN", message="not in the tariff", item=1),)
    refusal = verdict(declaration_id, "customs", ev.Decision.REJECT, reasons=reasons)
    decisions = (ev.AgencyDecision(agency="customs", decision=ev.Decision.REJECT, verdict_id="V"),)
    status = ev.ClearanceStatus.REJECTED
    return [refusal, result(declaration_id, status=status, version=1, decisions=decisions)]


def awaiting_payment(declaration_id: str) -> list[ev.Event]:
    taxes = (ev.TaxTotal(kind=ev.TaxKind.VAT, assessed="13", collected="13"),)
    notice = ev.PaymentNotice(notice_id="N-1", issued_at=T0, due_by=T0.date() + timedelta(15),
                              taxes=taxes, amount="13", outstanding="13")  # fmt: skip
    status = ev.ClearanceStatus.AWAITING_PAYMENT
    return [
        verdict(declaration_id, "customs"),
        result(declaration_id, status=status, version=1, payment_notice=notice),
    ]


@dataclass
class Platform:
    url: str
    publisher: Seeding
    read_model: Agencies


@contextmanager
def serving(read_model: Agencies) -> Iterator[Platform]:
    """The intake (in-memory ports, the test issuer's tokens) served by uvicorn on a free
    port of 127.0.0.1, for as long as the block runs."""
    publisher = Seeding(read_model)
    service = IntakeService(publisher, read_model, InMemoryIdempotencyStore(),
                            verifier=ISSUER.verifier(), id_secret=SECRET, limits=FAST)  # fmt: skip
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="intake", daemon=True)
    thread.start()
    while not server.started:  # uvicorn has no start event to wait on
        assert thread.is_alive(), "the intake did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Platform(f"http://127.0.0.1:{port}", publisher, read_model)
    finally:
        server.should_exit = True
        thread.join()


@pytest.fixture
def platform() -> Iterator[Platform]:
    with serving(Agencies(in_review, awaiting_payment)) as it:
        yield it


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines()]


class Sw:
    """``sw`` as a trader runs it: SW_URL and SW_CONFIG_DIR in the environment."""

    def __init__(self, url: str, config_dir: Path, **options: Any) -> None:
        self.env = {"SW_URL": url, "SW_CONFIG_DIR": str(config_dir), "COLUMNS": "160"}
        self.options = options  # a transport, a sleep: given through the context's obj
        self.token_file = config_dir / "token"

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        obj = Options(token_file=self.token_file, **self.options) if self.options else None
        outcome = CliRunner().invoke(app, list(args), input=stdin, env=self.env, obj=obj)
        if outcome.exception and not isinstance(outcome.exception, SystemExit):
            raise outcome.exception
        return Result(outcome.exit_code, outcome.stdout, outcome.stderr)

    def signed_in(self, token: str | None = None) -> Sw:
        assert self("login", "--token", token or ISSUER.token()).code == 0
        return self


@pytest.fixture
def sw(platform: Platform, tmp_path: Path) -> Sw:
    return Sw(platform.url, tmp_path / "config").signed_in()


def body_file(folder: Path, body: Any) -> str:
    path = folder / "declaration.json"
    path.write_text(json.dumps(body, ensure_ascii=False))
    return str(path)


# --- help, sign-in --------------------------------------------------------------------------


def test_the_help_documents_every_exit_status() -> None:
    help_text = CliRunner().invoke(app, ["--help"]).stdout
    for code in ExitCode:
        assert re.search(rf"^ +{code.value} +[a-z]", help_text, re.MULTILINE), code
    for command in ("login", "submit", "status", "list"):
        assert command in help_text


def test_login_keeps_the_token_private_and_never_prints_it(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    sw, token = Sw("http://unused", config_dir), ISSUER.token("trader-a", (USCC_A, USCC_B))
    signed_in = sw("login", "--token", token)
    assert signed_in.code == 0
    assert "trader-a" in signed_in.out and USCC_B in signed_in.out
    assert token not in signed_in.out + signed_in.err
    assert sw.token_file.read_text().strip() == token
    assert stat.S_IMODE(sw.token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    as_json = sw("login", "--json", "--token", token)
    assert as_json.json_lines()[0]["usccs"] == [USCC_A, USCC_B]
    assert token not in as_json.out
    assert sw("logout").code == 0 and not sw.token_file.exists()


def test_login_reads_the_token_from_standard_input(tmp_path: Path) -> None:
    sw, token = Sw("http://unused", tmp_path), ISSUER.token()
    assert sw("login", stdin=token + "\n").code == 0
    assert sw.token_file.read_text().strip() == token


def test_login_refuses_what_is_not_a_token_and_an_expired_one(tmp_path: Path) -> None:
    sw = Sw("http://unused", tmp_path)
    assert sw("login", "--token", "not-a-jwt").code == ExitCode.USAGE
    expired = ISSUER.token(exp=T0)
    assert sw("login", "--token", expired).code == ExitCode.NOT_SIGNED_IN
    assert not sw.token_file.exists()
    assert sw("login", "--token", ISSUER.token(), "--dev-uscc", USCC_A).code == ExitCode.USAGE


def test_login_with_a_dev_uscc_mints_a_token_of_the_local_issuer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer_dir = tmp_path / "issuer"  # not the repository's var/: this test's own issuer
    monkeypatch.setattr(devissuer, "mint", partial(devissuer.mint, directory=issuer_dir))
    sw = Sw("http://unused", tmp_path / "config")
    assert sw("login", "--dev-uscc", f"{USCC_A},{USCC_B}").code == 0
    keys = StaticKeys(json.loads((issuer_dir / devissuer.JWKS).read_text()))
    verifier = JwtVerifier(keys, issuer=devissuer.ISSUER, audience=devissuer.AUDIENCE)
    claims = asyncio.run(verifier.verify(sw.token_file.read_text().strip()))
    assert claims.subject == f"local-trader-{USCC_A}"
    assert set(claims.usccs) == {USCC_A, USCC_B}
    assert sw("login", "--dev-uscc", "not-a-uscc").code == ExitCode.USAGE


def test_every_command_needs_a_sign_in_first(platform: Platform, tmp_path: Path) -> None:
    sw = Sw(platform.url, tmp_path)
    for args in (("status", "DEC-1"), ("list",), ("submit", body_file(tmp_path, valid_body()))):
        answer = sw(*args)
        assert answer.code == ExitCode.NOT_SIGNED_IN
        assert "sw login" in answer.err


def test_a_token_the_platform_refuses_is_exit_status_3(platform: Platform, tmp_path: Path) -> None:
    other_issuer = type(ISSUER)()  # a key pair the intake does not trust
    sw = Sw(platform.url, tmp_path).signed_in(other_issuer.token())
    answer = sw("status", "DEC-1")
    assert answer.code == ExitCode.NOT_SIGNED_IN
    assert "Unauthorized" in answer.err and "sw login" in answer.err


# --- submit ---------------------------------------------------------------------------------


def test_submit_prints_the_declaration_id_alone(sw: Sw, platform: Platform, tmp_path: Path) -> None:
    answer = sw("submit", body_file(tmp_path, valid_body()))
    assert answer.code == 0
    [event] = platform.publisher.events
    assert answer.out == f"{event.declaration_id}\n"  # ID=$(sw submit file.json)
    assert f"sw status {event.declaration_id} --watch" in answer.err


def test_submit_reads_standard_input(sw: Sw, platform: Platform) -> None:
    answer = sw("submit", "-", stdin=json.dumps(valid_body()))
    assert answer.code == 0
    assert answer.out.strip() == platform.publisher.events[0].declaration_id


def test_submit_with_an_idempotency_key_lodges_once(
    sw: Sw, platform: Platform, tmp_path: Path
) -> None:
    file = body_file(tmp_path, valid_body())
    first = sw("submit", file, "--idempotency-key", "order-4711", "--json")
    again = sw("submit", file, "--idempotency-key", "order-4711", "--json")
    assert first.code == again.code == 0
    assert first.json_lines() == again.json_lines()
    assert first.json_lines()[0]["status"] == "SUBMITTED"
    assert {e.declaration_id for e in platform.publisher.events} == {
        first.json_lines()[0]["declaration_id"]
    }
    invoice = [{"type": "COMMERCIAL_INVOICE", "reference": "INV-2026-002"}]
    other = sw("submit", body_file(tmp_path, changed("documents", invoice)), "--idempotency-key",
               "order-4711")  # fmt: skip
    assert other.code == ExitCode.REFUSED  # 409: the key is another body's
    assert "Conflict" in other.err


def test_a_bad_container_number_is_refused_with_every_field_named(
    sw: Sw, platform: Platform, tmp_path: Path
) -> None:
    body = changed("transport.containers", ["CSQU3054384"])  # the check digit is 3
    answer = sw("submit", body_file(tmp_path, body))
    assert answer.code == ExitCode.REFUSED
    assert answer.out == ""
    assert "Unprocessable" in answer.err and "(422)" in answer.err
    assert "transport.containers[0]" in answer.err
    assert platform.publisher.events == []
    as_json = sw("submit", body_file(tmp_path, body), "--json")
    problem = json.loads(as_json.err)
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == ["transport.containers[0]"]


def test_a_file_that_is_not_json_is_refused_by_the_platform(sw: Sw, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"declaration_type": ')
    answer = sw("submit", str(path))
    assert answer.code == ExitCode.REFUSED
    assert "(400)" in answer.err


def test_a_missing_file_is_a_usage_error(sw: Sw, tmp_path: Path) -> None:
    assert sw("submit", str(tmp_path / "nowhere.json")).code == ExitCode.USAGE


def test_a_declarant_the_token_does_not_act_for_is_exit_status_3(
    platform: Platform, tmp_path: Path
) -> None:
    sw = Sw(platform.url, tmp_path).signed_in(ISSUER.token("trader-b", (USCC_B,)))
    answer = sw("submit", body_file(tmp_path, valid_body()))  # its declarant is USCC_A
    assert answer.code == ExitCode.NOT_SIGNED_IN
    assert "Forbidden" in answer.err


def test_submit_and_watch_waits_for_the_first_answer(tmp_path: Path) -> None:
    with serving(Agencies(in_review, rejected)) as platform:
        sw = Sw(platform.url, tmp_path / "config").signed_in()
        answer = sw("submit", body_file(tmp_path, valid_body()), "--watch", "--json")
    assert answer.code == ExitCode.ENDED_BADLY
    accepted, *views = answer.json_lines()
    assert accepted["status"] == "SUBMITTED"
    # the status stream opens with the view as it is (SUBMITTED), a long poll with the next
    seen = [v["status"] for v in views]
    assert seen in (["SUBMITTED", "IN_REVIEW", "REJECTED"], ["IN_REVIEW", "REJECTED"])
    assert views[-1]["declaration_id"] == accepted["declaration_id"]
    assert views[-1]["verdicts"][0]["decision"] == "REJECT"


# --- status ---------------------------------------------------------------------------------


def test_status_shows_the_traders_view(sw: Sw, platform: Platform, tmp_path: Path) -> None:
    declaration_id = sw("submit", body_file(tmp_path, valid_body())).out.strip()
    shown = sw("status", declaration_id)
    assert shown.code == 0
    assert declaration_id in shown.out and "SUBMITTED" in shown.out
    assert "Next: WAIT" in shown.out
    as_json = sw("status", declaration_id, "--json")
    direct = httpx.get(f"{platform.url}/v1/declarations/{declaration_id}", headers=ISSUER.auth())
    assert as_json.json_lines() == [direct.json()]


def test_status_watch_follows_until_the_trader_has_something_to_do(sw: Sw, tmp_path: Path) -> None:
    declaration_id = sw("submit", body_file(tmp_path, valid_body())).out.strip()
    watched = sw("status", declaration_id, "--watch")
    assert watched.code == 0
    lines = [line for line in watched.out.splitlines() if line.startswith(declaration_id)]
    assert [line.split()[1] for line in lines] == ["SUBMITTED", "IN_REVIEW", "AWAITING_PAYMENT"]
    assert lines[-1].endswith("next PAY")
    assert "Payment notice N-1: 13.00 CNY" in watched.out
    as_json = sw("status", declaration_id, "--watch", "--json")  # settled: at once
    assert [v["next_step"]["code"] for v in as_json.json_lines()] == ["PAY"]


def test_another_traders_declaration_is_not_found(sw: Sw, platform: Platform) -> None:
    platform.read_model.put(status_document("DEC-OTHER", "RELEASED", uscc=USCC_B))
    for args in (("status", "DEC-OTHER"), ("status", "DEC-OTHER", "--watch")):
        answer = sw(*args)
        assert answer.code == ExitCode.NOT_FOUND
        assert "Not Found (404)" in answer.err and "DEC-OTHER" not in answer.out


def test_the_platform_unavailable_is_exit_status_6(
    sw: Sw, platform: Platform, tmp_path: Path
) -> None:
    declaration_id = sw("submit", body_file(tmp_path, valid_body())).out.strip()
    platform.read_model.outages = [True]
    answer = sw("status", declaration_id)
    assert answer.code == ExitCode.UNAVAILABLE
    assert "Service Unavailable (503)" in answer.err and "Try again later" in answer.err
    with socket.socket() as bound:  # a port held, never listened on: connection refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        nobody = Sw(url, tmp_path / "elsewhere").signed_in()
        answer = nobody("status", declaration_id)
    assert answer.code == ExitCode.UNAVAILABLE
    assert "did not answer" in answer.err


def test_a_watch_waits_through_an_outage(sw: Sw, platform: Platform, tmp_path: Path) -> None:
    declaration_id = sw("submit", body_file(tmp_path, valid_body())).out.strip()
    pauses: list[float] = []
    patient = Sw(platform.url, sw.token_file.parent, sleep=pauses.append)
    platform.read_model.outages = [False, True, True]  # the first GET answers, two polls fail
    answer = patient("status", declaration_id, "--watch", "--json")
    assert answer.code == 0
    assert answer.json_lines()[-1]["status"] == "AWAITING_PAYMENT"
    assert pauses == [5.0, 5.0]  # the intake's Retry-After, each time


# --- the status stream and the list (not in the in-memory intake yet: MockTransport) ------


def view(declaration_id: str, status: str, code: str) -> dict[str, Any]:
    """A trader's view, as much of it as the CLI reads."""
    step = {"code": code, "message": f"{code.lower()} now", "action": None, "agencies": []}
    return {"declaration_id": declaration_id, "status": status, "version": 1, "next_step": step}


def stream(*events: tuple[int, dict[str, Any]]) -> httpx.Response:
    """An SSE answer: each (id, view) a ``status`` event, with a keep-alive between."""
    text = "".join(f"id: {n}\nevent: status\ndata: {json.dumps(v)}\n\n: keep-alive\n\n"
                   for n, v in events)  # fmt: skip
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=text)


def mocked(
    tmp_path: Path, handler: Callable[[httpx.Request], httpx.Response]
) -> tuple[Sw, list[float]]:
    pauses: list[float] = []
    transport = httpx.MockTransport(handler)
    sw = Sw("http://intake.test", tmp_path, transport=transport, sleep=pauses.append)
    return sw.signed_in(), pauses


def test_a_watch_reads_the_status_stream_and_resumes_it_after_a_drop(tmp_path: Path) -> None:
    submitted, in_review = view("D-1", "SUBMITTED", "WAIT"), view("D-1", "IN_REVIEW", "WAIT")
    rejected_view = view("D-1", "REJECTED", "NONE")
    resumed_after: list[str | None] = []

    def platform(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {sw.token_file.read_text().strip()}"
        if request.url.path == "/v1/declarations/D-1":
            return httpx.Response(200, json=submitted)
        assert request.url.path == "/v1/declarations/D-1/events"
        resumed_after.append(request.headers.get("last-event-id"))
        if len(resumed_after) == 1:
            return stream((1, submitted), (2, in_review))  # then the connection drops
        return stream((3, rejected_view))

    sw, pauses = mocked(tmp_path, platform)
    answer = sw("status", "D-1", "--watch", "--json")
    assert answer.code == ExitCode.ENDED_BADLY
    assert [v["status"] for v in answer.json_lines()] == ["SUBMITTED", "IN_REVIEW", "REJECTED"]
    assert resumed_after == [None, "2"]
    assert pauses == [1.0]  # one short pause before resuming a stream the platform closed


def test_a_stream_of_someone_elses_declaration_is_not_found(tmp_path: Path) -> None:
    unknown = {"type": "urn:singlewindow:problem:unknown-declaration", "title": "Not Found",
               "status": 404, "detail": "no declaration D-1"}  # fmt: skip

    def platform(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(404, json=unknown)
        return httpx.Response(200, json=view("D-1", "IN_REVIEW", "WAIT"))

    sw, _ = mocked(tmp_path, platform)
    assert sw("status", "D-1", "--watch").code == ExitCode.NOT_FOUND  # not "no stream here"


def test_list_shows_ones_own_declarations_and_the_next_page(tmp_path: Path) -> None:
    asked: list[httpx.URL] = []
    page = {
        "declarations": [
            {"declaration_id": "DEC-2", "status": "RELEASED", "version": 1,
             "submitted_at": "2026-11-27T08:30:15Z", "updated_at": "2026-11-27T08:31:02Z",
             "declaration_type": "IMPORT", "next_step": {"code": "NONE"}},
            {"declaration_id": "DEC-1", "status": "RELEASED", "version": 2,
             "submitted_at": "2026-11-26T10:00:00Z", "updated_at": "2026-11-26T10:05:00Z",
             "declaration_type": "EXPORT", "next_step": {"code": "NONE"}},
        ],
        "next": "cursor-2",
    }  # fmt: skip

    def platform(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        return httpx.Response(200, json=page)

    sw, _ = mocked(tmp_path, platform)
    shown = sw("list", "--status", "RELEASED", "--limit", "2")
    assert shown.code == 0
    assert shown.out.index("DEC-2") < shown.out.index("DEC-1")  # newest first, as given
    assert "EXPORT" in shown.out
    assert "sw list --after cursor-2" in shown.err
    assert asked[0].path == "/v1/declarations"
    assert dict(asked[0].params) == {"status": "RELEASED", "limit": "2"}
    as_json = sw("list", "--after", "cursor-2", "--json")
    assert as_json.json_lines() == [page]
    assert dict(asked[1].params) == {"after": "cursor-2"}
    assert sw("list", "--limit", "0").code == ExitCode.USAGE


def test_list_with_a_bad_parameter_is_refused(tmp_path: Path) -> None:
    problem = {"type": "urn:singlewindow:problem:invalid-request", "title": "Unprocessable Content",
               "status": 422, "detail": "the request is invalid",
               "errors": [{"field": "status", "message": "not a status"}]}  # fmt: skip
    sw, _ = mocked(tmp_path, lambda _: httpx.Response(422, json=problem))
    answer = sw("list", "--status", "DONE")
    assert answer.code == ExitCode.REFUSED
    assert "status: not a status" in answer.err


# --- the parts ------------------------------------------------------------------------------


def test_the_event_stream_is_read_as_the_html_standard_says() -> None:
    lines = [": keep-alive", "", "id: 7", "event: status", "data: {", 'data:  "a": 1}', "",
             "retry: 3000", "data:x", "", "event: status", "data: y", "", "id: 9",
             "data: cut"]  # fmt: skip
    events = list(sse.parse(lines))
    assert events == [
        sse.Event("status", '{\n "a": 1}', "7"),
        sse.Event("message", "x", "7", 3000),  # the id stays; no event name: message
        sse.Event("status", "y", "7"),
    ]  # the last, unfinished, is dropped


def test_an_outage_is_waited_through_until_it_lasts_too_long() -> None:
    clock, pauses = [0.0], list[float]()
    trouble = Trouble(lambda: clock[0], 300.0, Backoff(1.0, 30.0, pauses.append))
    away = Failure(ExitCode.UNAVAILABLE, "Service Unavailable")
    delays = []
    for _ in range(7):
        delays.append(trouble.delay(away))
        clock[0] += delays[-1]
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert trouble.delay(Failure(ExitCode.UNAVAILABLE, "busy", retry_after_s=5)) == 5
    clock[0] += 300
    with pytest.raises(Failure):
        trouble.delay(away)
    with pytest.raises(Failure):  # a 404 is no outage
        Trouble(lambda: 0.0, 300.0, Backoff(1.0, 30.0)).delay(Failure(ExitCode.NOT_FOUND, "x"))


def test_the_cli_imports_no_server_code_but_the_dev_issuer_when_asked() -> None:
    for path in sorted((ROOT / "singlewindow_cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        top_level = set(tree.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [str(node.module)]
            else:
                continue
            for module in modules:
                root = module.split(".")[0]
                assert root not in {"singlewindow", "deploy", "tests", "bench"}, (path, module)
                if root == "services":  # the local development issuer, only when asked
                    assert module == "services.intake", (path, module)
                    assert [a.name for a in node.names] == ["devissuer"]
                    assert node not in top_level, f"{path}: import it where it is used"
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, singlewindow_cli.main; print(*sorted(sys.modules))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert not [m for m in loaded if m.split(".")[0] in {"services", "singlewindow", "fastapi"}]


def test_sw_is_the_projects_console_script() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["sw"] == "singlewindow_cli.main:app"
    assert "singlewindow_cli" in project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert any(d.startswith("httpx") for d in project["project"]["dependencies"])  # not dev only
