"""Benchmark: how fast the auditors' reader replays and decodes events (not a test).

Writes 10,000 declaration events to a scratch topic, replays them with the same reader the
audit tool uses (manual assignment, read_committed, decode and validate every event), and
prints the rate. ``python -m bench.replay [count]``.
"""

from __future__ import annotations

import sys
import time
import uuid

from aiokafka import AIOKafkaProducer

from bench.kafkatools import scratch_topics
from services.audit.log import read_events
from singlewindow.kafka.options import kafka_options
from singlewindow.runtime import run_loop
from singlewindow.settings import Settings, get_settings
from tests import factories


async def replay_rate(settings: Settings, count: int = 10_000) -> float:
    """The best of three replays of ``count`` signed declarations, in events/s."""
    topic = f"bench.replay.{uuid.uuid4().hex[:8]}"
    best = 0.0
    async with scratch_topics(settings, [topic], settings.topic_partitions):
        producer = AIOKafkaProducer(**kafka_options(settings), linger_ms=20, acks="all")
        await producer.start()
        for i in range(count):
            event = factories.declaration(f"BENCH-{i:06d}")
            await producer.send(topic, factories.signed(event), key=event.key())
        await producer.flush()
        await producer.stop()
        for attempt in range(3):
            started = time.perf_counter()
            seen = 0
            async for item in read_events(settings, [topic]):
                assert item.event is not None
                seen += 1
            elapsed = time.perf_counter() - started
            print(
                f"replay {attempt + 1}: {seen} events in {elapsed:.2f} s = "
                f"{seen / elapsed:,.0f} events/s (read_committed, decoded, validated)"
            )
            best = max(best, seen / elapsed)
    return best


if __name__ == "__main__":
    run_loop(replay_rate(get_settings(), int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
