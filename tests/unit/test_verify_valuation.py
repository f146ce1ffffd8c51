"""The auditors' verification of a release under guarantee pending a price consultation
(担保放行 pending 价格磋商): the steps the join writes verify clean; a forged one, or any other
step after the conditional release, is a finding.

The life of tests/unit/test_verify.py: D-0001 by air (customs alone). Version 1 declares the
laptops at 10.00 EUR: customs' real rules query the price (HOLD, ``CUS-PRICE-QUERY``) and name
a security of 46,995.00 CNY (the taxes at the reference price), and the HELD answer carries its
security notice. The trader lodges a bank guarantee for it: CONDITIONALLY_RELEASED, pending the
valuation. The value agreed in the consultation is lodged as a change after release (version
2, the laptops at their value, routed to customs alone): customs clears it and collects
48,350.36 CNY of VAT, all of it on the supplementary notice, since nothing was levied at the
conditional release; once that is paid, RELEASED.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

from services.aggregator import payment
from services.aggregator.join import step
from singlewindow.events import (
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    JoinState,
    PaymentConfirmed,
    PaymentKind,
)
from tests import factories
from tests.unit.test_verify import (
    DEADLINE,
    ID,
    LAB_COMPLIANT,
    Life,
    folded,
    kinds,
    lodged,
    paid_life,
    ruled_on,
    sampled_life,
)

HOUR = 3600
SECURITY = Decimal("46995.00")
VAT = Decimal("48350.36")  # what customs collects on the value agreed (test_verify's version 2)


def held() -> list[Any]:
    """Version 1, undervalued, and customs' price query on it."""
    v1 = lodged(1)
    return [v1, ruled_on(v1)]


def security_notice_id() -> str:
    notice = payment.security_notice(ID, 1, (ruled_on(lodged(1)),), factories.T0)
    assert notice is not None
    return notice.notice_id


def guarantee(**changes: Any) -> PaymentConfirmed:
    """The bank guarantee for the security, on its notice, an hour after T0."""
    fields: dict[str, Any] = {
        "notice_id": security_notice_id(),
        "payment_id": "P-G",
        "kind": PaymentKind.BANK_GUARANTEE,
        "amount": SECURITY,
        "paid_at": factories.T0 + timedelta(hours=1),
        **changes,
    }
    return factories.payment(ID, **fields)


def value(version: int = 2, hours: int = 2, undervalued: bool = False) -> DeclarationSubmitted:
    """The value lodged as a change after release: the laptops at their value (or still at
    10.00 EUR), routed to customs alone."""
    items = lodged(1).items if undervalued else lodged(version).items
    marked: dict[str, Any] = {"after_release": True, "required_agencies": ("customs",)}
    return lodged(version, at=hours * HOUR, items=items, **marked)


def valued(version: int = 2, hours: int = 2, undervalued: bool = False) -> list[Any]:
    """The change and customs' verdict on it, a second later."""
    change = value(version, hours, undervalued)
    return [change, ruled_on(change, hours * HOUR + 1)]


def duties(
    version: int = 2, amount: Decimal = VAT, hours: int = 3, payment_id: str = "P-S"
) -> PaymentConfirmed:
    """A payment on the supplementary notice of ``version``."""
    return factories.payment(
        ID,
        notice_id=payment.notice_id(ID, version),
        payment_id=payment_id,
        amount=amount,
        paid_at=factories.T0 + timedelta(hours=hours),
    )


def valued_life(*more: Any) -> Life:
    """Held, secured, the value lodged and cleared, and ``more``."""
    return folded([*held(), guarantee(), *valued(), *more])


def steps(life: Life) -> list[tuple[int, int | None, ClearanceStatus, bool]]:
    return [(r.sequence, r.version, r.status, r.valuation_pending) for r in life.results]


def renumbered(result: ClearanceResult, sequence: int, **changes: Any) -> ClearanceResult:
    return result.model_copy(
        update={"sequence": sequence, "result_id": f"R-forged-{sequence}", **changes}
    )


S = ClearanceStatus


def test_held_secured_valued_and_paid_verifies_clean() -> None:
    life = valued_life(duties())
    assert steps(life) == [
        (1, 1, S.HELD, False),
        (2, 1, S.CONDITIONALLY_RELEASED, True),
        (3, 2, S.SUPPLEMENTARY_PAYMENT_DUE, True),
        (4, 2, S.RELEASED, False),
    ]
    security = life.results[0].payment_notice
    assert security is not None and security.amount == SECURITY and security.taxes == ()
    conditional = life.results[1]
    assert conditional.settlement is not None
    assert conditional.settlement.kind is PaymentKind.BANK_GUARANTEE
    due = life.results[2].payment_notice
    assert due is not None and due.amount == VAT  # from nothing levied: all of it
    report = life.verify()
    assert kinds(report) == [] and report.unchecked == []
    # each step before the end verifies clean too: the life is not over, nothing is missing
    assert kinds(life.verify(results=life.results[:3], payments=life.payments[:1])) == []
    secured = {"declarations": life.declarations[:1], "verdicts": life.verdicts[:1]}
    assert kinds(life.verify(results=life.results[:2], payments=life.payments[:1], **secured)) == []


def test_a_guarantee_after_what_does_not_cover_the_security_verifies_clean() -> None:
    """Cash, and a guarantee for a fen less, on the security notice give no step; the
    guarantee that covers it, read after them (and again), releases on condition."""
    cash = guarantee(payment_id="P-cash", kind=PaymentKind.PAYMENT)
    short = guarantee(payment_id="P-short", amount=SECURITY - Decimal("0.01"))
    life = folded([*held(), cash, short, guarantee(), guarantee(), *valued(), duties()])
    assert [s[2] for s in steps(life)] == [
        S.HELD,
        S.CONDITIONALLY_RELEASED,
        S.SUPPLEMENTARY_PAYMENT_DUE,
        S.RELEASED,
    ]
    assert kinds(life.verify()) == []


def test_a_value_refused_then_another_approved_verifies_clean() -> None:
    """Customs refuses a value still too low (its price query again): CONDITIONALLY_RELEASED
    on that version, pending; the next value is approved; paid in two parts."""
    life = folded(
        [
            *held(),
            guarantee(),
            *valued(2, undervalued=True),
            *valued(3, hours=3),
            duties(3, Decimal("40000.00"), hours=4, payment_id="P-S1"),
            duties(3, VAT - Decimal("40000.00"), hours=5, payment_id="P-S2"),
        ]
    )
    assert steps(life)[2:] == [
        (3, 2, S.CONDITIONALLY_RELEASED, True),
        (4, 3, S.SUPPLEMENTARY_PAYMENT_DUE, True),
        (5, 3, S.SUPPLEMENTARY_PAYMENT_DUE, True),
        (6, 3, S.RELEASED, False),
    ]
    assert life.results[2].decisions[0].decision is Decision.HOLD
    assert kinds(life.verify()) == []


def test_a_value_that_collects_nothing_is_released_at_once() -> None:
    """Customs' real rules collect VAT on any value of the laptops: a CLEAR collecting
    nothing is forged here, and the verdict is the finding; the step, RELEASED at once with
    no refund (nothing was levied), is what the join gives it."""
    change, verdict = valued()
    free = verdict.model_copy(update={"duties": (), "tax_totals": (), "total_duties": Decimal(0)})
    life = folded([*held(), guarantee(), change, free])
    assert steps(life)[-1] == (3, 2, S.RELEASED, False)
    assert life.results[-1].refund is None and life.results[-1].payment_notice is None
    assert kinds(life.verify()) == ["verdict mismatch"]


def test_a_withdrawal_or_an_ordinary_amendment_after_the_conditional_release_is_no_finding() -> (
    None
):
    """The trader amended (or withdrew) while the goods were held; the aggregator read the
    guarantee first and released them on condition: the join ignores the amendment (and the
    withdrawal), and nothing is missing."""
    withdrawal = factories.withdrawal(ID, version=1, withdrawn_at=factories.T0 + timedelta(hours=2))
    amended = lodged(2, at=2 * HOUR)  # not marked: the join ignores it once the goods are out
    for late in ([withdrawal], [amended, ruled_on(amended, 2 * HOUR + 1)]):
        life = folded([*held(), guarantee(), *late])
        assert steps(life)[-1] == (2, 1, S.CONDITIONALLY_RELEASED, True)
        assert kinds(life.verify()) == []


def test_a_value_customs_ruled_on_without_an_answer_is_a_missing_result() -> None:
    life = valued_life()
    assert kinds(life.verify(results=life.results[:2])) == ["missing result"]
    waiting = folded([*held(), guarantee(), value()])  # customs has not ruled yet
    assert kinds(waiting.verify()) == []


# --- forgeries -------------------------------------------------------------------------------


def test_the_held_answer_carries_the_security_notice_the_join_gives() -> None:
    life = valued_life(duties())
    answer, *rest = life.results
    notice = answer.payment_notice
    assert notice is not None
    for forged in (
        answer.model_copy(update={"payment_notice": None}),
        answer.model_copy(update={"payment_notice": notice.model_copy(update={"amount": 1})}),
    ):
        assert kinds(life.verify(results=[forged, *rest])) == ["result contradicts verdicts"]


def test_a_conditional_release_without_a_guarantee_covering_the_security_is_a_finding() -> None:
    life = valued_life(duties())
    unpaid = ["release without payment or guarantee"]
    supplementary = life.payments[1:]
    for instead in (
        [],  # no guarantee in the log
        [guarantee(amount=SECURITY - Decimal("0.01"))],  # for less
        [guarantee(kind=PaymentKind.PAYMENT)],  # cash secures no release pending valuation
        [guarantee(notice_id=payment.notice_id(ID, 1))],  # on another notice
    ):
        assert kinds(life.verify(payments=[*instead, *supplementary])) == unpaid, instead


def test_a_conditional_release_not_as_the_guarantee_gives_it_is_a_finding() -> None:
    life = valued_life()
    answer, conditional, _ = life.results
    settled = conditional.settlement
    assert settled is not None
    for forged in (
        conditional.model_copy(update={"valuation_pending": False}),
        conditional.model_copy(update={"settlement": settled.model_copy(update={"paid": 1})}),
    ):
        report = life.verify(
            declarations=life.declarations[:1],
            verdicts=life.verdicts[:1],
            results=[answer, forged],
            payments=life.payments[:1],
        )
        assert kinds(report) == ["result contradicts payments"]


def test_valuation_pending_on_a_version_with_no_security_is_a_finding() -> None:
    """Version 2 of test_verify's life was cleared and awaits payment: nothing a guarantee
    pending valuation could release. Nor can the laboratory's conditional release be one."""
    life = paid_life()
    first, notice, *_ = life.results
    pending = renumbered(
        notice,
        3,
        status=S.CONDITIONALLY_RELEASED,
        valuation_pending=True,
        settlement=None,
    )
    report = life.verify(results=[first, notice, pending], payments=[])
    assert kinds(report) == ["result contradicts verdicts"]
    assert "naming no security" in report.findings[0].detail
    sampled = sampled_life(LAB_COMPLIANT)
    forged = [
        r.model_copy(update={"valuation_pending": r.status is S.CONDITIONALLY_RELEASED})
        for r in sampled.results
    ]
    report = sampled.verify(results=forged)
    assert "result contradicts verdicts" in kinds(report)
    assert any("naming no security" in f.detail for f in report.findings)


def test_a_refusal_while_the_valuation_is_pending_is_no_amendment_refused() -> None:
    life = folded([*held(), guarantee(), *valued(2, undervalued=True)])
    *before, refused = life.results
    assert refused.status is S.CONDITIONALLY_RELEASED
    forged = refused.model_copy(update={"status": S.AMENDMENT_REFUSED, "valuation_pending": False})
    assert kinds(life.verify(results=[*before, forged])) == ["result contradicts verdicts"]


def test_the_value_approved_owes_all_its_duties_not_the_difference_from_the_security() -> None:
    life = valued_life(duties())
    *before, due, paid = life.results
    notice = due.payment_notice
    assert notice is not None
    difference = VAT - SECURITY  # as if the security had levied something
    less = notice.model_copy(update={"amount": difference, "outstanding": difference})
    forged = due.model_copy(update={"payment_notice": less})
    assert kinds(life.verify(results=[*before, forged])) == ["result contradicts verdicts"]
    # released at once on the value, with no supplementary notice
    at_once = due.model_copy(update={"status": S.RELEASED, "payment_notice": None})
    assert kinds(life.verify(results=[*before, at_once])) == [
        "release without payment or guarantee"
    ]
    # released although nothing on the supplementary notice settles it
    assert kinds(life.verify(payments=life.payments[:1])) == [
        "release without payment or guarantee"
    ]
    assert paid.status is S.RELEASED


def test_any_other_step_after_the_conditional_release_is_a_finding() -> None:
    """While the valuation is pending, only the steps of a change after release lodging the
    value, on a version higher than the standing conditional release's."""
    life = valued_life()
    answer, conditional, due = life.results
    # a release of version 1 itself (no payment on the security notice after it counts)
    released = renumbered(conditional, 3, status=S.RELEASED, valuation_pending=False)
    report = life.verify(results=[answer, conditional, released])
    assert "result after a release" in kinds(report)
    # an ordinary amendment (not marked), answered as if the join had taken it
    amended = lodged(2, at=2 * HOUR)
    report = life.verify(
        declarations=[life.declarations[0], amended],
        verdicts=[life.verdicts[0], ruled_on(amended, 2 * HOUR + 1)],
    )
    assert "result after a release" in kinds(report)
    # after a refused value, a second answer on the refused version
    refused = folded([*held(), guarantee(), *valued(2, undervalued=True)])
    again = renumbered(refused.results[-1], 4)
    assert "result after a release" in kinds(refused.verify(results=[*refused.results, again]))
    assert due.status is S.SUPPLEMENTARY_PAYMENT_DUE


def test_a_second_value_answered_while_the_duties_are_due_is_a_finding() -> None:
    """Once a value is approved and its duties are due, the join takes no other change (the
    intake lodges none): an answer to one is no step the join writes."""
    life = valued_life()
    v3 = value(3, hours=3)
    verdict = ruled_on(v3, 3 * HOUR + 1)
    ignored = folded([*held(), guarantee(), *valued(), v3, verdict])
    assert steps(ignored) == steps(life)
    forged = renumbered(life.results[-1], 4, version=3, decided_at=verdict.decided_at)
    report = life.verify(
        declarations=[*life.declarations, v3],
        verdicts=[*life.verdicts, verdict],
        results=[*life.results, forged],
    )
    assert kinds(report) == ["result contradicts verdicts"]


# --- random lives ----------------------------------------------------------------------------


def test_random_guaranteed_and_valued_lives_verify_clean() -> None:
    """D-0001 held on its price: cash, short and covering guarantees on the security notice
    in any order (with redeliveries); then values lodged (too low: refused; as declared in
    test_verify; 10 % higher), each read before or after customs' verdict on it (and again),
    supplementary notices paid in one or two parts, and, once released, changes after release
    as any. Whatever the join writes verifies clean."""
    rng = random.Random(20261129)
    seen: set[tuple[ClearanceStatus, bool]] = set()
    for _ in range(40):
        life = _random_life(rng)
        seen |= {(r.status, r.valuation_pending) for r in life.results}
        assert kinds(life.verify()) == [], steps(life)
    assert {
        (S.CONDITIONALLY_RELEASED, True),
        (S.SUPPLEMENTARY_PAYMENT_DUE, True),
        (S.SUPPLEMENTARY_PAYMENT_DUE, False),
        (S.RELEASED, False),
    } <= seen


def _random_life(rng: random.Random) -> Life:
    events: list[Any] = []
    state: JoinState | None = None
    results: list[ClearanceResult] = []

    def read(more: list[Any]) -> JoinState:
        nonlocal state
        for event in more:
            state, out = step(state, event, DEADLINE)
            results.extend(out)
        events.extend(more)
        assert state is not None
        return state

    read(held())
    offered = [
        guarantee(payment_id="P-cash", kind=PaymentKind.PAYMENT),
        guarantee(payment_id="P-short", amount=SECURITY - Decimal("0.01")),
        guarantee(),
    ]
    rng.shuffle(offered)
    paid = offered[: rng.randint(1, 3)]
    state = read(paid + paid[-1:] * rng.randint(0, 1))
    hours = 2
    for version in (2, 3, 4):
        # the intake lodges a change only once the goods are out and no duties are due
        if state.last_status not in {S.RELEASED, S.AMENDMENT_REFUSED} and not (
            state.last_status is S.CONDITIONALLY_RELEASED and state.valuation_pending
        ):
            break
        how = rng.choice(["low", "fair", "more"])
        change = value(version, hours, undervalued=how == "low")
        if how == "more":
            item = change.items[0]
            price = item.invoice_price or item.customs_value
            more = item.model_copy(
                update={
                    "customs_value": item.customs_value * Decimal("1.1"),
                    "invoice_price": price * Decimal("1.1"),
                }
            )
            change = change.model_copy(update={"items": (more,)})
        verdict = ruled_on(change, hours * HOUR + 1)
        both = [change, verdict] if rng.random() < 0.5 else [verdict, change]
        state = read(both + both[:1] * rng.randint(0, 1))
        if state.last_status is S.SUPPLEMENTARY_PAYMENT_DUE:
            due = state.notice
            assert due is not None
            part = Decimal("1000.00")
            parts = [due.amount] if rng.random() < 0.5 else [part, due.amount - part]
            for n, amount in enumerate(parts):
                state = read([duties(version, amount, hours + 1, f"P-S{version}-{n}")])
        hours += 3
    return Life(
        [e for e in events if isinstance(e, DeclarationSubmitted)],
        [e for e in events if isinstance(e, AgencyVerdict)],
        results,
        payments=[e for e in events if isinstance(e, PaymentConfirmed)],
    )
