"""Spans in local JSON-lines files, and one trace read back from them as a tree.

Each process appends its spans to its own file (``OTEL_TRACES_FILE``, e.g.
``var/traces/{service}.jsonl``), one object a line::

    {"trace_id": "<32 hex>", "span_id": "<16 hex>", "parent_id": "<16 hex>" | null,
     "service": "customs", "name": "process declarations.submitted", "kind": "CONSUMER",
     "start_ns": <unix ns>, "end_ns": <unix ns>, "status": "UNSET" | "OK" | "ERROR",
     "attributes": {...}}

A batch of spans is written with one ``write`` on a file opened for appending, so processes
sharing a file do not interleave their lines. :func:`read_trace` gathers one trace from every
file of a directory; :func:`render` draws it as a tree, each span with its duration and its
start relative to the trace's first.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import format_span_id, format_trace_id


def span_line(span: ReadableSpan) -> dict[str, Any]:
    """The JSON object of one finished span."""
    context, parent = span.context, span.parent
    assert context is not None
    return {
        "trace_id": format_trace_id(context.trace_id),
        "span_id": format_span_id(context.span_id),
        "parent_id": format_span_id(parent.span_id) if parent is not None else None,
        "service": span.resource.attributes.get("service.name"),
        "name": span.name,
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }


class JsonLinesExporter(SpanExporter):
    """Appends finished spans to ``path`` (its directory is made), a batch a write."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = "".join(json.dumps(span_line(s), default=str) + "\n" for s in spans).encode()
        with self._lock:
            if self._fd is None:
                return SpanExportResult.FAILURE
            os.write(self._fd, data)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # every export is written at once


@dataclass
class SpanNode:
    """A span of a trace read back, and its children in start order."""

    line: dict[str, Any]
    children: list[SpanNode] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return float(self.line["end_ns"] - self.line["start_ns"]) / 1e6


def read_lines(files: Iterable[Path]) -> Iterable[dict[str, Any]]:
    """Every span line of ``files`` (a line cut short by a process killed mid-write is
    skipped)."""
    for path in files:
        with path.open(encoding="utf-8") as lines:
            for text in lines:
                try:
                    line = json.loads(text)
                except json.JSONDecodeError:
                    continue
                if isinstance(line, dict):
                    yield line


def trace_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl"))


def read_trace(trace_id: str, files: Iterable[Path]) -> list[SpanNode]:
    """The roots of trace ``trace_id``: spans whose parent is in no file (the first span of
    the trace, or one whose parent was not exported), each with its subtree."""
    nodes = {
        line["span_id"]: SpanNode(line)
        for line in read_lines(files)
        if line.get("trace_id") == trace_id.lower()
    }
    roots: list[SpanNode] = []
    for node in nodes.values():
        parent = nodes.get(node.line.get("parent_id") or "")
        (parent.children if parent is not None else roots).append(node)
    for node in nodes.values():
        node.children.sort(key=lambda n: n.line["start_ns"])
    return sorted(roots, key=lambda n: n.line["start_ns"])


def walk(roots: Sequence[SpanNode], depth: int = 0) -> Iterable[tuple[int, SpanNode]]:
    """Every node, depth first, with its depth."""
    for node in roots:
        yield depth, node
        yield from walk(node.children, depth + 1)


def render(trace_id: str, roots: Sequence[SpanNode]) -> str:
    """The trace as a tree: a line a span, ``service: name``, its duration, and its start
    after the trace's first span."""
    spans = list(walk(roots))
    if not spans:
        return f"trace {trace_id}: no spans found"
    start = min(node.line["start_ns"] for _, node in spans)
    end = max(node.line["end_ns"] for _, node in spans)
    services = {node.line.get("service") for _, node in spans}
    out = [
        f"trace {trace_id}: {len(spans)} spans, {len(services)} services, "
        f"{(end - start) / 1e6:.1f} ms"
    ]
    for depth, node in spans:
        line = node.line
        label = f"{'  ' * depth}{line.get('service')}: {line['name']}"
        failed = "  ERROR" if line.get("status") == "ERROR" else ""
        offset = (line["start_ns"] - start) / 1e6
        out.append(f"{label:<64} {node.duration_ms:9.1f} ms  @{offset:8.1f} ms{failed}")
    return "\n".join(out)
