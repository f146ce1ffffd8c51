"""Dead letters that the broker always accepts.

A dead letter is the original key, value and headers plus provenance headers
(``sw-dlq-source-topic/-partition/-offset``, ``-service``, ``-error``, ``-time``). Two kinds of
original cannot travel as they are:

- One at the broker's size limit: with provenance added it would exceed ``message.max.bytes``
  and be refused for ever. When the letter would exceed ``max_bytes``, its value is cut to a
  prefix and ``sw-dlq-truncated`` (the original value's length) and ``sw-dlq-value-sha256``
  (its digest, hex) say so; if the key and the original headers alone are too big, the
  headers are dropped (``sw-dlq-headers-dropped``: how many) and the key cut too
  (``sw-dlq-key-truncated``, ``sw-dlq-key-sha256``). The original stays on its source topic
  at the provenance offset, identifiable by the digests.
- One whose header key is not UTF-8 (delivered with ``surrogateescape``, see
  :mod:`singlewindow.kafka.records`): producers can only send UTF-8 keys. Such a header
  travels under its key with the bad bytes written as ``\\xNN``, and a
  ``sw-dlq-raw-header-key`` header carries ``<index>:<original key bytes>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from singlewindow.kafka.headers import Headers
from singlewindow.kafka.records import header_key_bytes, is_utf8_key
from singlewindow.settings import Settings

# Below the broker's default message.max.bytes (1,048,588) with room for what a batch adds.
DEFAULT_MAX_BYTES = 1_000_000
# The fallback when the broker refuses a letter of DEFAULT_MAX_BYTES (a smaller limit).
MINIMAL_MAX_BYTES = 16_384
PROVENANCE = "sw-dlq-"
TRUNCATED = "sw-dlq-truncated"
VALUE_SHA256 = "sw-dlq-value-sha256"
KEY_TRUNCATED = "sw-dlq-key-truncated"
KEY_SHA256 = "sw-dlq-key-sha256"
HEADERS_DROPPED = "sw-dlq-headers-dropped"
RAW_HEADER_KEY = "sw-dlq-raw-header-key"
KEY_PREFIX_BYTES = 256  # what is kept of a key too big to travel
Letter = tuple[bytes | None, bytes | None, Headers]


def dead_letter_limit(settings: Settings) -> int:
    """The size bound of a dead letter (``DEAD_LETTER_MAX_BYTES``)."""
    return settings.dead_letter_max_bytes


def sendable_headers(headers: Sequence[tuple[str, bytes | None]] | None) -> tuple[Headers, Headers]:
    """``headers`` as a producer can send them, and what that changed: a key that is not
    UTF-8 becomes readable (``\\xNN``), and a ``sw-dlq-raw-header-key`` header (in the second
    list) keeps its index and original bytes."""
    kept: Headers = []
    raw: Headers = []
    for index, (key, value) in enumerate(headers or ()):
        if not is_utf8_key(key):
            original = header_key_bytes(key)
            raw.append((RAW_HEADER_KEY, f"{index}:".encode() + original))
            key = original.decode("utf-8", "backslashreplace")
        kept.append((key, value))  # type: ignore[arg-type]  # a None value is sent as null
    return kept, raw


def error_kind(error: BaseException) -> str:
    """A bounded name of why a record was given up on, for metrics: the exception's class, or
    the class of the error a wrapper (a ``PoisonMessage`` raised from a decoding error or a
    refused signature) was raised from."""
    cause = error.__cause__
    if cause is not None and type(error).__name__ == "PoisonMessage":
        return type(cause).__name__
    return type(error).__name__


def provenance(record: ConsumerRecord, service: str, error: BaseException) -> Headers:
    """Where the original is (topic, partition, offset), who gave up on it, why, when."""
    fields = {
        "sw-dlq-source-topic": record.topic,
        "sw-dlq-source-partition": str(record.partition),
        "sw-dlq-source-offset": str(record.offset),
        "sw-dlq-service": service,
        "sw-dlq-error": f"{type(error).__name__}: {error}"[:2000],
        "sw-dlq-time": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    return [(k, v.encode("utf-8", "backslashreplace")) for k, v in fields.items()]


def letter_size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """An upper bound of the size of a batch holding only this record, which is what the
    broker compares with ``message.max.bytes`` (aiokafka's own estimate)."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers))


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).hexdigest().encode()


def _value_prefix(key: bytes | None, value: bytes, headers: Headers, max_bytes: int) -> Letter:
    """The letter with as much of ``value`` as fits (an empty prefix when none does)."""
    headers = [*headers, (TRUNCATED, str(len(value)).encode()), (VALUE_SHA256, _digest(value))]
    room = max_bytes - letter_size(key, b"", headers)
    cut = max(room - 4, 0)  # the value's length varint grows by at most 4 bytes (< 2**28)
    return key, value[:cut], headers


def fit(
    key: bytes | None, value: bytes | None, own: Headers, original: Headers, max_bytes: int
) -> Letter:
    """The letter (``own`` headers first, then the ``original`` ones) when it is at most
    ``max_bytes``, else a truncated one that is: the value cut first; if that is not
    enough, the original headers dropped and the key cut too. ``own`` always survives."""
    headers = [*own, *original]
    if letter_size(key, value, headers) <= max_bytes:
        return key, value, headers
    if value:
        letter = _value_prefix(key, value, headers, max_bytes)
        if letter_size(*letter) <= max_bytes:
            return letter
    if original:
        own = [*own, (HEADERS_DROPPED, str(len(original)).encode())]
    if key is not None and len(key) > KEY_PREFIX_BYTES:
        own += [(KEY_TRUNCATED, str(len(key)).encode()), (KEY_SHA256, _digest(key))]
        key = key[:KEY_PREFIX_BYTES]
    if value and letter_size(key, value, own) > max_bytes:
        return _value_prefix(key, value, own, max_bytes)
    return key, value, own


def dead_letter(
    record: ConsumerRecord, service: str, error: BaseException, max_bytes: int = DEFAULT_MAX_BYTES
) -> Letter:
    """The dead letter of ``record``: ``(key, value, headers)`` to send to the dead-letter
    topic, at most ``max_bytes`` by aiokafka's estimate, its headers all sendable."""
    original, raw_keys = sendable_headers(record.headers)
    own = provenance(record, service, error)
    return fit(record.key, record.value, own, [*original, *raw_keys], max_bytes)
