"""Tax rates as the tariff writes them, and the choice of the duty rate: pure.

A rate is ad valorem (``10%``), specific (``1.52/LTR``: CNY per unit of a UN/ECE Rec 20
code) or compound (``56%+3/MIL``: both added). The customs duty rate of an import is chosen
among the tariff's columns by origin (Tariff Law of the PRC, 2024: the rules on applying
rates; they restate those of the former Import and Export Duties Regulations):

1. goods originating in a country whose goods do not receive MFN treatment: the **general**
   rate (普通税率), and never a provisional rate;
2. otherwise the **MFN** rate (最惠国税率), replaced by the **provisional** rate (暂定税率)
   where the tariff sets one, whether lower or not;
3. goods with a valid claim of origin under a trade agreement (a conventional agreement
   covering the country of origin, a certificate, and a conventional rate for the line):
   the **conventional** rate (协定税率) or, when lower, the rate of rule 2 (有暂定税率的:
   从低适用) -- "lower" meaning the smaller duty on this item, so that ad valorem, specific
   and compound rates compare;
4. the same for a **special preferential** arrangement (特惠税率) with least-developed
   countries.

A claim that cannot be honoured (unknown agreement, origin outside it, no conventional rate for
the line) leaves rule 2 in force; the verdict says why (:func:`choose_duty_rate` returns the
note).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

_PERCENT = re.compile(r"(?P<pct>[0-9]{1,4}(?:\.[0-9]{1,4})?)%")
_SPECIFIC = re.compile(r"(?P<amount>[0-9]{1,12}(?:\.[0-9]{1,4})?)/(?P<unit>[A-Z0-9]{2,3})")
HUNDRED = Decimal(100)


class Basis(StrEnum):
    MFN = "MFN"
    PROVISIONAL = "PROVISIONAL"
    CONVENTIONAL = "CONVENTIONAL"
    SPECIAL = "SPECIAL"
    GENERAL = "GENERAL"


@dataclass(frozen=True, slots=True)
class Rate:
    """An ad valorem part (a fraction: 0.1 for 10 %), a specific part (CNY per ``unit``), or
    both (compound)."""

    ad_valorem: Decimal | None = None
    per_unit: Decimal | None = None
    unit: str | None = None

    @classmethod
    def parse(cls, cell: str) -> Rate:
        """``10%``, ``1.52/LTR`` or ``56%+3/MIL``; ValueError for anything else."""
        parts = cell.split("+")
        if len(parts) > 2:
            raise ValueError(f"{cell!r} is not a rate (10%, 1.52/LTR or 56%+3/MIL)")
        percent = _PERCENT.fullmatch(parts[0])
        specific = _SPECIFIC.fullmatch(parts[-1]) if len(parts) == 2 or not percent else None
        if not (percent or specific) or (len(parts) == 2 and not (percent and specific)):
            raise ValueError(f"{cell!r} is not a rate (10%, 1.52/LTR or 56%+3/MIL)")
        return cls(
            ad_valorem=Decimal(percent["pct"]) / HUNDRED if percent else None,
            per_unit=Decimal(specific["amount"]) if specific else None,
            unit=specific["unit"] if specific else None,
        )

    @classmethod
    def ad_valorem_of(cls, fraction: Decimal) -> Rate:
        return cls(ad_valorem=fraction)

    def __str__(self) -> str:
        parts = []
        if self.ad_valorem is not None:
            parts.append(f"{(self.ad_valorem * HUNDRED).normalize():f}%")
        if self.per_unit is not None:
            parts.append(f"{self.per_unit.normalize():f}/{self.unit}")
        return "+".join(parts)


@dataclass(frozen=True, slots=True)
class Agreement:
    """A trade agreement with preferential rates, and the countries whose goods it covers."""

    code: str
    kind: Basis  # CONVENTIONAL or SPECIAL
    name: str
    countries: frozenset[str]


@dataclass(frozen=True, slots=True)
class Chosen:
    """The duty rate that applies to an item, why, and a note when a claim was not honoured."""

    rate: Rate
    basis: str  # MFN, PROVISIONAL, GENERAL, CONVENTIONAL:<agreement>, SPECIAL:<agreement>
    note: str | None = None


def choose_duty_rate(
    *,
    mfn: Rate,
    provisional: Rate | None,
    general: Rate,
    origin: str,
    general_origins: frozenset[str],
    claim: str | None,
    agreements: dict[str, Agreement],
    preferential: Callable[[str], Rate | None],
    duty_of: Callable[[Rate], Decimal],
) -> Chosen:
    """The duty rate of an item of ``origin`` (rules 1-4 above).

    ``claim`` is the agreement code claimed (None: no claim); ``preferential(agreement)`` the
    line's rate under an agreement (None: the agreement sets none for it); ``duty_of(rate)``
    the duty a rate gives on this item, to compare rates of different kinds.
    """
    if origin in general_origins:
        return Chosen(general, Basis.GENERAL)
    normal = Chosen(provisional, Basis.PROVISIONAL) if provisional else Chosen(mfn, Basis.MFN)
    if claim is None:
        return normal
    agreement = agreements.get(claim)
    refused = None
    if agreement is None:
        refused = f"no agreement {claim!r} in the tariff"
    elif origin not in agreement.countries:
        refused = f"{agreement.name} does not cover goods originating in {origin}"
    else:
        rate = preferential(agreement.code)
        if rate is None:
            refused = f"{agreement.name} sets no rate for this tariff line"
        elif duty_of(rate) <= duty_of(normal.rate):
            return Chosen(rate, f"{agreement.kind}:{agreement.code}")
        else:
            return Chosen(
                normal.rate,
                normal.basis,
                f"the {normal.basis} rate {normal.rate} gives less duty than the "
                f"{agreement.code} rate {rate}",
            )
    return Chosen(normal.rate, normal.basis, f"origin claim {claim} not honoured: {refused}")
