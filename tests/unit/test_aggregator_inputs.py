"""The aggregator's record handling, pure: which input records it dead-letters, and how it
restores its join states from whatever the changelog holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import ConsumerRecord

from services.aggregator.service import decode_input
from services.aggregator.table import JoinTable
from services.aggregator.tasks import Restored, restore
from singlewindow.events import ClearanceStatus, Event
from singlewindow.kafka.consumer import PoisonMessage
from singlewindow.topics import DECLARATIONS_SUBMITTED, JOIN_STATE, verdict_topics
from tests import factories

NOT_UTF8 = b"\xff\xfe\x80D-0001"


def record(topic: str, key: bytes | None, value: bytes | None, offset: int = 0) -> ConsumerRecord:
    return ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, 0, 0, ())


def on_its_topic(event: Event, key: bytes | None) -> ConsumerRecord:
    topic = DECLARATIONS_SUBMITTED.name
    if hasattr(event, "agency"):
        topic = verdict_topics()[str(event.agency)].name
    return record(topic, key, factories.signed(event))


@pytest.mark.parametrize("event", [factories.declaration(), factories.verdict()])
def test_an_input_keyed_by_its_declaration_id_is_taken(event: Event) -> None:
    taken = decode_input(on_its_topic(event, event.key()), factories.REGISTRY)
    assert taken.unsigned() == event and taken.signature is not None


@pytest.mark.parametrize("event", [factories.declaration(), factories.verdict()])
@pytest.mark.parametrize("key", [b"D-0002", b"", None, NOT_UTF8, b"d-0001"])
def test_an_input_keyed_otherwise_is_poison(event: Event, key: bytes | None) -> None:
    with pytest.raises(PoisonMessage, match="is not the declaration id"):
        decode_input(on_its_topic(event, key), factories.REGISTRY)


def test_a_verdict_on_another_agencys_topic_is_still_poison() -> None:
    verdict = factories.verdict(agency="port")
    with pytest.raises(PoisonMessage, match="one writer per topic"):
        decode_input(
            record(verdict_topics()["customs"].name, verdict.key(), factories.signed(verdict)),
            factories.REGISTRY,
        )


def restored_from(records: list[ConsumerRecord]) -> Restored:
    """What a task restores from ``records`` with the test keys, its signatures set aside."""
    out = restore(records, factories.REGISTRY)
    out.states = {k: s.unsigned() for k, s in out.states.items()}
    return out


def changelog(*entries: tuple[bytes | None, bytes | None]) -> list[ConsumerRecord]:
    return [record(JOIN_STATE.name, k, v, offset) for offset, (k, v) in enumerate(entries)]


def test_restore_takes_the_last_write_and_honours_tombstones() -> None:
    a1, a2 = factories.join_state("D-A"), factories.join_state("D-A", decided="RELEASED")
    b = factories.join_state("D-B")
    restored = restored_from(
        changelog(
            (a1.key(), factories.signed(a1)),
            (b.key(), factories.signed(b)),
            (a2.key(), factories.signed(a2)),
            (b.key(), None),
        )
    )
    assert restored.states == {"D-A": a2}
    assert restored.skipped == {} and restored.rekeyed == 0


def test_restore_skips_tombstones_whose_key_names_no_declaration() -> None:
    kept = factories.join_state("D-0001")
    restored = restored_from(
        changelog(
            (kept.key(), factories.signed(kept)),
            (NOT_UTF8, None),  # decoded with "replace", this could name a real id
            (None, None),
            (b"\xc3", None),
        )
    )
    assert restored.states == {"D-0001": kept}
    (offsets,) = restored.skipped.values()
    assert offsets == [1, 2, 3]


def test_restore_files_a_value_under_its_own_id_whatever_its_key() -> None:
    state = factories.join_state("D-0001", decided=ClearanceStatus.TIMED_OUT)
    restored = restored_from(
        changelog((NOT_UTF8, factories.signed(state)), (None, factories.signed(state)))
    )
    assert restored.states == {"D-0001": state}
    assert restored.rekeyed == 2


def test_restore_skips_unreadable_values() -> None:
    state = factories.join_state("D-0001")
    restored = restored_from(
        changelog((b"D-X", b"\xc3\x01garbage"), (state.key(), factories.signed(state)))
    )
    assert restored.states == {"D-0001": state}
    assert list(restored.skipped.values()) == [[0]]


def test_restored_states_are_indexed_by_due_time() -> None:
    waiting = factories.join_state("D-W")  # deadline T0 + 120 s
    decided = factories.join_state("D-D", decided=ClearanceStatus.RELEASED)
    restored = restored_from(
        changelog(*((s.key(), factories.signed(s)) for s in (decided, waiting)))
    )
    table = JoinTable(timedelta(days=7), restored.states.values())
    assert table.next_due() == waiting.deadline
    changes, (result,) = table.expired(datetime(2026, 11, 27, 9, tzinfo=UTC))
    assert list(changes) == ["D-W"] and result.status is ClearanceStatus.TIMED_OUT


def test_restore_skips_states_the_aggregator_did_not_sign() -> None:
    state = factories.join_state("D-0001")
    forged = factories.join_state("D-0001", decided=ClearanceStatus.RELEASED)
    by_ciq = factories.SIGNING["ciq"].sign(forged, factories.T0)[1]
    restored = restored_from(
        changelog(
            (state.key(), factories.signed(state)),
            (forged.key(), forged.to_avro()),  # unsigned
            (forged.key(), by_ciq),  # signed, by a key that is not the aggregator's
        )
    )
    assert restored.states == {"D-0001": state}
    assert restored.skipped == {"join state not signed by the aggregator": [1, 2]}


def test_an_unsigned_or_forged_input_is_poison() -> None:
    declaration = factories.declaration()
    with pytest.raises(PoisonMessage, match="unsigned DeclarationSubmitted"):
        decode_input(
            record(DECLARATIONS_SUBMITTED.name, b"D-0001", declaration.to_avro()),
            factories.REGISTRY,
        )
    verdict = factories.verdict(agency="port")
    by_customs = factories.SIGNING["customs"].sign(verdict, factories.T0)[1]
    with pytest.raises(PoisonMessage, match="belongs to customs, not port"):
        decode_input(
            record(verdict_topics()["port"].name, b"D-0001", by_customs), factories.REGISTRY
        )


def test_restore_reads_the_changelog_as_compaction_leaves_it() -> None:
    """Only the last usable write per key counts: one superseded is never even decoded."""
    a = factories.join_state("D-A")
    restored = restored_from(
        changelog((a.key(), b"\xc3\x01garbage"), (a.key(), factories.signed(a)))
    )
    assert restored.states == {"D-A": a} and restored.skipped == {}


def test_restore_falls_back_to_a_tombstone_before_an_unusable_write() -> None:
    a = factories.join_state("D-A")
    restored = restored_from(
        changelog((a.key(), factories.signed(a)), (a.key(), None), (a.key(), b"\xc3\x01garbage"))
    )
    assert restored.states == {}
    assert restored.skipped == {"unreadable join state": [2]}
