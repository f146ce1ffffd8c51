"""The metrics of issue 14 that unit tests can drive: what the aggregator measures of the
join's steps (pure), its table's counts of open states and pending deadlines, the consumer
lag on the in-memory broker, dead letters by source and error kind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from services.aggregator import join
from services.aggregator.observe import first_answers, verdict_latencies
from services.aggregator.table import JoinTable
from singlewindow.agency import agency_service
from singlewindow.events import AgencyVerdict, ClearanceStatus, Decision, DeclarationSubmitted
from singlewindow.kafka.consumer import PoisonMessage
from singlewindow.kafka.deadletter import error_kind
from singlewindow.kafka.watch import LagMeter
from singlewindow.registry import agency_registry
from singlewindow.settings import Settings
from singlewindow.signing import SignatureError
from singlewindow.testing import FakeBroker
from singlewindow.topics import DECLARATIONS_SUBMITTED
from tests import factories
from tests.factories import T0

DEADLINE = timedelta(seconds=120)
RETENTION = timedelta(days=60)
DECLARATIONS = DECLARATIONS_SUBMITTED.name


def at(seconds: float) -> object:
    return T0 + timedelta(seconds=seconds)


def ruled(
    agency: str, seconds: float, version: int | None = None, **changes: object
) -> AgencyVerdict:
    return factories.verdict(
        "D-0001", agency, decided_at=at(seconds), declaration_version=version, **changes
    )


def fold(events: list[join.Input]) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Every event through ``join.step``, and what the aggregator observes of each step."""
    state = None
    answers: list[tuple[str, float]] = []
    verdicts: list[tuple[str, float]] = []
    for event in events:
        after, out = join.step(state, event, DEADLINE)
        if after is not state:
            verdicts += verdict_latencies(state, after, event)
        answers += first_answers(state, after, out)
        state = after
    return answers, verdicts


# --- submit-to-final and verdict latency, in event time --------------------------------------


@pytest.mark.parametrize("version", [None, 1])
def test_the_first_answer_is_timed_from_submission_and_each_verdict_too(
    version: int | None,
) -> None:
    declaration = factories.declaration(version=version)
    answers, verdicts = fold([declaration, ruled("customs", 2, version), ruled("port", 5, version)])
    assert answers == [("RELEASED", 5.0)]  # the joint answer rests on the latest verdict
    assert verdicts == [("customs", 2.0), ("port", 5.0)]


def test_verdicts_read_before_their_declaration_are_timed_when_it_is_read() -> None:
    answers, verdicts = fold(
        [ruled("customs", 2, 1), ruled("port", 7, 1), factories.declaration(version=1)]
    )
    assert verdicts == [("customs", 2.0), ("port", 7.0)]
    assert answers == [("RELEASED", 7.0)]


def test_a_duplicate_or_superseded_verdict_is_not_timed_again() -> None:
    answers, verdicts = fold(
        [
            factories.declaration(version=2),
            ruled("customs", 2, 2),
            ruled("customs", 3, 2),  # the same agency again: ignored
            ruled("port", 4, 1),  # on a superseded version
        ]
    )
    assert verdicts == [("customs", 2.0)] and answers == []


def test_a_timeout_is_the_first_answer_and_the_late_verdict_is_not() -> None:
    state, _ = join.step(None, factories.declaration(version=1), DEADLINE)
    state, _ = join.step(state, ruled("customs", 2, 1), DEADLINE)
    assert state is not None
    escalated, results = join.tick(state, at(DEADLINE.total_seconds()), RETENTION)
    assert [r.status for r in results] == [ClearanceStatus.TIMED_OUT]
    assert first_answers(state, escalated, results) == [("TIMED_OUT", 120.0)]
    late = ruled("port", 300, 1)
    decided, out = join.step(escalated, late, DEADLINE)
    assert [r.status for r in out] == [ClearanceStatus.RELEASED]
    assert first_answers(escalated, decided, out) == []  # answered at the deadline already
    assert verdict_latencies(escalated, decided, late) == [("port", 300.0)]


def test_a_later_step_of_the_version_is_not_its_first_answer() -> None:
    inspect = {"decision": Decision.INSPECT}
    answers, _ = fold(
        [
            factories.declaration(version=1),
            ruled("customs", 2, 1, **inspect),
            ruled("port", 3, 1),
            factories.withdrawal(withdrawn_at=at(10)),  # refused while inspecting: no step
            factories.declaration(version=2, submitted_at=at(20)),  # no amendment after an order
        ]
    )
    assert answers == [("INSPECTION_REQUIRED", 3.0)]


def test_an_amendment_is_answered_anew_from_its_own_submission() -> None:
    answers, _ = fold(
        [
            factories.declaration(version=1),
            ruled("customs", 2, 1, decision=Decision.HOLD),
            ruled("port", 3, 1),
            factories.declaration(version=2, submitted_at=at(100)),
            ruled("customs", 104, 2),
            ruled("port", 101, 2),
        ]
    )
    assert answers == [("HELD", 3.0), ("RELEASED", 4.0)]


def test_an_agency_clock_behind_the_intakes_counts_as_no_time() -> None:
    _, verdicts = fold([factories.declaration(), ruled("customs", -3)])
    assert verdicts == [("customs", 0.0)]


# --- open join states and pending deadlines ---------------------------------------------------


def test_the_table_counts_open_states_and_pending_deadlines_as_they_change() -> None:
    waiting = factories.join_state("D-1")  # declared, a verdict missing: its deadline pending
    orphan = factories.join_state("D-2", required_agencies=None, submitted_at=None, deadline=None)
    decided = factories.join_state("D-3", decided=ClearanceStatus.RELEASED)
    table = JoinTable(RETENTION, [waiting, orphan, decided])
    assert (table.open, table.pending) == (2, 1)
    table.apply({"D-1": waiting.model_copy(update={"decided": ClearanceStatus.REJECTED})})
    assert (table.open, table.pending) == (1, 0)
    table.apply({"D-2": None, "D-4": factories.join_state("D-4")})
    assert (table.open, table.pending) == (1, 1)
    changes, _ = table.expired(T0 + DEADLINE)  # D-4 times out: decided, kept
    table.apply(changes)
    assert (table.open, table.pending, len(table)) == (0, 0, 3)


# --- consumer lag ---------------------------------------------------------------------------


def lag(service: str, topic: str, partition: int) -> float | None:
    labels = {"service": service, "group": "g", "topic": topic, "partition": str(partition)}
    return REGISTRY.get_sample_value("singlewindow_consumer_lag", labels)


async def test_lag_is_the_records_between_the_position_and_the_end_per_assigned_partition() -> None:
    async with FakeBroker(partitions=2) as broker:
        member = broker.consumer(Settings(), "g", "lagging", ["t"])
        await member.start()
        for n in range(5):
            await broker.publish("t", b"x", key=None, partition=n % 2)  # 3 on p0, 2 on p1
        meter = LagMeter("lagging", "g", every_s=0)
        await member.getmany(TopicPartition("t", 0), max_records=1)
        await meter.update(member)
        assert (lag("lagging", "t", 0), lag("lagging", "t", 1)) == (2, 2)
        await member.getmany(max_records=10)
        await meter.update(member)
        assert (lag("lagging", "t", 0), lag("lagging", "t", 1)) == (0, 0)
        await member.commit()  # a rebalance resets positions to the committed offsets
        other = broker.consumer(Settings(), "g", "other", ["t"])
        await other.start()  # the group's range assignment gives it p1
        await meter.update(member)
        assert (lag("lagging", "t", 0), lag("lagging", "t", 1)) == (0, None)
        meter.close()  # the member stopped
        assert lag("lagging", "t", 0) is None
        await member.stop()
        await other.stop()


async def test_lag_is_measured_at_most_once_per_interval() -> None:
    clock = [0.0]
    async with FakeBroker() as broker:
        member = broker.consumer(Settings(), "g", "throttled", ["t"])
        await member.start()
        meter = LagMeter("throttled", "g", every_s=1, clock=lambda: clock[0])
        await meter.update(member)
        await broker.publish("t", b"x", key=None)
        await meter.update(member)
        assert lag("throttled", "t", 0) == 0  # not measured again yet
        clock[0] = 1.0
        await meter.update(member)
        assert lag("throttled", "t", 0) == 1
        await member.stop()


# --- dead letters by source topic and error kind ----------------------------------------------


def dead_letters(topic: str, kind: str) -> float:
    labels = {"service": "customs", "source_topic": topic, "error": kind}
    return REGISTRY.get_sample_value("singlewindow_dead_letters_total", labels) or 0.0


async def test_dead_letters_are_counted_by_source_topic_and_error_kind() -> None:
    settings = factories.with_keys(Settings(), "customs")

    def assess(declaration: DeclarationSubmitted, now: object) -> AgencyVerdict:
        return factories.verdict(declaration.declaration_id, "customs")

    before = dead_letters(DECLARATIONS, "WrongHeader"), dead_letters(DECLARATIONS, "SignatureError")
    async with FakeBroker() as broker:
        await broker.start(agency_service("customs", assess, settings, transport=broker))  # type: ignore[arg-type]
        await broker.publish(DECLARATIONS, b"not avro", key=b"D-0001")  # the codec's error
        await broker.publish(DECLARATIONS, factories.declaration("D-0002"))  # unsigned
        await broker.run_until_idle()
    assert len(broker.dead_letters()) == 2
    after = dead_letters(DECLARATIONS, "WrongHeader"), dead_letters(DECLARATIONS, "SignatureError")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


def test_an_error_kind_is_the_class_a_poison_record_was_refused_for() -> None:
    try:
        raise PoisonMessage("signature refused") from SignatureError("no signature")
    except PoisonMessage as exc:
        assert error_kind(exc) == "SignatureError"
    assert error_kind(PoisonMessage("key is not the declaration id")) == "PoisonMessage"
    assert error_kind(ValueError("handler failed")) == "ValueError"


async def test_the_lag_of_a_member_busy_with_batches_is_measured_after_each_batch() -> None:
    """The agencies and the projector handle what they fetch as one batch: under load every
    poll brings one, and the lag must follow it (not only when a poll comes back empty)."""
    settings = factories.with_keys(Settings(), "customs")
    group = agency_registry().get("customs").group
    seen: list[float | None] = []

    def assess(declaration: DeclarationSubmitted, now: object) -> AgencyVerdict:
        labels = {"service": "customs", "group": group, "topic": DECLARATIONS, "partition": "0"}
        seen.append(REGISTRY.get_sample_value("singlewindow_consumer_lag", labels))
        return factories.verdict(declaration.declaration_id, "customs")

    async with FakeBroker() as broker:
        for n in range(250):  # a batch of 200 (max_poll_records), then 50
            declaration = factories.declaration(f"D-{n:04d}")
            await broker.publish(DECLARATIONS, declaration, signer=factories.SIGNING["intake"])
        await broker.start(agency_service("customs", assess, settings, transport=broker))  # type: ignore[arg-type]
        await broker.run_until_idle()
    assert len(seen) == 250
    assert seen[200] == 50  # measured once the first batch was done: 50 records behind
