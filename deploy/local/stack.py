"""The local stack: Apache Kafka 4 (KRaft, from Maven Central jars) and FerretDB (SQLite).

``python deploy/local/stack.py up|down|status|clean|acls``. Jars and the FerretDB binary
are cached under ``~/.cache/singlewindow`` so a second ``up`` is quick; data and logs live in
``var/`` (``down`` keeps it, ``clean`` removes it). When ``KAFKA_BOOTSTRAP_SERVERS`` or
``MONGODB_URL`` is set, that server is used and nothing local is started for it.

The local Kafka is secured (TLS, SCRAM-SHA-512, ACLs): ``up`` provisions the topics and the
ACLs of :mod:`singlewindow.security` as the stack's ``admin``, and leaves each principal's
settings in ``var/credentials/<principal>.env`` (services, ``audit``, ``redrive``, ``admin``).
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
    local = _local()
    for component in local:
        if component.running() and component.outdated():
            console.print(f"[yellow]{component.name}[/] runs an outdated configuration: restarting")
            component.stop()
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
    kafka = next((c for c in local if isinstance(c, components.Kafka)), None)
    settings = kafka.admin_settings() if kafka else get_settings()
    with console.status("provisioning topics"):
        created = asyncio.run(provision_topics(settings))
    console.print(f"topics ready ({len(created)} created) on {settings.kafka_bootstrap_servers}")
    if kafka:
        with console.status("SCRAM users and ACLs"):
            users, added, removed = asyncio.run(kafka.secure())
        if users:
            console.print(f"SCRAM users added: {', '.join(sorted(users))}")
        console.print(
            f"ACLs as declared ({added} created, {removed} removed); credentials in "
            f"{kafka.trust.credentials}"
        )


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
def acls(
    check: Annotated[bool, typer.Option(help="only say what differs; exit 1 if anything")] = False,
) -> None:
    """Make the ACLs of the Kafka the environment names (KAFKA_*, as a super user) exactly
    the declared ones (singlewindow/security.py); ``up`` does it for the local Kafka."""
    from singlewindow.kafka.acls import binding, describe_acls, reconcile_acls
    from singlewindow.kafka.admin import admin_client
    from singlewindow.security import acls as declared

    async def apply() -> tuple[int, int]:
        admin = await admin_client(get_settings(), ready_timeout=30)
        try:
            if check:
                held = await describe_acls(admin)
                wanted = {binding(a) for a in declared()}
                return len(wanted - held), len(held - wanted)
            created, deleted = await reconcile_acls(admin, declared())
            return len(created), len(deleted)
        finally:
            await admin.close()

    missing, extra = asyncio.run(apply())
    verb = ("missing", "not declared") if check else ("created", "removed")
    console.print(f"ACLs: {missing} {verb[0]}, {extra} {verb[1]}")
    if check and (missing or extra):
        raise typer.Exit(1)


@app.command()
def clean() -> None:
    """Stop everything and remove the local data (not the download cache)."""
    down(recorded=None)
    shutil.rmtree(components.VAR, ignore_errors=True)
    console.print(f"removed {components.VAR}")


if __name__ == "__main__":
    app()
