"""Schema evolution: can a reader schema read what a writer schema wrote?

Uses the reference checker of the ``avro`` package (Avro's own resolution rules).
The rule of this platform is backward, transitive: the current schema of a type reads
data written by every earlier version of it.
"""

from __future__ import annotations

import json
from typing import Any

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.schema import parse
from fastavro.schema import to_parsing_canonical_form


def _avro(schema: Any) -> Any:
    text = schema if isinstance(schema, str) else json.dumps(plain(schema))
    return parse(text)


def plain(schema: Any) -> Any:
    """A fastavro-parsed schema without fastavro's private keys."""
    if isinstance(schema, dict):
        return {k: plain(v) for k, v in schema.items() if not k.startswith("__fastavro")}
    if isinstance(schema, list):
        return [plain(v) for v in schema]
    return schema


def incompatibilities(reader: Any, writer: Any) -> list[str]:
    """Why ``reader`` cannot read data written with ``writer``; empty when it can."""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(_avro(reader), _avro(writer))
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    where = ", ".join(sorted(result.locations))
    kinds = ", ".join(sorted({i.name for i in result.incompatibilities}))
    return [f"{message} (at {where}; {kinds})" for message in sorted(result.messages)] or [
        f"incompatible at {where} ({kinds})"
    ]


def canonical(schema: Any) -> str:
    return str(to_parsing_canonical_form(schema))
