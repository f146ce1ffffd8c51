"""Late interest on duties (滞纳金) and the consolidated payment's due date (pure).

One rule for everyone who computes it: the aggregator's join on a payment notice
(``services.aggregator.payment``), the bank on a consolidated repayment of a general
guarantee (``services.bank``), and ``audit verify``, which recomputes both.

- Late interest accrues at 0.05 % a day on the tax paid late, from the day after the due
  date to the day it is paid, both included, counted in China time (UTC+8): paid on the day
  after the due date, one day late. Never on the interest itself. The sum is rounded to the
  fen, half up, and interest under 50 CNY is not collected (Customs Tariff Law of the PRC,
  2024, and the customs' collection rules).
- Consolidated payment (汇总征税) of an authorised trader's general guarantee (总担保): the
  duties drawn on the guarantee in a calendar month (China time) are paid together by the
  fifth working day of the following month: public holidays are not working days, the State
  Council's make-up working days are (:mod:`singlewindow.workdays`, as the holidays were
  known on the day of the draw, so that an auditor recomputes the same day years later).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from singlewindow.reference import CHINA_TIME
from singlewindow.workdays import Calendar, china

DAILY_RATE = Decimal("0.0005")  # 0.05 % a day
INTEREST_THRESHOLD = Decimal("50.00")  # interest under this is not collected
CENT = Decimal("0.01")
CONSOLIDATED_WORKING_DAY = 5  # 汇总征税: by the 5th working day of the following month


def china_day(at: datetime) -> date:
    """The day, in China, of an instant."""
    return at.astimezone(CHINA_TIME).date()


def days_late(due_by: date, paid_at: datetime) -> int:
    """Days from the day after ``due_by`` to the day of payment (China time), both included."""
    return max(0, (china_day(paid_at) - due_by).days)


def collected_interest(accrued: Decimal) -> Decimal:
    """Accrued interest as collected: to the fen (half up); nothing under 50 CNY."""
    interest = accrued.quantize(CENT, rounding=ROUND_HALF_UP)
    return interest if interest >= INTEREST_THRESHOLD else Decimal("0.00")


def late_interest(amount: Decimal, days: int) -> Decimal:
    """0.05 % of ``amount`` a day, to the fen (half up); nothing under 50 CNY."""
    return collected_interest(amount * DAILY_RATE * days)


def consolidated_due_by(drawn: datetime, calendar: Calendar | None = None) -> date:
    """The last day to pay, in the consolidated payment, duties drawn at ``drawn``: the fifth
    working day of the month after the draw's (China time), as known on the draw's day."""
    day = china_day(drawn)
    first = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return (calendar or china()).nth_working_day(first, CONSOLIDATED_WORKING_DAY, known_on=day)
