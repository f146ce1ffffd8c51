"""What a person sees: the trader's view of a declaration as a rich panel, the list of
declarations as a table, a problem document with every field error, one line per change
while watching. Machine output (``--json``) is not here: it is the platform's JSON as is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from singlewindow_cli.api import Json
from singlewindow_cli.watch import ASSESSING, ENDED_BADLY

RELEASED = frozenset({"RELEASED", "CONDITIONALLY_RELEASED"})


def status_style(status: str) -> str:
    if status in ENDED_BADLY:
        return "bold red"
    if status in RELEASED:
        return "bold green"
    return "bold cyan" if status in ASSESSING else "bold yellow"


def status_text(status: str) -> Text:
    return Text(status, style=status_style(status))


def _reasons(reasons: list[Json]) -> str:
    lines = []
    for reason in reasons:
        item = f" (item {reason['item']})" if reason.get("item") else ""
        lines.append(f"{reason.get('code')}{item}: {reason.get('message')}")
    return "\n".join(lines)


def _verdicts(view: Json) -> Table | None:
    verdicts = view.get("verdicts") or []
    if not verdicts:
        return None
    table = Table(title="Agencies", title_justify="left", expand=True)
    table.add_column("agency", no_wrap=True)
    table.add_column("decision", no_wrap=True)
    table.add_column("duties (CNY)", justify="right", no_wrap=True)
    table.add_column("reasons")
    for verdict in verdicts:
        table.add_row(
            str(verdict.get("agency")),
            str(verdict.get("decision")),
            str(verdict.get("total_duties") or ""),
            _reasons(verdict.get("reasons") or []),
        )
    return table


def _duties(view: Json) -> Table | None:
    lines = [
        (verdict.get("agency"), duty)
        for verdict in view.get("verdicts") or []
        for duty in verdict.get("duties") or []
    ]
    if not lines:
        return None
    table = Table(title="Duties by item (CNY)", title_justify="left", expand=True)
    for name in ("item", "customs value", "duty rate", "duty", "VAT rate", "VAT"):
        table.add_column(name, justify="right")
    for _, duty in lines:
        table.add_row(
            str(duty.get("item")),
            str(duty.get("customs_value_cny")),
            str(duty.get("duty_rate")),
            str(duty.get("duty")),
            str(duty.get("vat_rate")),
            str(duty.get("vat")),
        )
    return table


def _facts(view: Json) -> list[str]:
    """One line each: the payment notice, its settlement, the inspection order, the
    sanction, the gate-outs."""
    facts = []
    notice = view.get("payment_notice")
    if notice:
        facts.append(
            f"Payment notice {notice.get('notice_id')}: {notice.get('amount')} CNY, "
            f"{notice.get('outstanding')} outstanding, due by {notice.get('due_by')}"
        )
    settlement = view.get("settlement")
    if settlement:
        facts.append(
            f"Settled: {settlement.get('kind')} {settlement.get('paid')} CNY "
            f"({settlement.get('days_late')} days late, interest {settlement.get('late_interest')})"
        )
    inspection = view.get("inspection")
    if inspection:
        checks = ", ".join(f"{c.get('agency')}: {c.get('check')}" for c in inspection["checks"])
        facts.append(f"Joint inspection order {inspection.get('order_id')}: {checks}")
    sanction = view.get("sanction")
    if sanction:
        facts.append(f"Sanction: {sanction.get('measure')} ({sanction.get('agency')})")
    for out in view.get("gate_outs") or []:
        containers = ", ".join(out.get("containers") or []) or "no containers"
        facts.append(f"Out through gate {out.get('gate')}: {out.get('vehicle')}, {containers}")
    return facts


def view_panel(view: Json) -> Panel:
    """A declaration as its trader sees it."""
    status = str(view.get("status"))
    title = Text.assemble(str(view.get("declaration_id")), "  ", status_text(status))
    if view.get("version") is not None:
        title.append(f"  version {view['version']}")
    parts: list[RenderableType] = []
    step = view.get("next_step")
    if step:
        parts.append(Text.assemble(("Next: ", "bold"), (str(step.get("code")), "bold"), " ",
                                   str(step.get("message") or "")))  # fmt: skip
    result = view.get("result") or {}
    if result.get("total_duties") is not None:
        parts.append(Text(f"Duties and taxes: {result['total_duties']} CNY; "
                          f"charges {result.get('total_charges', '0.00')} CNY"))  # fmt: skip
    parts.extend(Text(fact) for fact in _facts(view))
    parts.extend(table for table in (_verdicts(view), _duties(view)) if table is not None)
    if not parts:
        parts.append(Text("The agencies are assessing the declaration."))
    return Panel(Group(*parts), title=title, title_align="left")


def change_line(view: Json) -> Text:
    """One line for a change seen while watching (output that is not a terminal)."""
    step = (view.get("next_step") or {}).get("code")
    line = Text.assemble(str(view.get("declaration_id")), " ", status_text(str(view.get("status"))))
    if view.get("version") is not None:
        line.append(f" version {view['version']}")
    if step:
        line.append(f" next {step}")
    return line


def declarations_table(page: Json) -> Table:
    """The page of ``GET /v1/declarations`` as a table."""
    table = Table(title="Declarations, newest first", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("declaration", "status", "version", "type", "submitted", "updated", "next"):
        table.add_column(name, no_wrap=name in ("declaration", "status"), overflow="fold")
    for row in page.get("declarations") or []:
        table.add_row(
            str(row.get("declaration_id")),
            status_text(str(row.get("status"))),
            _text(row.get("version")),
            _text(row.get("declaration_type")),
            _moment(row.get("submitted_at")),
            _moment(row.get("updated_at")),
            _text((row.get("next_step") or {}).get("code")),
        )
    return table


def _moment(value: Any) -> str:
    """An ISO-8601 time to the minute, in UTC (as given when it is not one)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return _text(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def problem_text(message: str, problem: Json | None, hint: str = "") -> Text:
    """A failure for a person: the title (and status), the detail, each field error, and
    what to do about it."""
    text = _problem(message, problem)
    if hint:
        text.append(f"\n{hint}")
    return text


def _problem(message: str, problem: Json | None) -> Text:
    if problem is None:
        return Text.assemble(("Error: ", "bold red"), message)
    status = f" ({problem['status']})" if problem.get("status") else ""
    text = Text.assemble(("Error: ", "bold red"), (f"{message}{status}", "bold"))
    if problem.get("detail"):
        text.append(f"\n{problem['detail']}")
    for error in problem.get("errors") or []:
        text.append("\n  ")
        text.append(str(error.get("field")), style="bold")
        text.append(f": {error.get('message')}")
    return text
