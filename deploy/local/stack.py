"""The local stack: Apache Kafka 4 (KRaft, from Maven Central jars) and FerretDB (SQLite).

``python deploy/local/stack.py up|down|status|clean``. Jars and the FerretDB binary are
cached under ``~/.cache/singlewindow`` so a second ``up`` is quick; data and logs live in
``var/`` (``down`` keeps it, ``clean`` removes it). When ``KAFKA_BOOTSTRAP_SERVERS`` or
``MONGODB_URL`` is set, that server is used and nothing local is started for it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deploy.local import components
from singlewindow.kafka.admin import provision_topics
from singlewindow.settings import get_settings

app = typer.Typer(help=__doc__, no_args_is_help=True)
console = Console(stderr=True)


def _local() -> list[components.Component]:
    chosen: list[components.Component] = []
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        chosen.append(components.Kafka())
    if not os.environ.get("MONGODB_URL"):
        chosen.append(components.FerretDB())
    return chosen


@app.command()
def up(
    record: Annotated[
        Path | None, typer.Option(help="write the names of what this call started")
    ] = None,
) -> None:
    """Install what is missing, start what is not running, wait until ready, create topics."""
    started: list[str] = []
    for component in _local():
        if component.running():
            console.print(f"[green]{component.name}[/] already running")
            continue
        with console.status(f"installing {component.name}"):
            component.install()
        with console.status(f"starting {component.name}"):
            component.start()
        started.append(component.name)
        console.print(f"[green]{component.name}[/] started ({component.address})")
    if record:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text("".join(f"{name}\n" for name in started))
    settings = get_settings()
    with console.status("provisioning topics"):
        created = asyncio.run(provision_topics(settings))
    console.print(f"topics ready ({len(created)} created) on {settings.kafka_bootstrap_servers}")


@app.command()
def down(
    recorded: Annotated[Path | None, typer.Option(help="stop only what this record names")] = None,
) -> None:
    """Stop what ``up`` started; data stays."""
    names = None
    if recorded:
        names = set(recorded.read_text().split()) if recorded.exists() else set()
    for component in reversed(_local()):
        if names is not None and component.name not in names:
            continue
        if component.stop():
            console.print(f"[yellow]{component.name}[/] stopped")


@app.command()
def status() -> None:
    """Say what runs."""
    for component in _local():
        state = "running" if component.running() else "stopped"
        console.print(f"{component.name}: {state} ({component.address})")


@app.command()
def clean() -> None:
    """Stop everything and remove the local data (not the download cache)."""
    down(recorded=None)
    shutil.rmtree(components.VAR, ignore_errors=True)
    console.print(f"removed {components.VAR}")


if __name__ == "__main__":
    app()
