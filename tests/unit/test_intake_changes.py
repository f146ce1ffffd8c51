"""Amendments, documents and withdrawals through the intake's HTTP API (in-memory ports).

The read model is the projector's own fold (``singlewindow.readmodel.apply``) of what the
intake published, so the checks run against the documents the platform really builds.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx

from services.aggregator.join import INSPECTION_DEADLINE, tick
from services.aggregator.join import fold as join_fold
from services.intake.service import AMENDMENT, NEW_VERSION, WITHDRAWAL, refusal
from singlewindow.events import (
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    DeclarationWithdrawn,
    Event,
    FindingOutcome,
    InspectionCheck,
    Measure,
    TaxKind,
    TaxTotal,
)
from singlewindow.readmodel import apply
from tests import factories
from tests.unit.intake_tokens import USCC_A, USCC_B
from tests.unit.test_intake_api import ISSUER, Intake, named, problem, running
from tests.unit.test_intake_schema import changed, valid_body

DOCS = {"documents": [{"type": "PACKING_LIST", "reference": "PL-1"}]}


def project(intake: Intake, *events: Event) -> dict[str, Any]:
    """Fold events into the in-memory read model, as the projector would."""
    doc: dict[str, Any] | None = None
    for event in events:
        doc = apply(intake.read_model.documents.get(event.declaration_id), event)
        intake.read_model.put(doc)
    assert doc is not None
    return doc


async def lodged(intake: Intake) -> str:
    """A declaration lodged and projected; its id."""
    response = await intake.submit(valid_body())
    assert response.status_code == 202
    project(intake, intake.publisher.events[-1])
    return str(response.json()["declaration_id"])


def with_result(intake: Intake, declaration_id: str, decision: Decision) -> dict[str, Any]:
    """The current version ruled on by every agency asked with ``decision``, and the join's
    results projected."""
    declared = [e for e in intake.publisher.events if isinstance(e, DeclarationSubmitted)]
    current = declared[-1]
    assert current.version is not None
    verdicts = [
        factories.verdict(
            declaration_id,
            agency,
            decision,
            declaration_version=current.version,
            verdict_id=f"V-{agency}-{current.version}",
            decided_at=current.submitted_at + timedelta(seconds=1),
        )
        for agency in current.required_agencies
    ]
    _, results = join_fold([*declared, *verdicts], timedelta(minutes=2))
    return project(intake, *verdicts, *results)


async def test_a_new_declaration_is_version_1() -> None:
    async with running() as intake:
        await lodged(intake)
        [event] = intake.publisher.events
        assert isinstance(event, DeclarationSubmitted) and event.version == 1


async def test_an_amendment_is_the_next_version_of_the_same_declaration() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        with_result(intake, declaration_id, Decision.HOLD)
        body = changed("items[0].description", "Laptops, 14 inch")
        response = await intake.client.put(f"/v1/declarations/{declaration_id}", json=body)
        assert response.status_code == 202, response.text
        assert response.headers["location"] == f"/v1/declarations/{declaration_id}"
        first, amended = intake.publisher.events
        assert isinstance(amended, DeclarationSubmitted)
        assert (amended.declaration_id, amended.version) == (declaration_id, 2)
        assert amended.event_id != first.event_id
        assert amended.items[0].description == "Laptops, 14 inch"
        assert amended.required_agencies  # routed again
        doc = project(intake, amended)
        assert (doc["version"], doc["status"]) == (2, "IN_REVIEW")  # its HELD no longer stands


async def test_an_amendment_is_refused_like_a_read_or_a_submission() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        stranger = ISSUER.auth("trader-b", (USCC_B,))
        for target, auth in ((declaration_id, stranger), ("DEC-NOPE", None)):
            response = await intake.client.put(
                f"/v1/declarations/{target}", json=valid_body(), headers=auth or {}
            )
            assert problem(response, 404)["type"].endswith("unknown-declaration")
        other = changed("declarant.uscc", USCC_B)
        problem(await intake.client.put(f"/v1/declarations/{declaration_id}", json=other), 403)
        bad = changed("items[0].hs_code", "12")
        response = await intake.client.put(f"/v1/declarations/{declaration_id}", json=bad)
        assert named(response) == {"items[0].hs_code"}
        assert len(intake.publisher.events) == 1


async def test_a_closed_declaration_cannot_change() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        doc = with_result(intake, declaration_id, Decision.REJECT)
        assert doc["status"] == "REJECTED"
        url = f"/v1/declarations/{declaration_id}"
        for response in (
            await intake.client.put(url, json=valid_body()),
            await intake.client.post(f"{url}/documents", json=DOCS),
            await intake.client.post(f"{url}/withdrawal", json={"reason": "error"}),
        ):
            assert problem(response, 409)["type"].endswith("declaration-closed")
        assert len(intake.publisher.events) == 1


async def test_a_declaration_lodged_before_versions_cannot_change() -> None:
    async with running() as intake:
        legacy = factories.declaration("DEC-OLD", declarant=factories.declaration().declarant)
        intake.read_model.put(apply(None, legacy))
        assert "version" not in intake.read_model.documents["DEC-OLD"]
        auth = ISSUER.auth("trader-a", (legacy.declarant.uscc,))
        response = await intake.client.post(
            "/v1/declarations/DEC-OLD/withdrawal", json={"reason": "error"}, headers=auth
        )
        assert problem(response, 409)["type"].endswith("no-versions")


async def test_a_version_the_read_model_does_not_show_yet_is_409_retry_after() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        url = f"/v1/declarations/{declaration_id}"
        one = changed("items[0].description", "first change")
        two = changed("items[0].description", "second change")
        assert (await intake.client.put(url, json=one)).status_code == 202
        again = await intake.client.put(url, json=one)  # the same change: the same event
        assert again.status_code == 202 and len(intake.publisher.events) == 2
        response = await intake.client.put(url, json=two)  # the projector has not caught up
        assert problem(response, 409)["type"].endswith("not-yet-visible")
        assert response.headers["retry-after"] == "1"
        project(intake, intake.publisher.events[-1])
        assert (await intake.client.put(url, json=two)).status_code == 202
        versions = [
            e.version for e in intake.publisher.events if isinstance(e, DeclarationSubmitted)
        ]
        assert versions == [1, 2, 3]


async def test_documents_make_a_new_version_with_them_added() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        with_result(intake, declaration_id, Decision.HOLD)
        url = f"/v1/declarations/{declaration_id}/documents"
        body = {
            "documents": [
                {"type": "COMMERCIAL_INVOICE", "reference": "INV-2026-001"},  # lodged already
                {"type": "HEALTH_CERTIFICATE", "reference": "HC-7"},
                {"type": "HEALTH_CERTIFICATE", "reference": "HC-7"},
            ]
        }
        response = await intake.client.post(url, json=body)
        assert response.status_code == 202, response.text
        first, added = intake.publisher.events
        assert isinstance(first, DeclarationSubmitted) and isinstance(added, DeclarationSubmitted)
        assert added.version == 2 and added.items == first.items
        assert [(d.type, d.reference) for d in added.documents] == [
            ("COMMERCIAL_INVOICE", "INV-2026-001"),
            ("HEALTH_CERTIFICATE", "HC-7"),
        ]
        project(intake, added)
        again = await intake.client.post(url, json=body)  # nothing new any more
        assert problem(again, 422)["type"].endswith("nothing-new")
        response = await intake.client.post(url, json={"documents": []})
        assert named(response) == {"documents"}


async def test_a_withdrawal_is_published_signed_by_the_intake_for_the_owner() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        url = f"/v1/declarations/{declaration_id}/withdrawal"
        response = await intake.client.post(url, json={"reason": "lodged in error"})
        assert response.status_code == 202, response.text
        withdrawn = intake.publisher.events[-1]
        assert isinstance(withdrawn, DeclarationWithdrawn)
        assert (withdrawn.version, withdrawn.requested_by) == (1, USCC_A)
        assert withdrawn.reason == "lodged in error"
        for reason in ("", "x" * 1001, " "):
            assert named(await intake.client.post(url, json={"reason": reason})) == {"reason"}


async def test_an_idempotency_key_answers_a_change_again_after_the_read_model_caught_up() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        url = f"/v1/declarations/{declaration_id}"
        body = changed("items[0].description", "changed once")
        key = {"Idempotency-Key": "amend-1"}
        assert (await intake.client.put(url, json=body, headers=key)).status_code == 202
        project(intake, intake.publisher.events[-1])
        assert (await intake.client.put(url, json=body, headers=key)).status_code == 202
        assert len(intake.publisher.events) == 2  # not a third version
        other = changed("items[0].description", "changed twice")
        response = await intake.client.put(url, json=other, headers=key)
        assert problem(response, 409)["type"].endswith("idempotency-key-reused")


async def test_a_retry_of_a_change_that_took_effect_is_answered_again_not_refused() -> None:
    """The trader's answer was lost, the change went through, and its effect now refuses
    that very change (WITHDRAWN closes the life; the documents are lodged; the amendment's
    version was rejected): the retry with the same key is 202 again and publishes nothing;
    another key, or another body, is refused as before."""
    async with running() as intake:
        declaration_id = await lodged(intake)
        with_result(intake, declaration_id, Decision.HOLD)
        url = f"/v1/declarations/{declaration_id}"
        documents = {"documents": [{"type": "HEALTH_CERTIFICATE", "reference": "HC-7"}]}
        key = {"Idempotency-Key": "docs-1"}
        response = await intake.client.post(f"{url}/documents", json=documents, headers=key)
        assert response.status_code == 202, response.text
        project(intake, intake.publisher.events[-1])
        again = await intake.client.post(f"{url}/documents", json=documents, headers=key)
        assert again.status_code == 202, again.text
        other = {"Idempotency-Key": "docs-2"}
        again = await intake.client.post(f"{url}/documents", json=documents, headers=other)
        assert problem(again, 422)["type"].endswith("nothing-new")

        body = changed("items[0].description", "changed once")
        key = {"Idempotency-Key": "amend-1"}
        assert (await intake.client.put(url, json=body, headers=key)).status_code == 202
        project(intake, intake.publisher.events[-1])
        intake.read_model.set_status(declaration_id, "REJECTED")  # version 3 rejected: closed
        assert (await intake.client.put(url, json=body, headers=key)).status_code == 202
        response = await intake.client.put(url, json=body, headers={"Idempotency-Key": "x"})
        assert problem(response, 409)["type"].endswith("declaration-closed")
        assert len(intake.publisher.events) == 3

    async with running() as intake:
        declaration_id = await lodged(intake)
        url = f"/v1/declarations/{declaration_id}/withdrawal"
        key = {"Idempotency-Key": "withdraw-1"}
        reason = {"reason": "lodged in error"}
        assert (await intake.client.post(url, json=reason, headers=key)).status_code == 202
        intake.read_model.set_status(declaration_id, "WITHDRAWN")  # the aggregator's answer
        assert (await intake.client.post(url, json=reason, headers=key)).status_code == 202
        other = {"reason": "another reason"}
        response = await intake.client.post(url, json=other, headers=key)
        assert problem(response, 409)["type"].endswith("declaration-closed")
        assert len(intake.publisher.events) == 2


async def test_the_trader_sees_the_notice_and_what_to_do() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        declared = intake.publisher.events[0]
        assert isinstance(declared, DeclarationSubmitted)
        taxes = (
            TaxTotal(kind=TaxKind.VAT, assessed=Decimal("5850.01"), collected=Decimal("5850.01")),
        )
        verdicts = [
            factories.verdict(
                declaration_id,
                agency,
                declaration_version=1,
                verdict_id=f"V-{agency}",
                tax_totals=taxes if agency == "customs" else (),
                total_duties=Decimal("5850.01") if agency == "customs" else Decimal("0"),
            )
            for agency in declared.required_agencies
        ]
        _, results = join_fold([declared, *verdicts], timedelta(minutes=2))
        project(intake, *verdicts, *results)
        view = (await intake.client.get(f"/v1/declarations/{declaration_id}")).json()
        assert view["status"] == "AWAITING_PAYMENT" and view["version"] == 1
        assert [(s["sequence"], s["status"]) for s in view["steps"]] == [(1, "AWAITING_PAYMENT")]
        notice = view["payment_notice"]
        assert (notice["amount"], notice["outstanding"]) == ("5850.01", "5850.01")
        assert notice["taxes"] == [{"kind": "VAT", "assessed": "5850.01", "collected": "5850.01"}]
        assert (
            view["next_step"]["code"] == "PAY"
            and notice["notice_id"] in view["next_step"]["message"]
        )
        assert view["settlement"] is None


async def test_wait_with_seen_answers_when_the_status_moves_on() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        doc = with_result(intake, declaration_id, Decision.HOLD)
        assert doc["status"] == "HELD"
        url = f"/v1/declarations/{declaration_id}"
        quick = await intake.client.get(url, params={"wait": 5})  # answered: at once
        assert quick.json()["status"] == "HELD"
        assert quick.json()["next_step"]["code"] == "SUPPLY_DOCUMENTS"

        async def amend_soon() -> None:
            await asyncio.sleep(0.1)
            intake.read_model.set_status(declaration_id, "IN_REVIEW")

        moving = asyncio.create_task(amend_soon())
        response: httpx.Response = await intake.client.get(url, params={"wait": 5, "seen": "HELD"})
        await moving
        assert response.json()["status"] == "IN_REVIEW"


def inspected(
    intake: Intake,
    declaration_id: str,
    outcome: FindingOutcome | None,
    overdue: bool = False,
    **found: Any,
) -> dict[str, Any]:
    """Every agency asked orders the inspection of the current version; with an ``outcome``,
    each records it against the order (``found``: the finding's other fields); ``overdue``:
    the join's clock then passes the order's deadline; the join's steps projected."""
    declared = [e for e in intake.publisher.events if isinstance(e, DeclarationSubmitted)]
    current = declared[-1]
    assert current.version is not None
    verdicts = [
        factories.verdict(
            declaration_id,
            agency,
            Decision.INSPECT,
            declaration_version=current.version,
            verdict_id=f"V-{agency}-{current.version}",
            decided_at=current.submitted_at + timedelta(seconds=1),
            checks=(InspectionCheck(agency=agency, check="COMMODITY_INSPECTION"),),
        )
        for agency in current.required_agencies
    ]
    _, results = join_fold([*declared, *verdicts], timedelta(minutes=2))
    order = results[-1].inspection
    assert order is not None
    findings = [
        factories.finding(
            declaration_id,
            agency,
            outcome,
            order_id=order.order_id,
            version=current.version,
            recorded_at=current.submitted_at + timedelta(hours=1),
            **found,
        )
        for agency in ([] if outcome is None else current.required_agencies)
    ]
    state, results = join_fold(
        [*declared, *verdicts, *findings], timedelta(minutes=2), INSPECTION_DEADLINE
    )
    if overdue:
        assert state is not None
        results += tick(state, current.submitted_at + timedelta(days=30), timedelta(days=60))[1]
    return project(intake, *verdicts, *findings, *results)


async def changes(intake: Intake, declaration_id: str) -> list[httpx.Response]:
    """An amendment, documents and a withdrawal of the declaration, in this order."""
    url = f"/v1/declarations/{declaration_id}"
    return [
        await intake.client.put(url, json=changed("items[0].description", "after all")),
        await intake.client.post(f"{url}/documents", json=DOCS),
        await intake.client.post(f"{url}/withdrawal", json={"reason": "error"}),
    ]


async def test_while_an_inspection_is_unfinished_there_is_no_new_version_nor_withdrawal() -> None:
    relabel = {"measure": Measure.RELABELLING}
    for outcome, found, status in (
        (None, {}, "INSPECTION_REQUIRED"),
        (FindingOutcome.NON_COMPLIANT, relabel, "REMEDIATION_REQUIRED"),
    ):
        async with running() as intake:
            declaration_id = await lodged(intake)
            assert inspected(intake, declaration_id, outcome, **found)["status"] == status
            for response in await changes(intake, declaration_id):
                refused = problem(response, 409)
                assert refused["type"].endswith("inspection-ordered")
                assert status in refused["detail"]
                assert "one inspection: after an inspection order" in refused["detail"]
            assert len(intake.publisher.events) == 1  # the declaration only


async def test_an_escalated_inspection_is_still_unfinished_and_the_trader_waits() -> None:
    """No agency recorded by the order's deadline: TIMED_OUT names them, and the declaration
    still refuses every change (409 ``inspection-ordered``), while the trader is told to wait
    for the agencies named, the order still shown."""
    async with running() as intake:
        declaration_id = await lodged(intake)
        doc = inspected(intake, declaration_id, None, overdue=True)
        assert doc["status"] == "TIMED_OUT"
        asked = list(doc["declaration"]["required_agencies"])
        assert doc["result"]["missing_agencies"] == asked
        for response in await changes(intake, declaration_id):
            refused = problem(response, 409)
            assert (
                refused["type"].endswith("inspection-ordered") and "TIMED_OUT" in refused["detail"]
            )
        assert len(intake.publisher.events) == 1  # the declaration only
        body = (await intake.client.get(f"/v1/declarations/{declaration_id}")).json()
        assert body["status"] == "TIMED_OUT" and body["inspection"] is not None
        assert body["result"]["missing_agencies"] == asked
        assert body["next_step"]["code"] == "WAIT" and body["next_step"]["agencies"] == asked
        assert "overdue" in body["next_step"]["message"]


async def test_goods_released_on_condition_can_no_longer_change() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        sampled = {"samples": ("S-1",)}
        doc = inspected(intake, declaration_id, FindingOutcome.SAMPLED, **sampled)
        assert doc["status"] == "CONDITIONALLY_RELEASED"
        for response in await changes(intake, declaration_id):
            refused = problem(response, 409)
            assert refused["type"].endswith("goods-released")
            assert "the goods are released" in refused["detail"]
        assert len(intake.publisher.events) == 1


async def test_a_sanctioned_declaration_is_closed() -> None:
    async with running() as intake:
        declaration_id = await lodged(intake)
        seized = {"measure": Measure.SEIZURE}
        doc = inspected(intake, declaration_id, FindingOutcome.NON_COMPLIANT, **seized)
        assert doc["status"] == "SANCTIONED"
        for response in await changes(intake, declaration_id):
            assert problem(response, 409)["type"].endswith("declaration-closed")
        assert len(intake.publisher.events) == 1


def test_one_rule_says_which_change_each_status_refuses() -> None:
    every = {str(s) for s in ClearanceStatus} | {"SUBMITTED", "IN_REVIEW"}
    changes = (AMENDMENT, NEW_VERSION, WITHDRAWAL)
    refused = {status: tuple(refusal(status, change) for change in changes) for status in every}
    # after release an amendment is a change after release, for customs' approval
    assert {s: r for s, r in refused.items() if r != (None, None, None)} == {
        "RELEASED": (None, "closed", "closed"),
        "AMENDMENT_REFUSED": (None, "closed", "closed"),
        "REJECTED": ("closed", "closed", "closed"),
        "WITHDRAWN": ("closed", "closed", "closed"),
        "SANCTIONED": ("closed", "closed", "closed"),
        "RECALLED": ("closed", "closed", "closed"),
        "CONDITIONALLY_RELEASED": ("released", "released", "released"),
        "SUPPLEMENTARY_PAYMENT_DUE": ("released", "released", "released"),
        "INSPECTION_REQUIRED": ("inspected", "inspected", "inspected"),
        "REMEDIATION_REQUIRED": ("inspected", "inspected", "inspected"),
    }
    # the version shown a change after release: while customs assesses it (IN_REVIEW) or its
    # supplementary notice is due, no other change; a withdrawal never (the goods are out)
    changing = {
        status: tuple(refusal(status, change, after_release=True) for change in changes)
        for status in ("IN_REVIEW", "SUPPLEMENTARY_PAYMENT_DUE", "RELEASED", "AMENDMENT_REFUSED")
    }
    assert changing == {
        "IN_REVIEW": ("change-pending", "change-pending", "released"),
        "SUPPLEMENTARY_PAYMENT_DUE": ("change-pending", "change-pending", "released"),
        "RELEASED": (None, "closed", "closed"),
        "AMENDMENT_REFUSED": (None, "closed", "closed"),
    }
    # TIMED_OUT: the verdicts' escalation takes both; an inspection order's neither
    assert refusal("TIMED_OUT", WITHDRAWAL, ordered=False) is None
    assert refusal("TIMED_OUT", NEW_VERSION, ordered=True) == "inspected"
    assert refusal("TIMED_OUT", WITHDRAWAL, ordered=True) == "inspected"


async def test_an_amendment_that_raced_the_order_does_not_open_the_escalated_inspection() -> None:
    """An amendment lodged while the read model still showed the declaration in review, read by
    the join after version 1's inspection order (ignored: one inspection), shows as the
    declaration (version 2) while the steps stay version 1's: the order, then its escalation
    (TIMED_OUT) or, once every agency has recorded, its notice. The join takes no new version
    of it, nor a withdrawal while the order is unfinished: the intake refuses them too (409),
    rather than a 202 that leads nowhere."""
    async with running() as intake:
        declaration_id = await lodged(intake)
        [v1] = intake.publisher.events
        assert isinstance(v1, DeclarationSubmitted) and v1.version == 1
        url = f"/v1/declarations/{declaration_id}"
        raced = await intake.client.put(url, json=changed("items[0].description", "raced"))
        assert raced.status_code == 202
        v2 = intake.publisher.events[-1]
        assert isinstance(v2, DeclarationSubmitted) and v2.version == 2
        verdicts = [
            factories.verdict(
                declaration_id,
                agency,
                Decision.INSPECT,
                declaration_version=1,
                verdict_id=f"V-{agency}-1",
                decided_at=v1.submitted_at + timedelta(seconds=1),
                checks=(InspectionCheck(agency=agency, check="COMMODITY_INSPECTION"),),
            )
            for agency in v1.required_agencies
        ]
        state, results = join_fold([v1, *verdicts, v2], timedelta(minutes=2), INSPECTION_DEADLINE)
        assert state is not None and state.version == 1  # the amendment is ignored
        _, overdue = tick(state, v1.submitted_at + timedelta(days=30), timedelta(days=60))
        assert [r.status for r in [*results, *overdue]] == [
            ClearanceStatus.INSPECTION_REQUIRED,
            ClearanceStatus.TIMED_OUT,
        ]
        doc = project(intake, v2, *verdicts, *results, *overdue)
        assert (doc["status"], doc["version"]) == ("TIMED_OUT", 2)
        published = len(intake.publisher.events)
        for response in await changes(intake, declaration_id):
            refused = problem(response, 409)
            assert refused["type"].endswith("inspection-ordered")
        assert len(intake.publisher.events) == published
