"""Reference files: the versioned data an agency's rules decide with, read and checked.

Reference data lives in versioned folders beside the agency's code,
``<package>/reference/<version>/``, read through :func:`reference_folder`. Versions are never
edited in place: a change of data is a new folder, so a replay with the version named in a
verdict reproduces that verdict.

A version may be **dated**: its ``version.json`` says from which day it is in force
(``valid_from``) and may name a ``base`` version whose files it inherits (a monthly version
that only brings new exchange rates names the previous one and carries one file). The
version in force on a day is the dated version with the latest ``valid_from`` not after it
(:func:`version_on`); an agency chooses it by the declaration's acceptance date
(:func:`acceptance_date`, China time), so the tariff and rates of the day the declaration was
accepted apply, and the verdict names the version. A folder without ``version.json`` is
never chosen by date; it is still read by name, to recompute the verdicts that name it.

Every error in a file is a :class:`ReferenceDataError` naming where it is (package, version,
file and, for a CSV, the line): :meth:`ReferenceFolder.where` names the place, :func:`check`
runs a validator on a value and names the place if it fails, and the ``parse_*`` helpers read
a cell of one type.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, TypeVar

T = TypeVar("T")

VERSION_FILE = "version.json"
CHINA_TIME = timezone(timedelta(hours=8), "CST")  # Asia/Shanghai, no daylight saving
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


class ReferenceDataError(ValueError):
    """A reference file is missing, malformed or inconsistent."""


class UnknownReferenceVersion(LookupError):
    """No reference data folder of that version exists."""


@dataclass(frozen=True)
class ReferenceFolder:
    """One version of an agency's reference data: ``<package>/reference/<version>/``."""

    package: str
    version: str
    root: Traversable
    base: ReferenceFolder | None = None  # where a file this version does not carry is read
    valid_from: date | None = None  # None: not chosen by date (read by name only)

    def has(self, name: str) -> bool:
        """Whether this version (or a version it inherits from) carries the file ``name``."""
        return self.root.joinpath(name).is_file() or (self.base is not None and self.base.has(name))

    def text(self, name: str) -> str:
        path = self.root.joinpath(name)
        if path.is_file():
            return path.read_text(encoding="utf-8")
        if self.base is not None and self.base.has(name):
            return self.base.text(name)
        raise ReferenceDataError(f"{self.package} reference {self.version}: no file {name}")

    def csv(self, name: str, columns: Sequence[str]) -> tuple[dict[str, str], ...]:
        """Rows of a UTF-8 CSV whose header must be exactly ``columns``; cells are stripped."""
        reader = csv.DictReader(self.text(name).splitlines())
        if tuple(reader.fieldnames or ()) != tuple(columns):
            raise ReferenceDataError(
                f"{self.package} reference {self.version}/{name}: header is "
                f"{reader.fieldnames}, expected {list(columns)}"
            )
        rows = []
        for number, row in enumerate(reader, start=2):
            if None in row or any(value is None for value in row.values()):
                raise ReferenceDataError(f"{self.where(name, number)}: wrong number of cells")
            rows.append({key: value.strip() for key, value in row.items()})
        return tuple(rows)

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.text(name))
        except json.JSONDecodeError as exc:
            raise ReferenceDataError(f"{self.where(name)}: {exc}") from None

    def where(self, name: str, line: int | None = None) -> str:
        place = f"{self.package} reference {self.version}/{name}"
        return place if line is None else f"{place} line {line}"


def reference_versions(package: str) -> tuple[str, ...]:
    """The reference data versions shipped with an agency package, sorted."""
    root = files(package).joinpath("reference")
    if not root.is_dir():
        return ()
    return tuple(
        sorted(p.name for p in root.iterdir() if p.is_dir() and _VERSION.fullmatch(p.name))
    )


def reference_folder(package: str, version: str) -> ReferenceFolder:
    """The folder of one reference data version of ``package`` (e.g. ``services.customs``),
    with the versions it inherits from (its ``version.json``'s ``base``)."""
    return _folder(package, version, ())


def _folder(package: str, version: str, seen: tuple[str, ...]) -> ReferenceFolder:
    if not _VERSION.fullmatch(version):
        raise UnknownReferenceVersion(f"{version!r} is not a reference data version name")
    root = files(package).joinpath("reference", version)
    if not root.is_dir():
        known = ", ".join(reference_versions(package)) or "none"
        raise UnknownReferenceVersion(
            f"{package} has no reference data version {version!r} (known: {known})"
        )
    folder = ReferenceFolder(package=package, version=version, root=root)
    if not root.joinpath(VERSION_FILE).is_file():
        return folder
    meta = folder.json(VERSION_FILE)
    where = folder.where(VERSION_FILE)
    if not isinstance(meta, dict) or set(meta) - {"valid_from", "base", "note"}:
        raise ReferenceDataError(f"{where}: expected an object of valid_from, base and note")
    valid_from = parse_date(str(meta.get("valid_from")), where)
    base_name = meta.get("base")
    base = None
    if base_name is not None:
        if not isinstance(base_name, str) or base_name in (*seen, version):
            raise ReferenceDataError(f"{where}: base {base_name!r} is not another version")
        base = _folder(package, base_name, (*seen, version))
        if base.valid_from is not None and base.valid_from >= valid_from:
            raise ReferenceDataError(f"{where}: base {base_name} is not in force before it")
    return ReferenceFolder(package, version, root, base, valid_from)


@cache
def dated_versions(package: str) -> tuple[tuple[date, str], ...]:
    """``(valid_from, version)`` of every dated version of ``package``, oldest first (read
    once: released versions never change)."""
    dated = []
    for version in reference_versions(package):
        valid_from = reference_folder(package, version).valid_from
        if valid_from is not None:
            dated.append((valid_from, version))
    dated.sort()
    for (day, one), (same, other) in itertools.pairwise(dated):
        if day == same:
            raise ReferenceDataError(f"{package}: {one} and {other} are both in force from {day}")
    return tuple(dated)


def version_on(package: str, day: date) -> str:
    """The version of ``package``'s reference data in force on ``day``."""
    in_force = [version for valid_from, version in dated_versions(package) if valid_from <= day]
    if not in_force:
        raise UnknownReferenceVersion(f"{package} has no reference data in force on {day}")
    return in_force[-1]


def version_for(package: str, accepted_at: datetime) -> str:
    """The version of ``package`` in force on the acceptance date of a declaration accepted
    at ``accepted_at`` (:func:`acceptance_date`)."""
    return version_on(package, acceptance_date(accepted_at))


def in_force(package: str, named: str, accepted_at: datetime) -> str:
    """The version an auditor recomputes a verdict that names ``named`` with: for a dated
    version, the one in force on the declaration's acceptance date (so a verdict decided with
    another version does not recompute equal); an undated one, as named."""
    if named not in {version for _, version in dated_versions(package)}:
        return named  # undated (or unknown: loading it reports what is wrong)
    try:
        return version_for(package, accepted_at)
    except UnknownReferenceVersion:
        return named


def acceptance_date(accepted_at: datetime) -> date:
    """The day, in China, of the instant a declaration was accepted: it fixes the tariff and
    the exchange rates that apply (a declaration accepted at 2026-11-30T20:00Z is accepted
    on 1 December in China)."""
    return accepted_at.astimezone(CHINA_TIME).date()


def check(where: str, validator: Callable[[str], T], value: str) -> T:
    """``validator(value)``; a ``ValueError`` it raises becomes a :class:`ReferenceDataError`
    naming ``where`` (the file, and the line of a CSV) and carrying the validator's message.

    ``validator`` is one of :mod:`singlewindow.identifiers`' ``validate_*`` (which return
    None and raise ``InvalidIdentifier``, a ``ValueError``), an enum, or any callable raising
    ``ValueError`` with a message that explains the value; what it returns is returned.
    """
    try:
        return validator(value)
    except ValueError as exc:
        raise ReferenceDataError(f"{where}: {exc}") from None


def parse_decimal(value: str, where: str) -> Decimal:
    """A finite Decimal from a reference cell, or :class:`ReferenceDataError` naming the cell."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ReferenceDataError(f"{where}: {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise ReferenceDataError(f"{where}: {value!r} is not a finite number")
    return number


def parse_date(value: str, where: str) -> date:
    """An ISO date (YYYY-MM-DD) from a reference cell."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ReferenceDataError(f"{where}: {value!r} is not an ISO date") from None


def parse_flag(value: str, where: str) -> bool:
    """A boolean reference cell: ``Y`` or ``N``."""
    if value not in ("Y", "N"):
        raise ReferenceDataError(f"{where}: flag must be Y or N, got {value!r}")
    return value == "Y"


def parse_hs_prefix(value: str, where: str) -> str:
    """An HS code prefix (2 to 10 ASCII digits: chapter, heading, subheading...)."""
    if not 2 <= len(value) <= 10 or any(c not in "0123456789" for c in value):
        raise ReferenceDataError(f"{where}: HS prefix {value!r} must be 2 to 10 digits")
    return value


def hs_prefix_match(hs_code: str, prefixes: Iterable[str]) -> str | None:
    """The longest of ``prefixes`` that ``hs_code`` starts with, or None."""
    best: str | None = None
    for prefix in prefixes:
        if hs_code.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best
