"""The producer every service writes events with: idempotent, ``acks=all``, bounded waits.

It starts lazily: :meth:`EventProducer.start` waits for Kafka (retrying, see
:mod:`singlewindow.kafka.connect`); without it the first send starts it, and fails with
:class:`PublishTimeout` while Kafka is away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidTimestampError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnknownProducerId,
)

from singlewindow import tracing
from singlewindow.events import Event
from singlewindow.health import NotReady
from singlewindow.kafka.connect import close_quietly, start_client
from singlewindow.kafka.headers import Headers, event_headers
from singlewindow.kafka.options import kafka_options
from singlewindow.kafka.transport import ProducerClient, Transport
from singlewindow.metrics import PUBLISHED
from singlewindow.settings import Settings
from singlewindow.signing import SigningKey

log = logging.getLogger(__name__)


class PublishTimeout(RuntimeError):
    """Kafka did not acknowledge within the bound; the event may or may not be written."""


def new_producer(settings: Settings, client_id: str, **options: object) -> AIOKafkaProducer:
    """A producer as every service of the platform runs it: idempotent, ``acks=all``, the
    request timeout of the settings, a 2 ms linger. ``options`` add to these or override
    them (a transactional producer adds its ``transactional_id``, say), never how it
    connects (:func:`~singlewindow.kafka.options.kafka_options`)."""
    defaults: dict[str, object] = {
        "acks": "all",
        "enable_idempotence": True,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
        "linger_ms": 2,
    }
    return AIOKafkaProducer(**kafka_options(settings), client_id=client_id, **(defaults | options))


# After these the idempotent producer's sequence state is broken (a broker restart can cause
# them): retrying with the same producer fails forever, so it is replaced.
BROKEN_STATE = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch)

# The record itself is refused (by aiokafka before sending, or by the broker): sending the
# same record again can never succeed, so these are never retried as transient faults, though
# they are KafkaErrors. (aiokafka maps the broker's INVALID_RECORD, code 87, to UnknownError,
# which cannot be told from a transient server error: it stays transient.)
REJECTED = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    InvalidTimestampError,
)


class EventProducer:
    """Publishes events of one service, signed with its key; ``publish`` returns once Kafka
    acknowledged. (Without a key it sends only what is not an event: dead letters.) Its
    client is an aiokafka producer, or the ``transport``'s (see
    :mod:`singlewindow.kafka.transport`)."""

    def __init__(
        self,
        settings: Settings,
        service: str,
        signer: SigningKey | None = None,
        timeout_s: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: Transport | None = None,
    ) -> None:
        self.settings, self.service, self.timeout_s = settings, service, timeout_s
        self.signer, self.clock, self.transport = signer, clock, transport
        self.producer = self._new_client()
        self._unstarted = True  # started by start(), or else by the first send
        self._lock = asyncio.Lock()

    def _new_client(self) -> ProducerClient:
        """A new aiokafka producer (or the transport's client, when given one)."""
        if self.transport is not None:
            return self.transport.producer(self.settings, self.service)
        producer: ProducerClient = new_producer(self.settings, self.service)
        return producer

    async def start(self, stopping: asyncio.Event | None = None) -> None:
        """Start, waiting for Kafka as long as it takes, or until ``stopping`` is set."""
        async with self._lock:
            if not self._unstarted:
                return
            producer = await start_client(
                self._new_client,
                f"{self.service}: producer",
                stopping,
                first=self.producer,
            )
            if producer is not None:
                self.producer, self._unstarted = producer, False
            else:  # stopping: the first send (if any) starts a fresh one
                self.producer = self._new_client()

    async def stop(self) -> None:
        await self.producer.stop()

    async def reachable(self) -> str:
        """A readiness probe (:meth:`singlewindow.health.Health.probe`): started, and a broker
        answers a metadata request (a transport's client: once started)."""
        if self._unstarted:
            raise NotReady("not connected to Kafka yet")
        if isinstance(self.producer, AIOKafkaProducer):
            await self.producer.client.fetch_all_metadata()  # KafkaError when none answers
        return "connected"

    async def publish(self, topic: str, event: Event, parent_trace: bytes | None = None) -> None:
        """Sign ``event`` and send it (see :meth:`send`), in a producer span continuing the
        trace in hand (else ``parent_trace``'s: :func:`singlewindow.tracing.outgoing`)."""
        if self.signer is None:
            raise RuntimeError(f"{self.service}: no signing key, so no event can be published")
        _, payload = self.signer.sign(event, self.clock())
        with tracing.producing(self.service, topic, event.declaration_id, parent_trace) as tp:
            await self.send(topic, event.key(), payload, event_headers(self.service, payload, tp))

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers
    ) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                if self._unstarted:
                    await self._start_replacement()
                await self.producer.send_and_wait(topic, value, key=key, headers=headers)
        except TimeoutError as exc:
            raise PublishTimeout(f"{topic}: no acknowledgement within {self.timeout_s}s") from exc
        except BROKEN_STATE as exc:
            log.warning("%s: producer state broken (%r); replacing the producer", self.service, exc)
            await self._replace()
            raise
        PUBLISHED.labels(self.service, topic).inc()

    async def _replace(self) -> None:
        if self._unstarted:  # a concurrent sender replaced it already
            return
        old, self.producer = self.producer, self._new_client()
        self._unstarted = True  # started by the next send, which the caller retries
        try:
            await asyncio.wait_for(old.stop(), 10)
        except Exception as exc:  # closing a broken producer: nothing left to save
            log.warning("%s: closing the old producer failed: %r", self.service, exc)

    async def _start_replacement(self) -> None:
        async with self._lock:  # one start for all concurrent senders
            if not self._unstarted:
                return
            try:
                await self.producer.start()
                self._unstarted = False
            except BaseException as exc:  # an aiokafka client cannot be started twice
                failed, self.producer = self.producer, self._new_client()
                if not isinstance(exc, Exception):
                    raise  # cancelled (the send's bound): the half-started client is dropped
                await close_quietly(failed, f"{self.service}: producer")
                # the broker is still away: a transient fault
                raise PublishTimeout(f"producer could not start: {exc!r}") from exc
