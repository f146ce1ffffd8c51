"""Dead letters always fit the broker and always carry sendable headers
(singlewindow/kafka/deadletter.py), and the consume loop's error classification."""

from __future__ import annotations

import hashlib

import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import (
    KafkaConnectionError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from hypothesis import given, settings
from hypothesis import strategies as st

from singlewindow.events import DeclarationSubmitted
from singlewindow.kafka.consumer import PoisonMessage, decode_record, is_transient
from singlewindow.kafka.deadletter import (
    DEFAULT_MAX_BYTES,
    HEADERS_DROPPED,
    KEY_SHA256,
    KEY_TRUNCATED,
    MINIMAL_MAX_BYTES,
    RAW_HEADER_KEY,
    TRUNCATED,
    VALUE_SHA256,
    Letter,
    dead_letter,
    dead_letter_limit,
)
from singlewindow.kafka.headers import header
from singlewindow.kafka.producer import PublishTimeout
from singlewindow.settings import Settings
from tests import factories

BROKER_DEFAULT = 1_048_588  # message.max.bytes
AT_THE_LIMIT = 1_048_400
ERROR = PoisonMessage("unknown fingerprint")


def record(
    key: bytes | None = b"D-1",
    value: bytes | None = b"value",
    headers: list[tuple[str, bytes]] | None = None,
) -> ConsumerRecord:
    headers = (
        [("traceparent", b"00-abc"), ("sw-producer", b"intake")] if headers is None else headers
    )
    return ConsumerRecord(
        "declarations.submitted", 3, 41, 0, 0, key, value, None, 0, 0, tuple(headers)
    )


def wire_size(letter: Letter) -> int:
    """The size of the batch a producer would send: built by aiokafka's own (C) builder, so
    this also proves every header is sendable."""
    key, value, headers = letter
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 22)
    assert builder.append(0, 1_700_000_000_000, key, value, headers) is not None
    return len(builder.build())


def test_a_small_record_travels_whole_with_provenance_first() -> None:
    original = record()
    key, value, headers = dead_letter(original, "customs", ERROR)
    assert (key, value) == (original.key, original.value)
    assert headers[0] == ("sw-dlq-source-topic", b"declarations.submitted")
    assert header(headers, "sw-dlq-source-partition") == b"3"
    assert header(headers, "sw-dlq-source-offset") == b"41"
    assert header(headers, "sw-dlq-service") == b"customs"
    assert header(headers, "sw-dlq-error") == b"PoisonMessage: unknown fingerprint"
    assert headers[-2:] == list(original.headers)
    assert header(headers, TRUNCATED) is None


def test_a_record_at_the_broker_limit_is_cut_to_fit_and_identifiable() -> None:
    original = record(value=bytes(range(256)) * (AT_THE_LIMIT // 256))
    whole = (original.key, original.value, [*original.headers])
    assert (
        wire_size(whole)
        <= BROKER_DEFAULT
        < wire_size(
            (
                original.key,
                original.value,
                [*original.headers, *dead_letter(record(), "x", ERROR)[2]],
            )
        )
    ), "the original fits the broker, its untruncated letter does not"
    letter = dead_letter(original, "customs", ERROR)
    key, value, headers = letter
    assert DEFAULT_MAX_BYTES - 64 < wire_size(letter) <= DEFAULT_MAX_BYTES
    assert key == original.key and value and original.value.startswith(value)
    assert header(headers, TRUNCATED) == str(len(original.value)).encode()
    assert header(headers, VALUE_SHA256) == hashlib.sha256(original.value).hexdigest().encode()
    assert header(headers, "traceparent") == b"00-abc"  # the original headers still travel
    assert header(headers, "sw-dlq-source-offset") == b"41"


def test_a_huge_key_and_headers_are_dropped_but_provenance_stays() -> None:
    big = b"k" * 700_000
    original = record(key=big, value=b"v" * 500_000, headers=[("h", b"x" * 600_000)])
    key, value, headers = letter = dead_letter(original, "ciq", ERROR)
    assert wire_size(letter) <= DEFAULT_MAX_BYTES
    assert key is not None and big.startswith(key) and len(key) < 1000
    assert header(headers, KEY_TRUNCATED) == b"700000"
    assert header(headers, KEY_SHA256) == hashlib.sha256(big).hexdigest().encode()
    assert header(headers, HEADERS_DROPPED) == b"1" and header(headers, "h") is None
    assert header(headers, TRUNCATED) is None and value == original.value
    assert header(headers, "sw-dlq-source-topic") == b"declarations.submitted"


def test_the_value_is_cut_first_the_key_only_when_that_is_not_enough() -> None:
    original = record(key=b"k" * 700_000, value=b"v" * 900_000)
    key, value, headers = letter = dead_letter(original, "ciq", ERROR)
    assert DEFAULT_MAX_BYTES - 64 < wire_size(letter) <= DEFAULT_MAX_BYTES
    assert key == original.key and value is not None and 250_000 < len(value) < 300_000
    assert header(headers, TRUNCATED) == b"900000" and header(headers, KEY_TRUNCATED) is None
    assert header(headers, "traceparent") == b"00-abc"


def test_a_minimal_letter_is_small() -> None:
    original = record(value=b"v" * AT_THE_LIMIT, headers=[("h", b"x" * 100_000)])
    assert wire_size(dead_letter(original, "port", ERROR, MINIMAL_MAX_BYTES)) <= MINIMAL_MAX_BYTES


def test_a_header_key_that_is_not_utf8_becomes_sendable_and_is_kept_raw() -> None:
    hostile = b"\xff\xfeevil".decode("utf-8", "surrogateescape")  # as the consumer delivers it
    original = record(headers=[("ok", b"1"), (hostile, b"v")])
    letter = dead_letter(original, "customs", ERROR)
    wire_size(letter)  # sendable
    headers = letter[2]
    assert ("ok", b"1") in headers and ("\\xff\\xfeevil", b"v") in headers
    assert header(headers, RAW_HEADER_KEY) == b"1:\xff\xfeevil"


def test_decode_record_rejects_a_header_key_that_is_not_utf8() -> None:
    good, key = factories.declaration().to_avro(), factories.declaration().key()
    assert decode_record(DeclarationSubmitted, record(key, good, headers=[("ключ", b"")]))
    hostile = b"\xffk".decode("utf-8", "surrogateescape")
    with pytest.raises(PoisonMessage, match="not UTF-8"):
        decode_record(DeclarationSubmitted, record(key, good, headers=[(hostile, b"")]))


@pytest.mark.parametrize("key", [b"D-1", None, b"", b"\xff", b"d-0001"])
def test_decode_record_rejects_a_key_that_is_not_the_declaration_id(key: bytes | None) -> None:
    good = factories.declaration("D-0001").to_avro()
    with pytest.raises(PoisonMessage, match="is not the declaration id"):
        decode_record(DeclarationSubmitted, record(key, good))


def test_the_bound_comes_from_the_settings() -> None:
    assert dead_letter_limit(Settings()) == DEFAULT_MAX_BYTES
    assert DEFAULT_MAX_BYTES < BROKER_DEFAULT
    assert dead_letter_limit(Settings(dead_letter_max_bytes=5_000_000)) == 5_000_000


@pytest.mark.parametrize(
    "error",
    [MessageSizeTooLargeError(), RecordListTooLargeError(), RecordTooLargeError()],
)
def test_a_refused_record_is_no_transient_fault(error: Exception) -> None:
    assert not is_transient(error)


@pytest.mark.parametrize(
    "error", [KafkaConnectionError(), PublishTimeout("x"), TimeoutError(), OSError()]
)
def test_an_unavailable_broker_is_a_transient_fault(error: Exception) -> None:
    assert is_transient(error)


@settings(max_examples=60, deadline=None)
@given(
    key=st.one_of(st.none(), st.integers(0, 40_000).map(lambda n: b"k" * n)),
    value=st.one_of(st.none(), st.integers(0, 60_000).map(lambda n: b"v" * n)),
    header_sizes=st.lists(st.integers(0, 20_000), max_size=4),
    max_bytes=st.integers(8_192, 50_000),
)
def test_every_letter_fits_its_bound(
    key: bytes | None, value: bytes | None, header_sizes: list[int], max_bytes: int
) -> None:
    headers = [(f"h{i}", b"x" * n) for i, n in enumerate(header_sizes)]
    original = record(key=key, value=value, headers=headers)
    assert wire_size(dead_letter(original, "customs", ERROR, max_bytes)) <= max_bytes
