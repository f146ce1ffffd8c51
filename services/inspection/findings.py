"""The station's use case: one inspector's finding on an inspection order, recorded on Kafka.

:class:`FindingRequest` is the body of ``POST /v1/inspections/{order_id}/findings`` (unknown
fields refused):

- ``declaration_id``: 1-64 characters, no control characters; ``version``: the declaration
  version the order is of (an integer, 1-9999);
- ``outcome``: ``COMPLIANT``, ``NON_COMPLIANT`` or ``SAMPLED``;
- ``measure``: with, and only with, ``NON_COMPLIANT``: ``SEIZURE``, ``DESTRUCTION``,
  ``RETURN``, ``RELABELLING`` or ``PENALTY``;
- ``reasons`` (optional, at most 100): ``{"code", "message", "item"?}``, ``item`` the goods
  item line (1-999);
- ``samples``: with, and only with, ``SAMPLED``: 1-100 sample ids;
- ``lab_result`` (false): the finding is the laboratory's result on earlier samples
  (``COMPLIANT`` or ``NON_COMPLIANT``, never ``SAMPLED``).

The agency and the inspector are the token's (:class:`~services.intake.auth.Inspector`),
never the body's; ``recorded_at`` is the station's clock. The consistency of outcome, measure,
samples and laboratory result is the event's own rule (``InspectionFinding``): its refusals
are 422s naming the field.

:meth:`Station.record` publishes the signed ``InspectionFinding`` on ``inspections.findings``
(keyed by the declaration id) and returns its finding id only once Kafka acknowledged it. The
id is ``FND-`` and 32 upper-case hex digits: random, or, with an Idempotency-Key,
HMAC-derived from (subject, key) under the station's id secret, so that a retry publishes the
same finding id and the join counts it once. Nothing is recorded before the publish: a
refused or failed request leaves no trace, and its retry is a fresh attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from services.aggregator import join
from services.intake.auth import Inspector, TokenVerifier
from services.intake.errors import FieldError, Problem, field_errors, field_path
from services.intake.ids import KeyedIds
from services.intake.schema import Description, Reference
from services.intake.service import Unavailable, authenticate, utcnow
from singlewindow.events import (
    MAX_FINDING_ENTRIES,
    Event,
    FindingOutcome,
    InspectionFinding,
    Measure,
    Reason,
)
from singlewindow.topics import INSPECTION_FINDINGS

log = logging.getLogger(__name__)
FINDING_ID_PREFIX = "FND-"
MAX_REASONS = MAX_SAMPLES = MAX_FINDING_ENTRIES

ItemLine = Annotated[StrictInt, Field(ge=1, le=999)]
DeclarationVersion = Annotated[StrictInt, Field(ge=1, le=9999)]


class FindingReason(BaseModel):
    """Why: a stable code, a message, the goods item line it is about (if one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Reference
    message: Description
    item: ItemLine | None = None


class FindingRequest(BaseModel):
    """What an inspector found, on which declaration version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    declaration_id: Reference
    version: DeclarationVersion
    outcome: FindingOutcome
    measure: Measure | None = None
    reasons: tuple[FindingReason, ...] = Field((), max_length=MAX_REASONS)
    samples: tuple[Reference, ...] = Field((), max_length=MAX_SAMPLES)
    lab_result: StrictBool = False

    def to_event(
        self, *, finding_id: str, order_id: str, inspector: Inspector, recorded_at: datetime
    ) -> InspectionFinding:
        """The finding as the station records it (ValidationError if inconsistent)."""
        return InspectionFinding(
            declaration_id=self.declaration_id,
            finding_id=finding_id,
            order_id=order_id,
            version=self.version,
            agency=inspector.agency,
            inspector=inspector.subject,
            outcome=self.outcome,
            measure=self.measure,
            reasons=tuple(Reason(**reason.model_dump()) for reason in self.reasons),
            samples=self.samples,
            lab_result=self.lab_result,
            recorded_at=recorded_at,
        )


class FindingAccepted(BaseModel):
    """The answer of a recorded finding: its id, once Kafka has it."""

    finding_id: str
    declaration_id: str
    order_id: str


class Producer(Protocol):
    async def publish(self, topic: str, event: Event, parent_trace: bytes | None = None) -> None:
        """Return once Kafka acknowledged the signed event; raise otherwise."""
        ...


# The event's rules across fields (InspectionFinding._consistent) fail the whole model: the
# field each is about, by a word of its message (tests/unit/test_inspection_station.py checks
# every rule is named).
_RULE_FIELDS = (("measure", "measure"), ("samples", "samples"), ("laboratory", "lab_result"))


def _event_errors(errors: Sequence[Mapping[str, Any]]) -> list[FieldError]:
    """The event's validation errors as the body's field errors."""
    out = []
    for error in errors:
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = tuple(error["loc"])
        if not loc:
            loc = next(((field,) for word, field in _RULE_FIELDS if word in message), ())
        out.append(FieldError(field_path(loc), message))
    return out


class Station:
    """The station's use cases over its producer (``singlewindow.kafka.producer.EventProducer``
    with the station's signing key). ``clock`` stamps ``recorded_at``."""

    def __init__(
        self,
        producer: Producer,
        *,
        verifier: TokenVerifier[Inspector],
        id_secret: bytes,
        clock: Callable[[], datetime] = utcnow,
        max_body_bytes: int = 64 * 1024,
        max_json_depth: int = 8,
        retry_after: int = 5,
    ) -> None:
        self.producer, self.verifier, self.clock = producer, verifier, clock
        self.keyed_ids = KeyedIds(id_secret)
        self.max_body_bytes, self.max_json_depth = max_body_bytes, max_json_depth
        self.retry_after = retry_after

    async def authenticate(self, token: str | None) -> Inspector:
        """The verified inspector of a bearer token (Unauthenticated, Unavailable)."""
        return await authenticate(self.verifier, token)

    def parse(self, data: object) -> FindingRequest:
        """Validate a parsed JSON body; a Problem 422 names every bad field."""
        try:
            return FindingRequest.model_validate(data)
        except ValidationError as exc:
            errors = field_errors(exc.errors(include_url=False, include_input=False))
            raise _invalid(errors) from None

    def finding_id(
        self, subject: str, key: str | None, order_id: str, request: FindingRequest
    ) -> str:
        """Random without a key; with one, the same for every request of the subject's key
        with the same order and body: a key reused for another finding (a laboratory result
        after SAMPLED) gives another id, so the join never takes it for a redelivery."""
        body = request.model_dump(mode="json")
        return self.keyed_ids.request_id(FINDING_ID_PREFIX, subject, key, order_id, body)

    def finding(
        self, inspector: Inspector, order_id: str, request: FindingRequest, key: str | None
    ) -> InspectionFinding:
        """The finding the station would record now; a Problem 422 names what the event's
        rules refuse (a measure without NON_COMPLIANT, samples without SAMPLED...)."""
        if order_id != join.order_id(request.declaration_id, request.version):
            raise _invalid(
                [
                    FieldError(
                        "order_id",
                        "is not the inspection order of this declaration version",
                    )
                ]
            )
        try:
            return request.to_event(
                finding_id=self.finding_id(inspector.subject, key, order_id, request),
                order_id=order_id,
                inspector=inspector,
                recorded_at=self.clock(),
            )
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            raise _invalid(_event_errors(errors)) from None

    async def record(
        self, inspector: Inspector, order_id: str, request: FindingRequest, key: str | None
    ) -> str:
        """Publish the finding and return its id, once Kafka acknowledged it.

        Raises a Problem 422 before anything is published, Unavailable when Kafka does not
        acknowledge (nothing is recorded: the retry, with the same key, publishes the same
        finding id)."""
        event = self.finding(inspector, order_id, request, key)
        try:
            await self.producer.publish(INSPECTION_FINDINGS.name, event)
        except Exception as exc:  # anything but an acknowledgement: the inspector retries
            log.warning("publish of finding %s failed: %r", event.finding_id, exc)
            raise Unavailable("Kafka did not acknowledge the finding", "publish") from exc
        return event.finding_id


def _invalid(errors: list[FieldError]) -> Problem:
    detail = f"the finding has {len(errors)} invalid field(s)"
    return Problem(422, detail, kind="invalid-finding", errors=errors)
