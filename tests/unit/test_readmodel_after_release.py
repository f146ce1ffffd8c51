"""The read model of a change after release (报关单修改和撤销管理办法): IN_REVIEW while customs
assesses it, then its steps; a pure function of the set of its events, as any life.

The life of tests/unit/test_readmodel.py (released on version 2 once its 24,795.00 CNY duty
was paid), then version 3, a change after release on which customs collects 26,295.00: a
supplementary notice of 1,500.00, paid.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.aggregator import payment
from services.aggregator.join import fold as join_fold
from singlewindow.events import (
    AgencyVerdict,
    ClearanceResult,
    Decision,
    DeclarationSubmitted,
    Event,
    TaxKind,
    TaxTotal,
)
from singlewindow.readmodel import apply, content_of
from tests import factories
from tests.unit.test_readmodel import LIFE, _declared, fold

MORE = (TaxTotal(kind=TaxKind.DUTY, assessed=Decimal("26295.00"), collected=Decimal("26295.00")),)


def _change() -> DeclarationSubmitted:
    declared = _declared(3, 3600, after_release=True)
    return declared.model_copy(update={"required_agencies": ("customs",)})


def _approval() -> AgencyVerdict:
    return factories.verdict(
        "D-LV",
        "customs",
        Decision.CLEAR,
        declaration_version=3,
        decided_at=factories.T0 + timedelta(seconds=3601),
        verdict_id="V-customs-v3",
        tax_totals=MORE,
        total_duties=Decimal("26295.00"),
    )


def _changed_life() -> list[Event]:
    inputs: list[Any] = [e for e in LIFE if not isinstance(e, ClearanceResult)]
    paid = factories.payment(
        "D-LV",
        payment.notice_id("D-LV", 3),
        payment_id="P-supp",
        amount=Decimal("1500.00"),
        paid_at=factories.T0 + timedelta(hours=3),
    )
    inputs += [_change(), _approval(), paid]
    _, results = join_fold(inputs, timedelta(seconds=120))
    return [*inputs, *results]


CHANGED = _changed_life()


def test_a_change_after_release_is_in_review_then_follows_customs_answer() -> None:
    released = fold(LIFE)
    assert released["status"] == "RELEASED"
    doc = apply(released, _change())
    assert (doc["version"], doc["status"]) == (3, "IN_REVIEW")
    assert doc["result"]["version"] == 2  # the release in force is still the latest step
    doc = apply(doc, _approval())
    assert doc["status"] == "IN_REVIEW"  # no answer yet
    doc = fold(CHANGED)
    assert [(s["sequence"], s["version"], s["status"]) for s in doc["steps"]][3:] == [
        (4, 2, "RELEASED"),
        (5, 3, "SUPPLEMENTARY_PAYMENT_DUE"),
        (6, 3, "RELEASED"),
    ]
    assert doc["steps"][4]["payment_notice"]["amount"] == "1500.00"
    assert doc["status"] == "RELEASED" and doc["version"] == 3


def test_an_amendment_that_raced_the_release_still_shows_the_release() -> None:
    """Not marked: the join ignored it, the release stands (as before changes after release)."""
    raced = _declared(3, 3600)
    assert fold([*LIFE, raced])["status"] == "RELEASED"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_changed_life_in_any_order_with_replays_gives_one_document(data: st.DataObject) -> None:
    order = data.draw(st.permutations(range(len(CHANGED))))
    again = data.draw(st.lists(st.integers(0, len(CHANGED) - 1), max_size=6))
    events = [CHANGED[i] for i in order] + [CHANGED[i] for i in again]
    assert content_of(fold(events)) == content_of(fold(CHANGED))
