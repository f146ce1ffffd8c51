"""Which agencies must rule on a declaration, from a declarative routing table.

An agency is required when any of its conditions holds: ``always``, the transport mode is
in ``modes``, an item's HS code starts with one of ``hs_prefixes``, or a document of one of
the ``documents`` types is attached. The table's ``version`` travels in the submitted event
with the agencies, so the aggregator and auditors know which table decided.

Every version ever used stays in ``routing_tables/<version>.json`` (changing the table means
a new file and a new :data:`CURRENT`), so an auditor recomputes each declaration's routing
from the table it names (:func:`table_of_version`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.intake.schema import DeclarationRequest
from singlewindow.events import Agency, DeclarationSubmitted, DocumentType, TransportMode

TABLES = Path(__file__).with_name("routing_tables")
CURRENT = "routing-2026.11"
DEFAULT_TABLE = TABLES / f"{CURRENT}.json"
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HsPrefix(_Frozen):
    prefix: str = Field(pattern=r"^[0-9]{2,10}$")
    goods: str = ""


class AgencyRule(_Frozen):
    always: bool = False
    modes: frozenset[TransportMode] = frozenset()
    hs_prefixes: tuple[HsPrefix, ...] = ()
    documents: frozenset[DocumentType] = frozenset()

    def applies(
        self, mode: TransportMode, hs_codes: Iterable[str], documents: set[DocumentType]
    ) -> bool:
        prefixes = tuple(p.prefix for p in self.hs_prefixes)
        return (
            self.always
            or mode in self.modes
            or not self.documents.isdisjoint(documents)
            or any(code.startswith(prefixes) for code in hs_codes)
        )


class RoutingTable(_Frozen):
    version: str = Field(min_length=1, max_length=64)
    description: str = ""
    agencies: dict[Agency, AgencyRule]

    @model_validator(mode="after")
    def _sane(self) -> RoutingTable:
        if Agency.UNKNOWN in self.agencies:
            raise ValueError("UNKNOWN is not an agency that can be asked")
        if not any(rule.always for rule in self.agencies.values()):
            raise ValueError("at least one agency must always rule")
        return self


def load_table(path: Path = DEFAULT_TABLE) -> RoutingTable:
    """Read and check a routing table (pydantic ValidationError if it is malformed)."""
    return RoutingTable.model_validate_json(path.read_bytes())


@cache
def table_of_version(version: str) -> RoutingTable:
    """The routing table of ``version`` as it was released; LookupError if there is none."""
    if not _VERSION.fullmatch(version) or not (TABLES / f"{version}.json").is_file():
        raise LookupError(f"no routing table {version[:64]!r}")
    table = load_table(TABLES / f"{version}.json")
    if table.version != version:
        raise LookupError(f"{version}.json holds routing table {table.version!r}")
    return table


def route(
    declaration: DeclarationRequest | DeclarationSubmitted, table: RoutingTable
) -> tuple[tuple[Agency, ...], str]:
    """The required agencies in the stable order customs, ciq, port; and the table version."""
    if isinstance(declaration, DeclarationSubmitted):
        mode = declaration.consignment.mode
    else:
        mode = declaration.transport.mode
    hs_codes = [item.hs_code for item in declaration.items]
    documents = {document.type for document in declaration.documents}
    agencies = tuple(
        agency
        for agency in Agency  # declaration order of the enum: customs, ciq, port
        if agency in table.agencies and table.agencies[agency].applies(mode, hs_codes, documents)
    )
    return agencies, table.version
