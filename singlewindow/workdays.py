"""China's working days (工作日): weekends, public holidays and make-up working days (pure).

A day in China is a working day unless it is a Saturday or a Sunday, or a public holiday;
but a weekend day the State Council moves work to (调休上班) is a working day. The days
themselves are reference data, ``singlewindow/data/china_holidays.csv``: one row per day
the yearly notice of the State Council's General Office on public holidays (国务院办公厅关于
2026年部分节假日安排的通知 and its like) names, with the day that notice was published.

What a day *is* must not change when the file grows, or an auditor recomputing a due date
years later would get another one. So every question is asked ``as known on`` a day: a
year's arrangement counts only from the day it was published. For a year not yet published
on that day, the fixed-date statutory holidays of the Regulations on National Holidays
(全国年节及纪念日放假办法, as revised in 2024: 1 January, 1-2 May, 1-3 October) and the
weekends stand in; the lunar holidays and the make-up days are not known yet.

Customs counts its time limits this way: a time limit whose last day is a rest day or a
public holiday ends on the first working day after it, and the State Council's moves of
rest and working days count (《海关进出口货物征税管理办法》, on the time limit to pay).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import cache
from importlib.resources import files

HOLIDAYS_FILE = "china_holidays.csv"
# the Regulations on National Holidays (2024 revision): the holidays of a fixed date, by
# (month, day); the lunar ones (春节, 清明节, 端午节, 中秋节) move every year
FIXED_HOLIDAYS = frozenset({(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)})
SATURDAY = 5


class DayKind(StrEnum):
    HOLIDAY = "holiday"  # a public holiday, or a rest day of the holiday's span
    WORKDAY = "workday"  # a weekend day worked instead (调休上班)


@dataclass(frozen=True)
class Arranged:
    """One day a yearly notice names: what it is, and when the notice was published."""

    kind: DayKind
    name: str
    published: date


@dataclass(frozen=True)
class Calendar:
    """The days the notices name, by day, and the day each year's notice was published."""

    days: Mapping[date, Arranged]
    published: Mapping[int, date]

    def arranged(self, day: date, known_on: date) -> Arranged | None:
        """What the notice published by ``known_on`` makes of ``day``, if any."""
        found = self.days.get(day)
        return found if found is not None and found.published <= known_on else None

    def is_working(self, day: date, known_on: date) -> bool:
        """Whether ``day`` is a working day, as known on ``known_on``."""
        found = self.arranged(day, known_on)
        if found is not None:
            return found.kind is DayKind.WORKDAY
        weekday = day.weekday() < SATURDAY
        published = self.published.get(day.year)
        if published is not None and published <= known_on:
            return weekday  # the year's notice names every holiday of it
        return weekday and (day.month, day.day) not in FIXED_HOLIDAYS

    def working_on_or_after(self, day: date, known_on: date) -> date:
        """The first working day on or after ``day``, as known on ``known_on``."""
        while not self.is_working(day, known_on):
            day += timedelta(days=1)
        return day

    def nth_working_day(self, first: date, n: int, known_on: date) -> date:
        """The ``n``-th working day (1: the first) counting from ``first`` included."""
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        day = self.working_on_or_after(first, known_on)
        for _ in range(n - 1):
            day = self.working_on_or_after(day + timedelta(days=1), known_on)
        return day


def parse(text: str) -> Calendar:
    """A calendar from the CSV's text (``day,kind,name,published``); raises ValueError naming
    the line of a bad row, a day named twice, a make-up working day that is no weekend, or
    two publication days for one year."""
    days: dict[date, Arranged] = {}
    published: dict[int, date] = {}
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            day = date.fromisoformat(row["day"])
            arranged = Arranged(
                DayKind(row["kind"]), row["name"], date.fromisoformat(row["published"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{HOLIDAYS_FILE} line {line}: {exc}") from None
        if day in days:
            raise ValueError(f"{HOLIDAYS_FILE} line {line}: {day} named twice")
        if arranged.kind is DayKind.WORKDAY and day.weekday() < SATURDAY:
            raise ValueError(f"{HOLIDAYS_FILE} line {line}: {day} is a weekday, not a make-up day")
        if published.setdefault(day.year, arranged.published) != arranged.published:
            raise ValueError(f"{HOLIDAYS_FILE} line {line}: {day.year} has one notice, one date")
        days[day] = arranged
    return Calendar(days, published)


@cache
def china() -> Calendar:
    """The shipped calendar."""
    return parse(files("singlewindow").joinpath("data", HOLIDAYS_FILE).read_text(encoding="utf-8"))
