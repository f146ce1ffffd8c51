"""The trader's view of a release against a general guarantee (总担保), and of the draw's
consolidated repayment (汇总征税) (services.intake.traderview).

The car of tests/unit/test_lifecycle.py, 60,813.00 CNY drawn on G-1 at 10:00 on 1 December
2026 (China time): due in the consolidated payment by the fifth working day of January 2027
(1 January a public holiday: Mon 4, Tue 5, Wed 6, Thu 7, Fri 8 -> 8 January).
"""

from __future__ import annotations

from typing import Any

from services.intake.schema import DeclarationStatus
from services.intake.traderview import trader_view
from singlewindow.events import Event
from singlewindow.readmodel import apply
from tests.unit.test_general_guarantee_join import drawn, repaid
from tests.unit.test_lifecycle import cleared, declared, notice_of, run


def view_of(events: list[Any]) -> dict[str, Any]:
    """The trader's view once the events and the join's steps are projected."""
    _, results = run(events)
    doc = None
    event: Event
    for event in [*events, *results]:
        doc = apply(doc, event)
    assert doc is not None
    return DeclarationStatus.model_validate(trader_view(doc)).model_dump(mode="json")


def test_a_release_on_a_draw_asks_for_the_consolidated_repayment() -> None:
    events: list[Any] = [declared(), *cleared()]
    notice = notice_of(events)
    view = view_of([*events, drawn(notice, "60813.00")])
    assert view["status"] == "RELEASED"
    settlement = view["settlement"]
    assert settlement["kind"] == "GENERAL_GUARANTEE" and settlement["paid"] == "60813.00"
    assert settlement["guarantee"] == {
        "guarantee_id": "G-1",
        "drawn_at": "2026-12-01T02:00:00Z",
        "repay_by": "2027-01-08",
        "repaid_at": None,
        "late_interest": None,
    }
    step = view["next_step"]
    assert step["code"] == "REPAY_GUARANTEE"
    assert step["action"] == "POST /v1/guarantees/G-1/repayments"
    assert "汇总征税" in step["message"] and "2027-01-08" in step["message"]


def test_once_repaid_nothing_more_is_due() -> None:
    events: list[Any] = [declared(), *cleared()]
    notice = notice_of(events)
    view = view_of([*events, drawn(notice, "60813.00"), repaid(notice, "60813.00")])
    guarantee = view["settlement"]["guarantee"]
    assert guarantee["repaid_at"] == "2026-12-30T02:00:00Z"
    assert guarantee["late_interest"] == "0.00"
    assert view["next_step"]["code"] == "NONE"
