"""The auditors' tool: ``python -m services.audit --help``.

Reads Kafka with manually assigned partitions (no consumer group, no commits,
``read_committed``), so live services are never disturbed.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from services.audit import deadletters, log, readmodel_rebuild
from services.audit.verify import verify
from singlewindow.events import AgencyVerdict, ClearanceResult, DeclarationSubmitted
from singlewindow.settings import get_settings
from singlewindow.topics import CLEARANCE_RESULTS, DECLARATIONS_SUBMITTED, VERDICT_TOPICS

app = typer.Typer(help=__doc__, no_args_is_help=True)
letters_app = typer.Typer(help="The dead-letter topic: list, show, re-drive.")
app.add_typer(letters_app, name="dead-letters")
err = Console(stderr=True)
T = TypeVar("T")
From = Annotated[str, typer.Option("--from", help="beginning | offset | ISO-8601 time")]
To = Annotated[str | None, typer.Option("--to", help="offset | ISO-8601 time (default: now)")]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def collect(
    topics: list[str], start: str = "beginning", end: str | None = None, label: str = "reading"
) -> list[log.LoggedEvent]:
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
    rank = {DeclarationSubmitted: 0, AgencyVerdict: 1, ClearanceResult: 2}
    events.sort(key=lambda e: (rank.get(type(e.event), 3), e.timestamp, e.topic, e.offset))
    if not events:
        err.print(f"no events for {declaration_id}")
        raise typer.Exit(1)
    table = Table(title=f"timeline of {declaration_id}")
    for column in ("time (UTC)", "topic", "partition", "offset", "event"):
        table.add_column(column)
    for e in events:
        table.add_row(
            e.timestamp.isoformat(timespec="milliseconds"),
            e.topic,
            str(e.partition),
            str(e.offset),
            summary(e),
        )
    Console().print(table)


def summary(item: log.LoggedEvent) -> str:
    event = item.event
    if isinstance(event, DeclarationSubmitted):
        agencies = ", ".join(event.required_agencies)
        return f"submitted: {len(event.items)} item(s), asks {agencies}"
    if isinstance(event, AgencyVerdict):
        codes = ", ".join(r.code for r in event.reasons) or "no rule fired"
        return f"{event.agency} {event.decision} ({codes}) [{event.rules_version}]"
    if isinstance(event, ClearanceResult):
        return f"result {event.status}, duties {event.total_duties} CNY"
    return f"undecodable: {item.error}"


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
) -> None:
    """Recompute every verdict and every result from the log; exit 1 on any finding.

    ``--from``/``--to`` (times) select the declarations submitted in that window; their
    verdicts and results are checked wherever they are in the log.
    """
    events = run(collect(list(log.AUDITED), label="verifying"))
    low, high = log.Position.parse(start).time, log.Position.parse(end).time if end else None
    chosen = {
        e.key
        for e in events
        if isinstance(e.event, DeclarationSubmitted)
        and (low is None or e.timestamp >= low)
        and (high is None or e.timestamp < high)
    }
    known = {e.key for e in events if isinstance(e.event, DeclarationSubmitted)}
    in_window = [
        e
        for e in events
        if e.key in chosen
        or (
            e.key not in known
            and (low is None or e.timestamp >= low)
            and (high is None or e.timestamp < high)
        )
    ]
    undecodable = [e for e in in_window if e.event is None]
    declarations = [e.event for e in in_window if isinstance(e.event, DeclarationSubmitted)]
    verdicts = [e.event for e in in_window if isinstance(e.event, AgencyVerdict)]
    results = [e.event for e in in_window if isinstance(e.event, ClearanceResult)]
    report = verify(declarations, verdicts, results, timedelta(seconds=deadline_seconds))
    for e in undecodable:
        report.add("undecodable event", e.key or "?", f"{e.topic}@{e.partition}/{e.offset}")
    console = Console()
    if report.findings:
        table = Table(title="findings")
        for column in ("kind", "declaration", "detail"):
            table.add_column(column)
        for f in report.findings[:200]:
            table.add_row(f.kind, f.declaration_id, f.detail)
        console.print(table)
    kinds: dict[str, int] = {}
    for f in report.findings:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    totals = Table(title="summary")
    totals.add_column("what")
    totals.add_column("count", justify="right")
    for what, count in [
        ("declarations", report.declarations),
        ("verdicts", report.verdicts),
        ("results", report.results),
        *sorted(kinds.items()),
    ]:
        totals.add_row(what, str(count))
    totals.add_row("findings", str(len(report.findings)))
    console.print(totals)
    raise typer.Exit(1 if report.findings else 0)


@app.command("rebuild-read-model")
def rebuild_read_model(
    into: Annotated[str, typer.Option(help="the shadow collection to build")],
) -> None:
    """Rebuild the read model from the beginning of the topics into ``into``; diff it."""
    topics = [
        DECLARATIONS_SUBMITTED.name,
        *(t.name for t in VERDICT_TOPICS.values()),
        CLEARANCE_RESULTS.name,
    ]
    events = run(collect(topics, label="rebuilding"))
    diff = run(readmodel_rebuild.rebuild(get_settings(), events, into))
    Console().print(
        f"rebuilt {diff.rebuilt} documents into {into!r}; "
        f"{len(diff.differences)} differ from the live read model"
    )
    for line in diff.differences[:50]:
        Console().print(f"  {line}")
    raise typer.Exit(1 if diff.differences else 0)


@letters_app.command("list")
def letters_list() -> None:
    """Every dead letter with its provenance."""
    table = Table(title="dead letters")
    for column in ("#", "time", "service", "source", "key", "error"):
        table.add_column(column)
    for letter in run(deadletters.dead_letters(get_settings())):
        table.add_row(
            f"{letter.partition}/{letter.offset}",
            deadletters.describe_time(letter),
            letter.service,
            f"{letter.source_topic}@{letter.source_partition}/{letter.source_offset}",
            (letter.key or b"").decode(errors="replace"),
            letter.error[:80],
        )
    Console().print(table)


@letters_app.command("show")
def letters_show(partition: int, offset: int) -> None:
    """One dead letter in full: headers, error, the original value in hex."""
    for letter in run(deadletters.dead_letters(get_settings())):
        if (letter.partition, letter.offset) == (partition, offset):
            Console().print(letter)
            return
    raise typer.Exit(1)


@letters_app.command("redrive")
def letters_redrive(
    dry_run: Annotated[bool, typer.Option(help="say what would be re-driven")] = False,
) -> None:
    """Re-drive every dead letter not re-driven before to its source topic (after a fix)."""
    skipped: list[deadletters.DeadLetter] = []
    done = run(deadletters.redrive(get_settings(), dry_run=dry_run, skipped=skipped))
    verb = "would re-drive" if dry_run else "re-drove"
    Console().print(f"{verb} {len(done)} dead letter(s)")
    for letter in skipped:
        source = f"{letter.source_topic}@{letter.source_partition}/{letter.source_offset}"
        why = (
            f"it holds only part of the original, which is at {source}"
            f" (value sha256 {letter.value_sha256})"
            if letter.incomplete
            else f"its source topic {letter.source_topic!r} no longer exists"
        )
        Console().print(f"passed over {letter.partition}/{letter.offset}: {why}")
