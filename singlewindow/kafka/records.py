"""Tolerant record decoding: a record whose header key is not UTF-8 is delivered, not fatal.

Kafka's protocol types a header key as a UTF-8 string, but brokers do not check it (the Java
client decodes leniently), so anyone allowed to produce can write one. aiokafka decodes
header keys with strict UTF-8 in both of its record decoders (0.14):
``aiokafka/record/_crecords/default_records.pyx`` ``DefaultRecordBatch._read_msg``, in use
when the C extensions load, raises ``UnicodeDecodeError``; ``_DefaultRecordBatchPy._read_msg``
in ``aiokafka/record/default_records.py`` (``AIOKAFKA_NO_EXTENSIONS=1``) raises it wrapped in
a ``CorruptRecordException``. Either escapes the fetcher's ``PartitionRecords._unpack_records``
generator (``aiokafka/consumer/fetcher.py``) out of ``getmany``, on every call: the
partition's position never moves, not even to the records fetched before the hostile one,
and every consumer of the partition crash-loops (or, for the wrapped error, a ``KafkaError``,
stalls).

The patch point is the one name the fetcher builds record sets with,
``aiokafka.consumer.fetcher.MemoryRecords``. :func:`install` (run when ``singlewindow.kafka``
is imported) replaces it with :class:`TolerantMemoryRecords`, which hands out aiokafka's own
batches, decoded by aiokafka's fast decoder; only a batch whose decoding raises
``UnicodeDecodeError`` (bare or wrapped) is decoded again here, in Python, with header keys
decoded with ``errors="surrogateescape"``. Such a key is still a ``str``; its original bytes
are :func:`header_key_bytes`. ``tests/unit/test_records.py`` fails when aiokafka changes what
this relies on (or fixes the bug, and the patch can go).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from typing import Any

import aiokafka
from aiokafka.codec import gzip_decode, lz4_decode, snappy_decode, zstd_decode
from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record import memory_records
from aiokafka.record.default_records import DefaultRecord

log = logging.getLogger(__name__)

# aiokafka versions whose decoders and fetcher were read and tested against this module
VERIFIED_AIOKAFKA = ("0.14.0",)

# RecordBatch header (magic 2): base offset, length, leader epoch, magic, CRC, attributes,
# last offset delta, first timestamp, max timestamp, producer id/epoch, base sequence, count
BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
LOG_OVERHEAD = 12  # base offset and length precede every batch, of every magic
MAGIC_OFFSET = 16
CODEC_MASK, TIMESTAMP_TYPE_MASK = 0x07, 0x08
DECOMPRESS = {1: gzip_decode, 2: snappy_decode, 3: lz4_decode, 4: zstd_decode}


def header_key_bytes(key: str) -> bytes:
    """The bytes of a header key as they were on the wire (undoes ``surrogateescape``)."""
    return key.encode("utf-8", "surrogateescape")


def is_utf8_key(key: str) -> bool:
    """Whether a received header key was valid UTF-8 (it then has no escaped bytes)."""
    if key.isascii():
        return True
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _varint(buffer: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint at ``pos``: ``(value, next position)``."""
    result, shift = 0, 0
    while True:
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise CorruptRecordException("varint out of int64 range")


def _nullable_bytes(buffer: bytes, pos: int) -> tuple[bytes | None, int]:
    """A length-prefixed byte string (length -1: None) at ``pos``."""
    length, pos = _varint(buffer, pos)
    if length < 0:
        return None, pos
    if pos + length > len(buffer):
        raise CorruptRecordException(f"can't read {length} bytes from position {pos}")
    return bytes(buffer[pos : pos + length]), pos + length


def decode_batch_leniently(raw: bytes | memoryview) -> list[DefaultRecord]:
    """Every record of one magic-2 batch, header keys decoded with ``surrogateescape``; a
    malformed batch raises ``CorruptRecordException``, as aiokafka's decoders do."""
    try:
        return _decode(raw)
    except (IndexError, KeyError, ValueError, struct.error) as exc:
        raise CorruptRecordException(f"invalid record batch: {exc!r}") from exc


def _decode(raw: bytes | memoryview) -> list[DefaultRecord]:
    (base_offset, _, _, _, _, attributes, _, first_ts, max_ts, _, _, _, count) = (
        BATCH_HEADER.unpack_from(raw)
    )
    body: bytes = bytes(raw[BATCH_HEADER.size :])
    codec = attributes & CODEC_MASK
    if codec:
        body = DECOMPRESS[codec](body)
    log_append_time = bool(attributes & TIMESTAMP_TYPE_MASK)
    records, pos = [], 0
    for _ in range(count):
        length, pos = _varint(body, pos)
        end = pos + length
        _, pos = _varint(body, pos)  # record attributes: unused
        ts_delta, pos = _varint(body, pos)
        offset_delta, pos = _varint(body, pos)
        key, pos = _nullable_bytes(body, pos)
        value, pos = _nullable_bytes(body, pos)
        header_count, pos = _varint(body, pos)
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(header_count):
            name, pos = _nullable_bytes(body, pos)
            h_value, pos = _nullable_bytes(body, pos)
            headers.append(((name or b"").decode("utf-8", "surrogateescape"), h_value))
        if pos != end:
            raise CorruptRecordException(f"record of {length} bytes, read {length + pos - end}")
        timestamp = max_ts if log_append_time else first_ts + ts_delta
        records.append(
            DefaultRecord(
                base_offset + offset_delta, timestamp, int(log_append_time), key, value, headers
            )
        )
    return records


def _bad_header_key(exc: BaseException) -> bool:
    """Whether aiokafka's decoder failed on UTF-8: the C one raises it as it is, the Python
    one wraps it in a ``CorruptRecordException`` (only header keys are decoded as text)."""
    return isinstance(exc, UnicodeDecodeError) or isinstance(exc.__cause__, UnicodeDecodeError)


class TolerantBatch:
    """One of aiokafka's record batches whose records are decoded all at once on first use,
    and decoded again leniently when a header key is not UTF-8. Everything else (CRC check,
    transaction markers, offsets) is the wrapped batch's."""

    __slots__ = ("_batch", "_iterator", "_raw")

    def __init__(self, batch: Any, raw: memoryview) -> None:
        self._batch, self._raw = batch, raw
        self._iterator: Iterator[DefaultRecord] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def _records(self) -> Iterator[DefaultRecord]:
        if self._iterator is None:
            try:
                records = list(iter(self._batch))
            except (UnicodeDecodeError, CorruptRecordException) as exc:
                if not _bad_header_key(exc):
                    raise
                log.warning("a header key is not UTF-8; decoding the batch leniently: %r", exc)
                records = decode_batch_leniently(self._raw)
            self._iterator = iter(records)
        return self._iterator

    def __iter__(self) -> Iterator[DefaultRecord]:
        return self._records()

    def __next__(self) -> DefaultRecord:
        return next(self._records())


class TolerantMemoryRecords:
    """aiokafka's ``MemoryRecords`` over one fetched record set, whose magic-2 batches are
    :class:`TolerantBatch` es. Walks the same batch boundaries to keep each batch's bytes."""

    __slots__ = ("_buffer", "_pos", "_records")

    def __init__(self, bytes_data: bytes) -> None:
        self._records = memory_records.MemoryRecords(bytes_data)
        self._buffer, self._pos = bytes_data, 0

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        batch = self._records.next_batch()
        if batch is None:
            return None
        start = self._pos
        (length,) = struct.unpack_from(">i", self._buffer, start + 8)
        self._pos = start + LOG_OVERHEAD + length
        if self._buffer[start + MAGIC_OFFSET] < 2:
            return batch  # legacy formats have no headers
        return TolerantBatch(batch, memoryview(self._buffer)[start : self._pos])


def install() -> None:
    """Make every consumer of this process decode hostile header keys leniently. Idempotent."""
    if fetcher.MemoryRecords is TolerantMemoryRecords:
        return
    if fetcher.MemoryRecords is not memory_records.MemoryRecords:
        raise RuntimeError(
            "aiokafka's fetcher no longer builds record sets with MemoryRecords: "
            "singlewindow/kafka/records.py must be revisited"
        )
    if aiokafka.__version__ not in VERIFIED_AIOKAFKA:
        log.warning(
            "aiokafka %s is not among the versions the tolerant record decoding was verified "
            "with (%s): run tests/unit/test_records.py",
            aiokafka.__version__,
            ", ".join(VERIFIED_AIOKAFKA),
        )
    fetcher.MemoryRecords = TolerantMemoryRecords
