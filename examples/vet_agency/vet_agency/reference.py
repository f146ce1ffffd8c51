"""The veterinary authority's reference data, by version (see reference/<version>/README.md)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

RULES_VERSION = "vet-2026.12"
HERE = Path(__file__).with_name("reference")


@dataclass(frozen=True)
class Suspension:
    country: str
    hs_prefix: str
    since: date
    reason: str


@dataclass(frozen=True)
class VetReference:
    version: str
    categories: dict[str, tuple[str, ...]]  # MEAT / DAIRY -> HS prefixes
    establishments: frozenset[tuple[str, str, str]]  # (country, establishment, category)
    suspensions: tuple[Suspension, ...]
    fee_per_item: Decimal
    fee_per_tonne: Decimal

    def category(self, hs_code: str) -> str | None:
        """MEAT, DAIRY or None (not this authority's concern)."""
        return next((c for c, p in self.categories.items() if hs_code.startswith(p)), None)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_reference(version: str = RULES_VERSION) -> VetReference:
    """The reference of ``version``; LookupError for a version this package does not hold."""
    folder = HERE / version
    if not (folder / "parameters.json").is_file():
        raise LookupError(f"no veterinary reference {version!r}")
    parameters = json.loads((folder / "parameters.json").read_text(encoding="utf-8"))
    if parameters["version"] != version:
        raise LookupError(f"{folder} holds {parameters['version']!r}")
    return VetReference(
        version=version,
        categories={k: tuple(v) for k, v in parameters["categories"].items()},
        establishments=frozenset(
            (r["country"], r["establishment"], r["category"])
            for r in _rows(folder / "establishments.csv")
        ),
        suspensions=tuple(
            Suspension(r["country"], r["hs_prefix"], date.fromisoformat(r["since"]), r["reason"])
            for r in _rows(folder / "suspended_origins.csv")
        ),
        fee_per_item=Decimal(parameters["inspection_fee_per_item"]),
        fee_per_tonne=Decimal(parameters["inspection_fee_per_tonne"]),
    )
