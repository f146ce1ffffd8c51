"""The gate's use case: let goods out under a release, once the read model says so.

:class:`GateOutRequest` is the body of ``POST /v1/gate-out`` (unknown fields refused):

- ``declaration_id``: 1-64 characters, no control characters;
- ``gate``: the gate's code, 1-32 printable ASCII characters, no spaces;
- ``vehicle``: the vehicle's plate, 1-16 characters, no spaces nor control characters
  (``沪A12345``);
- ``containers`` (optional, at most 500, no repeats): ISO 6346 container numbers, check digit
  checked; none for bulk or air cargo.

:meth:`Gate.let_out` checks, in this order, before anything is published:

1. the officer works for the gate's agency (``GATE_AGENCY``): 403 ``not-a-gate-officer``
   otherwise;
2. the declaration's read-model document (``services.intake.ports.ReadModel``, the intake's
   adapter, ``singlewindow.readmodel.status_view``): 404 ``unknown-declaration`` without one;
   409 ``not-released`` unless its status and its latest step (the result it shows) are
   RELEASED or CONDITIONALLY_RELEASED, or, after a change after release customs answered,
   SUPPLEMENTARY_PAYMENT_DUE (approved: the goods stay released while the supplementary duty
   is due) or AMENDMENT_REFUSED (the release before stands) (a HELD, AWAITING_PAYMENT,
   RECALLED... declaration stays in the port); 409 ``amendment-pending`` while customs is
   assessing a change after release, or when the document lists a newer version than the one
   released (an amendment that raced the release); 503 when the database does not answer.
   A change after release keeps the containers released (the intake refuses any other), so
   the version the gate then goes by lists the same ones, and a container out stays out;
3. each container is one the declaration lists, when it lists any: 422 ``unknown-container``
   naming each other one;
4. no container has gone out already: the document's ``gate_outs`` (the projector folds
   ``gate.out``) list none of them under another gate-out id, or 409 ``already-out`` naming
   each (the retry of a gate-out under the same Idempotency-Key, same id, is no second one).
   A declaration without containers (bulk, air cargo) may pass several vehicles: only
   containers are checked. The read model lags the topic by a moment, so two officers racing
   with the same container may both pass; the auditors see both.

Then it publishes the signed ``GateOut`` on ``gate.out`` (keyed by the declaration id) with the
latest step's ``result_id``, the officer (the token's subject) and the gate's clock as
``passed_at``, and returns only once Kafka acknowledged it (503 otherwise). The id is
``GATE-`` and 32 upper-case hex digits: random, or, with an Idempotency-Key, HMAC-derived from
(subject, key) under the gate's id secret, so that a retry publishes the same gate-out id.
Nothing is recorded before the publish: a refused or failed request leaves no trace.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
)

from services.intake.auth import Inspector, TokenVerifier, challenge
from services.intake.errors import FieldError, Problem, field_errors
from services.intake.ids import KeyedIds
from services.intake.ports import ReadModel, ReadModelUnavailable
from services.intake.schema import Container, Reference
from services.intake.service import Unavailable, authenticate, utcnow
from singlewindow.events import RELEASED_STATUSES, Event, GateOut
from singlewindow.readmodel import status_view
from singlewindow.topics import GATE_OUT

log = logging.getLogger(__name__)
GATE_OUT_ID_PREFIX = "GATE-"
MAX_CONTAINERS = 500
_PLATE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,16}")


def _plate(value: str) -> str:
    if not _PLATE.fullmatch(value):
        raise ValueError("a plate is 1-16 characters, no spaces nor control characters")
    return value


GateCode = Annotated[StrictStr, Field(min_length=1, max_length=32, pattern=r"^[\x21-\x7e]+$")]
Plate = Annotated[StrictStr, AfterValidator(_plate)]
RELEASES = frozenset(str(s) for s in RELEASED_STATUSES)


class GateOutRequest(BaseModel):
    """Which goods, at which gate, on which vehicle."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    declaration_id: Reference
    gate: GateCode
    vehicle: Plate
    containers: tuple[Container, ...] = Field((), max_length=MAX_CONTAINERS)

    @field_validator("containers")
    @classmethod
    def _once_each(cls, containers: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(containers)) != len(containers):
            raise ValueError("a container is listed once")
        return containers


class GateOutAccepted(BaseModel):
    """The answer of a confirmed gate-out: its id and the release it relied on."""

    gate_out_id: str
    declaration_id: str
    result_id: str


class Producer(Protocol):
    async def publish(self, topic: str, event: Event, parent_trace: bytes | None = None) -> None:
        """Return once Kafka acknowledged the signed event; raise otherwise."""
        ...


def declared_containers(document: dict[str, Any]) -> tuple[str, ...]:
    """The containers the document's declaration lists (none for bulk or air cargo)."""
    consignment = (document.get("declaration") or {}).get("consignment") or {}
    return tuple(consignment.get("containers") or ())


def gone_out(document: dict[str, Any], gate_out_id: str | None = None) -> dict[str, Any]:
    """Container -> the recorded gate-out (``gate_outs``, in the order passed) it first left
    the port under, leaving out the gate-out ``gate_out_id`` (a retry of it is no second)."""
    out: dict[str, Any] = {}
    for recorded in document.get("gate_outs") or ():
        if recorded.get("gate_out_id") != gate_out_id:
            for container in recorded.get("containers") or ():
                out.setdefault(str(container), recorded)
    return out


class Gate:
    """The gate's use cases over its producer (``singlewindow.kafka.producer.EventProducer``
    with the gate's signing key) and the read model (``services.intake.adapters
    .MongoReadModel``). ``agency`` is the agency whose officers work the gate; ``clock``
    stamps ``passed_at``."""

    def __init__(
        self,
        producer: Producer,
        read_model: ReadModel,
        *,
        verifier: TokenVerifier[Inspector],
        id_secret: bytes,
        agency: str = "port",
        clock: Callable[[], datetime] = utcnow,
        max_body_bytes: int = 64 * 1024,
        max_json_depth: int = 8,
        retry_after: int = 5,
    ) -> None:
        self.producer, self.read_model, self.verifier = producer, read_model, verifier
        self.agency, self.clock = agency, clock
        self.keyed_ids = KeyedIds(id_secret)
        self.max_body_bytes, self.max_json_depth = max_body_bytes, max_json_depth
        self.retry_after = retry_after

    async def authenticate(self, token: str | None) -> Inspector:
        """The verified gate officer of a bearer token (Unauthenticated, Unavailable; a
        Problem 403 for an inspector of another agency)."""
        officer = await authenticate(self.verifier, token)
        if officer.agency != self.agency:
            description = f"only officers of {self.agency} work the gate"
            raise Problem(
                403,
                f"an inspector of {officer.agency} is no gate officer",
                kind="not-a-gate-officer",
                headers=challenge("insufficient_scope", description),
            )
        return officer

    def parse(self, data: object) -> GateOutRequest:
        """Validate a parsed JSON body; a Problem 422 names every bad field."""
        try:
            return GateOutRequest.model_validate(data)
        except ValidationError as exc:
            errors = field_errors(exc.errors(include_url=False, include_input=False))
            detail = f"the gate-out has {len(errors)} invalid field(s)"
            raise Problem(422, detail, kind="invalid-gate-out", errors=errors) from None

    def gate_out_id(self, subject: str, key: str | None, request: GateOutRequest) -> str:
        """Random without a key; with one, the same for every request of the subject's key
        with the same body: a key reused for another gate-out (another vehicle, another
        container) gives another id, which the already-out rule then sees."""
        body = request.model_dump(mode="json")
        return self.keyed_ids.request_id(GATE_OUT_ID_PREFIX, subject, key, body)

    async def release_of(self, request: GateOutRequest, gate_out_id: str | None = None) -> str:
        """The result id of the release the goods leave under: the declaration's latest step,
        checked against the read model (Problem 404, 409 or 422; Unavailable); its containers
        must not have left already under another gate-out than ``gate_out_id``."""
        declaration_id = request.declaration_id
        try:
            document = await self.read_model.get(declaration_id)
        except ReadModelUnavailable as exc:
            log.warning("read model unavailable for %s: %r", declaration_id, exc)
            raise Unavailable("the read model is unavailable", "read-model") from exc
        if document is None:
            raise Problem(404, f"no declaration {declaration_id!r}", kind="unknown-declaration")
        view = status_view(document)
        status, result = str(view["status"]), view.get("result") or {}
        changing = (document.get("declaration") or {}).get("after_release")
        if changing and status not in RELEASES and str(result.get("status")) in RELEASES:
            # a change after release customs is assessing: what may leave is what it decides
            detail = (
                f"declaration {declaration_id!r} was released as version "
                f"{result.get('version')}; customs is assessing a change of it after release "
                f"(version {document.get('version')})"
            )
            raise Problem(409, detail, kind="amendment-pending")
        if status not in RELEASES or str(result.get("status")) not in RELEASES:
            detail = f"declaration {declaration_id!r} is {status}, not released"
            raise Problem(409, detail, kind="not-released")
        if result.get("version") != document.get("version"):
            # the document holds a newer version than the one released (an amendment that
            # raced the release, which the join ignored): its containers are not the
            # released goods', so the gate cannot tell what may leave
            detail = (
                f"declaration {declaration_id!r} was released as version "
                f"{result.get('version')}, yet lists version {document.get('version')}"
            )
            raise Problem(409, detail, kind="amendment-pending")
        listed = declared_containers(document)
        unknown = [  # a declaration without containers (bulk, air) lets none out
            FieldError(f"containers[{i}]", f"{c} is not a container of the declaration")
            for i, c in enumerate(request.containers)
            if c not in listed
        ]
        if unknown:
            detail = f"{len(unknown)} container(s) not listed by the declaration"
            raise Problem(422, detail, kind="unknown-container", errors=unknown)
        out = gone_out(document, gate_out_id)
        already = [
            FieldError(
                f"containers[{i}]",
                f"{c} left the port at {out[c].get('passed_at')} through gate {out[c].get('gate')}",
            )
            for i, c in enumerate(request.containers)
            if c in out
        ]
        if already:
            detail = f"{len(already)} container(s) of {declaration_id!r} already out"
            raise Problem(409, detail, kind="already-out", errors=already)
        return str(result["result_id"])

    async def let_out(
        self, officer: Inspector, request: GateOutRequest, key: str | None
    ) -> GateOut:
        """Publish the gate-out and return it, once Kafka acknowledged it.

        Raises a Problem (404, 409 not released or already out, 422) or Unavailable (the read
        model, Kafka) before anything is recorded: the retry, with the same key, publishes the
        same gate-out id."""
        gate_out_id = self.gate_out_id(officer.subject, key, request)
        result_id = await self.release_of(request, gate_out_id)
        event = GateOut(
            declaration_id=request.declaration_id,
            gate_out_id=gate_out_id,
            result_id=result_id,
            gate=request.gate,
            vehicle=request.vehicle,
            containers=request.containers,
            passed_at=self.clock(),
            officer=officer.subject,
        )
        try:
            await self.producer.publish(GATE_OUT.name, event)
        except Exception as exc:  # anything but an acknowledgement: the officer retries
            log.warning("publish of gate-out %s failed: %r", event.gate_out_id, exc)
            raise Unavailable("Kafka did not acknowledge the gate-out", "publish") from exc
        return event
