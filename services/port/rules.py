"""Port authority rules: a pure function of the declaration, the reference data and ``now``.

The port concerned is the port of discharge of an IMPORT and the port of loading of an
EXPORT. Only SEA consignments concern the port authority: the intake does not route other
modes here, and if one arrives anyway the verdict is CLEAR with no reasons.

- ``PORT-NOT-SERVED`` REJECT: the port concerned is not one of this authority's ports; no
  other rule runs (there is no schedule or manifest to check against).
- ``PORT-NO-CALL`` HOLD: no port call of the declared vessel (IMO) and voyage at that port
  (also when the vessel or voyage is missing).
- ``PORT-CONTAINER-NOT-MANIFESTED`` HOLD, declaration-level: the bill of lading is on no
  manifest (one reason), or a declared container is not on that bill (one reason each).
- ``PORT-DG-UNDECLARED`` HOLD, per item: dangerous goods (HS prefix in the DG list) and no
  ``DANGEROUS_GOODS_DECLARATION`` document.
- ``PORT-DG-CHECK`` INSPECT, check ``DG_SEGREGATION``, per item: dangerous goods with the
  declaration lodged.
"""

from __future__ import annotations

from datetime import datetime

from services.port.reference import RULES_VERSION, ReferenceData, load_reference
from singlewindow.events import (
    Agency,
    AgencyVerdict,
    DeclarationSubmitted,
    DeclarationType,
    DocumentType,
    TransportMode,
)
from singlewindow.verdicts import Ruling, build_verdict

__all__ = ["AGENCY", "RULES_VERSION", "ReferenceData", "assess", "load_reference", "port_concerned"]

AGENCY = Agency.PORT


def port_concerned(declaration: DeclarationSubmitted) -> str:
    """Discharge port of an import, loading port of an export."""
    consignment = declaration.consignment
    if declaration.declaration_type is DeclarationType.IMPORT:
        return consignment.port_of_discharge
    return consignment.port_of_loading


def assess(
    declaration: DeclarationSubmitted, reference: ReferenceData, now: datetime
) -> AgencyVerdict:
    """The port authority's verdict on ``declaration`` under ``reference``, decided at ``now``."""
    return build_verdict(
        declaration, AGENCY, reference.version, _rulings(declaration, reference), now
    )


def _rulings(declaration: DeclarationSubmitted, reference: ReferenceData) -> list[Ruling]:
    consignment = declaration.consignment
    if consignment.mode is not TransportMode.SEA:
        return []
    port = port_concerned(declaration)
    if port not in reference.served_ports:
        return [
            Ruling.reject(
                "PORT-NOT-SERVED",
                f"{port} is not served by this port authority "
                f"(serves {', '.join(sorted(reference.served_ports))})",
            )
        ]
    rulings: list[Ruling] = []
    if reference.port_call(consignment.vessel_imo, consignment.voyage, port) is None:
        rulings.append(
            Ruling.hold(
                "PORT-NO-CALL",
                f"no port call of vessel IMO {consignment.vessel_imo} "
                f"voyage {consignment.voyage} at {port}",
            )
        )
    bill = reference.manifest.get(consignment.bill_of_lading)
    if bill is None:
        rulings.append(
            Ruling.hold(
                "PORT-CONTAINER-NOT-MANIFESTED",
                f"bill of lading {consignment.bill_of_lading} is on no manifest",
            )
        )
    else:
        for container in consignment.containers:
            if container not in bill.containers:
                rulings.append(
                    Ruling.hold(
                        "PORT-CONTAINER-NOT-MANIFESTED",
                        f"container {container} is not on the manifest of bill of lading "
                        f"{bill.bill_of_lading}",
                    )
                )
    declared = any(
        document.type is DocumentType.DANGEROUS_GOODS_DECLARATION
        for document in declaration.documents
    )
    for item in declaration.items:
        dangerous = reference.dangerous(item.hs_code)
        if dangerous is None:
            continue
        if declared:
            rulings.append(
                Ruling.inspect(
                    "PORT-DG-CHECK",
                    f"{item.hs_code} is dangerous goods (IMDG class {dangerous.un_class}, "
                    f"{dangerous.description}): segregation and stowage check",
                    "DG_SEGREGATION",
                    item.line,
                )
            )
        else:
            rulings.append(
                Ruling.hold(
                    "PORT-DG-UNDECLARED",
                    f"{item.hs_code} is dangerous goods (IMDG class {dangerous.un_class}, "
                    f"{dangerous.description}) and no {DocumentType.DANGEROUS_GOODS_DECLARATION}"
                    " was lodged",
                    item.line,
                )
            )
    return rulings
