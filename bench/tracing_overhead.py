"""Benchmark: what tracing costs the consume loop per record (not a test).

Pure, no broker: the consume loop's own path for one record (``ConsumerService``'s
``_process_partition``: the handle-time histogram, the log scope and consumer span of
``tracing.handling``, the retry wrapper, the outcome counter) over a batch of records, with a
handler that does nothing, so that what is measured is the loop's overhead alone. Modes:

- ``before``: ``tracing.handling`` replaced by a shared no-op (the loop as it was before
  tracing: no log scope, no span);
- ``off``: tracing off, the default (a log scope a record, no span);
- ``on``: tracing on, spans to a batch processor whose exporter drops them (the cost of
  making and ending a span a record, context propagation included, not of any export).

For scale, the agency's own per-record work: decoding and verifying a signed declaration.

``python -m bench.tracing_overhead [records]`` (default 5000; best of 15 rounds).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from aiokafka import ConsumerRecord
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from singlewindow import tracing
from singlewindow.events import DeclarationSubmitted
from singlewindow.kafka import consumer as consumer_module
from singlewindow.kafka.consumer import ConsumerService, decode_signed
from singlewindow.kafka.headers import event_headers
from singlewindow.kafka.producer import EventProducer
from singlewindow.settings import Settings
from singlewindow.testing import FakeBroker
from tests import factories

ROUNDS = 15


class Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def records(n: int) -> list[ConsumerRecord]:
    payload = factories.signed(factories.declaration("D-1"))
    headers = event_headers("intake", payload)
    return [
        ConsumerRecord("declarations.submitted", 0, i, 0, 0, b"D-1", payload, None, 4, 9, headers)
        for i in range(n)
    ]


def loop(broker: FakeBroker) -> ConsumerService:
    """A consumer service whose handler does nothing (never started: its path is called)."""

    async def handle(record: ConsumerRecord) -> None:
        return None

    return ConsumerService(
        "customs",
        ["declarations.submitted"],
        "customs",
        Settings(),
        handle,
        EventProducer(Settings(), "customs", transport=broker),
        transport=broker,
    )


async def round_us(service: ConsumerService, batch: list[ConsumerRecord]) -> float:
    """One round's time a record through the loop's path, in microseconds."""
    start = time.perf_counter()
    await service._process_partition(batch)
    return (time.perf_counter() - start) / len(batch) * 1e6


def decode_us(batch: list[ConsumerRecord]) -> float:
    keys = factories.REGISTRY
    sample = batch[:2000]
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for record in sample:
            decode_signed(DeclarationSubmitted, record, keys)
        best = min(best, time.perf_counter() - start)
    return best / len(sample) * 1e6


async def main(n: int) -> None:
    batch = records(n)
    service = loop(FakeBroker())
    handling = consumer_module.tracing.handling
    no_op: Any = nullcontext()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped(), max_queue_size=n * ROUNDS))

    def before() -> None:
        consumer_module.tracing.handling = lambda *_: no_op  # type: ignore[assignment]
        tracing.use(None)

    def off() -> None:
        consumer_module.tracing.handling = handling  # type: ignore[assignment]
        tracing.use(None)

    def on() -> None:
        consumer_module.tracing.handling = handling  # type: ignore[assignment]
        tracing.use(provider)

    modes = {"before": before, "off": off, "on": on}
    best = dict.fromkeys(modes, float("inf"))
    for _ in range(ROUNDS):  # the modes in turn: a busy machine slows them alike
        for mode, switch in modes.items():
            switch()
            best[mode] = min(best[mode], await round_us(service, batch))
    off()
    provider.shutdown()
    print(f"consume loop, {n} records, no-op handler, best of {ROUNDS} (µs a record):")
    for mode, us in best.items():
        extra = "" if mode == "before" else f"  (+{us - best['before']:.2f} µs)"
        print(f"  {mode:<7} {us:7.2f}{extra}")
    print(f"for scale, decoding + verifying one signed declaration: {decode_us(batch):.1f} µs")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5_000))
