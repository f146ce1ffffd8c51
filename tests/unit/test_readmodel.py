"""The read model's fold: order-tolerant, idempotent, monotonic, final only when complete."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from singlewindow.events import ClearanceStatus, Decision, Event
from singlewindow.readmodel import FINAL, apply, status_view
from tests import factories

EVENTS: list[Event] = [
    factories.declaration("D-RM", required_agencies=("customs", "port")),
    factories.verdict("D-RM", "customs", Decision.INSPECT, verdict_id="V1"),
    factories.verdict("D-RM", "port", Decision.CLEAR),
    factories.result("D-RM", status=ClearanceStatus.INSPECTION_REQUIRED),
]


def fold(events: list[Event]) -> dict[str, object]:
    doc = None
    for event in events:
        doc = apply(doc, event)
    assert doc is not None
    return doc


@given(st.permutations(range(4)), st.lists(st.integers(0, 3), max_size=8))
def test_any_order_with_replays_gives_the_same_document(order: list[int], again: list[int]) -> None:
    events = [EVENTS[i] for i in order] + [EVENTS[i] for i in again]
    assert fold(events) == fold(EVENTS)


def test_status_walks_forward_and_is_final_only_with_every_named_verdict() -> None:
    statuses = []
    doc = None
    for event in [EVENTS[0], EVENTS[3], EVENTS[2], EVENTS[1]]:
        doc = apply(doc, event)
        statuses.append(doc["status"])
    assert statuses == ["SUBMITTED", "IN_REVIEW", "IN_REVIEW", "INSPECTION_REQUIRED"]


def test_a_late_duplicate_never_changes_a_final_document() -> None:
    final = fold(EVENTS)
    assert final["status"] in FINAL
    late = factories.verdict("D-RM", "customs", Decision.REJECT, verdict_id="V1")
    assert apply(final, late) == final
    assert apply(final, EVENTS[0]) == final


def test_the_status_view_lists_verdicts_in_agency_order() -> None:
    view = status_view(fold(list(reversed(EVENTS))))
    assert view["declaration_id"] == "D-RM"
    assert [v["agency"] for v in view["verdicts"]] == ["customs", "port"]
    assert view["result"]["status"] == "INSPECTION_REQUIRED"
