"""Repeated warnings are rate-limited: one line per cause per interval, with a count."""

from __future__ import annotations

import io
import logging

from singlewindow.logs import RateLimit


def logger_with(limit: RateLimit) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(limit)
    log = logging.getLogger(f"test.logs.{id(limit)}")
    log.handlers, log.propagate = [handler], False
    log.setLevel(logging.INFO)
    return log, out


def test_a_minute_long_outage_writes_a_few_lines_with_counts() -> None:
    now = [0.0]
    log, out = logger_with(RateLimit(interval=30, clock=lambda: now[0]))
    for tick in range(60 * 900):  # 900 failures a second for a minute
        now[0] = tick / 900
        log.warning("publish of %s failed: %r", f"DEC-{tick}", ConnectionRefusedError(111))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # at 0 s and at 30 s
    assert lines[0].startswith("publish of DEC-0 failed")
    assert lines[1].endswith("[+26999 similar in 30s]")
    assert len(out.getvalue()) < 1000


def test_a_new_cause_is_seen_at_once_and_info_is_untouched() -> None:
    log, out = logger_with(RateLimit(interval=30, clock=lambda: 0.0))
    for _ in range(3):
        log.warning("publish failed: %r", TimeoutError())
        log.warning("publish failed: %r", ConnectionRefusedError())  # another cause
        log.warning("read model not updated")  # another template
        log.info("accepted")
    lines = out.getvalue().splitlines()
    assert lines.count("publish failed: TimeoutError()") == 1
    assert lines.count("publish failed: ConnectionRefusedError()") == 1
    assert lines.count("read model not updated") == 1
    assert lines.count("accepted") == 3


def test_access_log_5xx_lines_are_limited_and_2xx_pass() -> None:
    limit = RateLimit(interval=30, clock=lambda: 0.0)
    access = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', (), None
    )
    answers = []
    for status in (503, 503, 503, 202, 202):
        access.args = ("127.0.0.1:5", "POST", "/v1/declarations", "1.1", status)
        answers.append(limit.filter(access))
    assert answers == [True, False, False, True, True]
