"""A general guarantee (总担保) and the consolidated payment (汇总征税) through the whole
platform over HTTP: the journey "general guarantee → release (汇总征税) → consolidated
repayment" of :mod:`deploy.local.journeys`, with the bank's ledger in the real database.

The laptops' importer (XIAMEN, 91350100M000100Y43) holds G-DEMO-XIAMEN-2026, a consolidated
guarantee of 5,000,000.00 CNY (deploy/local/guarantees.json). The draw secures the notice's
amount; the repayment, made at once, is in time (due the fifth working day of the month
after the draw's): no late interest, and the draw is no longer outstanding at the bank.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from deploy.local import journeys
from deploy.local.demo_data import scenario_body
from deploy.local.journeys import View, Window
from singlewindow.latepayment import consolidated_due_by

pytestmark = pytest.mark.e2e


async def test_a_draw_releases_and_the_consolidated_repayment_restores_it(window: Window) -> None:
    body = scenario_body("clear-laptops")
    guarantee = journeys.demo_guarantee(journeys.owner(body))
    before = (await window.bank.get(f"/v1/guarantees/{guarantee}")).json()
    views: list[View] = await journeys.general_guarantee(window, body)
    assert [s["status"] for s in views[-1]["steps"]] == ["AWAITING_PAYMENT", "RELEASED"]
    notice = next(v for v in views if v["status"] == "AWAITING_PAYMENT")["payment_notice"]
    drawn = next(v for v in views if (v.get("settlement") or {}).get("guarantee"))
    settlement = drawn["settlement"]
    assert settlement["kind"] == "GENERAL_GUARANTEE"
    assert settlement["paid"] == notice["amount"]
    assert settlement["guarantee"]["guarantee_id"] == guarantee
    drawn_at = datetime.fromisoformat(settlement["guarantee"]["drawn_at"])
    assert settlement["guarantee"]["repay_by"] == consolidated_due_by(drawn_at).isoformat()
    assert drawn["next_step"]["code"] == "REPAY_GUARANTEE"
    repaid = views[-1]
    assert repaid["settlement"]["guarantee"]["late_interest"] == "0.00"
    assert repaid["next_step"]["code"] == "NONE"
    after = (await window.bank.get(f"/v1/guarantees/{guarantee}")).json()
    assert notice["notice_id"] not in {d["notice_id"] for d in after["outstanding"]}
    # the draw and its repayment are two entries; other journeys may draw meanwhile
    assert after["ledger_sequence"] >= before["ledger_sequence"] + 2


async def test_a_draw_without_an_idempotency_key_is_refused(window: Window) -> None:
    body = scenario_body("clear-laptops")
    guarantee = journeys.demo_guarantee(journeys.owner(body))
    response = await window.bank.post(
        "/v1/payments",
        json={
            "declaration_id": "DEC-00000000000000000000000000000000",
            "notice_id": "N-none",
            "amount": "1.00",
            "kind": "GENERAL_GUARANTEE",
            "guarantee_id": guarantee,
            "payer": journeys.owner(body),
        },
    )
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith(":idempotency-key-required")
