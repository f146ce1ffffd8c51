"""``python -m singlewindow.tracing show <trace id | declaration id> [--dir DIR]``: a trace
from the local span files of every process (``OTEL_TRACES_FILE``), as a tree with durations.

Given a declaration id, every trace whose spans carry it as their record key (a declaration,
each of its versions or later events) is shown, oldest first. ``DIR`` defaults to the
directory of ``OTEL_TRACES_FILE``, else ``var/traces``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from singlewindow.tracing.jsonl import read_lines, read_trace, render, trace_files

KEY = "messaging.kafka.message.key"


def default_dir() -> Path:
    configured = os.environ.get("OTEL_TRACES_FILE")
    return Path(configured).parent if configured else Path("var/traces")


def traces_of(declaration_id: str, files: list[Path]) -> list[str]:
    """The traces with a span about ``declaration_id``, by their first such span's start."""
    first: dict[str, int] = {}
    for line in read_lines(files):
        if (line.get("attributes") or {}).get(KEY) == declaration_id:
            trace_id, start = line["trace_id"], line["start_ns"]
            first[trace_id] = min(start, first.get(trace_id, start))
    return sorted(first, key=first.__getitem__)


def show(ident: str, directory: Path) -> str:
    files = trace_files(directory)
    if not files:
        return f"no span files (*.jsonl) in {directory}"
    trace_ids = traces_of(ident, files) if ident.upper().startswith("DEC-") else [ident]
    if not trace_ids:
        return f"no trace about {ident} in {directory}"
    return "\n\n".join(render(t, read_trace(t, files)) for t in trace_ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m singlewindow.tracing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    show_parser = commands.add_parser("show", help="print a trace as a tree")
    show_parser.add_argument("ident", help="a trace id (32 hex digits) or a declaration id")
    show_parser.add_argument("--dir", type=Path, default=None, help="the span files' directory")
    args = parser.parse_args(argv)
    print(show(args.ident, args.dir or default_dir()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
