"""Verification of the general guarantees' ledgers from ``payments.confirmed`` alone (pure).

Every draw on a general guarantee (``GENERAL_GUARANTEE``) and every consolidated repayment
(``CONSOLIDATED_PAYMENT``) is a signed ledger entry: the guarantee, its amount, the entry's
sequence and the balance after. The topic is keyed by declaration, so a guarantee's entries
are spread over partitions; the auditor puts them back in ledger-sequence order and folds
them, from the guarantee's amount:

- *ledger gap*: a sequence number missing (the bank recorded a draw, or a repayment, and
  never published it: a debit nobody can see) -- after a gap the fold takes up the next
  entry's balance;
- *ledger sequence repeated*: two different entries with the same number;
- *draw over the balance*: a draw larger than the balance before it (it would be negative);
- *ledger balance does not follow*: the balance after an entry is not the balance before
  it, less the draw or plus the repayment; or a guarantee's amount differs between entries;
- *repayment of a notice never drawn*, *notice repaid twice*, a repayment whose amount is
  not what was drawn (*repayment differs from its draw*) or whose value date is before the
  draw's (*repayment before its draw*);
- *wrong late interest on a repayment*: not 0.05 % a day of the drawn amount from the day
  after the fifth working day of the month after the draw's to the repayment's value date
  (China time), to the fen, none under 50 CNY (``singlewindow.latepayment``);
- *general guarantee draw not in the ledger*: a release settled by GENERAL_GUARANTEE whose
  payment is no draw on the topic.

A redelivered entry (the same payment id) counts once; one under the same payment id that
says something else is a *ledger entry redelivered changed*.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from singlewindow.events import (
    LEDGER_KINDS,
    ClearanceResult,
    PaymentConfirmed,
    PaymentKind,
)
from singlewindow.latepayment import consolidated_due_by, days_late, late_interest

Add = Callable[[str, str, str], None]  # (kind, declaration id, detail): Report.add


def ledger_entries(
    payments: Iterable[PaymentConfirmed], add: Add | None = None
) -> dict[str, list[PaymentConfirmed]]:
    """Each guarantee's entries, once each, in ledger-sequence order (then topic order); an
    entry under the payment id of an earlier one that says something else is reported
    through ``add`` (a redelivery, the bank's retry or its sweep, is the same entry)."""
    once: dict[str, PaymentConfirmed] = {}
    for p in payments:
        if p.kind in LEDGER_KINDS:
            first = once.setdefault(p.payment_id, p)
            if add is not None and first is not p and first.unsigned() != p.unsigned():
                add(
                    "ledger entry redelivered changed",
                    p.declaration_id,
                    f"payment {p.payment_id} is published again with other figures: entry "
                    f"{p.ledger_sequence} of guarantee {p.guarantee_id}, balance after "
                    f"{p.balance_after}, first entry {first.ledger_sequence} of "
                    f"{first.guarantee_id}, balance after {first.balance_after}",
                )
    by_guarantee: defaultdict[str, list[PaymentConfirmed]] = defaultdict(list)
    for entry in once.values():
        assert entry.guarantee_id is not None
        by_guarantee[entry.guarantee_id].append(entry)
    return {
        g: sorted(entries, key=lambda e: e.ledger_sequence or 0)
        for g, entries in sorted(by_guarantee.items())
    }


def verify_ledgers(
    add: Add,
    payments: Iterable[PaymentConfirmed],
    results: Mapping[str, list[ClearanceResult]],
) -> int:
    """Fold every guarantee's ledger; report what does not add up through ``add``. Returns
    the number of ledger entries checked."""
    ledgers = ledger_entries(payments, add)
    drawn: set[str] = set()
    for guarantee_id, entries in ledgers.items():
        drawn |= _fold(add, guarantee_id, entries)
    for declaration_id, steps in sorted(results.items()):
        for result in steps:
            settled = result.settlement
            if settled is None or settled.kind is not PaymentKind.GENERAL_GUARANTEE:
                continue
            for payment_id in settled.payment_ids:
                if payment_id not in drawn:
                    add(
                        "general guarantee draw not in the ledger",
                        declaration_id,
                        f"step {result.sequence} is settled by general guarantee draw "
                        f"{payment_id}, which no guarantee's ledger holds",
                    )
    return sum(len(e) for e in ledgers.values())


def _fold(add: Add, guarantee_id: str, entries: list[PaymentConfirmed]) -> set[str]:
    """Fold one guarantee's entries (in sequence order); the payment ids of its draws."""
    first = entries[0]
    assert first.guarantee_amount is not None
    amount = first.guarantee_amount
    balance: Decimal | None = amount
    expected = 1
    draws: dict[str, PaymentConfirmed] = {}
    repaid: set[str] = set()
    for entry in entries:
        sequence, after = entry.ledger_sequence, entry.balance_after
        assert sequence is not None and after is not None
        where = f"guarantee {guarantee_id}, entry {sequence}"
        if entry.guarantee_amount != amount:
            add(
                "ledger balance does not follow",
                entry.declaration_id,
                f"{where} gives the guarantee's amount as {entry.guarantee_amount}, "
                f"entry {first.ledger_sequence} as {amount}",
            )
        if sequence < expected:
            add(
                "ledger sequence repeated",
                entry.declaration_id,
                f"{where}: payment {entry.payment_id} has the number of an earlier entry",
            )
            continue
        if sequence > expected:
            missing = f"{expected}" if sequence == expected + 1 else f"{expected}-{sequence - 1}"
            add(
                "ledger gap",
                entry.declaration_id,
                f"guarantee {guarantee_id}: entries {missing} were never published "
                f"(recorded at the bank, unseen on the topic)",
            )
            balance = None  # unknown until this entry says it
        expected = sequence + 1
        if entry.kind is PaymentKind.GENERAL_GUARANTEE:
            draws.setdefault(entry.notice_id, entry)
            change = -entry.amount
            if balance is not None and entry.amount > balance:
                add(
                    "draw over the balance",
                    entry.declaration_id,
                    f"{where} draws {entry.amount} CNY with {balance} CNY left",
                )
        else:
            change = entry.amount
            draw = draws.get(entry.notice_id)
            if draw is None:
                add(
                    "repayment of a notice never drawn",
                    entry.declaration_id,
                    f"{where} repays notice {entry.notice_id}, never drawn on the guarantee",
                )
            elif entry.notice_id in repaid:
                add(
                    "notice repaid twice",
                    entry.declaration_id,
                    f"{where} repays notice {entry.notice_id} again",
                )
            else:
                repaid.add(entry.notice_id)
                _check_repayment(add, where, draw, entry)
        if balance is not None and balance + change != after:
            add(
                "ledger balance does not follow",
                entry.declaration_id,
                f"{where}: {balance} {'+' if change > 0 else '-'} {abs(change)} is "
                f"{balance + change} CNY, not the {after} recorded",
            )
        balance = after
    return {d.payment_id for d in draws.values()}


def _check_repayment(add: Add, where: str, draw: PaymentConfirmed, entry: PaymentConfirmed) -> None:
    if entry.amount != draw.amount:
        add(
            "repayment differs from its draw",
            entry.declaration_id,
            f"{where} repays {entry.amount} CNY of notice {entry.notice_id}, "
            f"drawn for {draw.amount}",
        )
    if entry.paid_at < draw.paid_at:
        add(
            "repayment before its draw",
            entry.declaration_id,
            f"{where} repays notice {entry.notice_id} at {entry.paid_at.isoformat()}, before "
            f"its draw at {draw.paid_at.isoformat()}",
        )
    due = consolidated_due_by(draw.paid_at)
    days = days_late(due, entry.paid_at)
    owed = late_interest(draw.amount, days)
    if entry.late_interest != owed:
        add(
            "wrong late interest on a repayment",
            entry.declaration_id,
            f"{where}: {draw.amount} CNY due by {due}, repaid {days} day(s) late, owes "
            f"{owed} CNY of late interest, not {entry.late_interest}",
        )
