"""Changes after release, with customs' approval (报关单修改和撤销管理办法), through the intake's
HTTP API (in-memory ports): a PUT on a released declaration is a change after release, routed
to customs alone; what stays refused, and what the trader sees.

The read model is the projector's own fold of what the intake published and of the join's
results (as in tests/unit/test_intake_changes.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from services.aggregator.join import fold as join_fold
from singlewindow.events import (
    AgencyVerdict,
    Decision,
    DeclarationSubmitted,
    Event,
    TaxKind,
    TaxTotal,
)
from tests import factories
from tests.unit.test_intake_api import FAST, T0, Intake, problem, running
from tests.unit.test_intake_changes import DOCS, lodged, project
from tests.unit.test_intake_schema import changed, valid_body

CHANGE = changed("items[0].invoice_price", "46000.10")  # the price was declared too low


def declared(intake: Intake) -> list[DeclarationSubmitted]:
    return [e for e in intake.publisher.events if isinstance(e, DeclarationSubmitted)]


def ruled(
    intake: Intake, decision: Decision = Decision.CLEAR, duty: str = "0.00"
) -> list[AgencyVerdict]:
    """Every agency asked on the latest version rules ``decision``; customs collects ``duty``."""
    current = declared(intake)[-1]
    assert current.version is not None
    taxes = (
        (TaxTotal(kind=TaxKind.DUTY, assessed=Decimal(duty), collected=Decimal(duty)),)
        if Decimal(duty)
        else ()
    )
    return [
        factories.verdict(
            current.declaration_id,
            agency,
            decision,
            declaration_version=current.version,
            verdict_id=f"V-{agency}-{current.version}",
            decided_at=current.submitted_at + timedelta(seconds=1),
            tax_totals=taxes if agency == "customs" else (),
            total_duties=Decimal(duty) if agency == "customs" else Decimal("0"),
        )
        for agency in current.required_agencies
    ]


def in_order(intake: Intake, *events: Event) -> list[Event]:
    """Every declaration version and ``events`` in the order they happened (by time, each
    version before the verdicts on it): a change after release comes after its release."""

    def when(event: Event) -> tuple[int, int]:
        if isinstance(event, DeclarationSubmitted):
            return (event.version or 1) * 10, 0
        if isinstance(event, AgencyVerdict):
            return (event.declaration_version or 1) * 10 + 1, 0
        return 11, 1  # a payment on version 1's notice

    return sorted([*declared(intake), *events], key=when)


def decided(intake: Intake, events: list[Any]) -> dict[str, Any]:
    """Every declaration version and ``events`` through the join, in the order they happened;
    everything projected."""
    ordered = in_order(intake, *events)
    _, results = join_fold(ordered, timedelta(minutes=2))  # type: ignore[arg-type]
    return project(intake, *ordered, *results)


async def released(intake: Intake) -> tuple[str, list[AgencyVerdict]]:
    """A declaration lodged, cleared by every agency, nothing collected: RELEASED."""
    declaration_id = await lodged(intake)
    verdicts = ruled(intake)
    assert decided(intake, verdicts)["status"] == "RELEASED"
    return declaration_id, verdicts


async def test_a_put_on_a_released_declaration_is_a_change_for_customs_approval() -> None:
    async with running() as intake:
        declaration_id, _ = await released(intake)
        url = f"/v1/declarations/{declaration_id}"
        response = await intake.client.put(url, json=CHANGE)
        assert response.status_code == 202, response.text
        first, change = declared(intake)
        assert first.required_agencies != ("customs",)  # version 1 went to every agency
        assert (change.version, change.after_release) == (2, True)
        assert change.required_agencies == ("customs",)  # the goods are out: customs alone
        assert change.routing_version == first.routing_version
        doc = project(intake, change)
        assert (doc["version"], doc["status"]) == (2, "IN_REVIEW")  # customs is assessing it
        view = (await intake.client.get(url)).json()
        assert view["next_step"]["code"] == "WAIT" and view["next_step"]["agencies"] == ["customs"]
        assert "after release" in view["next_step"]["message"]


async def test_while_a_change_is_assessed_no_other_change_and_never_a_withdrawal() -> None:
    async with running() as intake:
        declaration_id, _ = await released(intake)
        url = f"/v1/declarations/{declaration_id}"
        assert (await intake.client.put(url, json=CHANGE)).status_code == 202
        project(intake, declared(intake)[-1])
        again = changed("items[0].invoice_price", "47000.10")
        for response, kind in (
            (await intake.client.put(url, json=again), "change-pending"),
            (await intake.client.post(f"{url}/documents", json=DOCS), "change-pending"),
            (await intake.client.post(f"{url}/withdrawal", json={"reason": "x"}), "goods-released"),
        ):
            assert problem(response, 409)["type"].endswith(kind)
        assert len(declared(intake)) == 2


async def test_after_release_documents_and_withdrawal_stay_refused() -> None:
    async with running() as intake:
        declaration_id, _ = await released(intake)
        url = f"/v1/declarations/{declaration_id}"
        for response in (
            await intake.client.post(f"{url}/documents", json=DOCS),
            await intake.client.post(f"{url}/withdrawal", json={"reason": "error"}),
        ):
            assert problem(response, 409)["type"].endswith("declaration-closed")
        assert len(intake.publisher.events) == 1


async def test_a_change_after_release_keeps_the_containers_released() -> None:
    async with running() as intake:
        declaration_id, _ = await released(intake)
        body = changed("transport.containers", ["MSCU1234566"])
        response = await intake.client.put(f"/v1/declarations/{declaration_id}", json=body)
        assert problem(response, 422)["type"].endswith("containers-changed")
        assert len(intake.publisher.events) == 1


async def test_a_change_after_release_is_taken_only_within_the_window() -> None:
    """The latest step 30 days or more before now: the aggregator may have dropped the life
    (it keeps a released one 60 days after its last event), so the intake refuses."""
    async with running(replace(FAST, change_after_release_days=30)) as intake:
        declaration_id, _ = await released(intake)
        doc = dict(intake.read_model.documents[declaration_id])
        old = (T0 - timedelta(days=30)).isoformat()
        intake.read_model.put({**doc, "result": {**doc["result"], "decided_at": old}})
        response = await intake.client.put(f"/v1/declarations/{declaration_id}", json=CHANGE)
        assert problem(response, 409)["type"].endswith("change-window-closed")
        recent = (T0 - timedelta(days=29)).isoformat()
        intake.read_model.put({**doc, "result": {**doc["result"], "decided_at": recent}})
        response = await intake.client.put(f"/v1/declarations/{declaration_id}", json=CHANGE)
        assert response.status_code == 202, response.text


async def test_approved_with_more_duty_the_trader_pays_a_supplementary_notice() -> None:
    async with running() as intake:
        declaration_id, first = await released(intake)
        url = f"/v1/declarations/{declaration_id}"
        assert (await intake.client.put(url, json=CHANGE)).status_code == 202
        doc = decided(intake, [*first, *ruled(intake, duty="1200.00")])
        assert (doc["version"], doc["status"]) == (2, "SUPPLEMENTARY_PAYMENT_DUE")
        view = (await intake.client.get(url)).json()
        assert view["payment_notice"]["amount"] == "1200.00"  # nothing was levied at release
        assert view["next_step"]["code"] == "PAY"
        assert "supplementary" in view["next_step"]["message"]
        response = await intake.client.put(url, json=valid_body())  # pay first
        assert problem(response, 409)["type"].endswith("change-pending")


async def test_refused_the_release_stands_and_another_change_may_be_asked() -> None:
    async with running() as intake:
        declaration_id, first = await released(intake)
        url = f"/v1/declarations/{declaration_id}"
        assert (await intake.client.put(url, json=CHANGE)).status_code == 202
        refusal = ruled(intake, Decision.REJECT)
        doc = decided(intake, [*first, *refusal])
        assert (doc["version"], doc["status"]) == (2, "AMENDMENT_REFUSED")
        view = (await intake.client.get(url)).json()
        assert view["next_step"]["code"] == "NONE" and view["next_step"]["agencies"] == ["customs"]
        assert [v["decision"] for v in view["verdicts"]] == ["REJECT"]  # customs' reasons
        response = await intake.client.put(url, json=changed("items[0].invoice_price", "45500"))
        assert response.status_code == 202, response.text
        assert declared(intake)[-1].version == 3 and declared(intake)[-1].after_release


async def test_approved_with_less_duty_the_trader_sees_the_refund() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        first = ruled(intake, duty="1200.00")
        decided(intake, first)
        notice = intake.read_model.documents[declaration_id]["result"]["payment_notice"]
        paid = factories.payment(
            declaration_id, notice["notice_id"], amount=Decimal("1200.00"), paid_at=T0
        )
        decided(intake, [*first, paid])
        url = f"/v1/declarations/{declaration_id}"
        assert (await intake.client.put(url, json=CHANGE)).status_code == 202
        doc = decided(intake, [*first, paid, *ruled(intake, duty="1000.00")])
        assert (doc["version"], doc["status"]) == (2, "RELEASED")
        view = (await intake.client.get(url)).json()
        assert view["result"]["refund"] == "200.00"
        assert "refund" in view["next_step"]["message"]


async def test_a_change_after_a_raced_amendment_is_never_measured_against_its_containers() -> None:
    """Version 1 (container MSKU...) is released; an amendment naming another container,
    lodged while the trader still saw it in review, raced the release: the join ignored it,
    yet it shows as the declaration. The read model does not hold version 1's containers, so
    the intake cannot check that a change keeps the containers released: it refuses the
    change (409 ``amendment-raced``), whatever containers it names. Taken with the raced
    amendment's container, customs' approval would let the gate out with goods no agency
    cleared (it goes by the version of the latest step)."""
    async with running() as intake:
        declaration_id = await lodged(intake)
        [v1] = declared(intake)
        url = f"/v1/declarations/{declaration_id}"
        other = changed("transport.containers", ["MSCU1234566"])
        assert (await intake.client.put(url, json=other)).status_code == 202  # it raced
        v2 = declared(intake)[-1]
        assert v2.consignment.containers != v1.consignment.containers
        first = [
            factories.verdict(
                declaration_id,
                agency,
                Decision.CLEAR,
                declaration_version=1,
                verdict_id=f"V-{agency}-1",
                decided_at=v1.submitted_at + timedelta(seconds=1),
            )
            for agency in v1.required_agencies
        ]
        _, results = join_fold([v1, *first, v2], timedelta(minutes=2))
        assert [(r.version, str(r.status)) for r in results] == [(1, "RELEASED")]
        doc = project(intake, v2, *first, *results)
        assert (doc["status"], doc["version"]) == ("RELEASED", 2)
        published = len(intake.publisher.events)
        for body in (CHANGE, changed("transport.containers", ["MSCU1234566"])):
            # CHANGE keeps version 1's containers, the other names the raced amendment's
            response = await intake.client.put(url, json=body)
            assert problem(response, 409)["type"].endswith("amendment-raced"), response.text
        assert len(intake.publisher.events) == published
