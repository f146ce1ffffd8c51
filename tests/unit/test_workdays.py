"""China's working days (singlewindow.workdays): the State Council's yearly notices on public
holidays (2025: published 12 November 2024; 2026: published 4 November 2025), the fixed-date
holidays of the Regulations on National Holidays (2024 revision), and weekends."""

from __future__ import annotations

from datetime import date

import pytest

from singlewindow.workdays import china, parse

TODAY = date(2026, 11, 28)
HEADER = "day,kind,name,published\n"


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 2, 16), False),  # Spring Festival 2026 (15-23 February), a Monday
        (date(2026, 2, 14), True),  # a Saturday worked instead (调休上班)
        (date(2026, 2, 24), True),  # the Tuesday after the Spring Festival
        (date(2025, 10, 8), False),  # National Day and Mid-Autumn 2025 (1-8 October)
        (date(2025, 10, 11), True),  # a Saturday worked instead
        (date(2026, 11, 28), False),  # a Saturday
        (date(2026, 11, 30), True),  # a Monday
        (date(2027, 5, 3), True),  # 2027 not yet published: a Monday, not a fixed holiday
        (date(2027, 10, 1), False),  # 2027 not yet published: National Day is fixed
    ],
)
def test_working_days_as_known_today(day: date, working: bool) -> None:
    assert china().is_working(day, known_on=TODAY) is working


def test_a_years_notice_counts_only_from_the_day_it_was_published() -> None:
    # the 2026 notice was published on 4 November 2025: before, 16 February 2026 (a Monday of
    # the Spring Festival) was not known as a holiday, nor 14 February (a Saturday) as worked
    assert china().is_working(date(2026, 2, 16), known_on=date(2025, 11, 3)) is True
    assert china().is_working(date(2026, 2, 14), known_on=date(2025, 11, 3)) is False
    assert china().is_working(date(2026, 2, 16), known_on=date(2025, 11, 4)) is False


def test_a_time_limit_ending_on_a_holiday_ends_on_the_next_working_day() -> None:
    # 5 October 2026: National Day (1-7 October); 8 October is a Thursday
    assert china().working_on_or_after(date(2026, 10, 5), known_on=TODAY) == date(2026, 10, 8)
    # 20 February 2026: Spring Festival (15-23 February, the 21st and 22nd a weekend)
    assert china().working_on_or_after(date(2026, 2, 20), known_on=TODAY) == date(2026, 2, 24)
    # 28 February 2026: a Saturday worked instead: the time limit ends that day
    assert china().working_on_or_after(date(2026, 2, 28), known_on=TODAY) == date(2026, 2, 28)


def test_the_fifth_working_day_of_october_2026() -> None:
    # 1-7 October are holidays; 8 (Thu), 9 (Fri), 10 (Saturday worked), 12 (Mon), 13 (Tue)
    assert china().nth_working_day(date(2026, 10, 1), 5, known_on=TODAY) == date(2026, 10, 13)
    assert china().nth_working_day(date(2026, 12, 1), 1, known_on=TODAY) == date(2026, 12, 1)


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ("2026-13-01,holiday,x,2025-11-04\n", "line 2"),
        ("2026-02-16,rest,x,2025-11-04\n", "line 2"),
        ("2026-02-16,holiday,x,2025-11-04\n2026-02-16,holiday,x,2025-11-04\n", "twice"),
        ("2026-02-16,workday,x,2025-11-04\n", "weekday"),
        ("2026-02-16,holiday,x,2025-11-04\n2026-02-17,holiday,x,2025-11-05\n", "one date"),
    ],
)
def test_a_bad_calendar_is_refused_naming_its_line(rows: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse(HEADER + rows)


def test_every_shipped_make_up_day_is_a_weekend_and_every_year_has_one_notice() -> None:
    calendar = china()  # parse checks both; the shipped file covers 2025 and 2026
    assert set(calendar.published) == {2025, 2026}
