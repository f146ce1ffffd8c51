"""Duties before release: the payment notice, late interest and settlement (pure).

The rules (Customs Tariff Law of the PRC, 2024, and the customs' collection rules):

- a tax payment notice (税款缴款书) is issued when every agency has cleared a declaration
  version and customs collects something on it: one notice per version, for what customs'
  verdict says is *collected* per kind of tax (a kind at or under the 50 CNY de minimis is
  not, :mod:`services.customs.duties`);
- it is paid within 15 days of the day of issue: the day of issue is not counted, so a notice
  issued on 1 December (China time, UTC+8) is due by 16 December; a last day that is a rest
  day or a public holiday moves to the first working day after it, and the State Council's
  make-up working days count as working days (《海关进出口货物征税管理办法》;
  :mod:`singlewindow.workdays`, as the holidays were known on the day of issue): a notice
  issued on 20 September 2026 is due by 8 October, not 5 October (National Day). Notices
  issued before ``WORKDAYS_FROM`` were due on the fifteenth day as it fell, and are
  recomputed so;
- paid later, late interest (滞纳金) accrues at 0.05 % a day on the tax paid late, from the day
  after the due date to the day it is paid, both included (a payment on 17 December is one
  day late); never on the interest itself; the sum is rounded to the fen (half up), and
  interest under 50 CNY is not collected;
- the goods are released once what was paid on the notice covers the amount and the interest
  at the settling payment, or when a bank guarantee, or a draw on an authorised trader's
  general guarantee (总担保), covers the amount (secured, 担保放行); the duties drawn on a
  general guarantee are then repaid to it by its holder (for a guarantee under consolidated
  payment, 汇总征税, by the fifth working day of the next month: the bank's ledger,
  ``services.bank.ledger``), never on the notice.

"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

from singlewindow.events import (
    SECURITY_NOTICE_PREFIX,
    AgencyVerdict,
    Decision,
    PaymentConfirmed,
    PaymentKind,
    PaymentNotice,
    Settlement,
    TaxKind,
    TaxTotal,
)
from singlewindow.latepayment import (
    DAILY_RATE,
    china_day,
    collected_interest,
    days_late,
    late_interest,
)
from singlewindow.workdays import china

# what secures a notice, when it covers the amount (担保放行)
SECURING = frozenset({PaymentKind.BANK_GUARANTEE, PaymentKind.GENERAL_GUARANTEE})
NOTICE_NAMESPACE = uuid.UUID("0d7f3c8e-3a55-4c1b-9f0e-7a2b1c4d5e60")
DAYS_TO_PAY = 15
# the first day of issue (China time) whose due date moves off rest days and holidays: the
# platform's notices issued before it were due on the fifteenth day as it fell
WORKDAYS_FROM = date(2026, 11, 28)
# the late-interest rule is the SDK's (singlewindow.latepayment): the bank's consolidated
# repayments and audit verify apply the same
__all__ = [
    "china_day",
    "days_late",
    "due_by",
    "late_interest",
    "notice",
    "notice_id",
    "secure",
    "security_notice",
    "settle",
]


def notice_id(declaration_id: str, version: int) -> str:
    return str(uuid.uuid5(NOTICE_NAMESPACE, f"{declaration_id}/notice/v{version}"))


def collected(verdicts: tuple[AgencyVerdict, ...]) -> tuple[TaxTotal, ...]:
    """What the verdicts collect, per kind of tax, in the kinds' order. A verdict without tax
    totals (an agency that assesses its duties as one figure) collects its ``total_duties``
    as duty."""
    totals: dict[TaxKind, tuple[Decimal, Decimal]] = {}
    for verdict in verdicts:
        lines = verdict.tax_totals or (
            (
                TaxTotal(
                    kind=TaxKind.DUTY,
                    assessed=verdict.total_duties,
                    collected=verdict.total_duties,
                ),
            )
            if verdict.total_duties > 0
            else ()
        )
        for line in lines:
            assessed, taken = totals.get(line.kind, (Decimal("0"), Decimal("0")))
            totals[line.kind] = (assessed + line.assessed, taken + line.collected)
    return tuple(
        TaxTotal(kind=kind, assessed=totals[kind][0], collected=totals[kind][1])
        for kind in TaxKind
        if kind in totals
    )


def due_by(issued: date) -> date:
    """The last day to pay a notice issued on ``issued`` (China time): the fifteenth day after,
    or the first working day after it when it is a rest day or a public holiday."""
    last = issued + timedelta(days=DAYS_TO_PAY)
    if issued < WORKDAYS_FROM:
        return last
    return china().working_on_or_after(last, known_on=issued)


def notice(
    declaration_id: str, version: int, verdicts: tuple[AgencyVerdict, ...], at: datetime
) -> PaymentNotice | None:
    """The notice for a cleared version, or None when nothing is collected."""
    taxes = collected(verdicts)
    amount = sum((t.collected for t in taxes), Decimal("0.00"))
    if amount <= 0:
        return None
    return PaymentNotice(
        notice_id=notice_id(declaration_id, version),
        issued_at=at,
        due_by=due_by(china_day(at)),
        taxes=taxes,
        amount=amount,
        outstanding=amount,
    )


def security_notice(
    declaration_id: str, version: int, verdicts: tuple[AgencyVerdict, ...], at: datetime
) -> PaymentNotice | None:
    """The notice of the guarantee that releases a HELD version while customs determines its
    value (担保放行 pending a price consultation, 价格磋商), or None: when every verdict that is
    no CLEAR is a HOLD naming the ``security`` a guarantee must cover (customs' price query,
    :func:`services.customs.rules.security`). Its amount is what they name; it lists no taxes
    (what the goods owe is known only once the value is), and only a bank guarantee for at
    least the amount secures it (:func:`secure`): no cash, no late interest, and no draw on a
    general guarantee, whose ledger the holder repays the duties drawn to, not a security.
    Its ``due_by`` is a notice's, and nothing follows from it: the goods stay held until it
    is secured or the declaration is amended."""
    asking = [v for v in verdicts if v.decision is not Decision.CLEAR]
    if not asking or any(v.decision is not Decision.HOLD or v.security is None for v in asking):
        return None
    amount = sum((v.security or Decimal("0") for v in asking), Decimal("0.00"))
    return PaymentNotice(
        notice_id=security_notice_id(declaration_id, version),
        issued_at=at,
        due_by=due_by(china_day(at)),
        taxes=(),
        amount=amount,
        outstanding=amount,
    )


def security_notice_id(declaration_id: str, version: int) -> str:
    """A security notice's id: ``SEC-`` and a UUID, so that the bank, which does not know
    notices, can tell one and take nothing but a bank guarantee on it."""
    name = f"{declaration_id}/security/v{version}"
    return f"{SECURITY_NOTICE_PREFIX}{uuid.uuid5(NOTICE_NAMESPACE, name)}"


def secure(
    due: PaymentNotice, payments: tuple[PaymentConfirmed, ...]
) -> tuple[Settlement | None, PaymentNotice]:
    """:func:`settle` for a security notice: only its bank guarantees count."""
    return settle(due, tuple(p for p in payments if p.kind is PaymentKind.BANK_GUARANTEE))


def settle(
    due: PaymentNotice, payments: tuple[PaymentConfirmed, ...]
) -> tuple[Settlement | None, PaymentNotice]:
    """After the payments on a notice: the settlement when they cover it (None otherwise),
    and the notice with what is still outstanding.

    A bank guarantee, or a draw on a general guarantee (总担保), for at least the amount
    secures it (the latest of them read decides); one for less secures nothing and pays
    nothing (the notice stays outstanding; a draw stays on the guarantee's ledger until its
    holder repays it). A consolidated repayment (CONSOLIDATED_PAYMENT) restores a general
    guarantee and pays no notice. Otherwise payments are applied to
    the tax in the order of their value dates (a date before the notice's issue counts as
    the issue: nothing is late then), and interest accrues on each part of the tax for the
    days it was paid late, never on interest; tax still unpaid accrues to the latest value
    date seen. It is settled once the payments cover the tax and that interest."""
    mine = tuple(p for p in payments if p.notice_id == due.notice_id)
    if not mine:
        return None, due
    guarantees = [p for p in mine if p.kind in SECURING]
    if guarantees and guarantees[-1].amount >= due.amount:
        guarantee = guarantees[-1]
        return (
            Settlement(
                kind=guarantee.kind,
                payment_ids=(guarantee.payment_id,),
                paid=guarantee.amount,
                days_late=0,
                late_interest=Decimal("0.00"),
            ),
            due.model_copy(update={"outstanding": Decimal("0.00")}),
        )
    paid = tuple(p for p in mine if p.kind is PaymentKind.PAYMENT)
    in_order = sorted(paid, key=lambda p: max(p.paid_at, due.issued_at))  # stable: read order
    unpaid, accrued, late = due.amount, Decimal("0"), 0
    for p in in_order:
        if unpaid <= 0:
            break
        part = min(unpaid, p.amount)
        late = days_late(due.due_by, max(p.paid_at, due.issued_at))
        accrued += part * DAILY_RATE * late
        unpaid -= part
    if unpaid > 0 and in_order:  # the tax still unpaid accrues to the latest value date
        late = days_late(due.due_by, max(p.paid_at for p in in_order))
        accrued += unpaid * DAILY_RATE * late
    interest = collected_interest(accrued)
    total = sum((p.amount for p in paid), Decimal("0.00"))
    outstanding = max(Decimal("0.00"), due.amount + interest - total)
    owed = due.model_copy(update={"outstanding": outstanding})
    if outstanding > 0:
        return None, owed
    return (
        Settlement(
            kind=PaymentKind.PAYMENT,
            payment_ids=tuple(p.payment_id for p in paid),
            paid=total,
            days_late=late,
            late_interest=interest,
        ),
        owed,
    )
