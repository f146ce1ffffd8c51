"""Which agencies must rule on a declaration, from a declarative routing table.

An agency is required when any of its conditions holds: ``always``, the transport mode is
in ``modes``, an item's HS code starts with one of ``hs_prefixes``, or a document of one of
the ``documents`` types is attached. The table's ``version`` travels in the submitted event
with the agencies, so the aggregator and auditors know which table decided.

Every version ever used stays in the tables directory (``routing_tables/<version>.json``
here, or ``ROUTING_TABLES_DIR``): changing the table means a new file, never an edit, so an
auditor recomputes each declaration's routing from the table it names
(:func:`table_of_version`). The intake routes with ``ROUTING_TABLE_VERSION``, by default the
newest version of the directory (versions are named ``routing-YYYY.MM[...]`` and sort by
date). Every agency the intake's table names must be registered (:mod:`singlewindow.registry`);
an auditor's old table may name an agency that has left since.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.intake.schema import DeclarationRequest
from singlewindow.events import AgencyCode, DeclarationSubmitted, DocumentType, TransportMode
from singlewindow.registry import AgencyRegistry, agency_registry

TABLES = Path(__file__).with_name("routing_tables")
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
    agencies: dict[AgencyCode, AgencyRule]  # in the order agencies are listed in events

    @model_validator(mode="after")
    def _sane(self) -> RoutingTable:
        if not any(rule.always for rule in self.agencies.values()):
            raise ValueError("at least one agency must always rule")
        return self


def tables_dir() -> Path:
    """Where the routing tables are: ``ROUTING_TABLES_DIR``, else this package's own."""
    return Path(os.environ.get("ROUTING_TABLES_DIR") or TABLES)


def current_version() -> str:
    """``ROUTING_TABLE_VERSION``, else the newest version in :func:`tables_dir`."""
    versions = sorted(path.stem for path in tables_dir().glob("*.json"))
    if not versions:
        raise LookupError(f"no routing table in {tables_dir()}")
    return os.environ.get("ROUTING_TABLE_VERSION") or versions[-1]


def load_table(path: Path | None = None, registry: AgencyRegistry | None = None) -> RoutingTable:
    """Read and check the table to route with (``path``, else the current version): pydantic
    ValidationError if it is malformed, ValueError if it names an unregistered agency."""
    version = None if path else current_version()
    path = path or tables_dir() / f"{version}.json"
    table = RoutingTable.model_validate_json(path.read_bytes())
    if version is not None and table.version != version:
        raise ValueError(f"{path} holds routing table {table.version!r}, not {version!r}")
    registry = registry or agency_registry()
    unknown = sorted(a for a in table.agencies if a not in registry)
    if unknown:
        raise ValueError(
            f"routing table {table.version} names agencies that are not registered: "
            f"{', '.join(unknown)} (registered: {', '.join(registry.codes)})"
        )
    return table


def table_of_version(version: str) -> RoutingTable:
    """The routing table of ``version`` as it was released; LookupError if there is none."""
    return _table_in(tables_dir(), version)


@cache
def _table_in(folder: Path, version: str) -> RoutingTable:
    path = folder / f"{version}.json"
    if not _VERSION.fullmatch(version) or not path.is_file():
        raise LookupError(f"no routing table {version[:64]!r}")
    table = RoutingTable.model_validate_json(path.read_bytes())
    if table.version != version:
        raise LookupError(f"{version}.json holds routing table {table.version!r}")
    return table


# the agency whose approval a change after release (放行后修改) needs: the only one asked
CHANGE_APPROVER = "customs"


def route_after_release(table: RoutingTable) -> tuple[tuple[str, ...], str]:
    """The agencies a change after release goes to, and the table's version: customs alone.
    The goods are out: the other agencies' controls were done on the version released, and
    only customs approves a change of a released declaration and corrects its duties
    (报关单修改和撤销管理办法; :mod:`services.aggregator.afterrelease`)."""
    return (CHANGE_APPROVER,), table.version


def route(
    declaration: DeclarationRequest | DeclarationSubmitted, table: RoutingTable
) -> tuple[tuple[str, ...], str]:
    """The required agencies in the table's order, and the table's version."""
    if isinstance(declaration, DeclarationSubmitted):
        mode = declaration.consignment.mode
    else:
        mode = declaration.transport.mode
    hs_codes = [item.hs_code for item in declaration.items]
    documents = {document.type for document in declaration.documents}
    agencies = tuple(
        agency for agency, rule in table.agencies.items() if rule.applies(mode, hs_codes, documents)
    )
    return agencies, table.version
