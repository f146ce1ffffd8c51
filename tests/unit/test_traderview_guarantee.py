"""The trader's view of a release against a general guarantee (总担保), and of the draw's
consolidated repayment (汇总征税) (services.intake.traderview).

The car of tests/unit/test_lifecycle.py, 60,813.00 CNY drawn on G-1 at 10:00 on 1 December
2026 (China time): due in the consolidated payment by the fifth working day of January 2027
(1 January a public holiday: Mon 4, Tue 5, Wed 6, Thu 7, Fri 8 -> 8 January).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.aggregator import payment
from services.intake.schema import DeclarationStatus
from services.intake.traderview import trader_view
from singlewindow.events import Decision, Event
from singlewindow.readmodel import apply
from tests import factories
from tests.unit.test_after_release import LESS, MORE, approval, change
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


def test_a_draw_still_to_repay_is_asked_for_whatever_a_change_after_release_gives() -> None:
    """The car released on a draw on G-1, not repaid yet; then a change after release. While
    customs assesses it, once it refunds, refuses, or collects a supplementary notice paid
    by the bank, the latest steps show no draw, yet the consolidated payment is still due by
    8 January: the trader is told to repay it (not "nothing to do"); once repaid, nothing."""
    events: list[Any] = [declared(), *cleared()]
    notice = notice_of(events)
    released = [*events, drawn(notice, "60813.00")]
    supplementary = factories.payment(
        payment_id="P-supp", notice_id=payment.notice_id("D-0001", 2), amount=Decimal("3678.94")
    )
    for more, status in (
        ([change()], "IN_REVIEW"),
        ([change(), approval(LESS)], "RELEASED"),
        ([change(), approval(MORE, decision=Decision.REJECT)], "AMENDMENT_REFUSED"),
        ([change(), approval(MORE), supplementary], "RELEASED"),
    ):
        view = view_of([*released, *more])
        assert view["status"] == status
        step = view["next_step"]
        assert step["code"] == "REPAY_GUARANTEE", (status, step)
        assert step["action"] == "POST /v1/guarantees/G-1/repayments"
        assert "2027-01-08" in step["message"]
        if status == "RELEASED" and view["result"].get("refund"):
            assert "3678.94" in step["message"]  # the refund is still named
        after = view_of([*released, *more, repaid(notice, "60813.00")])
        assert after["next_step"]["code"] in ("NONE", "WAIT"), (status, after["next_step"])
