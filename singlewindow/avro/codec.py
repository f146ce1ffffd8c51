"""Avro single-object encoding: ``C3 01``, 8-byte CRC-64-AVRO fingerprint, binary body.

A reader resolves the writer schema by fingerprint and reads with its own reader schema
(Avro schema resolution). Every failure is a typed :class:`CodecError`, never a guess.
"""

from __future__ import annotations

import io
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from singlewindow.avro.registry import SchemaRegistry, default_registry

MAGIC = b"\xc3\x01"
HEADER_LEN = len(MAGIC) + 8


class CodecError(ValueError):
    """A payload this process cannot decode (goes to the dead-letter topic)."""


class WrongHeader(CodecError):
    """Not Avro single-object encoding: the payload does not start with ``C3 01``."""


class UnknownFingerprint(CodecError):
    """The writer schema's fingerprint is not one this process knows."""


class TruncatedBody(CodecError):
    """The body ended before the record did, or bytes follow the record."""


class SchemaMismatch(CodecError):
    """The writer schema cannot be read with the expected reader schema."""


def fingerprint_of(payload: bytes) -> bytes:
    """The writer fingerprint in a payload's header."""
    if len(payload) < HEADER_LEN or payload[:2] != MAGIC:
        raise WrongHeader(
            f"not Avro single-object encoding (starts {payload[:2].hex() or 'empty'})"
        )
    return payload[2:HEADER_LEN]


def encode(full_name: str, record: dict[str, Any], registry: SchemaRegistry | None = None) -> bytes:
    """Encode a record with the current schema of ``full_name``."""
    registry = registry or default_registry()
    schema = registry.reader(full_name)
    out = io.BytesIO()
    out.write(MAGIC)
    out.write(registry.fingerprint(full_name))
    schemaless_writer(out, schema, record)
    return out.getvalue()


def decode(
    payload: bytes, expected: str | None = None, registry: SchemaRegistry | None = None
) -> tuple[str, Any]:
    """Decode a payload; returns the type's full name and the datum read with its reader schema.

    ``expected`` names the type the caller accepts; another type raises :class:`SchemaMismatch`.
    """
    registry = registry or default_registry()
    fp = fingerprint_of(payload)
    if fp not in registry.writers:
        raise UnknownFingerprint(f"unknown writer schema fingerprint {fp.hex()}")
    name, writer = registry.writers[fp]
    if expected is not None and name != expected:
        raise SchemaMismatch(f"payload is a {name}, expected {expected}")
    if name not in registry.current:
        raise SchemaMismatch(f"no reader schema for {name}")
    body = io.BytesIO(payload[HEADER_LEN:])
    try:
        record = schemaless_reader(body, writer, registry.current[name])
    except (EOFError, IndexError) as exc:
        raise TruncatedBody(f"{name}: body ends before the record ({exc})") from exc
    except Exception as exc:  # fastavro raises plain errors for corrupt bodies
        raise CodecError(f"{name}: undecodable body ({type(exc).__name__}: {exc})") from exc
    if body.tell() != len(payload) - HEADER_LEN:
        raise TruncatedBody(
            f"{name}: {len(payload) - HEADER_LEN - body.tell()} bytes after the record"
        )
    return name, record
