"""The general guarantees (总担保) the bank has issued: an input, read strictly at the start.

``BANK_GUARANTEES_FILE`` names a JSON file::

    {"guarantees": [
        {"guarantee_id": "G-2026-0001", "holder": "91350100M000100Y43",
         "amount": "5000000.00", "valid_from": "2026-01-01", "valid_until": "2027-12-31",
         "consolidated": true}
    ]}

- ``guarantee_id``: 1-64 characters, no control characters, unique in the file;
- ``holder``: the USCC of the authorised trader the guarantee is issued to (check digit
  checked): only a token acting for it may draw on it or repay it;
- ``amount``: a decimal string, CNY, > 0 with at most 2 decimals: the balance before any draw;
- ``valid_from``, ``valid_until``: days in China time, both included: a draw's value date must
  fall within them (a repayment may come after);
- ``consolidated`` (false by default): the holder pays the duties drawn in a month together
  by the fifth working day of the next month (汇总征税, authorised traders only: the bank
  flags the guarantees of those who qualify).

Unknown fields, a duplicate id, a period that ends before it starts: the bank refuses to
start, naming the file. The figures are the issue's: once a guarantee is drawn on, its ledger
(``services.bank.ledger``) keeps the amount it was issued for; a changed amount is a new
guarantee, with a new id.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from services.intake.schema import Money, Reference, Uscc
from singlewindow.events import MAX_ASSESSED

GuaranteeAmount = Annotated[Money, Field(gt=0, lt=MAX_ASSESSED)]
MAX_GUARANTEES = 10_000


class Guarantee(BaseModel):
    """One general guarantee as the bank issued it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    guarantee_id: Reference
    holder: Uscc
    amount: GuaranteeAmount
    valid_from: date
    valid_until: date
    consolidated: StrictBool = False

    @model_validator(mode="after")
    def _period(self) -> Self:
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day <= self.valid_until


class GuaranteeFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    guarantees: tuple[Guarantee, ...] = Field(max_length=MAX_GUARANTEES)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [g.guarantee_id for g in self.guarantees]
        if len(set(ids)) != len(ids):
            raise ValueError("a guarantee_id appears twice")
        return self


class GuaranteeFileError(ValueError):
    """The guarantees file is missing, not JSON, or not valid (the bank refuses to start)."""


def parse_guarantees(text: str, source: str = "BANK_GUARANTEES_FILE") -> dict[str, Guarantee]:
    """The guarantees of a file's text, by id; GuaranteeFileError naming ``source``."""
    try:
        parsed = GuaranteeFile.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise GuaranteeFileError(f"{source}: not JSON: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise GuaranteeFileError(f"{source}: {problems}") from None
    return {g.guarantee_id: g for g in parsed.guarantees}


def load_guarantees(path: Path | None) -> dict[str, Guarantee]:
    """The guarantees of ``path`` (none without one: the bank then takes no draws)."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GuaranteeFileError(f"BANK_GUARANTEES_FILE {path}: {exc.strerror}") from None
    return parse_guarantees(text, f"BANK_GUARANTEES_FILE {path}")
