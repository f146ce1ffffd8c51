"""Port authority reference data: served ports, port calls, dangerous goods (by HS code and,
from ``port-2026.11-r2``, by UN number), and in the versions before it the cargo manifest.

Read once per version from ``services/port/reference/<version>/`` (see its README) and cached.
The version that applies to a declaration is the one in force on its acceptance date
(:func:`reference_on`). A version that ships ``manifest.json`` is ``legacy``: the port matched
the manifest then (customs does from ``port-2026.11-r2`` on); its rules stay as they were, so
the verdicts naming it recompute exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from types import MappingProxyType
from typing import Any

from singlewindow.identifiers import (
    InvalidIdentifier,
    validate_container_number,
    validate_imo,
    validate_unlocode,
)
from singlewindow.reference import (
    ReferenceDataError,
    ReferenceFolder,
    check,
    hs_prefix_match,
    parse_date,
    parse_hs_prefix,
    reference_folder,
    version_for,
)

RULES_VERSION = "port-2026.11-r2"  # the base of the versions in force (demo data, tests)
PACKAGE = "services.port"
MANIFEST = "manifest.json"
UN_NUMBERS = "un_numbers.csv"
UN_NUMBER = re.compile(r"UN[0-9]{4}")


@dataclass(frozen=True, slots=True)
class PortCall:
    vessel_imo: str
    vessel_name: str
    voyage: str
    port: str
    eta: date


@dataclass(frozen=True, slots=True)
class BillOfLading:
    bill_of_lading: str
    vessel_imo: str
    voyage: str
    port_of_loading: str
    port_of_discharge: str
    containers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DangerousGoods:
    hs_prefix: str  # empty when known by its UN number
    un_class: str
    description: str
    un_number: str | None = None


@dataclass(frozen=True, eq=False)
class ReferenceData:
    """One version of the port authority's reference data (immutable)."""

    version: str
    served_ports: Mapping[str, str]  # UN/LOCODE -> name
    port_calls: Mapping[tuple[str, str, str], PortCall]  # (vessel IMO, voyage, port) -> call
    manifest: Mapping[str, BillOfLading]  # bill of lading number -> bill (legacy only)
    dangerous_goods: Mapping[str, DangerousGoods]  # HS prefix -> entry; longest prefix wins
    legacy: bool = False  # ships a manifest: the format before port-2026.11-r2
    un_numbers: Mapping[str, DangerousGoods] = field(default_factory=dict)  # UN number -> entry

    def port_call(self, vessel_imo: str | None, voyage: str | None, port: str) -> PortCall | None:
        if vessel_imo is None or voyage is None:
            return None
        return self.port_calls.get((vessel_imo, voyage, port))

    def dangerous(self, hs_code: str, un_number: str | None = None) -> DangerousGoods | None:
        """What makes goods dangerous: their declared UN number, whatever their HS code (not
        in legacy versions; a number not in the table is still dangerous goods, of the class
        its DG declaration gives), else their HS code in the DG list; None: not DG."""
        if un_number and not self.legacy:
            return self.un_numbers.get(un_number) or DangerousGoods(
                "", "given by the dangerous goods declaration", "not in the port's table", un_number
            )
        prefix = hs_prefix_match(hs_code, self.dangerous_goods)
        return None if prefix is None else self.dangerous_goods[prefix]


def load_reference(version: str = RULES_VERSION) -> ReferenceData:
    """The port reference data of ``version``, read once and cached."""
    return _load(version)


def reference_on(accepted_at: datetime) -> ReferenceData:
    """The reference data in force when a declaration accepted at ``accepted_at`` was."""
    return _load(version_for(PACKAGE, accepted_at))


@cache
def _load(version: str) -> ReferenceData:
    folder = reference_folder(PACKAGE, version)
    served = _served(folder)
    calls = _calls(folder, served)
    legacy = folder.has(MANIFEST)
    return ReferenceData(
        version=version,
        served_ports=MappingProxyType(served),
        port_calls=MappingProxyType(calls),
        manifest=MappingProxyType(_manifest(folder, calls) if legacy else {}),
        dangerous_goods=MappingProxyType(_dangerous_goods(folder)),
        legacy=legacy,
        un_numbers=MappingProxyType(_un_numbers(folder) if folder.has(UN_NUMBERS) else {}),
    )


def _served(folder: ReferenceFolder) -> dict[str, str]:
    name = "served_ports.csv"
    served: dict[str, str] = {}
    for number, row in enumerate(folder.csv(name, ("unlocode", "name", "authority")), start=2):
        check(folder.where(name, number), validate_unlocode, row["unlocode"])
        served[row["unlocode"]] = row["name"]
    return served


def _calls(
    folder: ReferenceFolder, served: Mapping[str, str]
) -> dict[tuple[str, str, str], PortCall]:
    name = "port_calls.csv"
    columns = ("vessel_imo", "vessel_name", "voyage", "port", "eta")
    calls: dict[tuple[str, str, str], PortCall] = {}
    for number, row in enumerate(folder.csv(name, columns), start=2):
        where = folder.where(name, number)
        check(where, validate_imo, row["vessel_imo"])
        if row["port"] not in served:
            raise ReferenceDataError(f"{where}: port {row['port']} is not a served port")
        call = PortCall(
            row["vessel_imo"], row["vessel_name"], row["voyage"], row["port"],
            parse_date(row["eta"], where),
        )  # fmt: skip
        key = (call.vessel_imo, call.voyage, call.port)
        if key in calls:
            raise ReferenceDataError(f"{where}: duplicate port call {key}")
        calls[key] = call
    return calls


def _manifest(
    folder: ReferenceFolder, calls: Mapping[tuple[str, str, str], PortCall]
) -> dict[str, BillOfLading]:
    name = "manifest.json"
    data = folder.json(name)
    where = folder.where(name)
    if not isinstance(data, dict) or not isinstance(data.get("bills_of_lading"), list):
        raise ReferenceDataError(f"{where}: expected an object with a bills_of_lading list")
    voyages = {(imo, voyage) for imo, voyage, _ in calls}
    manifest: dict[str, BillOfLading] = {}
    seen: set[str] = set()
    for raw in data["bills_of_lading"]:
        bill = _bill(raw, where)
        if bill.bill_of_lading in manifest:
            raise ReferenceDataError(f"{where}: duplicate bill {bill.bill_of_lading}")
        if (bill.vessel_imo, bill.voyage) not in voyages:
            raise ReferenceDataError(
                f"{where}: bill {bill.bill_of_lading} is on {bill.vessel_imo}/{bill.voyage}, "
                "which has no port call"
            )
        for container in bill.containers:
            if container in seen:
                raise ReferenceDataError(f"{where}: container {container} is on two bills")
            seen.add(container)
        manifest[bill.bill_of_lading] = bill
    return manifest


def _bill(raw: Any, where: str) -> BillOfLading:
    try:
        bill = BillOfLading(
            bill_of_lading=str(raw["bill_of_lading"]),
            vessel_imo=str(raw["vessel_imo"]),
            voyage=str(raw["voyage"]),
            port_of_loading=str(raw["port_of_loading"]),
            port_of_discharge=str(raw["port_of_discharge"]),
            containers=tuple(str(c) for c in raw["containers"]),
        )
        validate_imo(bill.vessel_imo)
        validate_unlocode(bill.port_of_loading)
        validate_unlocode(bill.port_of_discharge)
        for container in bill.containers:
            validate_container_number(container)
    except (KeyError, TypeError, InvalidIdentifier) as exc:
        raise ReferenceDataError(f"{where}: bad bill of lading {raw!r}: {exc}") from None
    return bill


def _dangerous_goods(folder: ReferenceFolder) -> dict[str, DangerousGoods]:
    name = "dangerous_goods.csv"
    entries: dict[str, DangerousGoods] = {}
    rows = folder.csv(name, ("hs_prefix", "un_class", "description"))
    for number, row in enumerate(rows, start=2):
        where = folder.where(name, number)
        prefix = parse_hs_prefix(row["hs_prefix"], where)
        if prefix in entries:
            raise ReferenceDataError(f"{where}: duplicate HS prefix {prefix}")
        entries[prefix] = DangerousGoods(prefix, row["un_class"], row["description"])
    return entries


def _un_numbers(folder: ReferenceFolder) -> dict[str, DangerousGoods]:
    name = UN_NUMBERS
    entries: dict[str, DangerousGoods] = {}
    for number, row in enumerate(folder.csv(name, ("un_number", "un_class", "name")), start=2):
        where = folder.where(name, number)
        un = row["un_number"]
        if not UN_NUMBER.fullmatch(un) or un in entries:
            raise ReferenceDataError(f"{where}: {un!r} is not UN + 4 digits, or a duplicate")
        entries[un] = DangerousGoods("", row["un_class"], row["name"], un)
    return entries
