"""Tolerant record decoding (singlewindow/kafka/records.py): a header key that is not UTF-8
never stops a consumer. These tests fail when aiokafka changes what the patch relies on."""

from __future__ import annotations

import struct

import aiokafka
import pytest
from aiokafka import TopicPartition
from aiokafka.consumer import fetcher
from aiokafka.consumer.fetcher import READ_COMMITTED, PartitionRecords
from aiokafka.errors import CorruptRecordException
from aiokafka.record import memory_records
from aiokafka.record.default_records import DefaultRecordBatch, _DefaultRecordBatchPy
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy as Builder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c

import singlewindow.kafka  # noqa: F401  installs the patch
from singlewindow.kafka.records import (
    VERIFIED_AIOKAFKA,
    TolerantMemoryRecords,
    decode_batch_leniently,
    header_key_bytes,
    is_utf8_key,
)

HOSTILE = b"\xff\xfesw-bad"
TP = TopicPartition("t", 0)
NONE, GZIP = 0, 1


class RawKey(str):
    """A header key that aiokafka's pure-Python batch builder writes as arbitrary bytes."""

    raw: bytes

    def __new__(cls, raw: bytes) -> RawKey:
        key = super().__new__(cls, raw.decode("latin-1"))
        key.raw = raw
        return key

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw


Row = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]


def batch(
    base_offset: int,
    rows: list[Row],
    codec: int = NONE,
    producer_id: int = -1,
    transactional: bool = False,
) -> bytes:
    """One magic-2 record batch on the wire."""
    builder = Builder(2, codec, int(transactional), producer_id, 0, 0, 1 << 20)
    for delta, (key, value, headers) in enumerate(rows):
        builder.append(delta, 1_700_000_000_000 + delta, key, value, headers)
    data = builder.build()
    struct.pack_into(">q", data, 0, base_offset)
    return bytes(data)


def control_batch(base_offset: int, producer_id: int, abort: bool) -> bytes:
    """A transaction marker: a transactional batch with the control bit and a marker key."""
    marker = struct.pack(">HH", 0, 0 if abort else 1)
    data = bytearray(batch(base_offset, [(marker, b"", [])], NONE, producer_id, True))
    attributes_at, crc_at = 21, 17
    (attributes,) = struct.unpack_from(">h", data, attributes_at)
    struct.pack_into(">h", data, attributes_at, attributes | 0x20)
    struct.pack_into(">I", data, crc_at, calc_crc32c(bytes(data[attributes_at:])))
    return bytes(data)


GOOD: list[Row] = [
    (b"k1", b"v1", [("traceparent", b"00-x"), ("null-value", None)]),
    (None, b"v2", []),
    (b"k3", None, [("ключ", b"unicode keys are fine")]),
]
HOSTILE_ROW: Row = (b"k", b"hostile", [("ok", b"1"), (RawKey(HOSTILE), b"v")])


def fields(record: object) -> tuple[object, ...]:
    names = ("offset", "timestamp", "timestamp_type", "key", "value", "headers")
    return tuple(getattr(record, n) for n in names)


def test_aiokafka_still_decodes_header_keys_strictly() -> None:
    """If this fails, aiokafka decodes such keys itself now: the patch may go."""
    data = batch(0, [HOSTILE_ROW])
    with pytest.raises(UnicodeDecodeError):
        list(DefaultRecordBatch(data))  # the C decoder, in use when the extensions load
    with pytest.raises(CorruptRecordException) as raised:
        list(_DefaultRecordBatchPy(data))  # the pure one (AIOKAFKA_NO_EXTENSIONS=1)
    assert isinstance(raised.value.__cause__, UnicodeDecodeError)
    with pytest.raises(UnicodeDecodeError):
        list(PartitionRecords(TP, MemoryRecords(data), None, 0, None, None, True, "x"))


def test_the_patch_is_installed_on_a_verified_aiokafka() -> None:
    assert fetcher.MemoryRecords is TolerantMemoryRecords
    assert aiokafka.__version__ in VERIFIED_AIOKAFKA, "re-verify records.py, then add it"


@pytest.mark.parametrize("codec", [NONE, GZIP])
def test_lenient_decoding_agrees_with_aiokafka_on_good_batches(codec: int) -> None:
    data = batch(40, GOOD, codec)
    assert [fields(r) for r in decode_batch_leniently(data)] == [
        fields(r) for r in DefaultRecordBatch(data)
    ]


@pytest.mark.parametrize("codec", [NONE, GZIP])
def test_every_record_around_a_hostile_one_is_delivered(codec: int) -> None:
    data = batch(0, GOOD[:2], codec) + batch(2, [GOOD[2], HOSTILE_ROW], codec) + batch(4, GOOD)
    records = list(
        PartitionRecords(TP, TolerantMemoryRecords(data), None, 0, None, None, True, "x")
    )
    assert [r.offset for r in records] == list(range(7))
    hostile = records[3]
    assert hostile.value == b"hostile"
    (ok, value), (key, bad_value) = hostile.headers
    assert (ok, value, bad_value) == ("ok", b"1", b"v")
    assert header_key_bytes(key) == HOSTILE and not is_utf8_key(key) and is_utf8_key(ok)
    assert [r.value for r in records if r.offset != 3] == [v for _, v, _ in GOOD + GOOD]


def test_transactions_are_honoured_around_a_hostile_record() -> None:
    """Aborted batches and markers pass through the wrapper as aiokafka expects."""
    aborted = batch(0, [(b"k", b"aborted", [])], producer_id=7, transactional=True)
    committed = batch(3, [HOSTILE_ROW, (b"k", b"after", [])], producer_id=8, transactional=True)
    data = (
        aborted
        + control_batch(1, 7, abort=True)
        + batch(2, [(b"k", b"plain", [])])
        + committed
        + control_batch(5, 8, abort=False)
    )
    records = list(
        PartitionRecords(
            TP, TolerantMemoryRecords(data), [(7, 0)], 0, None, None, True, READ_COMMITTED
        )
    )
    assert [(r.offset, r.value) for r in records] == [(2, b"plain"), (3, b"hostile"), (4, b"after")]


def test_the_pure_python_decoder_is_covered_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_records, "MemoryRecords", memory_records._MemoryRecordsPy)
    monkeypatch.setattr(memory_records, "DefaultRecordBatch", _DefaultRecordBatchPy)
    data = batch(0, [GOOD[0], HOSTILE_ROW])
    records = list(
        PartitionRecords(TP, TolerantMemoryRecords(data), None, 0, None, None, True, "x")
    )
    assert [r.value for r in records] == [b"v1", b"hostile"]


def test_a_corrupt_batch_is_still_refused() -> None:
    data = bytearray(batch(0, [HOSTILE_ROW]))
    data[-1] ^= 0xFF
    partition = PartitionRecords(
        TP, TolerantMemoryRecords(bytes(data)), None, 0, None, None, True, "x"
    )
    with pytest.raises(CorruptRecordException):
        list(partition)


def test_a_hostile_batch_corrupt_after_the_bad_key_is_refused_as_corrupt() -> None:
    data = bytearray(batch(0, [HOSTILE_ROW, GOOD[0]]))
    struct.pack_into(">i", data, 57, 3)  # claims three records, holds two
    with pytest.raises(CorruptRecordException):
        decode_batch_leniently(bytes(data))
