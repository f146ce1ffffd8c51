"""One declaration, one trace: the intake's request, each agency it is routed to, the
aggregator and the projector, read back from the span files every process writes
(``OTEL_TRACES_FILE``, set for the whole platform in conftest), linked by the
``traceparent`` every record carries."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx
import pytest

from deploy.local.demo_data import sample_declaration_body
from singlewindow.topics import CLEARANCE_RESULTS, DECLARATIONS_SUBMITTED, verdict_topics
from singlewindow.tracing.jsonl import SpanNode, read_trace, render, trace_files, walk
from tests.e2e.checks import trader
from tests.e2e.conftest import Platform, traces_dir
from tests.e2e.test_pipeline import final_status, submit

pytestmark = pytest.mark.e2e
DECLARATIONS = DECLARATIONS_SUBMITTED.name
RESULTS = CLEARANCE_RESULTS.name


def named(nodes: list[SpanNode], service: str, name: str, kind: str) -> list[SpanNode]:
    return [
        n
        for n in nodes
        if (n.line["service"], n.line["name"], n.line["kind"]) == (service, name, kind)
    ]


def expected_spans(asked: set[str]) -> set[tuple[str, str, str]]:
    """(service, span name, kind) that the trace of a declaration routed to ``asked`` has."""
    verdicts = {a: verdict_topics()[a].name for a in asked}
    return {
        ("intake", "POST /v1/declarations", "SERVER"),
        ("intake", f"send {DECLARATIONS}", "PRODUCER"),
        *((a, f"process {DECLARATIONS}", "CONSUMER") for a in asked),
        *((a, f"send {verdicts[a]}", "PRODUCER") for a in asked),
        ("aggregator", f"process {DECLARATIONS}", "CONSUMER"),
        *(("aggregator", f"process {verdicts[a]}", "CONSUMER") for a in asked),
        ("aggregator", f"send {RESULTS}", "PRODUCER"),
        ("projector", f"process {DECLARATIONS}", "CONSUMER"),
        *(("projector", f"process {verdicts[a]}", "CONSUMER") for a in asked),
        ("projector", f"process {RESULTS}", "CONSUMER"),
    }


async def spans_of(
    platform: Platform, trace_id: str, expected: set[tuple[str, str, str]], timeout_s: float
) -> list[SpanNode]:
    """The trace's roots once every expected span is in the files (a process exports its
    spans every 200 ms, after they end)."""
    deadline = time.monotonic() + timeout_s
    while True:
        roots = read_trace(trace_id, trace_files(traces_dir(platform.logs)))
        seen = {(n.line["service"], n.line["name"], n.line["kind"]) for _, n in walk(roots)}
        if expected <= seen:
            return roots
        if time.monotonic() > deadline:
            raise AssertionError(f"missing from trace {trace_id}: {sorted(expected - seen)}")
        await asyncio.sleep(0.2)


async def test_one_declaration_is_one_trace_through_every_service_it_passes(
    platform: Platform,
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{trace_id}-{caller_span}-01"
    async with httpx.AsyncClient(base_url=platform.url, timeout=60, headers=trader()) as client:
        declaration_id = await submit(
            client, sample_declaration_body(0), headers={"traceparent": traceparent}
        )
        answer: dict[str, Any] = await final_status(client, declaration_id)
    asked = {d["agency"] for d in answer["result"]["decisions"]}
    assert {"customs", "port"} <= asked  # laptops by sea

    roots = await spans_of(platform, trace_id, expected_spans(asked), timeout_s=30)
    print(render(trace_id, roots))  # the tree `python -m singlewindow.tracing show` prints
    [request] = roots  # one tree: every span's parent is in the trace
    assert (request.line["service"], request.line["kind"]) == ("intake", "SERVER")
    assert request.line["parent_id"] == caller_span  # the caller's trace continued
    nodes = [n for _, n in walk(roots)]
    parents = {c.line["span_id"]: n for n in nodes for c in n.children}
    for agency in asked:  # each agency's verdict in the span of the declaration it read
        [process] = named(nodes, agency, f"process {DECLARATIONS}", "CONSUMER")
        assert parents[process.line["span_id"]].line["name"] == f"send {DECLARATIONS}"
        assert process.line["attributes"]["messaging.kafka.message.key"] == declaration_id
        send = verdict_topics()[agency].name
        assert [c.line["name"] for c in process.children] == [f"send {send}"]
    # the result in the span of an input the aggregator read; its readers' spans below it
    [result] = named(nodes, "aggregator", f"send {RESULTS}", "PRODUCER")
    decided_by = parents[result.line["span_id"]]
    assert (decided_by.line["service"], decided_by.line["kind"]) == ("aggregator", "CONSUMER")
    # read by the projector, and by the webhooks' deliverer (whose span may not be written yet:
    # it is no part of the flow the trace waits for)
    readers = {(c.line["service"], c.line["name"]) for c in result.children}
    assert ("projector", f"process {RESULTS}") in readers
    assert readers <= {("projector", f"process {RESULTS}"), ("webhooks", f"process {RESULTS}")}
    assert all(n.line["status"] != "ERROR" for n in nodes)
