"""The read model's fold: order-tolerant, idempotent, monotonic, final only when complete."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.aggregator.join import fold as join_fold
from singlewindow.events import (
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    Event,
    TaxKind,
    TaxTotal,
)
from singlewindow.readmodel import FINAL, apply, status_view
from tests import factories

EVENTS: list[Event] = [
    factories.declaration("D-RM", required_agencies=("customs", "port")),
    factories.verdict("D-RM", "customs", Decision.INSPECT, verdict_id="V1"),
    factories.verdict("D-RM", "port", Decision.CLEAR),
    factories.result("D-RM", status=ClearanceStatus.INSPECTION_REQUIRED),
]


def fold(events: list[Event]) -> dict[str, Any]:
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


# -- the life of a versioned declaration ------------------------------------------------------
# The results come from the join itself (services.aggregator.join.fold), so the projection is
# tested against the steps the aggregator really writes.

V_ALL = ("customs", "port")
CAR_TAX = (
    TaxTotal(kind=TaxKind.DUTY, assessed=Decimal("24795.00"), collected=Decimal("24795.00")),
)


def _declared(version: int, at: int, **changes: Any) -> DeclarationSubmitted:
    return factories.declaration(
        "D-LV",
        version=version,
        required_agencies=V_ALL,
        submitted_at=factories.T0 + timedelta(seconds=at),
        event_id=f"E{version}",
        **changes,
    )


def _ruled(agency: str, decision: Decision, version: int, at: int) -> AgencyVerdict:
    taxed = agency == "customs" and decision is Decision.CLEAR
    return factories.verdict(
        "D-LV",
        agency,
        decision,
        declaration_version=version,
        decided_at=factories.T0 + timedelta(seconds=at),
        verdict_id=f"V-{agency}-v{version}",
        tax_totals=CAR_TAX if taxed else (),
        total_duties=Decimal("24795.00") if taxed else Decimal("0"),
    )


def _life(*, withdraw: bool = False) -> list[Event]:
    """Held on version 1, amended, cleared with a notice, paid in two parts (released), or
    withdrawn while the notice is due; inputs and the join's results, in the join's order."""
    inputs: list[Any] = [
        _declared(1, 0),
        _ruled("customs", Decision.HOLD, 1, 1),
        _ruled("port", Decision.CLEAR, 1, 2),
        _declared(2, 10),
        _ruled("customs", Decision.CLEAR, 2, 11),
        _ruled("port", Decision.CLEAR, 2, 12),
    ]
    _, results = join_fold(inputs, timedelta(seconds=120))
    notice = results[-1].payment_notice
    assert notice is not None
    if withdraw:
        inputs.append(factories.withdrawal("D-LV", version=2))
    else:
        inputs += [
            factories.payment(
                "D-LV", notice.notice_id, payment_id="P1", amount=Decimal("20000.00")
            ),
            factories.payment(
                "D-LV",
                notice.notice_id,
                payment_id="P2",
                amount=Decimal("4795.00"),
                paid_at=factories.T0 + timedelta(hours=2),
            ),
        ]
    _, results = join_fold(inputs, timedelta(seconds=120))
    return [*inputs, *results]


LIFE = _life()
WITHDRAWN = _life(withdraw=True)


def test_a_versioned_life_is_folded_into_its_steps() -> None:
    doc = fold(LIFE)
    assert doc["version"] == 2 and doc["declaration"]["event_id"] == "E2"
    assert [(s["sequence"], s["version"], s["status"]) for s in doc["steps"]] == [
        (1, 1, "HELD"),
        (2, 2, "AWAITING_PAYMENT"),
        (3, 2, "AWAITING_PAYMENT"),
        (4, 2, "RELEASED"),
    ]
    assert doc["result"] == doc["steps"][-1] and doc["status"] == "RELEASED"
    assert {a: v["declaration_version"] for a, v in doc["verdicts"].items()} == {
        "customs": 2,
        "port": 2,
    }
    assert doc["pending_verdicts"] == [] and doc["withdrawal"] is None
    assert [p["payment_id"] for p in doc["payments"]] == ["P1", "P2"]
    assert doc["result"]["settlement"]["paid"] == "24795.00"
    assert status_view(doc)["steps"] == doc["steps"]


def test_a_withdrawn_life_ends_withdrawn() -> None:
    doc = fold(WITHDRAWN)
    assert doc["status"] == "WITHDRAWN" and doc["withdrawal"]["version"] == 2
    assert [s["status"] for s in doc["steps"]][-1] == "WITHDRAWN"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_versioned_life_in_any_order_with_replays_gives_one_document(data: st.DataObject) -> None:
    history = data.draw(st.sampled_from([LIFE, WITHDRAWN]))
    order = data.draw(st.permutations(range(len(history))))
    again = data.draw(st.lists(st.integers(0, len(history) - 1), max_size=6))
    events = [history[i] for i in order] + [history[i] for i in again]
    assert fold(events) == fold(history)


def test_the_status_follows_the_steps_of_the_current_version() -> None:
    statuses = []
    doc = None
    for event in LIFE:
        doc = apply(doc, event)
        statuses.append(doc["status"])
    # the inputs first (no result yet: version 2 is the current one from the 4th), then the
    # results: version 1's HELD no longer stands, version 2's steps do
    assert statuses == [
        *("SUBMITTED", "IN_REVIEW", "IN_REVIEW", "SUBMITTED", "IN_REVIEW", "IN_REVIEW"),
        *("IN_REVIEW", "IN_REVIEW", "IN_REVIEW", "AWAITING_PAYMENT", "AWAITING_PAYMENT"),
        "RELEASED",
    ]


def test_after_an_amendment_the_old_answer_no_longer_stands() -> None:
    held = [e for e in LIFE if not isinstance(e, ClearanceResult)][:3]
    first = next(e for e in LIFE if isinstance(e, ClearanceResult))
    doc = fold([*held, first])
    assert doc["status"] == "HELD" and doc["version"] == 1
    doc = apply(doc, _declared(2, 10))
    assert doc["status"] == "IN_REVIEW" and doc["version"] == 2
    assert doc["verdicts"] == {} and doc["result"]["status"] == "HELD"  # v1's no longer count


def test_verdicts_on_a_later_version_wait_for_their_declaration() -> None:
    early = _ruled("port", Decision.CLEAR, 2, 12)
    doc = fold([_declared(1, 0), early])
    assert doc["verdicts"] == {} and doc["pending_verdicts"][0]["verdict_id"] == "V-port-v2"
    doc = apply(doc, _declared(2, 10))
    assert list(doc["verdicts"]) == ["port"] and doc["pending_verdicts"] == []


def test_a_declaration_without_versions_keeps_its_document() -> None:
    doc = fold(EVENTS)
    assert set(doc) == {"_id", "status", "declaration", "verdicts", "result"}
    assert apply(doc, factories.withdrawal("D-RM")) == doc
    assert apply(doc, factories.payment("D-RM")) == doc
