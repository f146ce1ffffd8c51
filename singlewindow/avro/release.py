"""Keep every released writer schema, so data written today decodes years from now.

``python -m singlewindow.avro.release`` copies the current schema of every event type into
``schemas/avro/released/<name>.<fingerprint>.avsc`` (full form, logical types and docs
included: the canonical form drops logical types, which a reader needs for decimals and
times). Files are never overwritten or removed. Run it whenever an event schema changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from singlewindow.avro.compatibility import plain
from singlewindow.avro.registry import SchemaRegistry, canonical_fingerprint, schema_dir

EVENT_TYPES = (
    "cn.singlewindow.events.DeclarationSubmitted",
    "cn.singlewindow.events.AgencyVerdict",
    "cn.singlewindow.events.ClearanceResult",
    "cn.singlewindow.events.JoinState",
    "cn.singlewindow.events.DeclarationWithdrawn",
    "cn.singlewindow.events.PaymentConfirmed",
    "cn.singlewindow.events.InspectionFinding",
    "cn.singlewindow.events.GateOut",
)


def released_path(directory: Path, name: str, fingerprint: bytes) -> Path:
    return directory / "released" / f"{name}.{fingerprint.hex()}.avsc"


def release(directory: Path | None = None) -> list[Path]:
    """Write the current version of each event type if it is not released yet."""
    directory = directory or schema_dir()
    registry = SchemaRegistry(directory)
    written = []
    for name in EVENT_TYPES:
        schema = registry.reader(name)
        path = released_path(directory, name, canonical_fingerprint(schema))
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(plain(schema), indent=2, ensure_ascii=False) + "\n")
            written.append(path)
    return written


def main() -> None:
    for path in release():
        typer.echo(f"released {path}")


if __name__ == "__main__":
    typer.run(main)
