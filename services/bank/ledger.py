"""A general guarantee's ledger: may this draw pass, and what a repayment restores (pure).

The bank is the guarantor, so the ledger of each guarantee's balance is the bank's: a chain
of snapshots in its database (``services.bank.store``), each change recorded only if no other
change followed the ledger it was decided on. The rules:

- a **draw** (``GENERAL_GUARANTEE``) of ``amount`` on a notice passes when the guarantee is
  the payer's, valid on the draw's value date (China time), and its balance is at least the
  amount; the balance falls by it, and the entry takes the next ledger sequence (1, 2, ...).
  A notice is drawn on once per guarantee: a second draw on it is refused (another payment
  id), or is the first one's retry (the same payment id: the recorded draw, published
  again, nothing drawn twice). A draw over the balance changes nothing (``Exhausted``);
- a **repayment** (``CONSOLIDATED_PAYMENT``, 汇总征税) pays back the draws on some notices:
  each notice must have been drawn on this guarantee, not yet repaid, and at or before the
  repayment's value date; each repaid notice
  is one entry, in the order asked, restoring its drawn amount to the balance; with it, the
  late interest on that amount (0.05 % a day from the day after the due date, the fifth
  working day of the month after the draw's, to the value date of the repayment, both
  included; to the fen, half up; none under 50 CNY: ``singlewindow.latepayment``). A retry
  (the same payment ids) gives the recorded entries again.

Money is kept in fen (integers) in the store, so that the database adds exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal

from singlewindow.latepayment import (
    china_day,
    consolidated_due_by,
    days_late,
    late_interest,
)

FEN = Decimal("0.01")


def to_fen(amount: Decimal) -> int:
    """An amount in CNY (2 decimals at most) as whole fen."""
    fen = amount / FEN
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount} has more than 2 decimals")
    return int(fen)


def from_fen(fen: int) -> Decimal:
    return (Decimal(fen) * FEN).quantize(FEN)


@dataclass(frozen=True)
class Repayment:
    """A draw repaid in the consolidated payment: its own entry in the ledger."""

    payment_id: str
    paid_at: datetime
    sequence: int
    balance_after: Decimal
    due_by: date
    late_interest: Decimal
    published: bool = False  # Kafka acknowledged its confirmation (at least once)


@dataclass(frozen=True)
class Draw:
    """A draw on the guarantee for one notice, and its repayment once repaid."""

    payment_id: str
    declaration_id: str
    notice_id: str
    payer: str
    amount: Decimal
    paid_at: datetime
    sequence: int
    balance_after: Decimal
    repayment: Repayment | None = None
    published: bool = False  # Kafka acknowledged its confirmation (at least once)


@dataclass(frozen=True)
class Ledger:
    """A guarantee's state in the bank's books: the amount it was issued for, its balance,
    the last ledger sequence, and its draws by notice id."""

    guarantee_id: str
    amount: Decimal
    balance: Decimal
    sequence: int = 0
    draws: Mapping[str, Draw] = field(default_factory=dict)

    @classmethod
    def issued(cls, guarantee_id: str, amount: Decimal) -> Ledger:
        return cls(guarantee_id, amount, amount)


@dataclass(frozen=True)
class DrawAsked:
    """A draw the bank was asked for (its payment id derived from the Idempotency-Key)."""

    payment_id: str
    declaration_id: str
    notice_id: str
    payer: str
    amount: Decimal
    paid_at: datetime


# -- the decisions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Drawn:
    """The draw passes: record it (balance and sequence as in ``draw``)."""

    draw: Draw


@dataclass(frozen=True)
class AlreadyDrawn:
    """A retry of a recorded draw: publish it again, change nothing."""

    draw: Draw


@dataclass(frozen=True)
class Exhausted:
    """The balance is under the amount: nothing changes."""

    balance: Decimal


@dataclass(frozen=True)
class NoticeDrawn:
    """The notice was drawn on this guarantee by another payment."""

    payment_id: str


DrawDecision = Drawn | AlreadyDrawn | Exhausted | NoticeDrawn


def decide_draw(ledger: Ledger, asked: DrawAsked) -> DrawDecision:
    """May ``asked`` be drawn on ``ledger`` (the guarantee's holder and validity are checked
    before: :meth:`services.bank.guarantees.Guarantee.valid_on`)?"""
    recorded = ledger.draws.get(asked.notice_id)
    if recorded is not None:
        if recorded.payment_id == asked.payment_id:
            return AlreadyDrawn(recorded)
        return NoticeDrawn(recorded.payment_id)
    if asked.amount > ledger.balance:
        return Exhausted(ledger.balance)
    balance = ledger.balance - asked.amount
    return Drawn(
        Draw(
            payment_id=asked.payment_id,
            declaration_id=asked.declaration_id,
            notice_id=asked.notice_id,
            payer=asked.payer,
            amount=asked.amount,
            paid_at=asked.paid_at,
            sequence=ledger.sequence + 1,
            balance_after=balance,
        )
    )


def after_draw(ledger: Ledger, draw: Draw) -> Ledger:
    """The ledger once ``draw`` is recorded (what the store's update does)."""
    return replace(
        ledger,
        balance=draw.balance_after,
        sequence=draw.sequence,
        draws={**ledger.draws, draw.notice_id: draw},
    )


@dataclass(frozen=True)
class Repaid:
    """The repayment passes: record these draws' repayments (in the order asked)."""

    draws: tuple[Draw, ...]


@dataclass(frozen=True)
class AlreadyRepaid:
    """A retry of a recorded repayment: publish these again, change nothing."""

    draws: tuple[Draw, ...]


@dataclass(frozen=True)
class NotDrawn:
    """A notice never drawn on this guarantee."""

    notice_id: str


@dataclass(frozen=True)
class RepaidBefore:
    """A notice whose draw another payment repaid already."""

    notice_id: str


@dataclass(frozen=True)
class BeforeDrawn:
    """A repayment dated before the draw it would repay (a draw's value date may be a few
    minutes ahead of the bank's clock, a repayment's an hour behind)."""

    notice_id: str


RepaymentDecision = Repaid | AlreadyRepaid | NotDrawn | RepaidBefore | BeforeDrawn


def decide_repayment(
    ledger: Ledger,
    notices: Sequence[str],
    payment_ids: Sequence[str],
    paid_at: datetime,
) -> RepaymentDecision:
    """May the draws on ``notices`` be repaid at ``paid_at``, with ``payment_ids`` (one per
    notice, derived from the Idempotency-Key)? Each restores its drawn amount, in order."""
    draws = []
    for notice_id in notices:
        draw = ledger.draws.get(notice_id)
        if draw is None:
            return NotDrawn(notice_id)
        draws.append(draw)
    ids = dict(zip(notices, payment_ids, strict=True))
    if all(d.repayment is not None and d.repayment.payment_id == ids[d.notice_id] for d in draws):
        return AlreadyRepaid(tuple(draws))
    for draw in draws:
        if draw.repayment is not None:
            return RepaidBefore(draw.notice_id)
    for draw in draws:
        if paid_at < draw.paid_at:
            return BeforeDrawn(draw.notice_id)
    balance, sequence, repaid = ledger.balance, ledger.sequence, []
    for draw in draws:
        balance, sequence = balance + draw.amount, sequence + 1
        due = consolidated_due_by(draw.paid_at)
        repayment = Repayment(
            payment_id=ids[draw.notice_id],
            paid_at=paid_at,
            sequence=sequence,
            balance_after=balance,
            due_by=due,
            late_interest=late_interest(draw.amount, days_late(due, paid_at)),
        )
        repaid.append(replace(draw, repayment=repayment))
    return Repaid(tuple(repaid))


def after_repayment(ledger: Ledger, draws: Sequence[Draw]) -> Ledger:
    """The ledger once ``draws``' repayments are recorded."""
    last = draws[-1].repayment
    assert last is not None
    return replace(
        ledger,
        balance=last.balance_after,
        sequence=last.sequence,
        draws={**ledger.draws, **{d.notice_id: d for d in draws}},
    )


def unpublished(book: Ledger) -> list[tuple[int, Draw, bool]]:
    """The entries recorded and never acknowledged by Kafka, in ledger order: (sequence, the
    draw, whether the entry is its repayment)."""
    pending = []
    for draw in book.draws.values():
        if not draw.published:
            pending.append((draw.sequence, draw, False))
        if draw.repayment is not None and not draw.repayment.published:
            pending.append((draw.repayment.sequence, draw, True))
    return sorted(pending, key=lambda p: p[0])


def drawn_on(guarantee_valid_on: Callable[[date], bool], paid_at: datetime) -> bool:
    """Whether a draw's value date (China time) falls within the guarantee's validity."""
    return guarantee_valid_on(china_day(paid_at))
