"""One aggregator task per partition number: partition p of every input topic (they are
co-partitioned), partition p of the join-state changelog, and a transactional producer.

aiokafka's ``send_offsets_to_transaction`` takes only a group id (no KIP-447 generation
fencing), so zombies are fenced the way Kafka Streams did before KIP-447: one transactional
producer per task, its ``transactional.id`` derived from the group and the partition. Opening
a task initialises that id, which aborts whatever a previous owner left open, and only then
restores the state from the changelog: the state is always what was committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from singlewindow.avro import CodecError
from singlewindow.events import ClearanceResult, JoinState
from singlewindow.kafka.headers import Headers, event_headers
from singlewindow.kafka.reader import read_partition
from singlewindow.settings import Settings
from singlewindow.topics import CLEARANCE_RESULTS, DEAD_LETTERS, JOIN_STATE

log = logging.getLogger(__name__)
NAME = "aggregator"


class Task:
    """The join state and transactional producer of one partition number."""

    def __init__(self, settings: Settings, group: str, partition: int) -> None:
        self.settings, self.group, self.partition = settings, group, partition
        self.states: dict[str, JoinState] = {}
        self.producer: AIOKafkaProducer | None = None

    @property
    def transactional_id(self) -> str:
        return f"{self.group}.join.p{self.partition}"

    async def open(self) -> None:
        """Fence any previous owner, then restore the committed state."""
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id=f"{NAME}-p{self.partition}",
            transactional_id=self.transactional_id,
            enable_idempotence=True,
            acks="all",
            request_timeout_ms=self.settings.kafka_request_timeout_ms,
            transaction_timeout_ms=60_000,
            linger_ms=5,
        )
        await self.producer.start()  # InitProducerId: bumps the epoch, aborts an open txn
        self.states = {}
        changelog = TopicPartition(JOIN_STATE.name, self.partition)
        for record in await read_partition(self.settings, changelog):
            if record.value is None:
                self.states.pop(record.key.decode(), None)
            else:
                try:
                    state = JoinState.from_avro(record.value)
                except (CodecError, ValidationError) as exc:  # never block the partition
                    log.error(
                        "task p%s: unreadable join state at %s/%s skipped: %s",
                        self.partition,
                        JOIN_STATE.name,
                        record.offset,
                        exc,
                    )
                    continue
                self.states[state.declaration_id] = state
        log.info("task p%s restored %s join states", self.partition, len(self.states))

    async def close(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            try:
                await asyncio.wait_for(producer.stop(), 10)
            except Exception as exc:  # closing a broken producer: nothing left to save
                log.warning("task p%s: producer close failed: %r", self.partition, exc)

    async def commit(
        self,
        states: Iterable[JoinState],
        results: Iterable[ClearanceResult],
        dead_letters: Iterable[tuple[bytes | None, bytes | None, Headers]] = (),
        offsets: dict[TopicPartition, int] | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        """One transaction: changelog, results, dead letters and input offsets, or nothing."""
        producer = self.producer
        if producer is None:
            raise RuntimeError(f"task p{self.partition} is closed")
        async with asyncio.timeout(timeout_s):
            await producer.begin_transaction()
            sends = []
            for topic, event in [
                *((JOIN_STATE.name, s) for s in states),
                *((CLEARANCE_RESULTS.name, r) for r in results),
            ]:
                payload = event.to_avro()
                sends.append(
                    await producer.send(
                        topic,
                        payload,
                        key=event.key(),
                        partition=self.partition,
                        headers=event_headers(NAME, payload),
                    )
                )
            for key, value, headers in dead_letters:
                sends.append(
                    await producer.send(DEAD_LETTERS.name, value, key=key, headers=headers)
                )
            await asyncio.gather(*sends)
            if offsets:
                await producer.send_offsets_to_transaction(offsets, self.group)
            await producer.commit_transaction()
