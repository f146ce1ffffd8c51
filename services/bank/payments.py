"""The bank's use case: a payment on a notice, confirmed on Kafka.

:class:`PaymentRequest` is the body of ``POST /v1/payments`` (unknown fields refused):

- ``declaration_id``, ``notice_id``: 1-64 characters, no control characters (the bank does
  not know notices: the aggregator decides what the payment settles);
- ``amount``: a decimal *string* > 0 with at most 2 decimals (``"1234.50"``), below 10^14;
- ``kind``: ``PAYMENT`` (default), ``BANK_GUARANTEE`` or ``GENERAL_GUARANTEE`` (a draw on a
  general guarantee, 总担保, with ``guarantee_id``: see below);
- ``guarantee_id``: with ``GENERAL_GUARANTEE`` only (1-64 characters);
- ``payer``: the USCC that pays; the token must act for it (else 403);
- ``paid_at`` (optional, default: now): the value date, an ISO-8601 time *with* its time
  zone, between 2000 and 2199, at most ``paid_at_slack`` in the future.

:meth:`Bank.pay` publishes the signed ``PaymentConfirmed`` on ``payments.confirmed`` (keyed by
the declaration id) and returns its payment id only once Kafka acknowledged it. The id is
``PAY-`` and 32 upper-case hex digits: random, or, with an Idempotency-Key, HMAC-derived from
(subject, key) under the bank's id secret, so that a retry publishes the same payment id and
the join counts it once. Nothing is recorded before the publish: a refused or failed request
leaves no trace, and its retry is a fresh attempt.

A draw on a general guarantee is the exception: the bank is the guarantor, and the balance
is its own (``services.bank.ledger``, kept in its database by ``services.bank.store``). It
needs an Idempotency-Key (422 ``idempotency-key-required`` without): the draw is recorded
*before* the publish, so a 503 after the debit must be retried with the same key, which
finds the recorded draw and publishes it again; without a key the retry would be another
payment id, and the balance would be drawn twice. The payer must hold the guarantee (403
``not-your-guarantee``, for an unknown id alike: no oracle), the value date fall within its
validity (422 ``guarantee-not-valid``), the balance cover the amount (409
``guarantee-exhausted``, nothing changes), and the notice have no other draw on it (409
``notice-drawn``). :meth:`Bank.repay` takes the consolidated repayment (汇总征税) of
drawn notices (``POST /v1/guarantees/{id}/repayments``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Protocol, Self, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.bank import ledger
from services.bank.guarantees import Guarantee
from services.bank.ledger import Ledger
from services.bank.store import GuaranteeStore, InMemoryGuaranteeStore, LedgerUnavailable
from services.intake.auth import Principal, Verifier
from services.intake.errors import FieldError, Problem, field_errors
from services.intake.ids import KeyedIds
from services.intake.schema import Money, Reference, Uscc
from services.intake.service import Refused, Unavailable, authenticate, utcnow
from singlewindow.events import (
    MAX_ASSESSED,
    SECURITY_NOTICE_PREFIX,
    Event,
    PaymentConfirmed,
    PaymentKind,
    UtcMillis,
)
from singlewindow.latepayment import china_day, consolidated_due_by
from singlewindow.topics import PAYMENTS_CONFIRMED

log = logging.getLogger(__name__)
PAYMENT_ID_PREFIX = "PAY-"
MAX_REPAID = 100  # notices in one consolidated repayment
M = TypeVar("M", bound=BaseModel)


def _iso_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError('must be an ISO-8601 time with its zone, e.g. "2026-12-01T10:00:00+08:00"')
    return value


Amount = Annotated[Money, Field(gt=0, lt=MAX_ASSESSED)]
ValueDate = Annotated[UtcMillis, BeforeValidator(_iso_text)]


# how long before the bank's clock a value date may be: a confirmation is sent within the
# hour a payment is made; earlier, a payer could date it before the due date
BACKDATED = timedelta(hours=1)


BACKDATED_MESSAGE = (
    "must not be backdated: a payment is confirmed within the hour it is made "
    "(a value date before its notice's due date would escape late interest)"
)


def about_now(
    value: datetime | None, info: ValidationInfo, ledger_entry: bool = False
) -> datetime | None:
    """A value date neither in the future nor backdated (bounds in the validation context).
    A ledger entry's (a draw or a repayment) is bounded back only when it is recorded: its
    retry, hours later, publishes the recorded entry again (:meth:`Bank.backdated`)."""
    context = info.context or {}
    latest, earliest = context.get("latest"), context.get("earliest")
    if value is not None and latest is not None and value > latest:
        raise ValueError("must not be in the future: it is the date the payment was made")
    if value is not None and earliest is not None and value < earliest and not ledger_entry:
        raise ValueError(BACKDATED_MESSAGE)
    return value


class PaymentRequest(BaseModel):
    """What a payer tells the bank it paid (or guaranteed), on which notice, when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    declaration_id: Reference
    notice_id: Reference
    amount: Amount
    kind: PaymentKind = PaymentKind.PAYMENT
    guarantee_id: Reference | None = None
    payer: Uscc
    paid_at: ValueDate | None = None

    @model_validator(mode="after")
    def _guarantee(self) -> Self:
        if self.kind is PaymentKind.CONSOLIDATED_PAYMENT:
            raise ValueError(
                "a consolidated payment repays a general guarantee: "
                "POST /v1/guarantees/{guarantee_id}/repayments"
            )
        if (self.kind is PaymentKind.GENERAL_GUARANTEE) != (self.guarantee_id is not None):
            raise ValueError("guarantee_id is given with kind GENERAL_GUARANTEE, and only then")
        secured = self.kind is PaymentKind.BANK_GUARANTEE
        if self.notice_id.startswith(SECURITY_NOTICE_PREFIX) and not secured:
            # a security notice (a price consultation, 价格磋商): only a bank guarantee
            # releases the goods; cash or a draw would be taken for nothing
            raise ValueError(
                f"notice {self.notice_id} asks for a security: only a BANK_GUARANTEE "
                "secures it (pay the duties once the value is agreed)"
            )
        return self

    @field_validator("paid_at")
    @classmethod
    def _about_now(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        return about_now(value, info, info.data.get("kind") is PaymentKind.GENERAL_GUARANTEE)

    def identity(self) -> dict[str, object]:
        """The body as its payment id is derived from (``guarantee_id`` only when given, so
        that ids derived before it existed stay the same)."""
        body = self.model_dump(mode="json")
        if body["guarantee_id"] is None:
            del body["guarantee_id"]
        return body

    def to_event(self, payment_id: str, now: datetime) -> PaymentConfirmed:
        if self.kind is PaymentKind.GENERAL_GUARANTEE:
            raise ValueError("a draw's event is its ledger entry's: draw_event")
        return PaymentConfirmed(
            declaration_id=self.declaration_id,
            payment_id=payment_id,
            notice_id=self.notice_id,
            kind=self.kind,
            amount=self.amount,
            paid_at=self.paid_at or now,
            payer=self.payer,
        )


class PaymentAccepted(BaseModel):
    """The answer of a confirmed payment: its id, once Kafka has it."""

    payment_id: str
    declaration_id: str
    notice_id: str


class Producer(Protocol):
    async def publish(self, topic: str, event: Event, parent_trace: bytes | None = None) -> None:
        """Return once Kafka acknowledged the signed event; raise otherwise."""
        ...


class NotYourPayer(Refused):
    """The principal does not act for the payer ``uscc``."""

    def __init__(self, uscc: str) -> None:
        super().__init__(f"this token may not pay for {uscc}")
        self.uscc = uscc


class KeyRequired(Refused):
    """A draw or a repayment without an Idempotency-Key."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"a {what} needs an Idempotency-Key: the guarantee's balance changes before the "
            "confirmation is published, and only a retry with the same key publishes that "
            "change again instead of drawing twice"
        )


class NotYourGuarantee(Refused):
    """The guarantee is unknown, or not held by the payer (one answer: no oracle)."""

    def __init__(self, guarantee_id: str, uscc: str) -> None:
        super().__init__(f"{uscc} holds no general guarantee {guarantee_id}")


class GuaranteeNotValid(Refused):
    def __init__(self, guarantee: Guarantee, day: date) -> None:
        super().__init__(
            f"guarantee {guarantee.guarantee_id} is valid from {guarantee.valid_from} to "
            f"{guarantee.valid_until}, not on {day} (the value date, China time)"
        )


class GuaranteeExhausted(Refused):
    def __init__(self, guarantee_id: str, balance: Decimal, amount: Decimal) -> None:
        super().__init__(
            f"guarantee {guarantee_id} has {balance} CNY left, under the {amount} CNY asked"
        )
        self.balance = balance


class NoticeDrawn(Refused):
    def __init__(self, guarantee_id: str, notice_id: str) -> None:
        super().__init__(f"notice {notice_id} is drawn on guarantee {guarantee_id} already")


class NotConsolidated(Refused):
    def __init__(self, guarantee_id: str) -> None:
        super().__init__(f"guarantee {guarantee_id} is not under consolidated payment (汇总征税)")


class NoticeNotDrawn(Refused):
    def __init__(self, guarantee_id: str, notice_id: str) -> None:
        super().__init__(f"notice {notice_id} was never drawn on guarantee {guarantee_id}")


class NoticeRepaid(Refused):
    def __init__(self, guarantee_id: str, notice_id: str) -> None:
        super().__init__(f"the draw of notice {notice_id} on {guarantee_id} is repaid already")


class RepaidBeforeDrawn(Refused):
    def __init__(self, guarantee_id: str, notice_id: str) -> None:
        super().__init__(
            f"the repayment is dated before the draw of notice {notice_id} on {guarantee_id}"
        )


class Bank:
    """The bank's use cases over its producer (``singlewindow.kafka.producer.EventProducer``
    with the bank's signing key). ``clock`` stamps payments without a value date and bounds
    the value dates given; ``paid_at_slack`` is how far ahead of it one may be.
    ``guarantees`` are the general guarantees it issued (``services.bank.guarantees``), and
    ``store`` keeps their ledgers (``services.bank.store``)."""

    def __init__(
        self,
        producer: Producer,
        *,
        verifier: Verifier,
        id_secret: bytes,
        clock: Callable[[], datetime] = utcnow,
        paid_at_slack: timedelta = timedelta(minutes=5),
        max_body_bytes: int = 16 * 1024,
        max_json_depth: int = 8,
        retry_after: int = 5,
        guarantees: Mapping[str, Guarantee] | None = None,
        store: GuaranteeStore | None = None,
    ) -> None:
        self.producer, self.verifier, self.clock = producer, verifier, clock
        self.guarantees = dict(guarantees or {})
        self.store: GuaranteeStore = store if store is not None else InMemoryGuaranteeStore()
        self.keyed_ids = KeyedIds(id_secret)
        self.paid_at_slack = paid_at_slack
        self.max_body_bytes, self.max_json_depth = max_body_bytes, max_json_depth
        self.retry_after = retry_after

    async def authenticate(self, token: str | None) -> Principal:
        """The verified principal of a bearer token (Unauthenticated, Unavailable)."""
        return await authenticate(self.verifier, token)

    def parse(self, data: object) -> PaymentRequest:
        """Validate a parsed JSON body; a Problem 422 names every bad field."""
        return self._parse(PaymentRequest, data, "payment")

    def parse_repayment(self, data: object) -> RepaymentRequest:
        return self._parse(RepaymentRequest, data, "repayment")

    def _parse(self, model: type[M], data: object, what: str) -> M:
        try:
            return model.model_validate(
                data,
                context={
                    "latest": self.clock() + self.paid_at_slack,
                    "earliest": self.clock() - BACKDATED,
                },
            )
        except ValidationError as exc:
            errors = field_errors(exc.errors(include_url=False, include_input=False))
            detail = f"the {what} has {len(errors)} invalid field(s)"
            raise Problem(422, detail, kind=f"invalid-{what}", errors=errors) from None

    def payment_id(self, subject: str, key: str | None, payment: PaymentRequest) -> str:
        """Random without a key; with one, the same for every request of the subject's key
        with the same body: a key reused for another payment is another payment."""
        return self.keyed_ids.request_id(PAYMENT_ID_PREFIX, subject, key, payment.identity())

    async def pay(self, principal: Principal, payment: PaymentRequest, key: str | None) -> str:
        """Publish the payment and return its id, once Kafka acknowledged it.

        Raises NotYourPayer before anything is published, Unavailable when Kafka does not
        acknowledge (nothing is recorded: the retry, with the same key, publishes the same
        payment id)."""
        if not principal.acts_for(payment.payer):
            raise NotYourPayer(payment.payer)
        if payment.kind is PaymentKind.GENERAL_GUARANTEE:
            return await self._draw(principal, payment, key)
        event = payment.to_event(self.payment_id(principal.subject, key, payment), self.clock())
        await self._publish(event)
        return event.payment_id

    async def _publish(self, event: PaymentConfirmed) -> None:
        try:
            await self.producer.publish(PAYMENTS_CONFIRMED.name, event)
        except Exception as exc:  # anything but an acknowledgement: the payer retries later
            log.warning("publish of payment %s failed: %r", event.payment_id, exc)
            raise Unavailable("Kafka did not acknowledge the payment", "publish") from exc

    def _held(self, guarantee_id: str, uscc: str) -> Guarantee:
        guarantee = self.guarantees.get(guarantee_id)
        if guarantee is None or guarantee.holder != uscc:
            raise NotYourGuarantee(guarantee_id, uscc)
        return guarantee

    async def _ledger(self, guarantee: Guarantee) -> Ledger:
        try:
            return await self.store.ledger(guarantee.guarantee_id, guarantee.amount)
        except LedgerUnavailable as exc:
            log.warning("ledger of %s unavailable: %s", guarantee.guarantee_id, exc)
            raise Unavailable("the bank's ledger is unavailable", "ledger") from exc

    async def _draw(self, principal: Principal, payment: PaymentRequest, key: str | None) -> str:
        """Draw on a general guarantee: decide on the ledger, record the draw if the ledger has
        not moved meanwhile (else decide again), then publish it."""
        if key is None:
            raise KeyRequired("draw on a general guarantee")
        assert payment.guarantee_id is not None
        guarantee = self._held(payment.guarantee_id, payment.payer)
        paid_at = payment.paid_at or millis(self.clock())
        asked = ledger.DrawAsked(
            payment_id=self.payment_id(principal.subject, key, payment),
            declaration_id=payment.declaration_id,
            notice_id=payment.notice_id,
            payer=payment.payer,
            amount=payment.amount,
            paid_at=paid_at,
        )
        for _ in range(CONTENDED):
            book = await self._ledger(guarantee)
            match ledger.decide_draw(book, asked):
                case ledger.AlreadyDrawn(draw):
                    break  # a retry: publish the recorded draw again (dated as recorded)
                case _ if not ledger.drawn_on(guarantee.valid_on, paid_at):
                    # a new draw only: a retry's clock may be past the validity, its draw not
                    raise GuaranteeNotValid(guarantee, china_day(paid_at))
                case ledger.Exhausted(balance):
                    raise GuaranteeExhausted(guarantee.guarantee_id, balance, payment.amount)
                case ledger.NoticeDrawn():
                    raise NoticeDrawn(guarantee.guarantee_id, payment.notice_id)
                case ledger.Drawn(draw):
                    self.backdated(payment.paid_at, "payment")
                    if await self._record(self.store.record_draw(book, draw)):
                        break
        else:
            raise Unavailable("the guarantee's ledger is busy", "ledger")
        await self._publish(draw_event(guarantee, book.amount, draw))
        await self._published(guarantee.guarantee_id, draw, repayment=False)
        return draw.payment_id

    async def _published(self, guarantee_id: str, draw: ledger.Draw, repayment: bool) -> None:
        """Note that Kafka has the entry (best effort: unnoted, the sweep publishes it again,
        the same entry, which the join and audit verify count once)."""
        try:
            await self.store.mark_published(guarantee_id, draw.notice_id, repayment)
        except LedgerUnavailable as exc:
            log.warning(
                "entry of %s on %s not noted as published: %s", draw.notice_id, guarantee_id, exc
            )

    async def publish_pending(self) -> int:
        """Publish every ledger entry recorded and never acknowledged by Kafka (the bank
        stopped between its record and its publish, and the client never retried), in ledger
        order; the number published. Raises Unavailable (the next sweep goes on)."""
        count = 0
        for guarantee in self.guarantees.values():
            try:
                book = await self.store.find(guarantee.guarantee_id)
            except LedgerUnavailable as exc:
                raise Unavailable("the bank's ledger is unavailable", "ledger") from exc
            if book is None:
                continue
            for sequence, draw, repayment in ledger.unpublished(book):
                make = repayment_event if repayment else draw_event
                log.warning(
                    "entry %d of guarantee %s was recorded and never published: publishing it",
                    sequence,
                    guarantee.guarantee_id,
                )
                await self._publish(make(guarantee, book.amount, draw))
                await self._published(guarantee.guarantee_id, draw, repayment)
                count += 1
        return count

    def backdated(self, paid_at: datetime | None, what: str) -> None:
        """Refuse a new ledger entry's backdated value date, as :meth:`parse` refuses any
        other payment's (422 ``invalid-payment`` or ``invalid-repayment``)."""
        if paid_at is not None and paid_at < self.clock() - BACKDATED:
            errors = [FieldError("paid_at", BACKDATED_MESSAGE)]
            raise Problem(
                422, f"the {what} has 1 invalid field(s)", kind=f"invalid-{what}", errors=errors
            )

    async def _record(self, update: Awaitable[bool]) -> bool:
        try:
            return await update
        except LedgerUnavailable as exc:
            log.warning("ledger update failed: %s", exc)
            raise Unavailable("the bank's ledger is unavailable", "ledger") from exc

    async def repay(
        self,
        principal: Principal,
        guarantee_id: str,
        repayment: RepaymentRequest,
        key: str | None,
    ) -> RepaymentAccepted:
        """The consolidated repayment (汇总征税) of drawn notices: each restores its draw to
        the balance, with its late interest, one PaymentConfirmed each, 202 once all are in
        Kafka (a retry with the same key publishes the recorded ones again)."""
        guarantee = self.guarantees.get(guarantee_id)
        if guarantee is None or not principal.acts_for(guarantee.holder):
            raise NotYourGuarantee(guarantee_id, "this token")
        if not guarantee.consolidated:
            raise NotConsolidated(guarantee_id)
        if key is None:
            raise KeyRequired("consolidated repayment")
        paid_at = repayment.paid_at or millis(self.clock())
        body = repayment.model_dump(mode="json")
        ids = [
            self.keyed_ids.request_id(
                PAYMENT_ID_PREFIX, principal.subject, key, body, guarantee_id, notice
            )
            for notice in repayment.notices
        ]
        for _ in range(CONTENDED):
            book = await self._ledger(guarantee)
            match ledger.decide_repayment(book, repayment.notices, ids, paid_at):
                case ledger.AlreadyRepaid(draws):
                    break
                case ledger.NotDrawn(notice_id):
                    raise NoticeNotDrawn(guarantee_id, notice_id)
                case ledger.RepaidBefore(notice_id):
                    raise NoticeRepaid(guarantee_id, notice_id)
                case ledger.BeforeDrawn(notice_id):
                    raise RepaidBeforeDrawn(guarantee_id, notice_id)
                case ledger.Repaid(draws):
                    self.backdated(repayment.paid_at, "repayment")
                    if await self._record(self.store.record_repayment(book, draws)):
                        break
        else:
            raise Unavailable("the guarantee's ledger is busy", "ledger")
        events = [repayment_event(guarantee, book.amount, d) for d in draws]
        for event, draw in zip(events, draws, strict=True):  # in ledger order
            await self._publish(event)
            await self._published(guarantee_id, draw, repayment=True)
        return RepaymentAccepted.of(guarantee_id, draws)

    async def view(self, principal: Principal, guarantee_id: str) -> GuaranteeView:
        """The guarantee as its holder sees it: balance, and the draws not yet repaid."""
        guarantee = self.guarantees.get(guarantee_id)
        if guarantee is None or not principal.acts_for(guarantee.holder):
            raise NotYourGuarantee(guarantee_id, "this token")
        return GuaranteeView.of(guarantee, await self._ledger(guarantee))


def millis(at: datetime) -> datetime:
    """``at`` as events carry it (milliseconds): what the ledger records is what it publishes."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


# a draw or repayment that found the ledger moved decides again, this many times at most
CONTENDED = 8


class RepaymentRequest(BaseModel):
    """The notices a consolidated repayment pays back (each drawn on the guarantee and not
    repaid yet), and its value date (as a payment's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notices: tuple[Reference, ...] = Field(min_length=1, max_length=MAX_REPAID)
    paid_at: ValueDate | None = None

    @field_validator("notices")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a notice is named twice")
        return value

    @field_validator("paid_at")
    @classmethod
    def _about_now(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        return about_now(value, info, ledger_entry=True)


class Repaid(BaseModel):
    payment_id: str
    declaration_id: str
    notice_id: str
    amount: Decimal
    due_by: date
    late_interest: Decimal


class RepaymentAccepted(BaseModel):
    """The answer of a consolidated repayment: one payment per notice, once Kafka has all."""

    guarantee_id: str
    balance_after: Decimal
    repayments: tuple[Repaid, ...]

    @classmethod
    def of(cls, guarantee_id: str, draws: tuple[ledger.Draw, ...]) -> RepaymentAccepted:
        repaid = []
        for draw in draws:
            assert draw.repayment is not None
            repaid.append(
                Repaid(
                    payment_id=draw.repayment.payment_id,
                    declaration_id=draw.declaration_id,
                    notice_id=draw.notice_id,
                    amount=draw.amount,
                    due_by=draw.repayment.due_by,
                    late_interest=draw.repayment.late_interest,
                )
            )
        last = draws[-1].repayment
        assert last is not None
        return cls(
            guarantee_id=guarantee_id, balance_after=last.balance_after, repayments=tuple(repaid)
        )


class Outstanding(BaseModel):
    payment_id: str
    declaration_id: str
    notice_id: str
    amount: Decimal
    drawn_at: datetime
    due_by: date | None  # consolidated: the fifth working day of the next month


class GuaranteeView(BaseModel):
    """A general guarantee as its holder sees it."""

    guarantee_id: str
    holder: str
    amount: Decimal
    balance: Decimal
    valid_from: date
    valid_until: date
    consolidated: bool
    ledger_sequence: int
    outstanding: tuple[Outstanding, ...]

    @classmethod
    def of(cls, guarantee: Guarantee, book: Ledger) -> GuaranteeView:
        open_draws = sorted(
            (d for d in book.draws.values() if d.repayment is None), key=lambda d: d.sequence
        )
        return cls(
            guarantee_id=guarantee.guarantee_id,
            holder=guarantee.holder,
            amount=book.amount,
            balance=book.balance,
            valid_from=guarantee.valid_from,
            valid_until=guarantee.valid_until,
            consolidated=guarantee.consolidated,
            ledger_sequence=book.sequence,
            outstanding=tuple(
                Outstanding(
                    payment_id=d.payment_id,
                    declaration_id=d.declaration_id,
                    notice_id=d.notice_id,
                    amount=d.amount,
                    drawn_at=d.paid_at,
                    due_by=consolidated_due_by(d.paid_at) if guarantee.consolidated else None,
                )
                for d in open_draws
            ),
        )


def draw_event(guarantee: Guarantee, amount: Decimal, draw: ledger.Draw) -> PaymentConfirmed:
    """The signed confirmation of a draw: its ledger entry."""
    return _ledger_entry(
        guarantee,
        amount,
        draw,
        payment_id=draw.payment_id,
        kind=PaymentKind.GENERAL_GUARANTEE,
        paid_at=draw.paid_at,
        payer=draw.payer,
        ledger_sequence=draw.sequence,
        balance_after=draw.balance_after,
    )


def repayment_event(guarantee: Guarantee, amount: Decimal, draw: ledger.Draw) -> PaymentConfirmed:
    """The signed confirmation of a draw repaid: its own ledger entry, on the declaration."""
    repaid = draw.repayment
    assert repaid is not None
    return _ledger_entry(
        guarantee,
        amount,
        draw,
        payment_id=repaid.payment_id,
        kind=PaymentKind.CONSOLIDATED_PAYMENT,
        paid_at=repaid.paid_at,
        payer=guarantee.holder,
        ledger_sequence=repaid.sequence,
        balance_after=repaid.balance_after,
        late_interest=repaid.late_interest,
    )


def _ledger_entry(
    guarantee: Guarantee, amount: Decimal, draw: ledger.Draw, **entry: Any
) -> PaymentConfirmed:
    """A ledger entry on the draw's declaration and notice, for the drawn amount, naming the
    guarantee and the amount it was issued for (``amount``)."""
    return PaymentConfirmed(
        declaration_id=draw.declaration_id,
        notice_id=draw.notice_id,
        amount=draw.amount,
        guarantee_id=guarantee.guarantee_id,
        guarantee_amount=amount,
        **entry,
    )
