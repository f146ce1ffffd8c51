"""The bank's use case: a payment on a notice, confirmed on Kafka.

:class:`PaymentRequest` is the body of ``POST /v1/payments`` (unknown fields refused):

- ``declaration_id``, ``notice_id``: 1-64 characters, no control characters (the bank does
  not know notices: the aggregator decides what the payment settles);
- ``amount``: a decimal *string* > 0 with at most 2 decimals (``"1234.50"``), below 10^14;
- ``kind``: ``PAYMENT`` (default) or ``BANK_GUARANTEE``;
- ``payer``: the USCC that pays; the token must act for it (else 403);
- ``paid_at`` (optional, default: now): the value date, an ISO-8601 time *with* its time
  zone, between 2000 and 2199, at most ``paid_at_slack`` in the future.

:meth:`Bank.pay` publishes the signed ``PaymentConfirmed`` on ``payments.confirmed`` (keyed by
the declaration id) and returns its payment id only once Kafka acknowledged it. The id is
``PAY-`` and 32 upper-case hex digits: random, or, with an Idempotency-Key, HMAC-derived from
(subject, key) under the bank's id secret, so that a retry publishes the same payment id and
the join counts it once. Nothing is recorded before the publish: a refused or failed request
leaves no trace, and its retry is a fresh attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Protocol

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from services.intake.auth import Principal, Verifier
from services.intake.errors import Problem, field_errors
from services.intake.ids import KeyedIds
from services.intake.schema import Money, Reference, Uscc
from services.intake.service import Refused, Unavailable, authenticate, utcnow
from singlewindow.events import MAX_ASSESSED, Event, PaymentConfirmed, PaymentKind, UtcMillis
from singlewindow.topics import PAYMENTS_CONFIRMED

log = logging.getLogger(__name__)
PAYMENT_ID_PREFIX = "PAY-"


def _iso_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError('must be an ISO-8601 time with its zone, e.g. "2026-12-01T10:00:00+08:00"')
    return value


Amount = Annotated[Money, Field(gt=0, lt=MAX_ASSESSED)]
ValueDate = Annotated[UtcMillis, BeforeValidator(_iso_text)]


# how long before the bank's clock a value date may be: a confirmation is sent within the
# hour a payment is made; earlier, a payer could date it before the due date
BACKDATED = timedelta(hours=1)


class PaymentRequest(BaseModel):
    """What a payer tells the bank it paid (or guaranteed), on which notice, when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    declaration_id: Reference
    notice_id: Reference
    amount: Amount
    kind: PaymentKind = PaymentKind.PAYMENT
    payer: Uscc
    paid_at: ValueDate | None = None

    @field_validator("paid_at")
    @classmethod
    def _about_now(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        context = info.context or {}
        latest, earliest = context.get("latest"), context.get("earliest")
        if value is not None and latest is not None and value > latest:
            raise ValueError("must not be in the future: it is the date the payment was made")
        if value is not None and earliest is not None and value < earliest:
            raise ValueError(
                "must not be backdated: a payment is confirmed within the hour it is made "
                "(a value date before its notice's due date would escape late interest)"
            )
        return value

    def to_event(self, payment_id: str, now: datetime) -> PaymentConfirmed:
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


class Bank:
    """The bank's use cases over its producer (``singlewindow.kafka.producer.EventProducer``
    with the bank's signing key). ``clock`` stamps payments without a value date and bounds
    the value dates given; ``paid_at_slack`` is how far ahead of it one may be."""

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
    ) -> None:
        self.producer, self.verifier, self.clock = producer, verifier, clock
        self.keyed_ids = KeyedIds(id_secret)
        self.paid_at_slack = paid_at_slack
        self.max_body_bytes, self.max_json_depth = max_body_bytes, max_json_depth
        self.retry_after = retry_after

    async def authenticate(self, token: str | None) -> Principal:
        """The verified principal of a bearer token (Unauthenticated, Unavailable)."""
        return await authenticate(self.verifier, token)

    def parse(self, data: object) -> PaymentRequest:
        """Validate a parsed JSON body; a Problem 422 names every bad field."""
        try:
            return PaymentRequest.model_validate(
                data,
                context={
                    "latest": self.clock() + self.paid_at_slack,
                    "earliest": self.clock() - BACKDATED,
                },
            )
        except ValidationError as exc:
            errors = field_errors(exc.errors(include_url=False, include_input=False))
            detail = f"the payment has {len(errors)} invalid field(s)"
            raise Problem(422, detail, kind="invalid-payment", errors=errors) from None

    def payment_id(self, subject: str, key: str | None, payment: PaymentRequest) -> str:
        """Random without a key; with one, the same for every request of the subject's key
        with the same body: a key reused for another payment is another payment."""
        body = payment.model_dump(mode="json")
        return self.keyed_ids.request_id(PAYMENT_ID_PREFIX, subject, key, body)

    async def pay(self, principal: Principal, payment: PaymentRequest, key: str | None) -> str:
        """Publish the payment and return its id, once Kafka acknowledged it.

        Raises NotYourPayer before anything is published, Unavailable when Kafka does not
        acknowledge (nothing is recorded: the retry, with the same key, publishes the same
        payment id)."""
        if not principal.acts_for(payment.payer):
            raise NotYourPayer(payment.payer)
        event = payment.to_event(self.payment_id(principal.subject, key, payment), self.clock())
        try:
            await self.producer.publish(PAYMENTS_CONFIRMED.name, event)
        except Exception as exc:  # anything but an acknowledgement: the payer retries later
            log.warning("publish of payment %s failed: %r", event.payment_id, exc)
            raise Unavailable("Kafka did not acknowledge the payment", "publish") from exc
        return event.payment_id
