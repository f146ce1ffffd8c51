"""The SDK for an agency service: consume declarations, rule, publish a verdict.

An agency supplies a pure ``assess(declaration, now) -> AgencyVerdict``; this module does
the rest: consumer group, decoding, dead letters, metrics, shutdown. At-least-once: the
input offset is committed only after the verdict is acknowledged, and verdict ids are
deterministic, so a redelivery produces a duplicate the aggregator ignores.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from singlewindow import runtime
from singlewindow.events import Agency, AgencyVerdict, DeclarationSubmitted
from singlewindow.kafka.consumer import ConsumerService, Record, decode_signed
from singlewindow.kafka.headers import TRACEPARENT, header
from singlewindow.kafka.producer import EventProducer
from singlewindow.metrics import MESSAGES
from singlewindow.settings import Settings, get_settings
from singlewindow.signing import registry_file, signing_key
from singlewindow.topics import DECLARATIONS_SUBMITTED, VERDICT_TOPICS

Assess = Callable[[DeclarationSubmitted, datetime], AgencyVerdict]
R = TypeVar("R")


def agency_service(
    agency: Agency,
    assess: Assess,
    settings: Settings | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ConsumerService:
    """The consumer service of one agency: its own group, its own verdict topic, its own
    signing key. It rules only on declarations the intake signed."""
    settings = settings or get_settings()
    name = str(agency)
    producer = EventProducer(settings, name, signing_key(settings), clock=clock)
    keys = registry_file(settings)
    verdicts = VERDICT_TOPICS[name]

    async def handle(record: Record) -> None:
        declaration = decode_signed(DeclarationSubmitted, record, keys)
        if agency not in declaration.required_agencies:
            MESSAGES.labels(name, record.topic, "not_routed").inc()
            return
        verdict = assess(declaration, clock())
        if verdict.declaration_id != declaration.declaration_id or verdict.agency != agency:
            raise ValueError(
                f"assess returned a verdict for {verdict.declaration_id}/{verdict.agency}"
            )
        await producer.publish(verdicts.name, verdict, header(record.headers, TRACEPARENT))

    return ConsumerService(name, [DECLARATIONS_SUBMITTED.name], name, settings, handle, producer)


def run_agency(
    agency: Agency,
    rules: Callable[[DeclarationSubmitted, R, datetime], AgencyVerdict],
    reference: R,
    default_metrics_port: int,
) -> None:
    """``python -m services.<agency>``: rule with ``reference`` until SIGTERM.

    Metrics are served on ``<AGENCY>_METRICS_PORT`` (default ``default_metrics_port``).
    """

    def assess(declaration: DeclarationSubmitted, now: datetime) -> AgencyVerdict:
        return rules(declaration, reference, now)

    port = int(os.environ.get(f"{str(agency).upper()}_METRICS_PORT", default_metrics_port))
    runtime.main(str(agency), lambda: agency_service(agency, assess), port)
