"""Traces across the flow: the intake's request, a producer span a publish whose context the
record carries as its ``traceparent``, a consumer span a handled record as the child of it,
and the aggregator's results continuing the trace of the input that decided them. Run in
memory: the SDK's own services on singlewindow.testing.FakeBroker, spans in OpenTelemetry's
in-memory exporter; and the local span files with the tree ``show`` prints."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.aggregator.service import Aggregator
from services.aggregator.tasks import Task
from services.intake.api import IntakeService, Limits, create_app
from services.intake.ports import InMemoryIdempotencyStore, InMemoryReadModel, Published
from singlewindow import tracing
from singlewindow.agency import agency_service
from singlewindow.events import DeclarationSubmitted
from singlewindow.kafka.consumer import ConsumerService, PoisonMessage, Record
from singlewindow.kafka.headers import TRACEPARENT, event_headers, header
from singlewindow.kafka.producer import EventProducer
from singlewindow.settings import Settings, TracingSettings
from singlewindow.testing import FakeBroker
from singlewindow.topics import (
    CLEARANCE_RESULTS,
    DECLARATIONS_SUBMITTED,
    DECLARATIONS_WITHDRAWN,
    verdict_topics,
)
from singlewindow.tracing.__main__ import main as tracing_cli
from tests import factories
from tests.processes import ROOT
from tests.unit.intake_tokens import TestIssuer
from tests.unit.test_intake_schema import valid_body

DECLARATIONS = DECLARATIONS_SUBMITTED.name
CUSTOMS_VERDICTS = verdict_topics()["customs"].name
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
ISSUER = TestIssuer()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, every span kept in memory as it ends."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    before = tracing.use(provider)
    yield exporter
    tracing.use(before)


def one(finished: list[ReadableSpan], name: str, **attributes: Any) -> ReadableSpan:
    found = [
        s
        for s in finished
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, f"{len(found)} spans {name} {attributes}: {[s.name for s in finished]}"
    return found[0]


def traceparent_of(span: ReadableSpan) -> bytes:
    return tracing.traceparent_of(span.get_span_context())


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


class BrokerPublisher:
    """The intake's publisher port over the fake broker (KafkaPublisher, without its
    read-model seeding)."""

    def __init__(self, producer: EventProducer) -> None:
        self.producer = producer

    async def publish(self, event: Published) -> None:
        declared = isinstance(event, DeclarationSubmitted)
        topic = DECLARATIONS_SUBMITTED if declared else DECLARATIONS_WITHDRAWN
        await self.producer.publish(topic.name, event)


def intake_on(broker: FakeBroker) -> httpx.AsyncClient:
    producer = EventProducer(Settings(), "intake", factories.SIGNING["intake"], transport=broker)
    service = IntakeService(
        BrokerPublisher(producer),
        InMemoryReadModel(),
        InMemoryIdempotencyStore(),
        verifier=ISSUER.verifier(),
        id_secret=b"s" * 32,
        limits=Limits(rate_burst=1000),
    )
    transport = httpx.ASGITransport(create_app(service))
    return httpx.AsyncClient(transport=transport, base_url="http://intake", headers=ISSUER.auth())


async def test_one_trace_from_the_intake_request_through_an_agency_verdict(
    spans: InMemorySpanExporter,
) -> None:
    settings = factories.with_keys(Settings(), "customs")
    async with FakeBroker() as broker, intake_on(broker) as client:
        customs = agency_service(
            "customs",
            lambda d, now: factories.verdict(d.declaration_id),
            settings,
            transport=broker,
        )
        await broker.start(customs)
        answer = await client.post(
            "/v1/declarations", json=valid_body(), headers={"traceparent": CALLER}
        )
        assert answer.status_code == 202, answer.text
        await broker.run_until_idle()
    declaration_id = answer.json()["declaration_id"]
    [submitted] = broker.records(DECLARATIONS)
    [verdict] = broker.records(CUSTOMS_VERDICTS)
    finished = list(spans.get_finished_spans())

    request = one(finished, "POST /v1/declarations")
    publish = one(finished, f"send {DECLARATIONS}", **{"messaging.client.id": "intake"})
    consume = one(finished, f"process {DECLARATIONS}", **{"messaging.client.id": "customs"})
    answer_span = one(finished, f"send {CUSTOMS_VERDICTS}")
    assert {f"{s.get_span_context().trace_id:032x}" for s in finished} == {CALLER_TRACE}
    assert request.kind == SpanKind.SERVER and parent_id(request) == 0x00F067AA0BA902B7
    assert publish.kind == SpanKind.PRODUCER and parent_id(publish) == request.context.span_id
    assert header(submitted.headers, TRACEPARENT) == traceparent_of(publish)  # injected
    assert consume.kind == SpanKind.CONSUMER and parent_id(consume) == publish.context.span_id
    assert answer_span.kind == SpanKind.PRODUCER
    assert parent_id(answer_span) == consume.context.span_id
    assert header(verdict.headers, TRACEPARENT) == traceparent_of(answer_span)
    assert consume.attributes == {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": DECLARATIONS,
        "messaging.destination.partition.id": "0",
        "messaging.kafka.offset": 0,
        "messaging.consumer.group.name": "customs",
        "messaging.client.id": "customs",
        "messaging.kafka.message.key": declaration_id,
    }
    assert publish.attributes is not None
    assert publish.attributes["messaging.kafka.message.key"] == declaration_id


async def test_a_record_handled_alone_publishes_in_its_consumer_span(
    spans: InMemorySpanExporter,
) -> None:
    """The one-record-at-a-time path (a service without a batch handler, or a batch's
    fallback): the handler's publish names no parent, and still continues the record's."""
    async with FakeBroker() as broker:
        producer = EventProducer(
            Settings(), "customs", factories.SIGNING["customs"], transport=broker
        )

        async def handle(record: Record) -> None:
            verdict = factories.verdict(record.key.decode())
            await producer.publish(CUSTOMS_VERDICTS, verdict)

        service = ConsumerService(
            "customs", [DECLARATIONS], "customs", Settings(), handle, producer, transport=broker
        )
        await broker.start(service)
        sent = await broker.publish(DECLARATIONS, factories.declaration("D-1"))
        await broker.run_until_idle()
    [verdict] = broker.records(CUSTOMS_VERDICTS)
    finished = list(spans.get_finished_spans())
    consume = one(finished, f"process {DECLARATIONS}")
    publish = one(finished, f"send {CUSTOMS_VERDICTS}")
    upstream = header(sent.headers, TRACEPARENT)
    assert upstream is not None
    assert f"{consume.context.trace_id:032x}" == upstream.split(b"-")[1].decode()
    assert parent_id(consume) == int(upstream.split(b"-")[2], 16)
    assert parent_id(publish) == consume.context.span_id
    assert header(verdict.headers, TRACEPARENT) == traceparent_of(publish)


async def test_a_dead_lettered_record_has_a_failed_consumer_span(
    spans: InMemorySpanExporter,
) -> None:
    async def handle(record: Record) -> None:
        raise PoisonMessage("unreadable")

    async with FakeBroker() as broker:
        producer = EventProducer(Settings(), "customs", transport=broker)
        service = ConsumerService(
            "customs", [DECLARATIONS], "customs", Settings(), handle, producer, transport=broker
        )
        await broker.start(service)
        await broker.publish(DECLARATIONS, b"garbage", key=b"D-1")
        await broker.run_until_idle()
    assert len(broker.dead_letters()) == 1
    span = one(list(spans.get_finished_spans()), f"process {DECLARATIONS}")
    assert span.status.status_code == StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


async def test_with_tracing_off_no_span_is_made_and_records_still_carry_the_trace_on() -> None:
    assert not tracing.enabled()
    async with FakeBroker() as broker, intake_on(broker) as client:
        answer = await client.post(
            "/v1/declarations", json=valid_body(), headers={"traceparent": CALLER}
        )
        assert answer.status_code == 202
    [submitted] = broker.records(DECLARATIONS)
    carried = header(submitted.headers, TRACEPARENT)
    assert carried is not None and carried.split(b"-")[1].decode() == CALLER_TRACE
    assert carried != CALLER.encode()  # a new span id: the record's own


class Transactional:
    """Stands in for the task's transactional producer: keeps what was committed."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, list[tuple[str, bytes]]]] = []

    async def begin_transaction(self) -> None:
        pass

    async def send(self, topic: str, value: bytes | None, **kw: Any) -> asyncio.Future[None]:
        self.sent.append((topic, value, kw["headers"]))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_offsets_to_transaction(self, *args: Any) -> None:
        pass

    async def commit_transaction(self) -> None:
        pass


def consumed(topic: str, offset: int, event: Any, traceparent: bytes) -> Any:
    payload = factories.signed(event)
    headers = event_headers("test", payload, traceparent)
    return ConsumerRecord(
        topic, 0, offset, 0, 0, event.key(), payload, None, -1, len(payload), headers
    )


async def test_a_result_continues_the_trace_of_the_verdict_that_decided_it(
    spans: InMemorySpanExporter,
) -> None:
    keys = factories.service_keys("aggregator")
    aggregator = Aggregator(
        Settings(),
        timedelta(seconds=60),
        clock=lambda: factories.T0 + timedelta(seconds=1),
        keys=keys,
    )
    task = Task(Settings(), aggregator.group, 0, timedelta(days=7), keys)
    producer = Transactional()
    task.producer = producer  # type: ignore[assignment]
    aggregator.tasks[0] = task
    trace_id = "5" * 32

    def parent(span: str) -> bytes:
        return f"00-{trace_id}-{span * 16}-01".encode()

    port = verdict_topics()["port"].name
    records = [
        consumed(DECLARATIONS, 0, factories.declaration("D-1"), parent("1")),
        consumed(CUSTOMS_VERDICTS, 0, factories.verdict("D-1"), parent("2")),
        consumed(port, 0, factories.verdict("D-1", "port"), parent("3")),
    ]
    await aggregator._process(0, records)
    [(_, _, headers)] = [s for s in producer.sent if s[0] == CLEARANCE_RESULTS.name]
    finished = list(spans.get_finished_spans())
    result = one(finished, f"send {CLEARANCE_RESULTS.name}")
    decider = one(finished, f"process {port}")
    assert header(headers, TRACEPARENT) == traceparent_of(result)
    assert parent_id(result) == decider.context.span_id  # the port's verdict completed it
    assert parent_id(decider) == int("3" * 16, 16)
    assert {f"{s.context.trace_id:032x}" for s in finished} == {trace_id}
    assert len([s for s in finished if s.kind == SpanKind.CONSUMER]) == 3


def test_no_exporter_configured_means_no_tracing() -> None:
    assert tracing.exporters("customs", TracingSettings()) == []
    assert not tracing.configure_tracing("customs", TracingSettings())
    assert not tracing.enabled()
    both = TracingSettings(
        otel_exporter_otlp_endpoint="http://collector:4318", otel_traces_file="/tmp/{service}.x"
    )
    assert tracing.exporters("customs", both.model_copy(update={"otel_sdk_disabled": True})) == []


def test_otlp_when_an_endpoint_is_set() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    [exporter] = tracing.exporters(
        "customs", TracingSettings(otel_exporter_otlp_endpoint="http://collector:4318")
    )
    assert isinstance(exporter, OTLPSpanExporter)
    assert exporter._endpoint == "http://collector:4318/v1/traces"  # type: ignore[attr-defined]
    [given] = tracing.exporters(
        "customs", TracingSettings(otel_exporter_otlp_traces_endpoint="https://tempo/otlp")
    )
    assert given._endpoint == "https://tempo/otlp"  # type: ignore[attr-defined]


def write_spans(folder: Path) -> str:
    """An intake request and a customs verdict, each process writing its own file as
    configured by OTEL_TRACES_FILE=<folder>/{service}.jsonl; the trace id."""
    settings = TracingSettings(otel_traces_file=str(folder / "{service}.jsonl"))
    providers = {}
    for service in ("intake", "customs"):
        [exporter] = tracing.exporters(service, settings)
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers[service] = provider
    intake = providers["intake"].get_tracer("t")
    customs = providers["customs"].get_tracer("t")
    key = {"messaging.kafka.message.key": "DEC-42"}
    with intake.start_as_current_span(
        "POST /v1/declarations", start_time=0, end_on_exit=False
    ) as request:
        with intake.start_as_current_span(
            "send declarations.submitted", start_time=1_000_000, attributes=key
        ) as send:
            send.end(end_time=3_000_000)
        request.end(end_time=5_000_000)
    context = trace.set_span_in_context(send)
    process = customs.start_span(
        "process declarations.submitted", context, start_time=4_000_000, attributes=key
    )
    process.end(end_time=9_500_000)
    for provider in providers.values():
        provider.shutdown()
    return f"{request.get_span_context().trace_id:032x}"


def test_each_process_appends_its_spans_to_its_own_file_one_json_object_a_line(
    tmp_path: Path,
) -> None:
    trace_id = write_spans(tmp_path / "traces")
    files = sorted(p.name for p in (tmp_path / "traces").iterdir())
    assert files == ["customs.jsonl", "intake.jsonl"]
    lines = [json.loads(t) for t in (tmp_path / "traces" / "intake.jsonl").read_text().splitlines()]
    assert [(line["name"], line["kind"], line["trace_id"]) for line in lines] == [
        ("send declarations.submitted", "INTERNAL", trace_id),
        ("POST /v1/declarations", "INTERNAL", trace_id),
    ]
    send, request = lines
    assert send["parent_id"] == request["span_id"] and request["parent_id"] is None
    assert (send["start_ns"], send["end_ns"], send["service"]) == (1_000_000, 3_000_000, "intake")


def test_show_prints_a_trace_from_every_file_as_a_tree_with_durations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace_id = write_spans(tmp_path)
    (tmp_path / "port.jsonl").write_text('{"trace_id": "cut sho')  # a process killed mid-line
    assert tracing_cli(["show", trace_id, "--dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == f"trace {trace_id}: 3 spans, 2 services, 9.5 ms"
    assert shown[1].startswith("intake: POST /v1/declarations")
    assert shown[2].startswith("  intake: send declarations.submitted")
    assert shown[3].startswith("    customs: process declarations.submitted")
    assert "5.5 ms  @     4.0 ms" in shown[3]  # its duration, its start in the trace
    assert tracing_cli(["show", "DEC-42", "--dir", str(tmp_path)]) == 0  # by declaration
    assert capsys.readouterr().out.splitlines() == shown


def test_a_traced_process_has_written_its_spans_by_the_time_it_exits(tmp_path: Path) -> None:
    """configure_tracing as runtime.main calls it, a publish's span, a normal exit: the span
    is in the process's file though the batch processor's 5 s had not passed."""
    script = (
        "from singlewindow import tracing\n"
        "assert tracing.configure_tracing('customs')\n"
        "tracing.finish(tracing.outgoing('customs', 'verdicts.customs', 'DEC-1'))\n"
    )
    env = {**os.environ, "OTEL_TRACES_FILE": str(tmp_path / "{service}.jsonl")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    [line] = [json.loads(t) for t in (tmp_path / "customs.jsonl").read_text().splitlines()]
    assert (line["service"], line["name"], line["kind"]) == (
        "customs",
        "send verdicts.customs",
        "PRODUCER",
    )
    assert line["attributes"]["messaging.kafka.message.key"] == "DEC-1"
