"""A release under guarantee pending a price consultation (担保放行, 价格磋商).

Customs' side: a HOLD whose every hold is a price query (``CUS-PRICE-QUERY``) names the
``security`` a guarantee must cover: the taxes with each questioned item valued at its tariff
line's reference price (《海关事务担保条例》: no less than the taxes the goods may bear). The
figures below are computed by hand with the rules of ``test_taxes`` (every tax rounded once,
half up to the fen; import VAT on (V + D + CT)).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from itertools import permutations
from types import MappingProxyType

import pytest

from services.aggregator import payment
from services.aggregator.join import fold
from services.customs import rules
from singlewindow import events as ev
from tests import factories
from tests.unit.test_after_release import APPROVED_AT, MORE, approval, change, steps
from tests.unit.test_lifecycle import CAR, DEADLINE, T0, cleared, declared, ruled, run
from tests.unit.test_taxes import KEY, NOW, REFERENCE, TARIFF, goods

D = Decimal
# coffee, not roasted (MFN 8 %, VAT 9 %) with a reference price of 40.00 CNY/kg: under 30 % of
# it (12.00 CNY/kg) customs queries the price
COFFEE = dataclasses.replace(TARIFF["0901110000"], reference_price_cny=D("40.00"))
PRICED = dataclasses.replace(REFERENCE, tariff=MappingProxyType({**TARIFF, COFFEE.hs_code: COFFEE}))


def assess(*items: ev.GoodsItem, **changes: object) -> ev.AgencyVerdict:
    return rules.assess(factories.declaration(items=items, **changes), PRICED, NOW, KEY)


def cheap_coffee(line_no: int = 1) -> ev.GoodsItem:
    """1,000 kg at 1,000.00 USD: V = 1,000 * 7.1020 = 7,102.00 CNY, 7.102 CNY/kg < 12.00."""
    return goods("0901110000", "1000.00", "USD", "1000", line_no=line_no)


def test_a_price_query_names_the_taxes_at_the_reference_price_as_the_security() -> None:
    """Coffee questioned, laptops as declared.

    Declared: coffee duty 7,102.00 * 8 % = 568.16, VAT (7,102.00 + 568.16) * 9 % = 690.3144
    -> 690.31; laptops (1,000 EUR: V = 8,265.00) duty 0 %, VAT 8,265.00 * 13 % = 1,074.45.
    Collected 568.16 + 690.31 + 1,074.45 = 2,332.92.

    At the reference price: coffee V = 40.00 * 1,000 = 40,000.00, duty 3,200.00, VAT
    (40,000.00 + 3,200.00) * 9 % = 3,888.00; laptops as declared, VAT 1,074.45.
    Security 3,200.00 + 3,888.00 + 1,074.45 = 8,162.45.
    """
    verdict = assess(
        cheap_coffee(), goods("8471300000", "1000.00", "EUR", "1", second="2.5", line_no=2)
    )
    assert verdict.decision is ev.Decision.HOLD
    assert [r.code for r in verdict.reasons] == ["CUS-PRICE-QUERY"]
    assert verdict.total_duties == D("2332.92")  # what the declaration collects as declared
    assert verdict.security == D("8162.45")


def test_no_security_when_another_hold_must_be_put_right_first() -> None:
    """Another hold (a licence missing) must be put right first: a guarantee cannot release
    goods whose declaration is wrong in another way."""
    verdict = assess(cheap_coffee(), goods("0901110000", "1000.00", "USD", "1", line_no=2))
    assert {r.code for r in verdict.reasons} == {"CUS-PRICE-QUERY"}  # both lines queried
    assert verdict.security is not None
    licence = dataclasses.replace(COFFEE, licence=next(iter(rules.LICENCES)))
    held = rules.assess(
        factories.declaration(items=(cheap_coffee(),)),
        dataclasses.replace(PRICED, tariff=MappingProxyType({**TARIFF, COFFEE.hs_code: licence})),
        NOW,
        KEY,
    )
    assert {r.code for r in held.reasons} == {"CUS-PRICE-QUERY", "CUS-LICENCE-MISSING"}
    assert held.security is None


def test_no_security_without_a_price_query_or_on_a_change_after_release() -> None:
    fair = goods("0901110000", "10000.00", "USD", "1000")  # 71.02 CNY/kg: no query
    assert assess(fair).decision is ev.Decision.CLEAR and assess(fair).security is None
    assert assess(cheap_coffee(), after_release=True).security is None


# --- the join: HELD with a security notice -> guarantee -> conditional release -> the value
# lodged as a change -> customs' answer -> duties -> release ----------------------------------
#
# The car of test_lifecycle (60,813.00 CNY of taxes as declared) questioned on its price: customs
# holds and names a security of 70,000.00 CNY. The trader secures it with a bank guarantee, and
# lodges the value agreed in the consultation (the MORE taxes of test_after_release, 64,491.94:
# the price 10,000.00 CNY higher), which customs approves.

SECURITY = D("70000.00")


def price_query(version: int = 1, security: Decimal | None = SECURITY) -> ev.AgencyVerdict:
    held = ruled("customs", ev.Decision.HOLD, version=version, taxes=CAR)
    return held.model_copy(update={"security": security})


def others(version: int = 1) -> list[ev.AgencyVerdict]:
    return [ruled(a, version=version) for a in ("ciq", "port")]


def secured_by(**changes: object) -> ev.PaymentConfirmed:
    """A bank guarantee for the security, on its notice (``changes``: other fields)."""
    notice = payment.security_notice("D-0001", 1, (price_query(),), T0)
    assert notice is not None
    fields = {"kind": ev.PaymentKind.BANK_GUARANTEE, "amount": SECURITY, **changes}
    return factories.payment(notice_id=notice.notice_id, **fields)


def held_then_secured() -> list[object]:
    return [declared(), price_query(), *others(), secured_by()]


def test_a_price_query_hold_names_its_security_notice_and_a_guarantee_releases_on_condition() -> (
    None
):
    state, results = run(held_then_secured())
    held, conditional = results
    assert held.status is ev.ClearanceStatus.HELD
    notice = held.payment_notice
    assert notice is not None and notice.amount == SECURITY == notice.outstanding
    assert notice.taxes == () and notice.notice_id != payment.notice_id("D-0001", 1)
    assert conditional.status is ev.ClearanceStatus.CONDITIONALLY_RELEASED
    assert conditional.valuation_pending and not held.valuation_pending
    assert conditional.settlement is not None
    assert conditional.settlement.kind is ev.PaymentKind.BANK_GUARANTEE
    assert conditional.payment_notice is not None
    assert conditional.payment_notice.outstanding == 0
    assert state.decided is None and state.valuation_pending and state.levied == ()


@pytest.mark.parametrize(
    "what",
    [
        {"kind": ev.PaymentKind.PAYMENT},  # cash secures no release pending valuation
        {  # nor a draw on a general guarantee, whose holder repays duties drawn, not a security
            "kind": ev.PaymentKind.GENERAL_GUARANTEE,
            "guarantee_id": "G-1",
            "guarantee_amount": D("100000.00"),
            "ledger_sequence": 1,
            "balance_after": D("30000.00"),
        },
        {"amount": SECURITY - D("0.01")},  # a guarantee for less than the security
    ],
)
def test_what_does_not_cover_the_security_leaves_the_goods_held(what: dict[str, object]) -> None:
    _, results = run([declared(), price_query(), *others(), secured_by(**what)])
    assert [r.status for r in results] == [ev.ClearanceStatus.HELD]


def test_no_security_notice_when_another_agency_holds_or_customs_names_none() -> None:
    ciq_holds = [ruled("ciq", ev.Decision.HOLD), ruled("port")]
    for events in (
        [declared(), price_query(), *ciq_holds],
        [declared(), price_query(security=None), *others()],
    ):
        _, results = run(events)
        assert [r.status for r in results] == [ev.ClearanceStatus.HELD]
        assert results[0].payment_notice is None


def agreed_value(version: int = 2, taxes: tuple[ev.TaxTotal, ...] = MORE) -> list[object]:
    return [change(version), approval(taxes, version=version)]


def test_the_value_approved_gives_its_duties_then_the_release_once_paid() -> None:
    """Nothing was levied at the conditional release: the whole 64,491.94 of the value
    approved is due on the supplementary notice (补税), as any notice, then RELEASED."""
    events = [*held_then_secured(), *agreed_value()]
    state, results = run(events)
    due_now = results[-1]
    assert due_now.status is ev.ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE
    assert due_now.valuation_pending and due_now.version == 2
    notice = due_now.payment_notice
    assert notice is not None and notice.amount == D("64491.94")
    assert notice.notice_id == payment.notice_id("D-0001", 2)
    paid = factories.payment(
        notice_id=notice.notice_id, amount=D("64491.94"), paid_at=APPROVED_AT, payment_id="P-2"
    )
    state, results = run([*events, paid])
    assert results[-1].status is ev.ClearanceStatus.RELEASED
    assert not results[-1].valuation_pending
    assert state.decided is ev.ClearanceStatus.RELEASED and not state.valuation_pending


def test_a_value_that_collects_nothing_more_is_released_at_once() -> None:
    state, results = run([*held_then_secured(), *agreed_value(taxes=())])
    assert results[-1].status is ev.ClearanceStatus.RELEASED and results[-1].refund is None
    assert state.decided is ev.ClearanceStatus.RELEASED


def test_a_value_customs_refuses_leaves_the_conditional_release_and_another_may_follow() -> None:
    refused = [change(2), approval(MORE, version=2, decision=ev.Decision.HOLD)]
    state, results = run([*held_then_secured(), *refused])
    assert results[-1].status is ev.ClearanceStatus.CONDITIONALLY_RELEASED
    assert results[-1].valuation_pending and results[-1].version == 2
    assert results[-1].decisions[0].decision is ev.Decision.HOLD
    assert state.decided is None
    state, results = run([*held_then_secured(), *refused, *agreed_value(3)])
    assert results[-1].status is ev.ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE
    assert results[-1].version == 3


def test_withdrawal_and_ordinary_amendments_change_nothing_once_released_on_condition() -> None:
    withdrawn = factories.withdrawal(withdrawn_at=T0 + timedelta(hours=2))
    ordinary = declared(version=2, at=7200)
    for late in (withdrawn, ordinary):
        _, results = run([*held_then_secured(), late])
        assert results[-1].status is ev.ClearanceStatus.CONDITIONALLY_RELEASED


def test_before_the_guarantee_an_amendment_replaces_the_security_notice() -> None:
    """The trader may instead amend the price while held (hold -> amendment -> release): the
    security notice of version 1 no longer counts."""
    amended = [declared(version=2, at=600), *cleared(version=2, at=601)]
    _, results = run([declared(), price_query(), *others(), *amended, secured_by()])
    assert [r.status for r in results] == [
        ev.ClearanceStatus.HELD,
        ev.ClearanceStatus.AWAITING_PAYMENT,
    ]


def test_every_arrival_order_gives_the_same_steps() -> None:
    """The declaration and the verdicts in any order, then the guarantee (lodged on the
    notice the trader saw), then the change and customs' answer on it in either order (the
    intake takes the change only once the conditional release is shown)."""
    first = [declared(), price_query(), *others()]
    expected = steps(run([*first, secured_by(), *agreed_value()])[1])
    assert [s[2] for s in expected] == [
        ev.ClearanceStatus.HELD,
        ev.ClearanceStatus.CONDITIONALLY_RELEASED,
        ev.ClearanceStatus.SUPPLEMENTARY_PAYMENT_DUE,
    ]
    for answer in permutations(first):
        for value in permutations(agreed_value()):
            _, results = fold([*answer, secured_by(), *value], DEADLINE)
            assert steps(results) == expected


def test_a_verdict_decided_before_the_rule_names_no_security() -> None:
    """Verdicts recorded before the rule (``SECURITY_FROM``) were decided without a security,
    and an auditor recomputes them so: the rule depends on the verdict's time, not on when it
    is recomputed."""
    before = rules.SECURITY_FROM - timedelta(milliseconds=1)
    declaration = factories.declaration(items=(cheap_coffee(),))
    assert rules.assess(declaration, PRICED, before, KEY).security is None
    assert rules.assess(declaration, PRICED, rules.SECURITY_FROM, KEY).security is not None
