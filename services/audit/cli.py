"""The auditors' tool: ``python -m services.audit --help``.

Reads Kafka with manually assigned partitions (no consumer group, no commits,
``read_committed``), so live services are never disturbed.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from services.aggregator.join import INSPECTION_DEADLINE
from services.audit import deadletters, log, readmodel_rebuild
from services.audit.render import hex_dump, safe
from services.audit.verify import Report, recomputers, verify
from services.customs.sampling import KEYS_ENV, KEYS_FILE_ENV, Keyring, SamplingKeyError
from services.customs.sampling import load_keyring as load_sampling_keys
from singlewindow.events import (
    LEDGER_KINDS,
    AgencyVerdict,
    ClearanceResult,
    DeclarationSubmitted,
    DeclarationWithdrawn,
    GateOut,
    InspectionFinding,
    PaymentConfirmed,
)
from singlewindow.settings import get_settings
from singlewindow.signing import KeyRegistry, SignatureError, Verifier
from singlewindow.topics import JOIN_STATE

app = typer.Typer(help=__doc__, no_args_is_help=True)
letters_app = typer.Typer(help="The dead-letter topic: list, show, re-drive.")
app.add_typer(letters_app, name="dead-letters")
err = Console(stderr=True)
T = TypeVar("T")
From = Annotated[str, typer.Option("--from", help="beginning | offset | ISO-8601 time")]
To = Annotated[str | None, typer.Option("--to", help="offset | ISO-8601 time (default: now)")]


FINDINGS_SHOWN = 200


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion."""
    return asyncio.run(coro)


def position(text: str) -> log.Position:
    """A ``--from``/``--to`` value, or a usage error (exit 2)."""
    try:
        return log.Position.parse(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not beginning, an offset or an ISO-8601 time"
        ) from None


async def collect(
    topics: list[str], start: str = "beginning", end: str | None = None, label: str = "reading"
) -> list[log.LoggedEvent]:
    """Every decoded event of ``topics`` between two positions, with a progress bar."""
    settings = get_settings()
    found: list[log.LoggedEvent] = []
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(label, total=None)
        update: Callable[[int, int], None] = lambda done, total: progress.update(  # noqa: E731
            task, completed=done, total=total
        )
        async for item in log.read_events(
            settings,
            topics,
            log.Position.parse(start),
            log.Position.parse(end) if end else None,
            update,
        ):
            found.append(item)
    return found


@app.command()
def timeline(declaration_id: str) -> None:
    """Every event about one declaration, decoded, in causal order."""
    events = [e for e in run(collect(list(log.AUDITED))) if e.key == declaration_id]
    if not events:
        err.print(safe(f"no events for {declaration_id}"))
        raise typer.Exit(1)
    Console().print(timeline_table(declaration_id, events))


def timeline_table(declaration_id: str, events: Iterable[log.LoggedEvent]) -> Table:
    """The events of one declaration in causal order: submitted, verdicts, result, others."""
    rank: dict[type[Any], int] = {DeclarationSubmitted: 0, AgencyVerdict: 1, ClearanceResult: 2}
    ordered = sorted(
        events, key=lambda e: (rank.get(type(e.event), 3), e.timestamp, e.topic, e.offset)
    )
    table = Table(title=safe(f"timeline of {declaration_id}"))
    for column in ("time (UTC)", "topic", "partition", "offset", "event"):
        table.add_column(column, overflow="fold")
    for e in ordered:
        table.add_row(
            e.timestamp.isoformat(timespec="milliseconds"),
            safe(e.topic),
            str(e.partition),
            str(e.offset),
            safe(summary(e)),
        )
    return table


def summary(item: log.LoggedEvent) -> str:
    """One line about an event (plain text: print it with :func:`safe`)."""
    event = item.event
    if isinstance(event, DeclarationSubmitted):
        agencies = ", ".join(event.required_agencies)
        return f"submitted: {len(event.items)} item(s), asks {agencies}"
    if isinstance(event, AgencyVerdict):
        codes = ", ".join(r.code for r in event.reasons) or "no rule fired"
        key = event.sampling_key_version
        drawn = f", sampling key {key}" if key else ""
        return f"{event.agency} {event.decision} ({codes}) [{event.rules_version}{drawn}]"
    if isinstance(event, ClearanceResult):
        step = "" if event.version is None else f" (step {event.sequence}, v{event.version})"
        line = f"result {event.status}{step}, duties {event.total_duties} CNY"
        if event.sanction is not None:
            sanction = event.sanction
            line += f", {sanction.measure} by {sanction.agency} (finding {sanction.finding_id})"
        if event.finding_ids:
            line += f", on findings {', '.join(event.finding_ids)}"
        return line
    if isinstance(event, DeclarationWithdrawn):
        return f"withdrawal of v{event.version} by {event.requested_by}: {event.reason}"
    if isinstance(event, PaymentConfirmed):
        return f"{event.kind} {event.amount} CNY on notice {event.notice_id} by {event.payer}"
    if isinstance(event, InspectionFinding):
        return finding_summary(event)
    if isinstance(event, GateOut):
        return gate_out_summary(event)
    return f"undecodable: {item.error}"


def gate_out_summary(event: GateOut) -> str:
    """One line about goods out of the port through its gate."""
    containers = ", ".join(event.containers) or "no containers"
    return (
        f"gate-out {event.gate_out_id} at gate {event.gate}: {event.vehicle} with {containers}, "
        f"under result {event.result_id}, by {event.officer}"
    )


def finding_summary(event: InspectionFinding) -> str:
    """One line about an inspector's finding."""
    what = "laboratory result" if event.lab_result else "finding"
    line = f"{event.agency} {what} {event.finding_id} {event.outcome}"
    if event.measure is not None:
        line += f" ({event.measure})"
    if event.samples:
        line += f" (samples {', '.join(event.samples)})"
    codes = ", ".join(r.code for r in event.reasons)
    line += f" on order {event.order_id} of v{event.version} by {event.inspector}"
    return line + (f": {codes}" if codes else "")


@app.command()
def replay(
    start: From = "beginning",
    end: To = None,
    topic: Annotated[list[str] | None, typer.Option(help="a topic (repeatable)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl | csv")] = "jsonl",
) -> None:
    """Stream decoded events to standard output."""
    topics = topic or list(log.AUDITED)
    events = run(collect(topics, start, end, "replaying"))
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["topic", "partition", "offset", "timestamp", "key", "type", "event"])
        for e in events:
            row = e.as_json()
            writer.writerow(
                [
                    row["topic"],
                    row["partition"],
                    row["offset"],
                    row["timestamp"],
                    row["key"],
                    row["type"],
                    json.dumps(row["event"], ensure_ascii=False),
                ]
            )
    elif fmt == "jsonl":
        for e in events:
            sys.stdout.write(json.dumps(e.as_json(), ensure_ascii=False) + "\n")
    else:
        raise typer.BadParameter("--format is jsonl or csv")
    err.print(f"{len(events)} events")


@app.command("verify")
def verify_command(
    start: From = "beginning",
    end: To = None,
    deadline_seconds: Annotated[float, typer.Option(envvar="AGGREGATOR_DEADLINE_SECONDS")] = 120,
    inspection_deadline_seconds: Annotated[
        float, typer.Option(envvar="AGGREGATOR_INSPECTION_DEADLINE_SECONDS")
    ] = INSPECTION_DEADLINE.total_seconds(),
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="table, or json: one JSON document")
    ] = ReportFormat.TABLE,
) -> None:
    """Recompute every verdict and every result from the log; exit 1 on any finding.

    ``--from``/``--to`` (times) select the declarations submitted in that window; their
    verdicts and results, and the withdrawals, payments and inspection findings
    (``inspections.findings``) the later steps of a versioned declaration rest on, are
    checked wherever they are in the log; so are its gate-outs (``gate.out``), each against
    the release it names. Customs' random sample is
    redrawn when the sampling keys are supplied (``CUSTOMS_SAMPLING_KEYS_FILE`` or
    ``CUSTOMS_SAMPLING_KEYS``, as the customs service takes them); otherwise it is reported as
    not checked, which is no finding. Every signature is checked against the key registry
    (``KEY_REGISTRY_FILE``, required): an event it refuses is a finding and is not counted.
    """
    low, high = position(start).time, position(end).time if end else None
    keyring = auditor_keyring()
    keys = auditor_registry()
    # the aggregator's changelog too: its states are signed as well (tombstones are not)
    topics = [*log.AUDITED, JOIN_STATE.name]
    events = [
        e
        for e in run(collect(topics, label="verifying"))
        if e.payload or e.topic != JOIN_STATE.name
    ]
    report = verify_window(
        events,
        low,
        high,
        timedelta(seconds=deadline_seconds),
        keyring,
        keys,
        timedelta(seconds=inspection_deadline_seconds),
    )
    if fmt is ReportFormat.JSON:
        sys.stdout.write(json.dumps(report_document(report), indent=2) + "\n")
    else:
        print_report(report, Console())
    raise typer.Exit(1 if report.findings else 0)


def auditor_keyring() -> Keyring | None:
    """The sampling keys the auditor supplies (None: none); exit 2 when they are malformed."""
    try:
        return load_sampling_keys(os.environ)
    except SamplingKeyError as exc:
        err.print(safe(f"sampling keys: {exc}"))
        raise typer.Exit(2) from None


def auditor_registry() -> KeyRegistry:
    """The key registry the signatures are checked with; exit 2 without a readable one."""
    path = get_settings().key_registry_file
    if path is None:
        err.print("verify needs the key registry: set KEY_REGISTRY_FILE")
        raise typer.Exit(2)
    try:
        return KeyRegistry.load(path)
    except SignatureError as exc:
        err.print(safe(str(exc)))
        raise typer.Exit(2) from None


@dataclass(frozen=True)
class Window:
    """The events of the declarations submitted in a time window (and orphans in it)."""

    declarations: list[DeclarationSubmitted]
    verdicts: list[AgencyVerdict]
    results: list[ClearanceResult]
    undecodable: list[log.LoggedEvent]
    refused: list[tuple[log.LoggedEvent, str]]  # signature refused: (event, why)
    withdrawals: list[DeclarationWithdrawn] = field(default_factory=list)
    payments: list[PaymentConfirmed] = field(default_factory=list)
    inspection_findings: list[InspectionFinding] = field(default_factory=list)
    gate_outs: list[GateOut] = field(default_factory=list)
    # every general guarantee's ledger entries in the log, whatever the window: a guarantee's
    # ledger spans declarations, and only its whole history folds
    ledger: list[PaymentConfirmed] = field(default_factory=list)


def split_signed(
    events: list[log.LoggedEvent], keys: Verifier
) -> tuple[list[log.LoggedEvent], list[tuple[log.LoggedEvent, str]]]:
    """The events whose signature ``keys`` accept (and the undecodable ones, which have
    none to check), and the others with the reason each was refused."""
    refused: list[tuple[log.LoggedEvent, str]] = []
    signed: list[log.LoggedEvent] = []
    for e in events:
        if e.event is not None:
            try:
                keys.check(e.payload, e.event)
            except SignatureError as exc:
                refused.append((e, str(exc)))
                continue
        signed.append(e)
    return signed, refused


def select_window(
    events: list[log.LoggedEvent], low: datetime | None, high: datetime | None, keys: Verifier
) -> Window:
    """The declarations submitted in [low, high) with a signature ``keys`` accept, all their
    events wherever they are in the log, and the events in [low, high) of declarations the
    log does not hold. Events whose signature is refused count as nothing but findings."""

    def inside(e: log.LoggedEvent) -> bool:
        return (low is None or e.timestamp >= low) and (high is None or e.timestamp < high)

    signed, refused = split_signed(events, keys)
    submitted = [e for e in signed if isinstance(e.event, DeclarationSubmitted)]
    chosen = {e.key for e in submitted if inside(e)}
    known = {e.key for e in submitted}

    def kept(e: log.LoggedEvent) -> bool:
        return e.key in chosen or (e.key not in known and inside(e))

    return Window(
        [e.event for e in signed if kept(e) and isinstance(e.event, DeclarationSubmitted)],
        [e.event for e in signed if kept(e) and isinstance(e.event, AgencyVerdict)],
        [e.event for e in signed if kept(e) and isinstance(e.event, ClearanceResult)],
        [e for e in signed if kept(e) and e.event is None],
        [(e, why) for e, why in refused if kept(e)],
        [e.event for e in signed if kept(e) and isinstance(e.event, DeclarationWithdrawn)],
        [e.event for e in signed if kept(e) and isinstance(e.event, PaymentConfirmed)],
        [e.event for e in signed if kept(e) and isinstance(e.event, InspectionFinding)],
        [e.event for e in signed if kept(e) and isinstance(e.event, GateOut)],
        [
            e.event
            for e in signed
            if isinstance(e.event, PaymentConfirmed) and e.event.kind in LEDGER_KINDS
        ],
    )


def verify_window(
    events: list[log.LoggedEvent],
    low: datetime | None,
    high: datetime | None,
    deadline_after: timedelta,
    keyring: Keyring | None,
    keys: Verifier,
    inspection_after: timedelta | None = INSPECTION_DEADLINE,
) -> Report:
    """The verification report of the window [low, high) of ``events``."""
    window = select_window(events, low, high, keys)
    report = verify(
        window.declarations,
        window.verdicts,
        window.results,
        deadline_after,
        recomputers(keyring),
        window.withdrawals,
        window.payments,
        window.inspection_findings,
        gate_outs=window.gate_outs,
        inspection_after=inspection_after,
        ledger=window.ledger,
    )
    for e in window.undecodable:
        report.add("undecodable event", e.key or "?", f"{e.topic}@{e.partition}/{e.offset}")
    for e, why in window.refused:
        report.add("signature refused", e.key or "?", f"{e.topic}@{e.partition}/{e.offset}: {why}")
    return report


def report_document(report: Report) -> dict[str, Any]:
    """The report as one JSON-ready document: every finding in full, and the counts."""
    return {
        "findings": [asdict(f) for f in report.findings],
        "unchecked": [asdict(n) for n in report.unchecked],
        "summary": {
            "declarations": report.declarations,
            "verdicts": report.verdicts,
            "results": report.results,
            "withdrawals": report.withdrawals,
            "payments": report.payments,
            "inspection_findings": report.inspection_findings,
            "gate_outs": report.gate_outs,
            "ledger_entries": report.ledger_entries,
            "findings": len(report.findings),
            "findings_by_kind": report.counts(),
            "unchecked": len(report.unchecked),
        },
    }


def print_report(report: Report, console: Console) -> None:
    """The report as tables: findings (the first 200), what was not checked, the counts."""
    if report.findings:
        shown = report.findings[:FINDINGS_SHOWN]
        longest_id = max(len(f.declaration_id) for f in shown)
        table = Table(title="findings")
        table.add_column("kind", overflow="fold")
        table.add_column("declaration", overflow="fold", min_width=min(longest_id, 64))
        table.add_column("detail", overflow="fold")
        for f in shown:
            table.add_row(safe(f.kind), safe(f.declaration_id), safe(f.detail))
        console.print(table)
        if len(report.findings) > FINDINGS_SHOWN:
            hidden = len(report.findings) - FINDINGS_SHOWN
            console.print(Text(f"{hidden} more finding(s): --format json lists them all"))
    for detail, count in sorted(Counter(n.detail for n in report.unchecked).items()):
        console.print(safe(f"not checked, {count} verdict(s): {detail}"))
    if report.unchecked:
        console.print(
            Text(f"to check the random sample, supply the keys in {KEYS_FILE_ENV} or {KEYS_ENV}")
        )
    totals = Table(title="summary")
    totals.add_column("what", overflow="fold")
    totals.add_column("count", justify="right")
    rows = [
        ("declarations", report.declarations),
        ("verdicts", report.verdicts),
        ("results", report.results),
        ("withdrawals", report.withdrawals),
        ("payments", report.payments),
        ("inspection findings", report.inspection_findings),
        ("gate-outs", report.gate_outs),
        ("guarantee ledger entries", report.ledger_entries),
        *report.counts().items(),
        ("findings", len(report.findings)),
    ]
    if report.unchecked:
        rows.append(("sampling not checked", len(report.unchecked)))
    for what, count in rows:
        totals.add_row(safe(what), str(count))
    console.print(totals)


@app.command("rebuild-read-model")
def rebuild_read_model(
    into: Annotated[str, typer.Option(help="the shadow collection to build: shadow_<name>")],
) -> None:
    """Rebuild the read model from the beginning of the topics into ``into``; diff it.

    ``into`` is dropped first: it must be a shadow collection (``shadow_`` and letters, digits
    or ``_``), never a live one; any other name is refused with exit code 2, nothing changed.
    Only events the key registry (``KEY_REGISTRY_FILE``) accepts are folded, as the projector
    folds only those.
    """
    problem = readmodel_rebuild.shadow_name_problem(into)
    if problem is not None:
        err.print(safe(f"refused: {problem}; nothing was changed"))
        raise typer.Exit(2)
    topics = list(log.AUDITED)
    keys = auditor_registry()
    # what the projector folds: signed events only
    events, refused = split_signed(run(collect(topics, label="rebuilding")), keys)
    if refused:
        err.print(safe(f"{len(refused)} events left out: their signature is refused"))
    diff = run(readmodel_rebuild.rebuild(get_settings(), events, into))
    console = Console()
    console.print(
        safe(
            f"rebuilt {diff.rebuilt} documents into {into!r}; "
            f"{len(diff.differences)} differ from the live read model"
        )
    )
    for line in diff.differences[:50]:
        console.print(safe(f"  {line}"))
    raise typer.Exit(1 if diff.differences else 0)


@letters_app.command("list")
def letters_list() -> None:
    """Every dead letter with its provenance."""
    Console().print(letters_table(run(deadletters.dead_letters(get_settings()))))


def letters_table(letters: Iterable[deadletters.DeadLetter]) -> Table:
    """One row per dead letter: where it is, when, who gave up, its source, key and error."""
    table = Table(title="dead letters")
    for column in ("#", "time", "service", "source", "key", "error"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            f"{letter.partition}/{letter.offset}",
            safe(deadletters.describe_time(letter)),
            safe(letter.service),
            safe(f"{letter.source_topic}@{letter.source_partition}/{letter.source_offset}"),
            safe((letter.key or b"").decode(errors="replace")),
            safe(letter.error[:80]),
        )
    return table


@letters_app.command("show")
def letters_show(partition: int, offset: int) -> None:
    """One dead letter in full: provenance, error, headers, the original value in hex."""
    for letter in run(deadletters.dead_letters(get_settings())):
        if (letter.partition, letter.offset) == (partition, offset):
            Console().print(letter_view(letter))
            return
    err.print(f"no dead letter at {partition}/{offset}")
    raise typer.Exit(1)


def letter_view(letter: deadletters.DeadLetter) -> Table:
    """Everything a dead letter holds, every text made inert, the value as a hex dump."""
    view = Table(title=f"dead letter {letter.partition}/{letter.offset}", show_header=False)
    view.add_column("field", style="bold")
    view.add_column("value", overflow="fold")
    source = f"{letter.source_topic}@{letter.source_partition}/{letter.source_offset}"
    key = "(null)" if letter.key is None else letter.key.decode(errors="replace")
    view.add_row("time", safe(letter.time))
    view.add_row("service", safe(letter.service))
    view.add_row("source", safe(source))
    view.add_row("error", safe(letter.error))
    view.add_row("key", safe(key))
    for name, value in letter.headers:
        shown = "(null)" if value is None else value.decode(errors="replace")
        view.add_row(safe(f"header {name}"), safe(shown))
    size = "null" if letter.value is None else f"{len(letter.value)} bytes"
    view.add_row(f"value ({size})", hex_dump(letter.value))
    return view


@letters_app.command("redrive")
def letters_redrive(
    dry_run: Annotated[bool, typer.Option(help="say what would be re-driven")] = False,
) -> None:
    """Re-drive every dead letter not re-driven before to its source topic (after a fix).

    Only to an input topic of the platform (declarations.submitted, verdicts.*); any other
    letter, and one that is incomplete or whose topic is gone, is refused and listed.
    """
    refused: list[deadletters.Refused] = []
    done = run(deadletters.redrive(get_settings(), dry_run=dry_run, skipped=refused))
    print_redrive(done, refused, dry_run, Console())


def print_redrive(
    done: list[deadletters.DeadLetter],
    refused: list[deadletters.Refused],
    dry_run: bool,
    console: Console,
) -> None:
    """How many letters went back, and each refused one with the reason."""
    verb = "would re-drive" if dry_run else "re-drove"
    console.print(f"{verb} {len(done)} dead letter(s); refused {len(refused)}")
    for item in refused:
        letter = item.letter
        console.print(safe(f"refused {letter.partition}/{letter.offset}: {item.reason}"))
