"""Where a service's Kafka clients come from: the brokers, or a stand-in for tests.

:class:`~singlewindow.kafka.consumer.ConsumerService` and
:class:`~singlewindow.kafka.producer.EventProducer` build their aiokafka clients themselves,
on the brokers the settings name. Given a :class:`Transport` (``transport=``), they ask it
for their clients instead, and everything around the clients stays the same: the consume
loop, batches, decoding, dead letters, retries, commits.
:class:`singlewindow.testing.FakeBroker` is the Transport that keeps topics in memory, so an
agency's handler can be tested in full without Kafka.

The protocols list the part of aiokafka's clients the SDK uses, as aiokafka spells it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition

from singlewindow.kafka.headers import Headers
from singlewindow.settings import Settings

if TYPE_CHECKING:
    from singlewindow.kafka.consumer import Fill


class ProducerClient(Protocol):
    """What :class:`~singlewindow.kafka.producer.EventProducer` uses of an
    ``AIOKafkaProducer``."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
    ) -> Any: ...


class ConsumerClient(Protocol):
    """What :class:`~singlewindow.kafka.consumer.ConsumerService` uses of an
    ``AIOKafkaConsumer`` (a member of a consumer group)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord]]: ...
    def assignment(self) -> set[TopicPartition]: ...
    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None: ...
    # what readiness and the lag metric read (singlewindow.kafka.watch)
    async def topics(self) -> set[str]: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    def last_stable_offset(self, partition: TopicPartition) -> int | None: ...
    async def position(self, partition: TopicPartition) -> int: ...


class Transport(Protocol):
    """Makes the clients of a service (each call a new, unstarted client)."""

    def consumer(
        self,
        settings: Settings,
        group_id: str,
        client_id: str,
        topics: Sequence[str],
        fill: Fill | None = None,
        listener: ConsumerRebalanceListener | None = None,
    ) -> ConsumerClient:
        """A member of ``group_id`` subscribed to ``topics``, as
        :func:`~singlewindow.kafka.consumer.group_consumer` makes one; ``listener`` hears of
        its rebalances (its revocations and assignments, as aiokafka reports them)."""
        ...

    def producer(self, settings: Settings, client_id: str) -> ProducerClient:
        """A producer, as :func:`~singlewindow.kafka.producer.new_producer` makes one."""
        ...
