"""Changes after release, with customs' approval (放行后修改): what the duties become (pure).

The rules (the customs rules on changing and withdrawing declarations, 报关单修改和撤销管理办法;
the Customs Tariff Law of the PRC, 2024):

- once the goods are released, a declaration may be changed only with customs' approval (a
  price or a quantity declared wrong); a withdrawal stays refused. The trader's change is a
  new version of the declaration, marked ``after_release``, routed to customs alone (the goods
  are out: the other agencies' controls were done on the version released). Customs' CLEAR
  on it approves it; REJECT, HOLD or INSPECT refuse it (AMENDMENT_REFUSED: there is nothing
  left at the port to hold or inspect, so an INSPECT is a refusal with customs' reasons) and
  the release in force stands;
- approved, the duties are corrected: what customs collects on the new version, against what
  the release in force levied (:func:`levied`: what its notice collected, paid or secured by a
  guarantee; late interest paid on it is no tax and never counts). More: a supplementary notice
  (补税) for the difference, a notice like any other (due on the 15th day after the day of
  issue, moved off rest days and public holidays as any notice's, late interest 0.05 % a day,
  :mod:`services.aggregator.payment`), and the declaration
  stays released meanwhile (SUPPLEMENTARY_PAYMENT_DUE, then RELEASED once it is settled). Less:
  a refund (退税) of the difference, named on the step (RELEASED with ``refund``). Equal:
  RELEASED on the new version;
- the difference is the net one, over every kind of tax: the supplementary notice lists the
  difference of each kind that changed (a kind that went down shows as a negative line, netted
  in the amount), as one notice per version;
- no interest is added to a refund here. The Tariff Law lets a trader who paid too much ask for
  the excess back, with the interest of a current deposit at the bank (银行同期活期存款利息)
  for the time it was held: that rate is the bank's, which the platform does not hold, so the
  step names the tax to refund and the refund procedure adds the interest.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from services.aggregator import payment
from singlewindow.events import AgencyVerdict, PaymentNotice, TaxKind, TaxTotal


def total(taxes: tuple[TaxTotal, ...]) -> Decimal:
    """What ``taxes`` collect, in all."""
    return sum((t.collected for t in taxes), Decimal("0.00"))


def levied(verdicts: tuple[AgencyVerdict, ...]) -> tuple[TaxTotal, ...]:
    """What the release of a version levied, per kind: what its verdicts collect (its notice,
    :func:`services.aggregator.payment.notice`, is for exactly that)."""
    return payment.collected(verdicts)


def difference(before: tuple[TaxTotal, ...], after: tuple[TaxTotal, ...]) -> tuple[TaxTotal, ...]:
    """``after - before`` per kind of tax, in the kinds' order, the kinds that changed only."""
    old = {t.kind: t for t in before}
    new = {t.kind: t for t in after}
    zero = TaxTotal(kind=TaxKind.DUTY, assessed=Decimal("0.00"), collected=Decimal("0.00"))
    lines = []
    for kind in TaxKind:
        if kind not in old and kind not in new:
            continue
        a, b = new.get(kind, zero), old.get(kind, zero)
        line = TaxTotal(
            kind=kind, assessed=a.assessed - b.assessed, collected=a.collected - b.collected
        )
        if line.assessed or line.collected:
            lines.append(line)
    return tuple(lines)


def supplementary(
    declaration_id: str,
    version: int,
    before: tuple[TaxTotal, ...],
    verdicts: tuple[AgencyVerdict, ...],
    at: datetime,
) -> PaymentNotice | None:
    """The supplementary notice (补税) of an approved change, issued at ``at``, or None when
    the new version collects no more than the release in force levied."""
    after = levied(verdicts)
    amount = total(after) - total(before)
    if amount <= 0:
        return None
    return PaymentNotice(
        notice_id=payment.notice_id(declaration_id, version),
        issued_at=at,
        due_by=payment.due_by(payment.china_day(at)),
        taxes=difference(before, after),
        amount=amount,
        outstanding=amount,
    )


def refund(before: tuple[TaxTotal, ...], verdicts: tuple[AgencyVerdict, ...]) -> Decimal | None:
    """The tax to refund (退税) on an approved change, or None when nothing is."""
    excess = total(before) - total(levied(verdicts))
    return excess if excess > 0 else None
