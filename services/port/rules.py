"""Port authority rules: a pure function of the declaration, the reference data and ``now``.

The port concerned is the port of discharge of an IMPORT and the port of loading of an
EXPORT. Only SEA consignments concern the port authority (a seaport: its schedule is of vessel
calls): the intake does not route other modes here, and if one arrives anyway the verdict is
CLEAR with no reasons. The rules do not look at containers beyond the legacy manifest match:
containers follow the cargo (bulk cargo has none, a container may come by rail), and from
``port-2026.11-r2`` the match of the declaration with the manifest (bill, vessel, containers,
packages, weight) is customs' (``CUS-MANIFEST``, :mod:`services.customs.rules`).

Each rule is a function below, named after what it checks, that yields the rulings it gives;
:func:`rulings` runs them in this order:

- ``PORT-NOT-SERVED`` REJECT (:func:`not_served`): the port concerned is not one of this
  authority's ports; no other rule runs (there is no schedule or manifest to check against).
- ``PORT-NO-CALL`` HOLD (:func:`no_call`): no port call of the declared vessel (IMO) and
  voyage at that port (also when the vessel or voyage is missing).
- ``PORT-CONTAINER-NOT-MANIFESTED`` HOLD, declaration-level (:func:`not_manifested`): the
  bill of lading is on no manifest (one reason), or a declared container is not on that bill
  (one reason each). Legacy versions only (those that ship a manifest).
- ``PORT-DG-UNDECLARED`` HOLD, per item (:func:`dg_undeclared`): dangerous goods and no
  ``DANGEROUS_GOODS_DECLARATION`` document. Dangerous goods are an item that declares a UN
  number, whatever its HS code (batteries in equipment, UN3481), or whose HS code is in the DG
  list (legacy versions: the HS code only).
- ``PORT-DG-CHECK`` INSPECT, check ``DG_SEGREGATION``, per item (:func:`dg_check`): dangerous
  goods with the declaration lodged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from services.port.reference import (
    RULES_VERSION,
    DangerousGoods,
    ReferenceData,
    load_reference,
    reference_on,
)
from singlewindow.events import (
    AgencyVerdict,
    DeclarationSubmitted,
    DeclarationType,
    DocumentType,
    GoodsItem,
    TransportMode,
)
from singlewindow.verdicts import Ruling, build_verdict

__all__ = [
    "AGENCY",
    "DANGEROUS_GOODS_RULES",
    "DECLARATION_RULES",
    "RULES_VERSION",
    "Case",
    "ReferenceData",
    "assess",
    "assess_on_acceptance",
    "dg_check",
    "dg_undeclared",
    "load_reference",
    "no_call",
    "not_manifested",
    "not_served",
    "port_concerned",
    "reference_on",
    "rulings",
]

AGENCY = "port"


def port_concerned(declaration: DeclarationSubmitted) -> str:
    """Discharge port of an import, loading port of an export."""
    consignment = declaration.consignment
    if declaration.declaration_type is DeclarationType.IMPORT:
        return consignment.port_of_discharge
    return consignment.port_of_loading


@dataclass(frozen=True, slots=True)
class Case:
    """What the port rules decide on: a declaration, the reference data, the port concerned."""

    declaration: DeclarationSubmitted
    reference: ReferenceData
    port: str  # the port concerned, see port_concerned
    dg_declared: bool  # a DANGEROUS_GOODS_DECLARATION is lodged (it covers every item)

    @classmethod
    def of(cls, declaration: DeclarationSubmitted, reference: ReferenceData) -> Case:
        return cls(
            declaration=declaration,
            reference=reference,
            port=port_concerned(declaration),
            dg_declared=any(
                document.type is DocumentType.DANGEROUS_GOODS_DECLARATION
                for document in declaration.documents
            ),
        )


# --- the rules of the declaration -----------------------------------------------------------


def not_served(case: Case) -> Iterator[Ruling]:
    """``PORT-NOT-SERVED`` REJECT: the port concerned is not one of this authority's ports.

    The other rules check against this authority's schedule and manifests: when this one
    fires, they do not run.
    """
    served = case.reference.served_ports
    if case.port not in served:
        yield Ruling.reject(
            "PORT-NOT-SERVED",
            f"{case.port} is not served by this port authority "
            f"(serves {', '.join(sorted(served))})",
        )


def no_call(case: Case) -> Iterator[Ruling]:
    """``PORT-NO-CALL`` HOLD: no port call of the declared vessel (IMO) and voyage at the port
    concerned (also when the vessel or the voyage is missing)."""
    consignment = case.declaration.consignment
    if case.reference.port_call(consignment.vessel_imo, consignment.voyage, case.port) is None:
        yield Ruling.hold(
            "PORT-NO-CALL",
            f"no port call of vessel IMO {consignment.vessel_imo} "
            f"voyage {consignment.voyage} at {case.port}",
        )


def not_manifested(case: Case) -> Iterator[Ruling]:
    """``PORT-CONTAINER-NOT-MANIFESTED`` HOLD: the bill of lading is on no manifest (one
    ruling), or a declared container is not on that bill (one ruling per container).

    Legacy versions only: from ``port-2026.11-r2`` customs matches the manifest.
    """
    if not case.reference.legacy:
        return
    consignment = case.declaration.consignment
    bill = case.reference.manifest.get(consignment.bill_of_lading)
    if bill is None:
        yield Ruling.hold(
            "PORT-CONTAINER-NOT-MANIFESTED",
            f"bill of lading {consignment.bill_of_lading} is on no manifest",
        )
        return
    for container in consignment.containers:
        if container not in bill.containers:
            yield Ruling.hold(
                "PORT-CONTAINER-NOT-MANIFESTED",
                f"container {container} is not on the manifest of bill of lading "
                f"{bill.bill_of_lading}",
            )


DeclarationRule = Callable[[Case], Iterator[Ruling]]

# The rules of a declaration at a served port, in the order they are reported.
DECLARATION_RULES: tuple[DeclarationRule, ...] = (no_call, not_manifested)


# --- the rules of a goods item that is dangerous goods --------------------------------------


def _what(item: GoodsItem, dangerous: DangerousGoods) -> str:
    if dangerous.un_number is None:
        return (
            f"{item.hs_code} is dangerous goods (IMDG class {dangerous.un_class}, "
            f"{dangerous.description})"
        )
    return (
        f"{item.hs_code} is declared as {dangerous.un_number}, dangerous goods "
        f"(IMDG class {dangerous.un_class}, {dangerous.description})"
    )


def dg_undeclared(case: Case, item: GoodsItem, dangerous: DangerousGoods) -> Iterator[Ruling]:
    """``PORT-DG-UNDECLARED`` HOLD: the item is dangerous goods (a UN number declared, or its
    HS code in the DG list) and no ``DANGEROUS_GOODS_DECLARATION`` is lodged."""
    if not case.dg_declared:
        yield Ruling.hold(
            "PORT-DG-UNDECLARED",
            f"{_what(item, dangerous)} and no {DocumentType.DANGEROUS_GOODS_DECLARATION}"
            " was lodged",
            item.line,
        )


def dg_check(case: Case, item: GoodsItem, dangerous: DangerousGoods) -> Iterator[Ruling]:
    """``PORT-DG-CHECK`` INSPECT ``DG_SEGREGATION``: the item is dangerous goods and its
    ``DANGEROUS_GOODS_DECLARATION`` is lodged: segregation and stowage are checked."""
    if case.dg_declared:
        yield Ruling.inspect(
            "PORT-DG-CHECK",
            f"{_what(item, dangerous)}: segregation and stowage check",
            "DG_SEGREGATION",
            item.line,
        )


DangerousGoodsRule = Callable[[Case, GoodsItem, DangerousGoods], Iterator[Ruling]]

# The rules of an item whose HS code is in the DG list, after the declaration's, item by item.
DANGEROUS_GOODS_RULES: tuple[DangerousGoodsRule, ...] = (dg_undeclared, dg_check)


def rulings(case: Case) -> list[Ruling]:
    """Every ruling on the case: none for a consignment not by SEA; ``PORT-NOT-SERVED`` alone;
    or the :data:`DECLARATION_RULES`', then item by item the :data:`DANGEROUS_GOODS_RULES`'."""
    if case.declaration.consignment.mode is not TransportMode.SEA:
        return []
    unserved = list(not_served(case))
    if unserved:
        return unserved
    found = [ruling for rule in DECLARATION_RULES for ruling in rule(case)]
    for item in case.declaration.items:
        dangerous = case.reference.dangerous(item.hs_code, item.un_number)
        if dangerous is not None:
            found.extend(
                ruling for rule in DANGEROUS_GOODS_RULES for ruling in rule(case, item, dangerous)
            )
    return found


def assess(
    declaration: DeclarationSubmitted, reference: ReferenceData, now: datetime
) -> AgencyVerdict:
    """The port authority's verdict on ``declaration`` under ``reference``, decided at ``now``."""
    case = Case.of(declaration, reference)
    return build_verdict(declaration, AGENCY, reference.version, rulings(case), now)


def assess_on_acceptance(declaration: DeclarationSubmitted, now: datetime) -> AgencyVerdict:
    """:func:`assess` with the reference data in force on the declaration's acceptance date
    (the verdict's ``rules_version`` names it): what the port service runs."""
    return assess(declaration, reference_on(declaration.submitted_at), now)
