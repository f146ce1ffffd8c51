"""Released under guarantee pending a price consultation (担保放行, 价格磋商), through the
intake's HTTP API (in-memory ports): what the trader sees and may do at each step.

The join and the projector run on what the intake published (as in
tests/unit/test_intake_after_release.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from singlewindow.events import AgencyVerdict, Decision, PaymentKind
from tests import factories
from tests.unit.test_intake_after_release import CHANGE, decided, declared, ruled
from tests.unit.test_intake_api import Intake, problem, running
from tests.unit.test_intake_changes import DOCS, lodged

SECURITY = Decimal("9000.00")


def price_queried(intake: Intake) -> list[AgencyVerdict]:
    """Customs holds the latest version on its price, naming a security; the others clear."""
    verdicts = ruled(intake)
    return [
        v.model_copy(update={"decision": Decision.HOLD, "security": SECURITY})
        if v.agency == "customs"
        else v
        for v in verdicts
    ]


def guarantee(declaration_id: str, doc: dict[str, Any]) -> Any:
    """A bank guarantee for the security notice the HELD step shows."""
    notice = doc["result"]["payment_notice"]
    return factories.payment(
        declaration_id,
        notice_id=notice["notice_id"],
        kind=PaymentKind.BANK_GUARANTEE,
        amount=Decimal(notice["amount"]),
    )


async def test_held_on_its_price_the_trader_is_told_to_secure_the_release() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        doc = decided(intake, price_queried(intake))
        assert doc["status"] == "HELD"
        view = (await intake.client.get(f"/v1/declarations/{declaration_id}")).json()
        step = view["next_step"]
        assert (step["code"], step["action"], step["agencies"]) == (
            "SECURE_RELEASE",
            "POST /v1/payments",
            ["customs"],
        )
        assert "9000.00 CNY" in step["message"] and "BANK_GUARANTEE" in step["message"]


async def test_released_under_guarantee_the_agreed_value_is_lodged_as_a_change() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        url = f"/v1/declarations/{declaration_id}"
        first = price_queried(intake)
        doc = decided(intake, first)
        doc = decided(intake, [*first, guarantee(declaration_id, doc)])
        assert doc["status"] == "CONDITIONALLY_RELEASED"
        assert doc["result"]["valuation_pending"] is True
        view = (await intake.client.get(url)).json()
        assert view["next_step"]["code"] == "LODGE_VALUE"
        assert view["next_step"]["action"] == f"PUT {url}"
        for response, kind in (  # the goods are out: documents and a withdrawal are refused
            (await intake.client.post(f"{url}/documents", json=DOCS), "goods-released"),
            (await intake.client.post(f"{url}/withdrawal", json={"reason": "x"}), "goods-released"),
        ):
            assert problem(response, 409)["type"].endswith(kind)
        response = await intake.client.put(url, json=CHANGE)
        assert response.status_code == 202, response.text
        change = declared(intake)[-1]
        assert (change.version, change.after_release, change.required_agencies) == (
            2,
            True,
            ("customs",),
        )


async def value_refused(intake: Intake) -> tuple[str, list[Any], list[AgencyVerdict]]:
    """A declaration released under guarantee, the value lodged as version 2 and refused by
    customs (still CONDITIONALLY_RELEASED): its URL, the events before the value, the refusal."""
    declaration_id = await lodged(intake)
    url = f"/v1/declarations/{declaration_id}"
    first = price_queried(intake)
    secured = [*first, guarantee(declaration_id, decided(intake, first))]
    decided(intake, secured)
    assert (await intake.client.put(url, json=CHANGE)).status_code == 202
    refused = ruled(intake, Decision.HOLD)
    doc = decided(intake, [*secured, *refused])
    assert (doc["version"], doc["status"]) == (2, "CONDITIONALLY_RELEASED")
    return url, secured, refused


async def test_a_value_refused_may_be_followed_by_another_and_an_approved_one_is_paid() -> None:
    async with running() as intake:
        url, secured, refused = await value_refused(intake)
        view = (await intake.client.get(url)).json()
        assert view["next_step"]["code"] == "LODGE_VALUE"
        assert view["next_step"]["message"].startswith("Customs did not accept the value")
        higher = dict(CHANGE, items=[dict(CHANGE["items"][0], invoice_price="47000.10")])
        assert (await intake.client.put(url, json=higher)).status_code == 202
        doc = decided(intake, [*secured, *refused, *ruled(intake, duty="2300.00")])
        assert (doc["version"], doc["status"]) == (3, "SUPPLEMENTARY_PAYMENT_DUE")
        view = (await intake.client.get(url)).json()
        assert view["payment_notice"]["amount"] == "2300.00"  # nothing was levied before
        assert view["next_step"]["code"] == "PAY"
        response = await intake.client.put(url, json=CHANGE)  # pay first
        assert problem(response, 409)["type"].endswith("change-pending")


async def test_the_first_conditional_release_does_not_say_a_value_was_refused() -> None:
    """The conditional release the guarantee gives names the version's decisions, customs'
    HOLD on the price among them; no value was lodged yet, so none was refused."""
    async with running() as intake:
        declaration_id = await lodged(intake)
        first = price_queried(intake)
        decided(intake, [*first, guarantee(declaration_id, decided(intake, first))])
        view = (await intake.client.get(f"/v1/declarations/{declaration_id}")).json()
        assert view["next_step"]["code"] == "LODGE_VALUE"
        assert not view["next_step"]["message"].startswith("Customs did not accept")


async def test_a_hold_after_an_amendment_of_a_version_awaiting_payment_asks_for_no_guarantee() -> (
    None
):
    """Version 1 awaits payment of its notice; the trader amends it and customs holds version 2
    on a licence, naming no security: the notice still shown is version 1's, which the join no
    longer counts, and no guarantee releases version 2."""
    async with running() as intake:
        declaration_id = await lodged(intake)
        url = f"/v1/declarations/{declaration_id}"
        first = ruled(intake, duty="500.00")
        assert decided(intake, first)["status"] == "AWAITING_PAYMENT"
        assert (await intake.client.put(url, json=CHANGE)).status_code == 202
        doc = decided(intake, [*first, *ruled(intake, Decision.HOLD)])
        assert (doc["version"], doc["status"]) == (2, "HELD")
        view = (await intake.client.get(url)).json()
        assert view["next_step"]["code"] == "SUPPLY_DOCUMENTS"


async def test_after_a_value_refused_documents_are_refused_as_after_any_release() -> None:
    """Customs refused the value lodged: the goods stay released under guarantee and no change
    is pending (another value may be lodged at once), so documents are refused because the
    goods are out (``goods-released``), as before any value was lodged, not ``change-pending``."""
    async with running() as intake:
        url, _, _ = await value_refused(intake)
        for response in (
            await intake.client.post(f"{url}/documents", json=DOCS),
            await intake.client.post(f"{url}/withdrawal", json={"reason": "x"}),
        ):
            assert problem(response, 409)["type"].endswith("goods-released")
