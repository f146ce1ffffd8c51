"""The life of a declaration after its first answer, through the whole platform over HTTP
(the intake, the bank, every agency, the aggregator, the read model, the port's gate): the
journeys of :mod:`deploy.local.journeys`, checked as a trader would check them.

The late payment is the whisky of tests/e2e/test_assessment.py (invoice in CNY), 56,663.20 CNY
of duty, consumption tax and VAT in all (computed by hand there). Paid 10 days after the due
date: 0.05 % a day, 56,663.20 x 0.0005 x 10 = 283.316, 283.32 to the fen (half up).

A change after release (放行后修改, 报关单修改和撤销管理办法): the laptops of the demo, paid and
released, then their price corrected with customs' approval: the supplementary notice (补税) is
what customs collects on the new version less what the release levied, and the refund (退税)
what the release levied less what customs collects on the new version.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import httpx
import pytest

from deploy.local import journeys
from deploy.local.demo_data import scenario_body
from deploy.local.journeys import View, Window
from services.aggregator.payment import due_by
from singlewindow.reference import CHINA_TIME
from tests.e2e.checks import trader
from tests.e2e.conftest import Platform
from tests.e2e.test_assessment import WHISKY

pytestmark = pytest.mark.e2e


def steps(views: list[View]) -> list[tuple[int, int, str]]:
    """(sequence, version, status) of every step the last view lists."""
    return [(s["sequence"], s["version"], s["status"]) for s in views[-1]["steps"]]


async def test_a_notice_paid_ten_days_late_owes_interest_then_releases(window: Window) -> None:
    views = await journeys.pay_late(window, WHISKY, days=10)
    assert steps(views) == [
        (1, 1, "AWAITING_PAYMENT"),
        (2, 1, "AWAITING_PAYMENT"),
        (3, 1, "RELEASED"),
    ]
    first = next(v for v in views if v["status"] == "AWAITING_PAYMENT")
    notice = first["payment_notice"]
    assert Decimal(notice["amount"]) == Decimal("56663.20") == Decimal(notice["outstanding"])
    issued = datetime.fromisoformat(first["steps"][0]["decided_at"]).astimezone(CHINA_TIME)
    assert date.fromisoformat(notice["due_by"]) == due_by(issued.date())  # a working day
    assert first["next_step"]["code"] == "PAY"
    owed = next(v for v in views if len(v.get("steps") or ()) == 2)
    assert Decimal(owed["payment_notice"]["outstanding"]) == Decimal("283.32")
    released = views[-1]
    settlement = released["settlement"]
    assert settlement["kind"] == "PAYMENT"
    assert settlement["days_late"] == 10
    assert Decimal(settlement["late_interest"]) == Decimal("283.32")
    assert Decimal(settlement["paid"]) == Decimal("56946.52")  # 56,663.20 + 283.32
    assert released["next_step"]["code"] == "NONE"


async def test_every_journey_ends_where_the_trader_expects(
    window: Window, platform: Platform
) -> None:
    ended = await journeys.every_journey(window)

    paid = ended["pay → release"]
    assert [s for *_, s in steps(paid)] == ["AWAITING_PAYMENT", "RELEASED"]
    assert paid[-1]["settlement"]["kind"] == "PAYMENT"
    assert paid[-1]["settlement"]["days_late"] == 0
    # the goods left through the gate: the trader sees the gate-out, never the officer
    [out] = paid[-1]["gate_outs"]
    assert (out["gate"], out["vehicle"]) == (journeys.GATE, "沪A12345")
    assert out["containers"] == window.containers(paid[-1]["declaration_id"]) != []
    assert "officer" not in out and "gate-out" in paid[-1]["next_step"]["message"]
    assert paid[-1]["next_step"]["code"] == "NONE"
    # the read model records it: the same container does not leave twice
    again = await window.try_gate_out(paid[-1]["declaration_id"], vehicle="沪B54321")
    assert again.status_code == 409, again.text
    assert again.json()["type"].endswith(":already-out")

    secured = ended["bank guarantee → release"]
    assert [s for *_, s in steps(secured)] == ["AWAITING_PAYMENT", "RELEASED"]
    assert secured[-1]["settlement"]["kind"] == "BANK_GUARANTEE"

    # held on version 1 for the missing certificate; version 2 carries it and is released
    lifted = ended["hold → document → release"]
    assert steps(lifted)[0] == (1, 1, "HELD")
    assert steps(lifted)[-1][1:] == (2, "RELEASED")
    held = next(v for v in lifted if v["status"] == "HELD")
    assert held["next_step"]["code"] == "SUPPLY_DOCUMENTS"
    assert "ciq" in held["next_step"]["agencies"]

    amended = ended["hold → amendment → release"]
    assert steps(amended)[0] == (1, 1, "HELD")
    assert steps(amended)[-1][1:] == (2, "RELEASED")
    assert amended[-1]["version"] == 2

    # the same price query, secured instead: released on condition while the price is
    # consulted (担保放行, 价格磋商); the value agreed, lodged as a change, decides the duties
    valued = ended["price query → guarantee → conditional release → value → release"]
    assert [s for *_, s in steps(valued)] == [
        "HELD",
        "CONDITIONALLY_RELEASED",
        "SUPPLEMENTARY_PAYMENT_DUE",
        "RELEASED",
    ]
    queried = next(v for v in valued if v["status"] == "HELD")
    [customs] = [v for v in queried["verdicts"] if v["agency"] == "customs"]
    assert queried["next_step"]["code"] == "SECURE_RELEASE"
    assert queried["payment_notice"]["amount"] == customs["security"] is not None
    conditional = next(v for v in valued if v["status"] == "CONDITIONALLY_RELEASED")
    assert conditional["result"]["valuation_pending"] is True
    assert conditional["settlement"]["kind"] == "BANK_GUARANTEE"
    assert conditional["next_step"]["code"] == "LODGE_VALUE"
    duties = next(v for v in valued if v["status"] == "SUPPLEMENTARY_PAYMENT_DUE")
    assert [v["agency"] for v in duties["verdicts"]] == ["customs"]
    # nothing was levied at the conditional release: the whole duties of the value agreed
    assert Decimal(duties["payment_notice"]["amount"]) == collected(duties) > 0
    assert valued[-1]["settlement"]["kind"] == "PAYMENT"
    assert not valued[-1]["result"].get("valuation_pending")  # shown only while pending

    # one joint inspection: customs (a high-risk owner) and CIQ (a car) record on one order
    inspected = ended["inspection → release"]
    assert [s for *_, s in steps(inspected)] == [
        "INSPECTION_REQUIRED",
        "AWAITING_PAYMENT",
        "RELEASED",
    ]
    ordered = next(v for v in inspected if v["status"] == "INSPECTION_REQUIRED")
    assert ordered["next_step"]["code"] == "PRESENT_GOODS"
    order = ordered["result"]["inspection"]
    assert {c["agency"] for c in order["checks"]} == {"customs", "ciq"}
    assert inspected[-1]["settlement"]["kind"] == "PAYMENT"

    seized = ended["inspection → seizure"]
    assert [s for *_, s in steps(seized)] == ["INSPECTION_REQUIRED", "SANCTIONED"]
    sanction = seized[-1]["sanction"]
    assert (sanction["measure"], sanction["agency"]) == ("SEIZURE", "ciq")
    assert seized[-1]["next_step"]["code"] == "NONE"
    assert seized[-1]["payment_notice"] is None  # no duties are asked on seized goods

    sampled = ended["inspection → samples → conditional release → release"]
    assert [s for *_, s in steps(sampled)] == [
        "INSPECTION_REQUIRED",
        "AWAITING_PAYMENT",
        "CONDITIONALLY_RELEASED",
        "RELEASED",
    ]

    withdrawn = ended["withdrawal"]
    assert [s for *_, s in steps(withdrawn)] == ["AWAITING_PAYMENT", "WITHDRAWN"]
    assert withdrawn[-1]["next_step"]["code"] == "NONE"

    # changes after release with customs' approval: a supplementary notice paid, a refund
    supplementary = ended["release → change after release → supplementary notice → release"]
    assert [s for *_, s in steps(supplementary)][-2:] == ["SUPPLEMENTARY_PAYMENT_DUE", "RELEASED"]
    refund = ended["release → change after release → refund"]
    assert steps(refund)[-1] == (3, 2, "RELEASED") and refund[-1]["result"]["refund"]

    # nothing changes a final declaration: 409 for the trader, whatever the request
    async with httpx.AsyncClient(base_url=platform.url, timeout=30, headers=trader()) as intake:
        for views in (withdrawn, paid, seized):
            here = f"/v1/declarations/{views[-1]['declaration_id']}"
            refused = await intake.post(f"{here}/withdrawal", json={"reason": "again"})
            assert refused.status_code == 409, refused.text
            supplied = {"documents": [{"type": "PACKING_LIST", "reference": "PL-LATE-1"}]}
            refused = await intake.post(f"{here}/documents", json=supplied)
            assert refused.status_code == 409, refused.text


async def test_goods_awaiting_payment_stay_in_the_port(window: Window) -> None:
    """The gate opens only under a release: a declaration whose notice is unpaid is 409
    not-released, and nothing leaves (the trader's view shows no gate-out)."""
    declaration_id = await window.lodge(WHISKY)
    due = await window.until(declaration_id, "AWAITING_PAYMENT")
    assert due.get("gate_outs") == []
    refused = await window.try_gate_out(declaration_id)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith(":not-released")
    assert "AWAITING_PAYMENT" in refused.json()["detail"]


def collected(view: View) -> Decimal:
    """What customs' verdict on the version the view shows collects."""
    [customs] = [v for v in view["verdicts"] if v["agency"] == "customs"]
    return sum((Decimal(t["collected"]) for t in customs["tax_totals"]), Decimal("0.00"))


async def test_a_change_after_release_with_customs_approval_collects_the_difference(
    window: Window,
) -> None:
    laptops = scenario_body("clear-laptops")
    views = await journeys.change_after_release(window, laptops, journeys.repriced(laptops, "1.1"))
    assert steps(views) == [
        (1, 1, "AWAITING_PAYMENT"),
        (2, 1, "RELEASED"),
        (3, 2, "SUPPLEMENTARY_PAYMENT_DUE"),
        (4, 2, "RELEASED"),
    ]
    released = next(v for v in views if v["status"] == "RELEASED")
    levied = Decimal(released["payment_notice"]["amount"])
    # customs may answer before a poll shows the change IN_REVIEW: if one did, customs is named
    for assessing in (v for v in views if v["status"] == "IN_REVIEW" and v.get("version") == 2):
        assert assessing["next_step"]["agencies"] == ["customs"]
    due = next(v for v in views if v["status"] == "SUPPLEMENTARY_PAYMENT_DUE")
    assert [v["agency"] for v in due["verdicts"]] == ["customs"]  # the goods are out: customs
    notice = due["payment_notice"]
    assert Decimal(notice["amount"]) == collected(due) - levied > 0
    issued = datetime.fromisoformat(notice["issued_at"]).astimezone(CHINA_TIME)
    assert date.fromisoformat(notice["due_by"]) == due_by(issued.date())  # a working day
    assert due["next_step"]["code"] == "PAY"
    # the goods leave the port under the release of the new version
    declaration_id = due["declaration_id"]
    assert (await window.try_gate_out(declaration_id)).status_code == 202
    again = views[-1]
    assert again["settlement"]["kind"] == "PAYMENT"
    assert Decimal(again["settlement"]["paid"]) == Decimal(notice["amount"])
    # after release, still no withdrawal
    refused = await window.intake.post(
        f"/v1/declarations/{declaration_id}/withdrawal", json={"reason": "too late"}
    )
    assert refused.status_code == 409, refused.text


async def test_a_change_after_release_that_collects_less_names_the_refund(
    window: Window,
) -> None:
    laptops = scenario_body("clear-laptops")
    views = await journeys.change_after_release(window, laptops, journeys.repriced(laptops, "0.9"))
    assert steps(views) == [
        (1, 1, "AWAITING_PAYMENT"),
        (2, 1, "RELEASED"),
        (3, 2, "RELEASED"),
    ]
    released = next(v for v in views if v["status"] == "RELEASED")
    levied = Decimal(released["payment_notice"]["amount"])
    refunded = views[-1]
    assert Decimal(refunded["result"]["refund"]) == levied - collected(refunded) > 0
    assert "refund" in refunded["next_step"]["message"]
