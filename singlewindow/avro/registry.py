"""Schemas by full name (the reader's) and by fingerprint (every writer's, old ones too).

Current schemas live in ``schemas/avro/<namespace>.<Name>.avsc``, one named type per file.
Every released writer schema of an event is kept under ``schemas/avro/released/`` (see
``singlewindow.avro.release``): a reader years from now still finds the schema it was written
with.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fastavro.schema import fingerprint, load_schema, parse_schema, to_parsing_canonical_form

Schema = Any  # a fastavro parsed schema


def schema_dir() -> Path:
    """``schemas/avro`` of the source tree, or the copy packaged into the wheel."""
    source = Path(__file__).resolve().parents[2] / "schemas" / "avro"
    if source.is_dir():
        return source
    return Path(str(resources.files("singlewindow") / "_schemas"))


def canonical_fingerprint(schema: Schema) -> bytes:
    """The 8-byte little-endian CRC-64-AVRO fingerprint of the parsing canonical form."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


class SchemaRegistry:
    """The schemas a process knows: current ones to read with, all known ones to resolve."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.current: dict[str, Schema] = {}
        self.fingerprints: dict[str, bytes] = {}  # of the current schemas, computed once
        self.writers: dict[bytes, tuple[str, Schema]] = {}
        for path in sorted(directory.glob("*.avsc")):
            schema = load_schema(str(path), _write_hint=False)
            name = schema["name"] if isinstance(schema, dict) else path.name[: -len(".avsc")]
            self.current[name] = schema
            self.fingerprints[name] = canonical_fingerprint(schema)
            self.writers[self.fingerprints[name]] = (name, schema)
        released = directory / "released"
        for path in sorted(released.glob("*.avsc")) if released.is_dir() else []:
            released_schema: Schema = parse_schema(json.loads(path.read_text()), _write_hint=False)
            fp = canonical_fingerprint(released_schema)
            self.writers.setdefault(fp, (released_schema["name"], released_schema))

    def reader(self, full_name: str) -> Schema:
        """The current schema of a named type; KeyError if this process does not know it."""
        return self.current[full_name]

    def fingerprint(self, full_name: str) -> bytes:
        """The fingerprint of the current schema of a named type (KeyError if unknown)."""
        return self.fingerprints[full_name]


@cache
def default_registry() -> SchemaRegistry:
    return SchemaRegistry(schema_dir())
