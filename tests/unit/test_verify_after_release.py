"""The auditors' verification of changes after release (报关单修改和撤销管理办法): the steps the
join writes verify clean; a forged one, or any other step after a release, is a finding.

The life of tests/unit/test_verify.py: D-0001 by air (customs alone), held on version 1,
amended, released on version 2 once its 48,350.36 CNY of VAT was paid. Then the trader asks
customs to change it after release: version 3, with the price 10 % higher (49,500.11), on which
customs' real rules collect 53,185.39 VAT: a supplementary notice of 53,185.39 - 48,350.36 =
4,835.03 CNY.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from services.aggregator import payment
from services.aggregator.join import INSPECTION_DEADLINE, fold, step, tick
from singlewindow.events import (
    AgencyVerdict,
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    InspectionFinding,
    JoinState,
    PaymentConfirmed,
    PaymentKind,
)
from tests import factories
from tests.unit.test_verify import (
    DEADLINE,
    ID,
    KEROSENE,
    Life,
    folded,
    found,
    kerosene,
    kinds,
    lodged,
    paid_life,
    ruled,
    ruled_on,
)
from tests.unit.test_verify import EVENTS as INSPECTED

HOUR = 3600


def change(factor: str = "1.1", version: int = 3, **changes: Any) -> DeclarationSubmitted:
    """A change after release of version 2: its price times ``factor``, routed to customs."""
    item = paid_life().declarations[1].items[0]
    price = item.invoice_price or item.customs_value
    changed = item.model_copy(
        update={
            "customs_value": item.customs_value * Decimal(factor),
            "invoice_price": price * Decimal(factor),
        }
    )
    marked: dict[str, Any] = {"after_release": True, "required_agencies": ("customs",)}
    return lodged(version, at=3 * HOUR, items=(changed,), **{**marked, **changes})


def released_events() -> list[Any]:
    life = paid_life()
    v1, v2 = life.declarations
    return [v1, life.verdicts[0], v2, life.verdicts[1], *life.payments]


def changed_life(factor: str = "1.1", *more: Any) -> Life:
    """The released life, the change after release and customs' verdict on it, and ``more``."""
    v3 = change(factor)
    return folded([*released_events(), v3, ruled_on(v3, at=3 * HOUR + 1), *more])


def supplementary(amount: str = "4835.03", hours: int = 5) -> Any:
    return factories.payment(
        ID,
        notice_id=payment.notice_id(ID, 3),
        payment_id="P-supp",
        amount=Decimal(amount),
        paid_at=factories.T0 + timedelta(hours=hours),
    )


def steps(life: Life) -> list[tuple[int, int | None, ClearanceStatus]]:
    return [(r.sequence, r.version, r.status) for r in life.results]


def test_an_approved_change_with_a_supplementary_notice_then_paid_verifies_clean() -> None:
    life = changed_life("1.1", supplementary())
    assert steps(life)[3:] == [
        (4, 2, ClearanceStatus.RELEASED),
        (5, 3, ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE),
        (6, 3, ClearanceStatus.RELEASED),
    ]
    notice = life.results[4].payment_notice
    assert notice is not None and notice.amount == Decimal("4835.03")  # 53,185.39 - 48,350.36
    assert kinds(life.verify()) == []
    # unpaid: the life is not over, and nothing is missing
    assert kinds(life.verify(results=life.results[:5], payments=life.payments[:2])) == []


def test_a_refund_no_change_and_a_refusal_verify_clean() -> None:
    refund = changed_life("0.9")
    assert steps(refund)[-1] == (5, 3, ClearanceStatus.RELEASED)
    assert refund.results[-1].refund == Decimal("4835.04")  # 48,350.36 - 43,515.32
    same = changed_life("1")
    assert steps(same)[-1] == (5, 3, ClearanceStatus.RELEASED)
    assert same.results[-1].refund is None
    for life in (refund, same):
        assert kinds(life.verify()) == []
    v3 = change("1.1")
    rejected = ruled_on(v3, at=3 * HOUR + 1).model_copy(update={"decision": Decision.REJECT})
    refused = folded([*released_events(), v3, rejected])
    assert steps(refused)[-1] == (5, 3, ClearanceStatus.AMENDMENT_REFUSED)
    report = refused.verify()
    assert kinds(report) == ["verdict mismatch"]  # customs' real rules clear it: the forgery
    # is the verdict, and the step is what the join gives it


def test_a_forged_step_after_release_is_caught() -> None:
    life = changed_life("1.1", supplementary())
    *before, due, paid = life.results
    # released on the change without the supplementary notice the join issues
    at_once = due.model_copy(update={"status": ClearanceStatus.RELEASED, "payment_notice": None})
    unpaid = ["release without payment or guarantee"]
    assert kinds(life.verify(results=[*before, at_once])) == unpaid
    # released although nothing on the supplementary notice settles it
    assert kinds(life.verify(payments=life.payments[:2])) == [
        "release without payment or guarantee"
    ]
    # a refund the verdicts do not give
    refund = changed_life("0.9")
    lie = refund.results[-1].model_copy(update={"refund": Decimal("9999.99")})
    assert kinds(refund.verify(results=[*refund.results[:-1], lie])) == [
        "result contradicts verdicts"
    ]
    assert paid.status is ClearanceStatus.RELEASED


def test_any_other_step_after_a_release_is_a_finding() -> None:
    """After RELEASED only the steps of a change after release: a step on a version not marked
    (an ordinary amendment the join ignores once the goods are out) is *result after a
    release*; so is a step on the version released itself."""
    events = released_events()
    v3 = lodged(3, at=3 * HOUR)  # not marked: routed as any amendment
    amended = folded([*events, v3, ruled_on(v3, at=3 * HOUR + 1)])
    assert steps(amended)[-1] == (4, 2, ClearanceStatus.RELEASED)  # ignored by the join
    assert kinds(amended.verify()) == []
    forged = amended.results[-1].model_copy(
        update={"sequence": 5, "version": 3, "result_id": "R-forged"}
    )
    assert "result after a release" in kinds(amended.verify(results=[*amended.results, forged]))
    again = amended.results[-1].model_copy(update={"sequence": 5, "result_id": "R-again"})
    assert "result after a release" in kinds(amended.verify(results=[*amended.results, again]))


def test_a_change_after_release_routed_to_every_agency_is_a_routing_mismatch() -> None:
    v3 = change("1", required_agencies=("customs", "port"))
    life = folded([*released_events(), v3])
    assert "routing mismatch" in kinds(life.verify())


def test_a_change_customs_ruled_on_without_an_answer_is_a_missing_result() -> None:
    life = changed_life("1.1")
    assert kinds(life.verify(results=life.results[:4])) == ["missing result"]
    v3 = change("1.1")
    waiting = folded([*released_events(), v3])  # customs has not ruled yet: nothing missing
    assert kinds(waiting.verify()) == []


def test_an_escalation_of_a_change_after_release_is_a_finding() -> None:
    """The join gives a change after release no deadline (customs approves it in its own
    time): a TIMED_OUT on it, even one at the submission + the aggregator's deadline naming
    customs, is no step the join writes."""
    v3 = change("1.1")
    life = folded([*released_events(), v3])  # customs has not ruled yet
    last = life.results[-1]
    forged = last.model_copy(
        update={
            "status": ClearanceStatus.TIMED_OUT,
            "sequence": last.sequence + 1,
            "version": 3,
            "result_id": "R-timed-out",
            "decided_at": v3.submitted_at + DEADLINE,
            "missing_agencies": ("customs",),
            "decisions": (),
            "payment_notice": None,
            "settlement": None,
        }
    )
    assert kinds(life.verify()) == []
    assert kinds(life.verify(results=[*life.results, forged])) == ["result contradicts verdicts"]


def test_a_change_of_goods_drawn_in_customs_random_sample_is_not_refused_for_the_sample() -> None:
    """D-0076 (kerosene) was drawn in customs' random sample, inspected, found compliant and
    released on a draw on general guarantee G-1. The trader then declares 1,100 kg, not 1,000:
    customs' real rules assess the change (the sample is the declaration id's, the same for
    every version, and the goods are out: it draws no INSPECT, which the join would take as a
    refusal of every change of this declaration, a refund included); the supplementary notice
    is drawn on G-1 too, and the whole life, both ledger entries included, verifies clean."""
    events = [*INSPECTED, found("customs"), found("ciq", hours=3)]
    state, _ = fold(events, DEADLINE)
    assert state is not None and state.notice is not None
    first = state.notice
    v1 = kerosene()
    item = v1.items[0].model_copy(
        update={"quantity": Decimal("1100"), "second_quantity": Decimal("1375")}
    )
    v2 = v1.model_copy(
        update={
            "version": 2,
            "event_id": "E-K2",
            "items": (item,),
            "after_release": True,
            "required_agencies": ("customs",),
            "submitted_at": factories.T0 + timedelta(hours=6),
        }
    )
    verdict = ruled(v2, "customs", factories.T0 + timedelta(hours=7))
    assert verdict.decision is Decision.CLEAR and verdict.reasons == ()
    released = [*events, draw(first.notice_id, first.amount, 1, first.amount, 5)]
    life = folded([*released, v2, verdict])
    assert steps(life)[-1] == (4, 2, ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE)
    due = life.results[-1].payment_notice
    assert due is not None and due.amount == Decimal("169.50")
    paid = draw(due.notice_id, due.amount, 2, first.amount + due.amount, 8)
    life = folded([*released, v2, verdict, paid])
    assert steps(life)[-1] == (5, 2, ClearanceStatus.RELEASED)
    assert kinds(life.verify()) == []


def draw(notice_id: str, amount: Decimal, sequence: int, drawn: Decimal, hours: int) -> Any:
    """A draw on G-1 (500,000.00) on D-0076's notice, ``drawn`` in all by then."""
    return factories.payment(
        KEROSENE,
        notice_id=notice_id,
        payment_id=f"PAY-draw-{sequence}",
        kind=PaymentKind.GENERAL_GUARANTEE,
        amount=amount,
        paid_at=factories.T0 + timedelta(hours=hours),
        guarantee_id="G-1",
        guarantee_amount=Decimal("500000.00"),
        ledger_sequence=sequence,
        balance_after=Decimal("500000.00") - drawn,
    )


def test_random_inspected_escalated_guaranteed_and_changed_lives_verify_clean() -> None:
    """D-0076 inspected (each agency's finding in time or after the order's deadline, read
    before or after the aggregator's clock ticked past it), its notice paid, partly then in
    full, secured by a bank guarantee or drawn on G-1 (with redeliveries); then two changes
    after release of its quantity, each read before or after customs' verdict on it (and
    again), a supplementary notice paid or drawn on G-1. Whatever the join writes verifies
    clean, the guarantee's ledger included."""
    rng = random.Random(20261128)
    seen: set[ClearanceStatus] = set()
    for _ in range(150):
        life = _random_life(rng)
        if life is None:
            continue
        seen |= {r.status for r in life.results}
        assert kinds(life.verify()) == [], [(r.sequence, r.version, r.status) for r in life.results]
    assert {
        ClearanceStatus.TIMED_OUT,
        ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE,
        ClearanceStatus.RELEASED,
    } <= seen


def hours(h: int) -> datetime:
    return factories.T0 + timedelta(hours=h)


def _random_life(rng: random.Random) -> Life | None:
    """One such life (None: not released on version 1, no change asked)."""
    findings = [
        found("customs", hours=rng.choice([2, 60])),
        found("ciq", hours=rng.choice([3, 61])),
    ]
    rng.shuffle(findings)
    cut = rng.randint(0, 2)
    state, results = fold([*INSPECTED, *findings[:cut]], DEADLINE, INSPECTION_DEADLINE)
    assert state is not None
    if rng.random() < 0.7:
        state, out = tick(state, factories.T0 + timedelta(days=3), timedelta(days=60))
        results += out
    events: list[Any] = [*INSPECTED, *findings]

    def read(more: list[Any]) -> JoinState:
        nonlocal state
        for event in more:
            assert state is not None
            state, out = step(state, event, DEADLINE, INSPECTION_DEADLINE)
            results.extend(out)
        events.extend(more)
        assert state is not None
        return state

    state = read(findings[cut:])
    if state.notice is None:
        return None
    notice, ledger, drawn = state.notice, 1, Decimal("0")

    def paying(notice_id: str, amount: Decimal, payment_id: str, h: int, **more: Any) -> Any:
        return factories.payment(
            KEROSENE,
            notice_id=notice_id,
            payment_id=payment_id,
            amount=amount,
            paid_at=hours(h),
            **more,
        )

    how = rng.choice(["paid", "part", "bank", "drawn"])
    if how == "paid":
        paid = [paying(notice.notice_id, notice.outstanding, "P-1", 63)]
    elif how == "part":
        paid = [
            paying(notice.notice_id, Decimal("1000.00"), "P-0", 62),
            paying(notice.notice_id, notice.amount, "P-1", 63),
        ]
    elif how == "bank":
        bank = PaymentKind.BANK_GUARANTEE
        paid = [paying(notice.notice_id, notice.amount, "P-B", 63, kind=bank)]
    else:
        drawn += notice.amount
        paid = [draw(notice.notice_id, notice.amount, ledger, drawn, 63)]
        ledger += 1
    state = read(paid + paid[-1:] * rng.randint(0, 1))
    if state.decided is not ClearanceStatus.RELEASED:
        return None
    for version in (2, 3):
        v1 = kerosene()
        quantity = Decimal(rng.choice(["900", "1000", "1100"]))
        item = v1.items[0].model_copy(
            update={"quantity": quantity, "second_quantity": quantity * Decimal("1.25")}
        )
        asked = v1.model_copy(
            update={
                "version": version,
                "event_id": f"E-K{version}",
                "items": (item,),
                "after_release": True,
                "required_agencies": ("customs",),
                "submitted_at": hours(64 + 5 * version),
            }
        )
        answer = ruled(asked, "customs", hours(65 + 5 * version))
        both = [asked, answer] if rng.random() < 0.5 else [answer, asked]
        state = read(both + both[:1] * rng.randint(0, 1))
        if state.last_status is ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE:
            due = state.notice
            assert due is not None
            if rng.random() < 0.5:
                drawn += due.amount
                state = read([draw(due.notice_id, due.amount, ledger, drawn, 66 + 5 * version)])
                ledger += 1
            else:
                state = read([paying(due.notice_id, due.amount, f"P-S{version}", 66 + 5 * version)])
    return Life(
        [e for e in events if isinstance(e, DeclarationSubmitted)],
        [e for e in events if isinstance(e, AgencyVerdict)],
        results,
        payments=[e for e in events if isinstance(e, PaymentConfirmed)],
        findings=[e for e in events if isinstance(e, InspectionFinding)],
    )
