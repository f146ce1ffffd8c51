"""The SDK's late-interest rule and the consolidated payment's due date
(singlewindow.latepayment), computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from singlewindow import latepayment


def china(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC) - timedelta(hours=8)


def test_the_fifth_working_day_of_the_next_month_in_china_time() -> None:
    """December 2026 begins on a Tuesday, without holidays: Tue 1, Wed 2, Thu 3, Fri 4, (Sat 5,
    Sun 6), Mon 7: the fifth working day is 7 December, for anything drawn in November (China
    time)."""
    assert latepayment.consolidated_due_by(china(2026, 11, 3)) == date(2026, 12, 7)
    assert latepayment.consolidated_due_by(china(2026, 11, 30, hour=23)) == date(2026, 12, 7)
    # 1 December 00:00 in China is still 30 November in UTC: a December draw, due on the fifth
    # working day of January 2027 (1 January a holiday: Mon 4 ... Fri 8)
    assert latepayment.consolidated_due_by(china(2026, 12, 1, hour=0)) == date(2027, 1, 8)


def test_public_holidays_are_no_working_days() -> None:
    """January 2027 begins on Friday 1, a public holiday (a fixed date of the Regulations on
    National Holidays, standing in while 2027's notice is unpublished): Mon 4, Tue 5, Wed 6,
    Thu 7, Fri 8 -> 8 January for anything drawn in December."""
    assert latepayment.consolidated_due_by(china(2026, 12, 15)) == date(2027, 1, 8)


def test_make_up_working_days_count() -> None:
    """October 2026: 1-7 National Day; Thu 8, Fri 9, Sat 10 (a make-up working day, 调休上班),
    Mon 12, Tue 13 -> 13 October for anything drawn in September."""
    assert latepayment.consolidated_due_by(china(2026, 9, 20)) == date(2026, 10, 13)


def test_late_interest_days_and_threshold() -> None:
    """Paid on 17 December with a due date of 7 December: 10 days late (8 to 17, both
    included). 60,813.00 x 0.0005 x 10 = 304.065 -> 304.07 (half up); 9,000.00 x 0.0005 x 10
    = 45.00, under 50: nothing."""
    days = latepayment.days_late(date(2026, 12, 7), china(2026, 12, 17))
    assert days == 10
    assert latepayment.late_interest(Decimal("60813.00"), days) == Decimal("304.07")
    assert latepayment.late_interest(Decimal("9000.00"), days) == Decimal("0.00")
    assert latepayment.days_late(date(2026, 12, 7), china(2026, 12, 7, hour=23)) == 0
