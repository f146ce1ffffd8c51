"""Logging for every process: one format, and repeated warnings rate-limited.

An outage makes every request and every retry loop warn the same thing. ``RateLimit`` lets
the first line of each *cause* through, then at most one line per ``interval`` seconds for
that cause, carrying how many were held back since the last one (``[+N similar in 30s]``).
A cause is the logger, the message template and the exception class among the arguments
(or of ``exc_info``), so a new kind of failure is always seen at once. Records below
WARNING pass untouched, except the HTTP access log's 5xx lines (an outage answers thousands
of 503s).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

INTERVAL_S = 30.0
ACCESS_LOGGER = "uvicorn.access"
Cause = tuple[str, str, str]


def cause_of(record: logging.LogRecord) -> Cause:
    """What makes two records "the same warning": logger, template, exception class."""
    args = record.args if isinstance(record.args, tuple) else ()
    kinds = [type(a).__name__ for a in args if isinstance(a, BaseException)]
    if record.exc_info and record.exc_info[0] is not None:
        kinds.append(record.exc_info[0].__name__)
    if record.name == ACCESS_LOGGER and args:
        kinds.append(str(args[-1]))  # the status code
    return record.name, str(record.msg), ",".join(kinds)


def _limited(record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
        return True
    if record.name != ACCESS_LOGGER:
        return False
    status = record.args[-1] if isinstance(record.args, tuple) and record.args else 0
    return isinstance(status, int) and status >= 500


class RateLimit(logging.Filter):
    """A filter: per cause, the first record, then one per ``interval`` with a count."""

    def __init__(self, interval: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval, self.clock = interval, clock
        self._last: dict[Cause, float] = {}
        self._held: dict[Cause, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not _limited(record):
            return True
        cause, now = cause_of(record), self.clock()
        last = self._last.get(cause)
        if last is not None and now - last < self.interval:
            self._held[cause] = self._held.get(cause, 0) + 1
            return False
        self._last[cause] = now
        held = self._held.pop(cause, 0)
        if held and last is not None:
            record.msg = f"{record.msg} [+{held} similar in {now - last:.0f}s]"
        if len(self._last) > 10_000:  # bounded memory whatever the causes
            self._last.clear()
        return True


def configure_logging(service: str, interval: float = INTERVAL_S) -> None:
    """Log to stderr as ``<time> <service> <level> <logger>: <message>``, rate-limited."""
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    limit = RateLimit(interval)
    for handler in logging.getLogger().handlers:
        handler.addFilter(limit)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
