"""The auditors' verification of the port's gate-outs (gate.out): goods out only under a
release of their declaration (:func:`services.audit.verify.verify_gate_outs`), on the lives of
tests/unit/test_verify.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.audit.verify import Report, recomputers, verify
from singlewindow.events import ClearanceResult, ClearanceStatus, GateOut
from tests import factories
from tests.unit.test_verify import (
    DEADLINE,
    KEROSENE,
    KEYS,
    LAB_FAULT,
    Life,
    kinds,
    paid_life,
    released_life,
    sampled_life,
)


def gate_out_under(result: ClearanceResult, hours: float = 1, **changes: Any) -> GateOut:
    """Goods of ``result``'s declaration out ``hours`` after it was decided, relying on it
    (a vehicle of bulk goods: no container, unless ``containers``)."""
    base: dict[str, Any] = {
        "containers": (),
        "gate_out_id": f"G-{result.result_id}",
        "result_id": result.result_id,
        "passed_at": result.decided_at + timedelta(hours=hours),
    }
    declaration_id = changes.pop("declaration_id", result.declaration_id)
    return factories.gate_out(declaration_id, **{**base, **changes})


def verified_with(life: Life, *gate_outs: GateOut) -> Report:
    return verify(
        life.declarations,
        life.verdicts,
        life.results,
        DEADLINE,
        recomputers(KEYS),
        withdrawals=life.withdrawals,
        payments=life.payments,
        inspection_findings=life.findings,
        gate_outs=gate_outs,
    )


def test_goods_out_under_their_release_verify_clean() -> None:
    life = released_life()
    release = life.results[-1]
    assert release.status is ClearanceStatus.RELEASED
    first = gate_out_under(release)
    second = gate_out_under(release, 2, gate_out_id="G-2", vehicle="沪B54321")
    report = verified_with(life, first, second, first)  # two trucks, one redelivered
    assert kinds(report) == [] and report.gate_outs == 3
    at_once = gate_out_under(release, 0)  # passed the moment the release was decided
    assert kinds(verified_with(life, at_once)) == []


def test_goods_out_under_a_conditional_release_then_recalled_is_no_finding() -> None:
    life = sampled_life(LAB_FAULT)
    conditional, recalled = life.results[-2:]
    assert (conditional.status, recalled.status) == (
        ClearanceStatus.CONDITIONALLY_RELEASED,
        ClearanceStatus.RECALLED,
    )
    before_recall = gate_out_under(conditional)
    within_slack = gate_out_under(  # clocks may disagree by up to join.CLOCK_SLACK
        conditional,
        gate_out_id="G-close",
        passed_at=recalled.decided_at + timedelta(minutes=1),
    )
    assert kinds(verified_with(life, before_recall, within_slack)) == []


def test_goods_out_after_their_recall_is_a_finding() -> None:
    life = sampled_life(LAB_FAULT)
    conditional, recalled = life.results[-2:]
    late = gate_out_under(
        conditional, gate_out_id="G-late", passed_at=recalled.decided_at + timedelta(hours=1)
    )
    report = verified_with(life, late)
    assert kinds(report) == ["gate-out without release"]
    assert f"after step {recalled.sequence} (RECALLED)" in report.findings[0].detail


def test_one_container_out_twice_is_a_finding() -> None:
    life = released_life()
    release = life.results[-1]
    box = ("CSQU3054383",)
    first = gate_out_under(release, containers=box)
    again = gate_out_under(release, 2, gate_out_id="G-again", containers=box)
    report = verified_with(life, first, again, first)  # the redelivered copy is no second
    assert kinds(report) == ["container out twice"]
    assert "CSQU3054383" in report.findings[0].detail


def test_a_gate_out_without_a_release_is_a_finding() -> None:
    life = released_life()
    notice, release = life.results[-2:]
    assert notice.status is ClearanceStatus.AWAITING_PAYMENT
    other = paid_life().results[-1]  # another declaration's release
    outs = [
        gate_out_under(notice, gate_out_id="G-unpaid"),  # duties still due
        gate_out_under(release, gate_out_id="G-invented", result_id="R-NOSUCH"),
        gate_out_under(release, -1, gate_out_id="G-early"),  # before the release
        gate_out_under(other, declaration_id=KEROSENE, gate_out_id="G-other"),
    ]
    report = verified_with(life, *outs, outs[0])  # a copy is reported once
    assert kinds(report) == ["gate-out without release"] * 4 and report.gate_outs == 5
    details = {f.detail.split()[1]: f.detail for f in report.findings}
    unpaid = f"step {notice.sequence}, AWAITING_PAYMENT), which is no release"
    assert unpaid in details["G-unpaid"]
    assert "names result R-NOSUCH, which is no result of the declaration" in details["G-invented"]
    assert "before result" in details["G-early"] and "was decided at" in details["G-early"]
    assert f"names result {other.result_id}, which is no result" in details["G-other"]
    assert {f.declaration_id for f in report.findings} == {KEROSENE}
