"""``make demo``: one sample declaration per outcome through the platform; results as a table;
then a trader's journeys after the first answer (:mod:`deploy.local.journeys`: pay, pay late,
guarantee, a general guarantee and its consolidated repayment, documents, amendment,
withdrawal, inspection; the goods out through the port's gate), step by step.

Uses the intake at ``INTAKE_HOST``:``INTAKE_PORT``, the bank at ``BANK_HOST``:``BANK_PORT``,
the inspection station at ``INSPECTION_HOST``:``INSPECTION_PORT`` and the gate at
``GATE_HOST``:``GATE_PORT`` (8083) when they answer (``make run`` in another terminal);
otherwise starts the platform for the demo and stops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from deploy.local.demo_data import (
    DEMO_BROKER,
    SCENARIOS,
    demo_usccs,
    joint_inspection_body,
    sample_declaration_body,
    scenario,
)
from deploy.local.journeys import View, Window, every_journey
from deploy.local.launcher import running_platform
from services.intake.devissuer import bearer, inspector_bearer
from singlewindow.registry import agency_registry


async def run(url: str) -> list[tuple[str, dict[str, Any]]]:
    bodies = [(scenario(i).name, sample_declaration_body(i)) for i in range(len(SCENARIOS))]
    bodies.append(("joint-inspection-customs-and-ciq", joint_inspection_body()))
    auth = bearer(DEMO_BROKER, demo_usccs())
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=auth) as client:

        async def one(name: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            submitted = await client.post("/v1/declarations", json=body)
            submitted.raise_for_status()
            path = submitted.headers["location"]
            for _ in range(4):
                answer = (await client.get(path, params={"wait": 30})).json()
                if answer["result"] is not None:
                    break
            return name, answer

        return await asyncio.gather(*(one(n, b) for n, b in bodies))


def inspector(agency: str) -> dict[str, str]:
    """The headers of the demo's inspector of ``agency`` at the inspection station."""
    return inspector_bearer(f"demo-{agency}-inspector", agency)


async def journeys(urls: tuple[str, str, str, str]) -> dict[str, list[View] | BaseException]:
    """Every journey; ``urls``: the intake's, the bank's, the inspection station's, the
    gate's (its officer: the demo's inspector of the port authority)."""
    window = Window.open(urls, bearer(DEMO_BROKER, demo_usccs()), inspector)
    try:
        return await every_journey(window, return_exceptions=True)
    finally:
        await window.close()


def journey_table(ended: dict[str, list[View] | BaseException]) -> Table:
    table = Table(title="after the first answer: one declaration, its steps")
    columns = ("journey", "steps (status, version)", "duties CNY", "late interest CNY", "gate-out")
    for column in columns:
        table.add_column(column)
    for name, views in ended.items():
        if isinstance(views, BaseException):  # e.g. drawn by customs' random sample
            table.add_row(name, f"stopped: {views}"[:200], "-", "-", "-")
            continue
        last = views[-1]
        steps = " → ".join(f"{s['status']} v{s['version']}" for s in last.get("steps") or ())
        notice, settlement = last.get("payment_notice") or {}, last.get("settlement") or {}
        outs = last.get("gate_outs") or ()
        table.add_row(
            name,
            steps,
            str(notice.get("amount", "-")),
            str(settlement.get("late_interest", "-")),
            "; ".join(f"{o['vehicle']} {', '.join(o['containers'])}".strip() for o in outs) or "-",
        )
    return table


def main() -> None:
    host, port = os.environ.get("INTAKE_HOST", "127.0.0.1"), os.environ.get("INTAKE_PORT", "8000")
    url = f"http://{host}:{port}"
    bank_host = os.environ.get("BANK_HOST", "127.0.0.1")
    bank_url = f"http://{bank_host}:{os.environ.get('BANK_PORT', '8081')}"
    station_host = os.environ.get("INSPECTION_HOST", "127.0.0.1")
    station_url = f"http://{station_host}:{os.environ.get('INSPECTION_PORT', '8082')}"
    gate_host = os.environ.get("GATE_HOST", "127.0.0.1")
    gate_url = f"http://{gate_host}:{os.environ.get('GATE_PORT', '8083')}"
    with ExitStack() as stack:
        try:
            for door in (url, bank_url, station_url, gate_url):
                httpx.get(f"{door}/healthz", timeout=2).raise_for_status()
        except httpx.HTTPError:
            logs = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            platform = stack.enter_context(running_platform(logs, intake_port=18050))
            url, bank_url = platform.url, platform.bank_url
            station_url, gate_url = platform.inspection_url, platform.gate_url
        answers = asyncio.run(run(url))
        ended = asyncio.run(journeys((url, bank_url, station_url, gate_url)))
    table = Table(title="one declaration, every agency, one answer")
    agencies = agency_registry().codes
    for column in ("scenario", "status", *agencies, "reasons", "duties CNY", "charges CNY"):
        table.add_column(column)
    for name, answer in answers:
        verdicts = {v["agency"]: v for v in answer["verdicts"]}
        reasons = sorted({r["code"] for v in answer["verdicts"] for r in v["reasons"]})
        result = answer["result"] or {}
        table.add_row(
            name,
            answer["status"],
            *(verdicts[a]["decision"] if a in verdicts else "-" for a in agencies),
            ", ".join(reasons) or "-",
            str(result.get("total_duties", "-")),
            str(result.get("total_charges", "-")),
        )
    Console().print(table)
    Console().print(journey_table(ended))


if __name__ == "__main__":
    typer.run(main)
