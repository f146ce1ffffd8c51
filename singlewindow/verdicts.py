"""What every agency's rules share: verdict ids, decision precedence, findings, reference files.

An agency's rules are a pure function ``assess(declaration, reference, now) -> AgencyVerdict``.
Each rule that fires yields a :class:`Finding` (a decision, a reason with a stable code and,
for an INSPECT, the name of the physical check to order); :func:`build_verdict` turns the
findings into the verdict. Reference data lives in versioned folders beside the agency's code,
``<package>/reference/<version>/``, read through :func:`reference_folder`. Versions are never
edited in place: a change of data is a new folder, so a replay with the version named in a
verdict reproduces that verdict.
"""

from __future__ import annotations

import csv
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from singlewindow.events import (
    AgencyVerdict,
    Charge,
    Decision,
    DeclarationSubmitted,
    DutyLine,
    InspectionCheck,
    Reason,
)

# Fixed for ever: uuid5(NAMESPACE_URL, "https://github.com/singlewindow/verdicts").
VERDICT_NAMESPACE = uuid.UUID("21e1dd17-c7f3-5983-af28-ec4982d604f8")

# Strictest first: the aggregator and every agency combine decisions in this order.
PRECEDENCE: tuple[Decision, ...] = (
    Decision.REJECT,
    Decision.HOLD,
    Decision.INSPECT,
    Decision.CLEAR,
)
_RANK = {decision: rank for rank, decision in enumerate(PRECEDENCE)}

_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


def verdict_id(declaration_id: str, agency: str, rules_version: str) -> str:
    """Deterministic verdict id: a replay of the same declaration and rules gives the same id."""
    return str(uuid.uuid5(VERDICT_NAMESPACE, f"{declaration_id}/{agency}/{rules_version}"))


def combine(decisions: Iterable[Decision]) -> Decision:
    """The strictest decision (REJECT > HOLD > INSPECT > CLEAR); CLEAR when there is none."""
    return min(decisions, key=_RANK.__getitem__, default=Decision.CLEAR)


def reason(code: str, message: str, item: int | None = None) -> Reason:
    """A reason: stable rule ``code``, human-readable ``message``, goods ``item`` line or None."""
    return Reason(code=code, message=message, item=item)


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired: its decision, its reason and, for inspections, the check to order."""

    decision: Decision
    reason: Reason
    check: str | None = None

    @classmethod
    def reject(cls, code: str, message: str, item: int | None = None) -> Finding:
        return cls(Decision.REJECT, reason(code, message, item))

    @classmethod
    def hold(cls, code: str, message: str, item: int | None = None) -> Finding:
        return cls(Decision.HOLD, reason(code, message, item))

    @classmethod
    def inspect(cls, code: str, message: str, check: str, item: int | None = None) -> Finding:
        return cls(Decision.INSPECT, reason(code, message, item), check)


def build_verdict(
    declaration: DeclarationSubmitted,
    agency: str,
    rules_version: str,
    findings: Sequence[Finding],
    now: datetime,
    *,
    duties: Sequence[DutyLine] = (),
    total_duties: Decimal = Decimal("0"),
    charges: Sequence[Charge] = (),
) -> AgencyVerdict:
    """The verdict of ``agency`` from the findings of its rules, in the order they were found.

    The decision is the strictest finding's (CLEAR with no reasons when nothing fired). Every
    finding that asks for a check contributes an :class:`InspectionCheck`, even when the final
    decision is stricter, so that a joint inspection can still be ordered; duplicates are
    dropped, first occurrence kept.
    """
    checks: dict[tuple[str, int | None], InspectionCheck] = {}
    for finding in findings:
        if finding.check is not None:
            key = (finding.check, finding.reason.item)
            checks.setdefault(
                key, InspectionCheck(agency=agency, check=finding.check, item=finding.reason.item)
            )
    return AgencyVerdict(
        declaration_id=declaration.declaration_id,
        verdict_id=verdict_id(declaration.declaration_id, agency, rules_version),
        agency=agency,
        decision=combine(f.decision for f in findings),
        reasons=tuple(f.reason for f in findings),
        checks=tuple(checks.values()),
        duties=tuple(duties),
        total_duties=total_duties,
        charges=tuple(charges),
        rules_version=rules_version,
        decided_at=now,
    )


# --- reference data -------------------------------------------------------------------------


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

    def text(self, name: str) -> str:
        path = self.root.joinpath(name)
        if not path.is_file():
            raise ReferenceDataError(f"{self.package} reference {self.version}: no file {name}")
        return path.read_text(encoding="utf-8")

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
    """The folder of one reference data version of ``package`` (e.g. ``services.customs``)."""
    if not _VERSION.fullmatch(version):
        raise UnknownReferenceVersion(f"{version!r} is not a reference data version name")
    root = files(package).joinpath("reference", version)
    if not root.is_dir():
        known = ", ".join(reference_versions(package)) or "none"
        raise UnknownReferenceVersion(
            f"{package} has no reference data version {version!r} (known: {known})"
        )
    return ReferenceFolder(package=package, version=version, root=root)


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
