"""What a process writes to its log: text by default, JSON lines with ``LOG_FORMAT=json``,
each carrying the declaration and trace in hand (set where a record is handled or a request
served, never passed by the call that logs)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from singlewindow import correlation
from singlewindow.correlation import CorrelateRequests, RecordScope
from singlewindow.logs import JsonLines, configure_logging

TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE}-b7ad6b7169203331-01".encode()


def record(key: bytes | None = b"DEC-1", traceparent: bytes | None = TRACEPARENT) -> Any:
    headers = [] if traceparent is None else [("traceparent", traceparent)]
    return ConsumerRecord("declarations.submitted", 2, 41, 0, 0, key, b"v", None, 1, 1, headers)


def json_logger(service: str = "customs") -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLines(service))
    log = logging.getLogger(f"test.logformat.{service}")
    log.handlers, log.propagate = [handler], False
    log.setLevel(logging.INFO)
    return log, out


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_json_line_has_service_level_logger_message_and_utc_time() -> None:
    log, out = json_logger()
    before = datetime.now(UTC)
    log.warning("verdict for %s", "DEC-9")
    [line] = lines(out)
    assert line["service"] == "customs"
    assert line["level"] == "WARNING"
    assert line["logger"] == "test.logformat.customs"
    assert line["message"] == "verdict for DEC-9"
    at = datetime.fromisoformat(line["time"])
    assert at.utcoffset() == timedelta(0)  # UTC, and the offset is written
    assert before - timedelta(seconds=1) <= at <= datetime.now(UTC)
    assert not {"declaration_id", "trace_id", "span_id"} & line.keys()  # nothing in hand


def test_a_line_written_while_a_record_is_handled_names_its_declaration_and_trace() -> None:
    log, out = json_logger()
    with RecordScope(record()):
        log.info("ruled")
    log.info("between records")
    inside, outside = lines(out)
    assert inside["declaration_id"] == "DEC-1"
    assert inside["trace_id"] == TRACE
    assert "span_id" not in inside  # tracing off: no span of this process
    assert "declaration_id" not in outside and "trace_id" not in outside


def test_a_record_without_a_valid_traceparent_still_names_its_declaration() -> None:
    log, out = json_logger()
    with RecordScope(record(traceparent=b"00-garbage")):
        log.info("ruled")
    [line] = lines(out)
    assert line["declaration_id"] == "DEC-1" and "trace_id" not in line


def test_with_tracing_on_a_line_names_the_current_span() -> None:
    log, out = json_logger()
    tracer = TracerProvider().get_tracer("test")
    with RecordScope(record()), tracer.start_as_current_span("process") as span:
        log.info("ruled")
    [line] = lines(out)
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
    assert line["declaration_id"] == "DEC-1"


def test_an_exception_is_in_the_line() -> None:
    log, out = json_logger()
    try:
        raise ValueError("bad rule")
    except ValueError:
        log.exception("handler failed")
    [line] = lines(out)
    assert line["message"] == "handler failed"
    assert "ValueError: bad rule" in line["exception"]


async def test_a_request_line_names_the_routes_declaration_and_the_callers_trace() -> None:
    log, out = json_logger("intake")
    app = FastAPI()
    app.add_middleware(CorrelateRequests)

    @app.get("/v1/declarations/{declaration_id}")
    async def status(declaration_id: str) -> dict[str, str]:
        log.info("read")
        return {}

    @app.post("/v1/declarations")
    async def submit() -> dict[str, str]:
        log.info("before the id is known")
        correlation.about("DEC-NEW")
        log.info("published")
        return {}

    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        await client.get("/v1/declarations/DEC-7", headers={"traceparent": TRACEPARENT.decode()})
        await client.post("/v1/declarations")
    read, before, published = lines(out)
    assert (read["declaration_id"], read["trace_id"]) == ("DEC-7", TRACE)
    assert "declaration_id" not in before
    assert published["declaration_id"] == "DEC-NEW"
    assert before["trace_id"] == published["trace_id"] != TRACE  # a new trace, one a request


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers: put pytest's back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_text_is_the_default(
    root_logging: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    configure_logging("customs")
    with RecordScope(record()):
        logging.getLogger("singlewindow.agency").info("ruled on %s", "DEC-1")
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith(" customs INFO singlewindow.agency: ruled on DEC-1")
    datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")  # the time first, as it always was


def test_log_format_json_switches_every_line_and_the_rate_limit_still_holds(
    root_logging: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    configure_logging("aggregator")
    log = logging.getLogger("services.aggregator")
    with RecordScope(record(b"DEC-2")):
        for _ in range(100):  # an outage: the same warning again and again
            log.warning("transaction failed (%r)", TimeoutError())
    log.info("restored")
    first, restored = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert (first["service"], first["level"], first["declaration_id"]) == (
        "aggregator",
        "WARNING",
        "DEC-2",
    )
    assert first["message"] == "transaction failed (TimeoutError())"
    assert restored["message"] == "restored" and "declaration_id" not in restored


def test_an_invalid_log_format_refuses_to_start_naming_the_variable(
    root_logging: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(SystemExit) as exit_:
        configure_logging("customs")
    assert exit_.value.code == 2
    assert "LOG_FORMAT" in capsys.readouterr().err
