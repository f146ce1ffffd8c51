"""The SDK for an agency service: consume declarations, rule, publish a verdict.

An agency supplies a pure ``assess(declaration, now) -> AgencyVerdict``; this module does
the rest: consumer group, decoding, signatures, dead letters, metrics, shutdown. At-least-once:
the input offsets are committed only after the verdicts are acknowledged (a fetched batch's
verdicts are sent together), and verdict ids are deterministic, so a redelivery produces a
duplicate the aggregator ignores.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from singlewindow import runtime, tracing
from singlewindow.aio import all_settled
from singlewindow.events import AgencyVerdict, DeclarationSubmitted
from singlewindow.health import Health
from singlewindow.kafka.consumer import ConsumerService, Record, decode_signed
from singlewindow.kafka.headers import TRACEPARENT, header
from singlewindow.kafka.producer import EventProducer
from singlewindow.kafka.transport import Transport
from singlewindow.metrics import MESSAGES
from singlewindow.registry import AgencyRegistry, agency_registry
from singlewindow.settings import Settings, get_settings, service_settings
from singlewindow.signing import registry_file, signing_key
from singlewindow.topics import DECLARATIONS_SUBMITTED, verdict_topic
from singlewindow.verdicts import on_version

Assess = Callable[[DeclarationSubmitted, datetime], AgencyVerdict]
R = TypeVar("R")


def agency_service(
    agency: str,
    assess: Assess,
    settings: Settings | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    registry: AgencyRegistry | None = None,
    transport: Transport | None = None,  # Kafka's clients by default; testing.FakeBroker's
    health: Health | None = None,  # the process's (runtime.main): what it reports into
) -> ConsumerService:
    """The consumer service of the registered agency ``agency`` (its code): its own group,
    its own verdict topic, its own signing key. It rules only on declarations the intake
    signed. KeyError if the agency is not in the registry."""
    settings = settings or get_settings()
    entry = (registry or agency_registry()).get(agency)
    name = entry.code
    producer = EventProducer(
        settings, name, signing_key(settings), clock=clock, transport=transport
    )
    keys = registry_file(settings)
    verdicts = verdict_topic(entry)

    def rule(record: Record) -> AgencyVerdict | None:
        """The verdict on a record's declaration (None: not routed to this agency)."""
        declaration = decode_signed(DeclarationSubmitted, record, keys)
        if agency not in declaration.required_agencies:
            return None
        verdict = on_version(assess(declaration, clock()), declaration.version)
        if verdict.declaration_id != declaration.declaration_id or verdict.agency != agency:
            raise ValueError(
                f"assess returned a verdict for {verdict.declaration_id}/{verdict.agency}"
            )
        return verdict

    async def publish(record: Record, verdict: AgencyVerdict) -> None:
        with tracing.within(record):  # a batch's verdict: in its record's span
            await producer.publish(verdicts.name, verdict, header(record.headers, TRACEPARENT))

    def count_not_routed(records: list[Record], verdicts: list[AgencyVerdict | None]) -> None:
        for record, verdict in zip(records, verdicts, strict=True):
            if verdict is None:
                MESSAGES.labels(name, record.topic, "not_routed").inc()

    async def handle(record: Record) -> None:
        verdict = rule(record)
        if verdict is not None:
            await publish(record, verdict)
        count_not_routed([record], [verdict])

    async def handle_batch(records: list[Record]) -> None:
        """A fetched batch's verdicts sent together, every one acknowledged before the
        offsets are committed. Any poison record, or any failed send, fails the batch: the
        service then takes the records one at a time (a verdict sent twice has the same id,
        and the aggregator keeps the first)."""
        verdicts = []
        for record in records:
            with tracing.within(record):  # its log scope, and its span
                verdicts.append(rule(record))
        await all_settled(
            publish(r, v) for r, v in zip(records, verdicts, strict=True) if v is not None
        )
        count_not_routed(records, verdicts)

    return ConsumerService(
        name,
        [DECLARATIONS_SUBMITTED.name],
        entry.group,
        settings,
        handle,
        producer,
        handle_batch=handle_batch,
        transport=transport,
        health=health,
    )


def run_agency(
    agency: str,
    rules: Callable[[DeclarationSubmitted, R, datetime], AgencyVerdict],
    reference: R,
) -> None:
    """``python -m <the agency's module>``: rule with ``reference`` until SIGTERM.

    ``agency`` is the code of a registered agency (:mod:`singlewindow.registry`). Its ops
    endpoints (``/metrics``, ``/livez``, ``/readyz``) are served on ``<CODE>_METRICS_PORT``,
    by default the port of its registry entry; an invalid value exits at once (code 2),
    naming the variable.
    """

    def assess(declaration: DeclarationSubmitted, now: datetime) -> AgencyVerdict:
        return rules(declaration, reference, now)

    entry = agency_registry().get(agency)
    own = runtime.own_settings(entry.code, lambda: service_settings(entry.code, entry.metrics_port))
    runtime.main(
        entry.code,
        lambda health: agency_service(entry.code, assess, health=health),
        own.metrics_port,
    )
