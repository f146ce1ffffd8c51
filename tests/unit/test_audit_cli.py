"""The auditors' tool at the rendering level: hostile event text stays text, re-drive and
rebuild refuse what they must, ``verify --format json`` is complete. Kafka and the database
are replaced by fakes: the commands see lists of logged events and dead letters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from services.aggregator import payment
from services.aggregator.join import fold
from services.audit import cli, deadletters, readmodel_rebuild
from services.audit.deadletters import DeadLetter, refusal
from services.audit.log import AUDITED, LoggedEvent
from services.audit.render import hex_dump, safe, visible
from services.customs import rules as customs_rules
from singlewindow import events as ev
from singlewindow.kafka.deadletter import TRUNCATED
from singlewindow.settings import Settings
from singlewindow.verdicts import on_version
from tests import factories
from tests.unit.test_verify import released_life

HOSTILE = "[/]\x1b[2J[bold green]RELEASED[/bold green]\u202e:smile:"
LONG_ID = "D-" + "9" * 62  # the longest id the intake accepts: 64 characters
KEY = factories.sampling_key()
DEADLINE = timedelta(seconds=120)  # verify's default --deadline-seconds


@pytest.fixture
def runner() -> CliRunner:
    """A runner with a wide terminal, so that no cell is folded (one test narrows it)."""
    return CliRunner(env={"COLUMNS": "250"})


@pytest.fixture(autouse=True)
def no_infrastructure(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No settings from the environment but the test key registry, no sampling keys unless
    a test sets them."""
    monkeypatch.setattr(cli, "get_settings", lambda: factories.with_keys(Settings()))
    for name in ("CUSTOMS_SAMPLING_KEYS", "CUSTOMS_SAMPLING_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    yield


def logged(
    event: ev.Event | None, offset: int = 0, error: str | None = None, sign: bool = True
) -> LoggedEvent:
    """``event`` as read from its topic: signed by its service's test key (unless not
    ``sign``: a forgery)."""
    topic = {
        ev.DeclarationSubmitted: "declarations.submitted",
        ev.AgencyVerdict: "verdicts.customs",
        ev.ClearanceResult: "clearance.results",
        ev.DeclarationWithdrawn: "declarations.withdrawn",
        ev.PaymentConfirmed: "payments.confirmed",
        ev.InspectionFinding: "inspections.findings",
        ev.GateOut: "gate.out",
    }.get(type(event), "verdicts.customs")
    key = event.declaration_id if event is not None else HOSTILE
    payload = b""
    if event is not None:
        payload = factories.signed(event) if sign else event.to_avro()
        event = type(event).from_avro(payload)
    return LoggedEvent(topic, 0, offset, factories.T0, key, event, error, payload)


def serve_events(monkeypatch: pytest.MonkeyPatch, events: list[LoggedEvent]) -> None:
    """``collect`` returns ``events`` instead of reading Kafka."""

    async def collect(*_: Any, **__: Any) -> list[LoggedEvent]:
        return events

    monkeypatch.setattr(cli, "collect", collect)


def faithful(declaration_id: str = "D-0001") -> list[LoggedEvent]:
    """A declaration by air (routed to customs alone), its real verdict (test sampling key)
    and its result, each signed by its service."""
    by_air = factories.declaration().consignment.model_copy(
        update={"mode": ev.TransportMode.AIR, "vessel_imo": None, "voyage": None}
    )
    declaration = factories.declaration(
        declaration_id, consignment=by_air, required_agencies=("customs",)
    )
    verdict = customs_rules.assess(
        declaration, customs_rules.load_reference(), factories.T0 + timedelta(seconds=1), KEY
    )
    _, (result,) = fold([declaration, verdict], DEADLINE)
    return [logged(declaration), logged(verdict, 1), logged(result, 2)]


# --- inert text -----------------------------------------------------------------------------


def test_safe_text_is_never_markup_and_shows_control_characters() -> None:
    text = safe(HOSTILE)
    assert text.plain == "[/]\\x1b[2J[bold green]RELEASED[/bold green]\\u202e:smile:"
    assert text.spans == []
    assert visible("tab\there\nline\x9b") == "tab\\x09here\\x0aline\\x9b"
    assert visible("报关单 D-0001") == "报关单 D-0001"


def test_hex_dump() -> None:
    assert hex_dump(None).plain == "(null)"
    assert hex_dump(b"").plain == "(empty)"
    dump = hex_dump(b"\xc3\x01" + b"A" * 20).plain.splitlines()
    assert dump[0].startswith("00000000  c3 01 41") and dump[0].endswith("..AAAAAAAAAAAAAA")
    assert dump[1].startswith("00000010  41 41")


def test_timeline_prints_hostile_reasons_as_text(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    verdict = factories.verdict(
        reasons=(ev.Reason(code=HOSTILE, message="x"),), rules_version="[red]v[/red]"
    )
    serve_events(monkeypatch, [logged(factories.declaration()), logged(verdict, 1)])
    done = runner.invoke(cli.app, ["timeline", "D-0001"])
    assert done.exit_code == 0, done.output
    assert "[/]\\x1b[2J[bold green]RELEASED[/bold" in done.stdout
    assert "[red]v[/red]" in done.stdout
    assert "\x1b" not in done.stdout and "\u202e" not in done.stdout


def test_timeline_of_an_unknown_declaration_with_markup_in_its_id(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_events(monkeypatch, [])
    done = runner.invoke(cli.app, ["timeline", "[/]"])
    assert done.exit_code == 1
    assert "no events for [/]" in done.output


# --- verify ---------------------------------------------------------------------------------


def test_verify_json_lists_every_finding_in_full(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    orphan = factories.verdict(LONG_ID)
    hostile = factories.verdict(HOSTILE[:60])
    serve_events(monkeypatch, [*faithful(), logged(orphan, 3), logged(hostile, 4)])
    done = runner.invoke(cli.app, ["verify", "--format", "json"])
    assert done.exit_code == 1
    document = json.loads(done.stdout)
    assert {(f["kind"], f["declaration_id"]) for f in document["findings"]} == {
        ("unknown declaration", LONG_ID),
        ("unknown declaration", HOSTILE[:60]),
    }
    assert set(document["findings"][0]) == {"kind", "declaration_id", "detail"}
    assert document["summary"] == {
        "declarations": 1,
        "verdicts": 3,
        "results": 1,
        "withdrawals": 0,
        "payments": 0,
        "inspection_findings": 0,
        "gate_outs": 0,
        "ledger_entries": 0,
        "findings": 2,
        "findings_by_kind": {"unknown declaration": 2},
        "unchecked": 1,  # no keys supplied: the sample of D-0001 could not be redrawn
    }
    (note,) = document["unchecked"]
    assert note["kind"] == "sampling not checked" and note["declaration_id"] == "D-0001"


def test_verify_json_of_a_clean_log_exits_0(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_events(monkeypatch, faithful())
    monkeypatch.setenv("CUSTOMS_SAMPLING_KEYS", f"{KEY.version}:{KEY.secret.hex()}")
    done = runner.invoke(cli.app, ["verify", "--format", "json"])
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert document["findings"] == [] and document["unchecked"] == []
    assert document["summary"]["findings"] == 0 and document["summary"]["verdicts"] == 1


def test_verify_table_keeps_long_ids_whole_and_hostile_ids_inert(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_events(
        monkeypatch,
        [*faithful(), logged(factories.verdict(LONG_ID), 3), logged(None, 4, error=HOSTILE)],
    )
    done = runner.invoke(cli.app, ["verify"], env={"COLUMNS": "120"})
    assert done.exit_code == 1, done.output
    assert LONG_ID in done.stdout
    assert "undecodable event" in done.stdout and "\x1b" not in done.stdout
    assert "[/]\\x1b[2J" in done.stdout  # the undecodable record's key, as text
    assert "not checked, 1 verdict(s)" in done.stdout
    assert "CUSTOMS_SAMPLING_KEYS_FILE" in done.stdout
    assert "sampling not checked" in done.stdout and "findings" in done.stdout


def test_verify_with_malformed_keys_exits_2(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_events(monkeypatch, faithful())
    monkeypatch.setenv("CUSTOMS_SAMPLING_KEYS", "k1:abc")
    done = runner.invoke(cli.app, ["verify"])
    assert done.exit_code == 2
    assert "sampling keys" in done.output and "k1:abc" not in done.output


def test_verify_refuses_a_bad_position(runner: CliRunner) -> None:
    done = runner.invoke(cli.app, ["verify", "--from", "yesterday"])
    assert done.exit_code == 2
    assert "yesterday" in done.output


# --- rebuild-read-model ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "into",
    [
        "declarations",
        "idempotency_keys",
        "archive",
        "shadow_",
        "shadow_a.b",
        "shadow_$x",
        "Shadow_x",
    ],
)
def test_rebuild_refuses_anything_but_a_shadow_collection(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, into: str
) -> None:
    async def untouchable(*_: Any, **__: Any) -> Any:
        raise AssertionError("nothing may be read or written")

    monkeypatch.setattr(cli, "collect", untouchable)
    monkeypatch.setattr(readmodel_rebuild, "rebuild", untouchable)
    done = runner.invoke(cli.app, ["rebuild-read-model", "--into", into])
    assert done.exit_code == 2
    assert "refused" in done.output and "nothing was changed" in done.output


def test_rebuild_itself_refuses_a_live_collection() -> None:
    with pytest.raises(readmodel_rebuild.NotAShadow, match="live collection"):
        asyncio.run(readmodel_rebuild.rebuild(None, [], "declarations"))  # type: ignore[arg-type]


def test_rebuild_into_a_shadow_collection(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []

    async def rebuild(_: Any, events: list[LoggedEvent], into: str) -> readmodel_rebuild.Diff:
        built.append(into)
        return readmodel_rebuild.Diff(rebuilt=len(events), differences=[f"{HOSTILE}: differs"])

    serve_events(monkeypatch, faithful())
    monkeypatch.setattr(readmodel_rebuild, "rebuild", rebuild)
    done = runner.invoke(cli.app, ["rebuild-read-model", "--into", "shadow_20261127"])
    assert built == ["shadow_20261127"]
    assert done.exit_code == 1
    assert "rebuilt 3 documents into 'shadow_20261127'; 1 differ" in done.stdout
    assert "[/]\\x1b[2J" in done.stdout


# --- dead letters ---------------------------------------------------------------------------


def letter(source_topic: str = "declarations.submitted", **changes: Any) -> DeadLetter:
    fields: dict[str, Any] = {
        "partition": 0,
        "offset": 7,
        "source_topic": source_topic,
        "source_partition": 2,
        "source_offset": 41,
        "service": "customs",
        "error": f"ValueError: {HOSTILE}",
        "time": "2026-11-27T08:30:15+00:00",
        "key": HOSTILE.encode(),
        "value": b"\xc3\x01" + bytes(8) + b"[/]",
        "headers": [("sw-dlq-source-topic", source_topic.encode()), ("x-note", HOSTILE.encode())],
    }
    return DeadLetter(**{**fields, **changes})


@pytest.mark.parametrize(
    "topic", ["declarations.submitted", "verdicts.customs", "verdicts.ciq", "verdicts.port"]
)
def test_input_topics_may_be_redriven(topic: str) -> None:
    assert refusal(letter(topic), existing={topic}) is None


@pytest.mark.parametrize(
    "topic", ["clearance.results", "aggregator.join-state", "deadletters", "payments", ""]
)
def test_other_topics_are_refused(topic: str) -> None:
    reason = refusal(letter(topic), existing={topic})
    assert reason is not None and "not an input topic" in reason


def test_incomplete_letters_and_vanished_topics_are_refused() -> None:
    cut = letter(headers=[(TRUNCATED, b"1")])
    assert "only part of the original" in (refusal(cut, {"declarations.submitted"}) or "")
    assert "no longer exists" in (refusal(letter(), existing=set()) or "")


def test_dead_letters_list_and_show_print_hostile_text_as_text(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def dead_letters(_: Any) -> list[DeadLetter]:
        return [letter()]

    monkeypatch.setattr(deadletters, "dead_letters", dead_letters)
    listed = runner.invoke(cli.app, ["dead-letters", "list"])
    assert listed.exit_code == 0, listed.output
    assert "[/]\\x1b[2J" in listed.stdout and "\x1b" not in listed.stdout

    shown = runner.invoke(cli.app, ["dead-letters", "show", "0", "7"])
    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.stdout and "\u202e" not in shown.stdout
    assert "header x-note" in shown.stdout and "[bold green]RELEASED" in shown.stdout
    assert "00000000  c3 01 00 00" in shown.stdout and "value (13 bytes)" in shown.stdout

    missing = runner.invoke(cli.app, ["dead-letters", "show", "0", "8"])
    assert missing.exit_code == 1


def test_redrive_reports_refused_letters(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent, kept = letter(), letter("clearance.results", offset=8)

    async def redrive(
        _: Any, dry_run: bool = False, skipped: list[deadletters.Refused] | None = None
    ) -> list[DeadLetter]:
        assert skipped is not None
        reason = refusal(kept, {"clearance.results"})
        assert reason is not None
        skipped.append(deadletters.Refused(kept, reason))
        return [sent]

    monkeypatch.setattr(deadletters, "redrive", redrive)
    done = runner.invoke(cli.app, ["dead-letters", "redrive", "--dry-run"])
    assert done.exit_code == 0, done.output
    assert "would re-drive 1 dead letter(s); refused 1" in done.stdout
    assert "refused 0/8: its source topic 'clearance.results' is not an input topic" in done.stdout


def test_verify_reports_forged_events_and_leaves_them_out(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unsigned declaration routed to nobody, and a verdict signed by another agency's
    key: both are findings, and neither counts as a declaration or a verdict."""
    skipped = factories.declaration("D-FORGED", required_agencies=())
    _, by_port = factories.SIGNING["port"].sign(factories.verdict("D-0001"), factories.T0)
    forged = ev.AgencyVerdict.from_avro(by_port)  # a customs verdict, signed by the port
    events = [
        *faithful(),
        logged(skipped, 3, sign=False),
        LoggedEvent("verdicts.customs", 0, 4, factories.T0, "D-0001", forged, None, by_port),
    ]
    serve_events(monkeypatch, events)
    monkeypatch.setenv("CUSTOMS_SAMPLING_KEYS", f"{KEY.version}:{KEY.secret.hex()}")
    done = runner.invoke(cli.app, ["verify", "--format", "json"])
    assert done.exit_code == 1, done.output
    document = json.loads(done.stdout)
    found = {(f["kind"], f["declaration_id"]): f["detail"] for f in document["findings"]}
    assert set(found) == {("signature refused", "D-FORGED"), ("signature refused", "D-0001")}
    assert "unsigned DeclarationSubmitted" in found["signature refused", "D-FORGED"]
    assert "belongs to port, not customs" in found["signature refused", "D-0001"]
    assert document["summary"]["declarations"] == 1 and document["summary"]["verdicts"] == 1


def test_verify_reports_a_declaration_that_skipped_an_agency(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signed by the intake, but routed to customs alone although it goes by sea (the
    routing table it names requires the port authority too)."""
    by_sea = factories.declaration("D-SEA", required_agencies=("customs",))
    serve_events(monkeypatch, [logged(by_sea)])
    done = runner.invoke(cli.app, ["verify", "--format", "json"])
    document = json.loads(done.stdout)
    kinds = {f["kind"]: f["detail"] for f in document["findings"]}
    assert "routing mismatch" in kinds and done.exit_code == 1
    assert "routes to ['customs', 'port']" in kinds["routing mismatch"]


def test_verify_without_the_key_registry_exits_2(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(key_registry_file=None))
    serve_events(monkeypatch, faithful())
    done = runner.invoke(cli.app, ["verify"])
    assert done.exit_code == 2 and "KEY_REGISTRY_FILE" in done.output


# --- verify: the life of a versioned declaration ---------------------------------------------


def guaranteed(sign_payment: bool = True) -> list[LoggedEvent]:
    """Version 1 of the declaration of ``faithful``: cleared by customs, VAT due, released on
    a bank guarantee; every event signed by its service (the guarantee unless not
    ``sign_payment``), every result written by the join."""
    by_air = factories.declaration().consignment.model_copy(
        update={"mode": ev.TransportMode.AIR, "vessel_imo": None, "voyage": None}
    )
    declaration = factories.declaration(
        consignment=by_air, required_agencies=("customs",), version=1
    )
    verdict = on_version(
        customs_rules.assess(
            declaration, customs_rules.load_reference(), factories.T0 + timedelta(seconds=1), KEY
        ),
        1,
    )
    _, (answer,) = fold([declaration, verdict], DEADLINE)
    assert answer.payment_notice is not None
    guarantee = factories.payment(
        notice_id=payment.notice_id("D-0001", 1),
        kind=ev.PaymentKind.BANK_GUARANTEE,
        amount=answer.payment_notice.amount,
    )
    _, results = fold([declaration, verdict, guarantee], DEADLINE)
    assert [r.status for r in results] == [
        ev.ClearanceStatus.AWAITING_PAYMENT,
        ev.ClearanceStatus.RELEASED,
    ]
    return [
        logged(declaration),
        logged(verdict, 1),
        logged(guarantee, 2, sign=sign_payment),
        *(logged(r, 3 + n) for n, r in enumerate(results)),
    ]


def test_verify_reads_the_payments_a_release_rests_on(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_events(monkeypatch, guaranteed())
    monkeypatch.setenv("CUSTOMS_SAMPLING_KEYS", f"{KEY.version}:{KEY.secret.hex()}")
    done = runner.invoke(cli.app, ["verify", "--format", "json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)["summary"]
    assert (summary["results"], summary["withdrawals"], summary["payments"]) == (2, 0, 1)
    assert summary["findings"] == 0


def test_verify_leaves_out_an_unsigned_payment_and_finds_the_release_without_it(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_events(monkeypatch, guaranteed(sign_payment=False))
    monkeypatch.setenv("CUSTOMS_SAMPLING_KEYS", f"{KEY.version}:{KEY.secret.hex()}")
    done = runner.invoke(cli.app, ["verify"])
    assert done.exit_code == 1, done.output
    assert "release without payment or guarantee" in done.stdout
    assert "signature refused" in done.stdout and "withdrawals" in done.stdout


def test_timeline_describes_withdrawals_and_payments(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = factories.payment(amount=Decimal("100.00"), notice_id="N-9")
    serve_events(
        monkeypatch,
        [logged(factories.declaration()), logged(factories.withdrawal(), 1), logged(paid, 2)],
    )
    done = runner.invoke(cli.app, ["timeline", "D-0001"])
    assert done.exit_code == 0, done.output
    assert "withdrawal of v1 by 91310000MA1FL0XQ2B: lodged in error" in done.stdout
    assert "PAYMENT 100.00 CNY on notice N-9" in done.stdout
    assert "undecodable" not in done.stdout


# --- verify: the steps after an inspection order ----------------------------------------------


def inspected(sign_findings: bool = True) -> list[LoggedEvent]:
    """Kerosene inspected by customs and CIQ, both finding it compliant, paid, released
    (:func:`tests.unit.test_verify.released_life`): every event signed by its service (the
    findings by the inspection station unless not ``sign_findings``)."""
    life = released_life()
    events: list[ev.Event] = [*life.declarations, *life.verdicts, *life.payments]
    logged_events = [logged(e, n) for n, e in enumerate(events)]
    logged_events += [
        logged(f, len(events) + n, sign=sign_findings) for n, f in enumerate(life.findings)
    ]
    return logged_events + [logged(r, 100 + n) for n, r in enumerate(life.results)]


def test_verify_reads_the_findings_the_steps_after_an_inspection_rest_on(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_events(monkeypatch, inspected())
    monkeypatch.setenv("CUSTOMS_SAMPLING_KEYS", f"{KEY.version}:{KEY.secret.hex()}")
    done = runner.invoke(cli.app, ["verify", "--format", "json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)["summary"]
    assert (summary["results"], summary["payments"], summary["inspection_findings"]) == (3, 1, 2)
    assert summary["findings"] == 0


def test_verify_leaves_out_unsigned_findings_and_finds_the_release_without_them(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_events(monkeypatch, inspected(sign_findings=False))
    monkeypatch.setenv("CUSTOMS_SAMPLING_KEYS", f"{KEY.version}:{KEY.secret.hex()}")
    done = runner.invoke(cli.app, ["verify", "--format", "json"])
    assert done.exit_code == 1, done.output
    document = json.loads(done.stdout)
    assert document["summary"]["inspection_findings"] == 0
    assert document["summary"]["findings_by_kind"] == {
        "release before the inspection is complete": 2,
        "signature refused": 2,
    }


def test_timeline_describes_findings_and_the_sanction_of_a_result(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    sampled = factories.finding(
        outcome=ev.FindingOutcome.SAMPLED, samples=("S-1", "S-2"), finding_id="F-1"
    )
    lab = factories.finding(
        outcome=ev.FindingOutcome.NON_COMPLIANT,
        measure=ev.Measure.DESTRUCTION,
        lab_result=True,
        finding_id="F-2",
        reasons=(ev.Reason(code="LAB-FAIL", message="contaminated"),),
    )
    recalled = factories.result(
        status=ev.ClearanceStatus.RECALLED,
        version=1,
        sequence=4,
        finding_ids=("F-2",),
        sanction=ev.Sanction(measure=ev.Measure.DESTRUCTION, agency="customs", finding_id="F-2"),
    )
    serve_events(
        monkeypatch,
        [logged(factories.declaration()), logged(sampled, 1), logged(lab, 2), logged(recalled, 3)],
    )
    done = runner.invoke(cli.app, ["timeline", "D-0001"])
    assert done.exit_code == 0, done.output
    assert "customs finding F-1 SAMPLED (samples S-1, S-2) on order O-1 of v1" in done.stdout
    assert "customs laboratory result F-2 NON_COMPLIANT (DESTRUCTION) on order O-1" in done.stdout
    assert "by customs-inspector-1: LAB-FAIL" in done.stdout
    assert "result RECALLED (step 4, v1)" in done.stdout
    assert "DESTRUCTION by customs (finding F-2), on findings F-2" in done.stdout
    assert "undecodable" not in done.stdout


# --- verify and timeline: the port's gate-outs -----------------------------------------------


def gone_out(sign: bool = True, **changes: Any) -> list[LoggedEvent]:
    """The guaranteed life of :func:`guaranteed`, then its goods out under the release (a
    gate-out signed by the gate unless not ``sign``)."""
    life = guaranteed()
    release = life[-1].event
    assert isinstance(release, ev.ClearanceResult)
    assert release.status is ev.ClearanceStatus.RELEASED
    out = factories.gate_out(
        **{
            "result_id": release.result_id,
            "passed_at": release.decided_at + timedelta(hours=1),
            "containers": (),
            **changes,
        }
    )
    return [*life, logged(out, 50, sign=sign)]


def test_verify_reads_the_gate_outs(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    serve_events(monkeypatch, gone_out())
    monkeypatch.setenv("CUSTOMS_SAMPLING_KEYS", f"{KEY.version}:{KEY.secret.hex()}")
    done = runner.invoke(cli.app, ["verify", "--format", "json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)["summary"]
    assert (summary["gate_outs"], summary["findings"]) == (1, 0)
    table = runner.invoke(cli.app, ["verify"])
    assert table.exit_code == 0 and "gate-outs" in table.stdout


def test_verify_finds_a_gate_out_without_release(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    life = guaranteed()
    notice = life[-2].event
    assert isinstance(notice, ev.ClearanceResult)
    serve_events(monkeypatch, gone_out(result_id=notice.result_id))
    monkeypatch.setenv("CUSTOMS_SAMPLING_KEYS", f"{KEY.version}:{KEY.secret.hex()}")
    done = runner.invoke(cli.app, ["verify", "--format", "json"])
    assert done.exit_code == 1, done.output
    document = json.loads(done.stdout)
    assert document["summary"]["findings_by_kind"] == {"gate-out without release": 1}
    assert "AWAITING_PAYMENT), which is no release" in document["findings"][0]["detail"]


def test_verify_leaves_out_a_forged_gate_out(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_events(monkeypatch, gone_out(sign=False, result_id="R-NOSUCH"))
    monkeypatch.setenv("CUSTOMS_SAMPLING_KEYS", f"{KEY.version}:{KEY.secret.hex()}")
    done = runner.invoke(cli.app, ["verify", "--format", "json"])
    assert done.exit_code == 1, done.output
    document = json.loads(done.stdout)
    assert document["summary"]["gate_outs"] == 0
    assert document["summary"]["findings_by_kind"] == {"signature refused": 1}


def test_timeline_names_the_gate_outs(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    out = factories.gate_out(containers=("CSQU3054383", "MSKU1234565"))
    serve_events(monkeypatch, [logged(factories.declaration()), logged(out, 1)])
    done = runner.invoke(cli.app, ["timeline", "D-0001"])
    assert done.exit_code == 0, done.output
    assert "gate-out G-D-0001 at gate CNSHA-WGQ-3: 沪A12345 with CSQU3054383, MSKU1234565" in (
        done.stdout
    )
    assert "under result R-D-0001, by port-gate-officer-1" in done.stdout
    assert "undecodable" not in done.stdout


def test_the_auditors_read_gate_out_with_what_the_projector_folds() -> None:
    assert AUDITED["gate.out"] is ev.GateOut
