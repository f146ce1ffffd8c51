"""Benchmark (not a test): a bare aiokafka pipeline of the platform's shape, to compare with it.

The platform's path, minus what it adds (Avro, signatures, transactions, the read model):

    driver ─▶ in ─┬─▶ pass a ─▶ a ─┐
                  ├─▶ pass b ─▶ b ─┼─▶ join ─▶ out ─▶ driver
                  └─▶ pass c ─▶ c ─┘

The driver injects N ids (values of ~1 KiB, keyed by id) into ``in``; three pass-through
stages, each its own OS process and consumer group, copy ``in`` to their own topic with the
same key; a join stage (its own process) reads ``a``, ``b`` and ``c`` and writes the id to
``out`` once the three copies of it arrived; the driver reads ``out`` until every id is seen.
Throughput: N / (first inject to last id out).

The guarantees the platform keeps otherwise: the platform's connection options
(:func:`~singlewindow.kafka.options.kafka_options`, as the principal of the settings: run as
the stack's ``admin``), idempotent producers with acks=all and ``linger_ms=2``, consumers as
the platform's (manual commits, ``read_committed``, range assignment, ``max_poll_records``
200) that commit a batch only once all its sends are acknowledged. The topics are scratch
topics ``bench.bare.<id>.<name>`` with ``settings.topic_partitions`` partitions, deleted at
the end; the stage processes are ended however the run ends.

``python -m bench.barepipe [count]`` (default 20,000).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.synchronize
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from bench.kafkatools import delete_groups, scratch_topics
from singlewindow.kafka.consumer import group_consumer
from singlewindow.kafka.options import kafka_options
from singlewindow.kafka.producer import new_producer
from singlewindow.runtime import run_loop
from singlewindow.settings import Settings, get_settings

VALUE_SIZE = 1024
MAX_POLL_RECORDS = 200
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
PASS_STAGES = ("a", "b", "c")
JOIN_OF = len(PASS_STAGES)


@dataclass(frozen=True)
class PipeFigures:
    """One run: ids through the pipeline, first inject to last out."""

    ids: int
    seconds: float
    ids_per_s: float


def _producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    """A producer as the platform's (idempotent, acks=all, the same linger)."""
    return new_producer(settings, client_id)


def _consumer(settings: Settings, group_id: str, max_poll_records: int) -> AIOKafkaConsumer:
    """A group member as the platform's: the same function builds both."""
    return group_consumer(settings, group_id, group_id, max_poll_records=max_poll_records)


class _Ready(ConsumerRebalanceListener):  # type: ignore[misc]
    """Sets the event once the group gave this member its partitions."""

    def __init__(self, ready: multiprocessing.synchronize.Event) -> None:
        self.ready = ready

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if assigned:
            self.ready.set()


class Spec(NamedTuple):
    """One stage: ``kind`` "pass" sends every record to ``sink``; "join" sends the id to
    ``sink`` once it came from every source."""

    kind: str
    sources: list[str]
    sink: str
    group_id: str
    max_poll_records: int


async def _stage(
    settings: Settings,
    spec: Spec,
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
) -> None:
    """Run one stage until ``stop`` is set (then it leaves its group) or it is killed."""
    producer = _producer(settings, spec.group_id)
    consumer = _consumer(settings, spec.group_id, spec.max_poll_records)
    consumer.subscribe(spec.sources, listener=_Ready(ready))
    await producer.start()
    await consumer.start()
    seen: Counter[bytes] = Counter()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            if not batch:
                continue
            sends = []
            for records in batch.values():
                for record in records:
                    if spec.kind == "pass":
                        sends.append(await producer.send(spec.sink, record.value, key=record.key))
                        continue
                    seen[record.key] += 1
                    if seen[record.key] == JOIN_OF:
                        del seen[record.key]
                        sends.append(await producer.send(spec.sink, record.key, key=record.key))
            await asyncio.gather(*sends)
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
    finally:
        await consumer.stop()
        await producer.stop()


def stage_process(
    settings: Settings,
    spec: Spec,
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
) -> None:
    """The entry point of a stage's process (spawned)."""
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(_stage(settings, spec, ready, stop))


Stage = tuple[multiprocessing.process.BaseProcess, multiprocessing.synchronize.Event]


@contextlib.contextmanager
def _stages(
    settings: Settings, topics: dict[str, str], max_poll_records: int
) -> Iterator[list[Stage]]:
    """The four stage processes (each with its "assigned" event), started; on exit asked to
    stop (they leave their groups), terminated, killed, whichever ends them."""
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    started: list[Stage] = []
    try:
        for spec in _plan(topics, max_poll_records):
            ready = spawn.Event()
            spawned = spawn.Process(
                target=stage_process,
                args=(settings, spec, ready, stop),
                name=spec.group_id,
                daemon=True,
            )
            spawned.start()
            started.append((spawned, ready))
        yield started
    finally:
        stop.set()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc, _ in started:
            proc.join(max(0.1, deadline - time.monotonic()))
        for proc, _ in started:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def _plan(topics: dict[str, str], max_poll_records: int) -> list[Spec]:
    """Every stage: three pass-throughs from ``in``, then the join of their topics."""
    prefix = topics["in"].rpartition(".")[0]
    plan = [
        Spec("pass", [topics["in"]], topics[s], f"{prefix}.pass-{s}", max_poll_records)
        for s in PASS_STAGES
    ]
    sources = [topics[s] for s in PASS_STAGES]
    plan.append(Spec("join", sources, topics["out"], f"{prefix}.join", max_poll_records))
    return plan


def _check_alive(stages: list[Stage]) -> None:
    for proc, _ in stages:
        if not proc.is_alive():
            raise RuntimeError(f"stage {proc.name} exited ({proc.exitcode})")


async def bare_pipe(
    settings: Settings,
    count: int = 20_000,
    timeout_s: float = 600.0,
    max_poll_records: int = MAX_POLL_RECORDS,
) -> PipeFigures:
    """Inject ``count`` ids, wait for all of them on ``out``: the pipeline's throughput."""
    run = uuid.uuid4().hex[:8]
    topics = {name: f"bench.bare.{run}.{name}" for name in ("in", *PASS_STAGES, "out")}
    async with scratch_topics(settings, list(topics.values()), settings.topic_partitions):
        try:
            with _stages(settings, topics, max_poll_records) as stages:
                seconds = await _drive(settings, topics, stages, count, timeout_s)
        finally:
            await delete_groups(
                settings, [spec.group_id for spec in _plan(topics, max_poll_records)]
            )
    return PipeFigures(count, seconds, count / seconds)


async def _drive(
    settings: Settings,
    topics: dict[str, str],
    stages: list[Stage],
    count: int,
    timeout_s: float,
) -> float:
    """Once every stage has its partitions: inject, read ``out`` until every id is there.
    The seconds from the first inject to the last id out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    while not all(ready.is_set() for _, ready in stages):
        _check_alive(stages)
        if loop.time() > deadline:
            raise RuntimeError(f"stages not assigned after {READY_TIMEOUT_S}s")
        await asyncio.sleep(0.05)
    reader = AIOKafkaConsumer(
        **kafka_options(settings),
        enable_auto_commit=False,
        isolation_level="read_committed",
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )
    producer = _producer(settings, f"{topics['in']}.driver")
    await reader.start()
    await producer.start()
    try:
        partitions = [TopicPartition(topics["out"], p) for p in range(settings.topic_partitions)]
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        ids = [f"{topics['in']}-{i:07d}".encode() for i in range(count)]
        pending = set(ids)
        started = last = time.time()
        inject = asyncio.create_task(_inject(producer, topics["in"], ids))
        try:
            end = loop.time() + timeout_s
            while pending:
                if inject.done():
                    inject.result()  # raises if the injection failed
                batch = await reader.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        pending.discard(record.value)
                if batch:
                    last = time.time()
                    continue
                _check_alive(stages)
                if loop.time() > end:
                    raise RuntimeError(
                        f"{len(pending):,} of {count:,} ids not out after {timeout_s}s"
                    )
            await inject
        finally:
            if not inject.done():
                inject.cancel()
                with contextlib.suppress(BaseException):
                    await inject
    finally:
        await producer.stop()
        await reader.stop()
    return last - started


async def _inject(producer: AIOKafkaProducer, topic: str, ids: list[bytes]) -> None:
    """Every id as fast as the producer takes them, keyed by id, ~1 KiB values."""
    sends = []
    for key in ids:
        value = key + b" " + b"x" * (VALUE_SIZE - len(key) - 1)
        sends.append(await producer.send(topic, value, key=key))
    await asyncio.gather(*sends)


def main() -> None:
    """``python -m bench.barepipe [count]``."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    figures = asyncio.run(bare_pipe(get_settings(), count))
    print(
        f"bare pipeline (in -> 3 pass stages -> join -> out, {JOIN_OF + 1} processes): "
        f"{figures.ids:,} ids in {figures.seconds:.1f} s = {figures.ids_per_s:,.0f} ids/s"
    )


if __name__ == "__main__":
    main()
