"""Avro on the wire: schemas from ``schemas/avro/`` and single-object encoding."""

from singlewindow.avro.codec import (
    CodecError,
    TruncatedBody,
    UnknownFingerprint,
    WrongHeader,
    decode,
    encode,
    fingerprint_of,
)
from singlewindow.avro.registry import SchemaRegistry, default_registry

__all__ = [
    "CodecError",
    "SchemaRegistry",
    "TruncatedBody",
    "UnknownFingerprint",
    "WrongHeader",
    "decode",
    "default_registry",
    "encode",
    "fingerprint_of",
]
