"""The port's gate around a change after release (报关单修改和撤销管理办法): while customs
assesses the change the goods still in the port wait (409 ``amendment-pending``); once customs
has answered (approved, with or without a supplementary notice, or refused: the release before
stands) they leave under the latest step; a container out stays out.

The documents are the projector's fold (``singlewindow.readmodel.apply``) of the events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.intake import devissuer
from singlewindow.events import (
    AgencyDecision,
    ClearanceStatus,
    Decision,
    Event,
)
from singlewindow.readmodel import apply
from tests import factories
from tests.unit.test_gate import (
    CONTAINER,
    DECLARATION,
    OTHER,
    Issuer,
    body,
    life,
    port,
    problem,
    projected,
)


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    devissuer.ensure_keys(tmp_path / "issuer")
    return Issuer(tmp_path / "issuer")


def folded(document: dict[str, Any], *events: Event) -> dict[str, Any]:
    for event in events:
        document = apply(document, event)
    return document


def changed(document: dict[str, Any], *answer: ClearanceStatus) -> dict[str, Any]:
    """The released document, then a change after release (version 2, the same containers,
    routed to customs), customs' verdict on it and the steps ``answer`` on version 2."""
    released = document["declaration"]
    change = factories.declaration(DECLARATION, version=2, event_id="E-2").model_copy(
        update={
            "after_release": True,
            "required_agencies": ("customs",),
            "consignment": factories.declaration().consignment.model_copy(
                update={"containers": tuple(released["consignment"]["containers"])}
            ),
        }
    )
    decision = Decision.REJECT if ClearanceStatus.AMENDMENT_REFUSED in answer else Decision.CLEAR
    verdict = factories.verdict(
        DECLARATION, "customs", decision, declaration_version=2, verdict_id="V-customs-2"
    )
    steps = [
        factories.result(
            DECLARATION,
            status=status,
            version=2,
            sequence=len(document["steps"]) + n,
            result_id=f"R-v2-{n}",
            decisions=(
                AgencyDecision(agency="customs", decision=decision, verdict_id="V-customs-2"),
            ),
        )
        for n, status in enumerate(answer, start=1)
    ]
    return folded(document, change, verdict, *steps)


async def test_while_customs_assesses_a_change_the_goods_in_the_port_wait(issuer: Issuer) -> None:
    async with port(issuer, life(ClearanceStatus.RELEASED)) as gate:
        first = await gate.out(body(containers=[CONTAINER]))
        projected(gate)
        document = changed(gate.read_model.documents[DECLARATION])
        assert document["status"] == "IN_REVIEW"
        gate.read_model.put(document)
        waiting = await gate.out(body(vehicle="沪B54321", containers=[OTHER]))
        assert len(gate.published()) == 1
    assert first.status_code == 202, first.text
    refused = problem(waiting, 409)
    assert refused["type"].endswith(":amendment-pending")
    assert "after release" in refused["detail"]


async def test_once_customs_answered_the_rest_leaves_and_what_is_out_stays_out(
    issuer: Issuer,
) -> None:
    for answer, status in (
        ((ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE,), "SUPPLEMENTARY_PAYMENT_DUE"),
        (
            (ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE, ClearanceStatus.RELEASED),
            "RELEASED",
        ),
        ((ClearanceStatus.RELEASED,), "RELEASED"),
        ((ClearanceStatus.AMENDMENT_REFUSED,), "AMENDMENT_REFUSED"),
    ):
        async with port(issuer, life(ClearanceStatus.RELEASED)) as gate:
            assert (await gate.out(body(containers=[CONTAINER]))).status_code == 202
            projected(gate)
            document = changed(gate.read_model.documents[DECLARATION], *answer)
            assert document["status"] == status
            gate.read_model.put(document)
            again = await gate.out(body(vehicle="沪B54321", containers=[CONTAINER]))
            rest = await gate.out(body(vehicle="沪B54321", containers=[OTHER]))
        assert problem(again, 409)["type"].endswith(":already-out"), answer
        assert rest.status_code == 202, (answer, rest.text)
        assert rest.json()["result_id"] == document["result"]["result_id"], answer
