"""Logging for every process: one format, and repeated warnings rate-limited.

``LOG_FORMAT=text`` (the default) writes a line a human reads; ``LOG_FORMAT=json`` one JSON
object a line for a log collector (python-json-logger's formatter, so every stdlib logger,
uvicorn's and aiokafka's included, and the filter below work unchanged): ``time`` (UTC, ISO
8601 with its offset), ``service``, ``level``, ``logger``, ``message``, ``exception`` when
there is one, and, when the line is written while a declaration is in hand (a record being
handled, an HTTP request), its ``declaration_id``, ``trace_id`` and ``span_id``
(:mod:`singlewindow.correlation`).

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
import sys
import time
from collections.abc import Callable
from typing import Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from singlewindow import correlation
from singlewindow.settings import LogSettings, SettingsError, read_settings

INTERVAL_S = 30.0
ACCESS_LOGGER = "uvicorn.access"
Cause = tuple[str, str, str]
LogFormat = Literal["text", "json"]
log = logging.getLogger(__name__)


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


class JsonLines(JsonFormatter):
    """One JSON object a line: time, service, level, logger, message, then the declaration
    and trace in hand (:func:`singlewindow.correlation.fields`), then any ``extra``."""

    def __init__(self, service: str) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            static_fields={"service": service},
            timestamp="time",
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's colours
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        fields: dict[str, Any] = {}
        super().add_fields(fields, record, message_dict)
        log_data["time"] = fields.pop("time")
        for name in ("service", "level", "logger", "message"):
            log_data[name] = fields.pop(name)
        log_data.update(correlation.fields())
        log_data.update(fields)


def text_format(service: str) -> logging.Formatter:
    return logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")


def configure_logging(
    service: str, interval: float = INTERVAL_S, log_format: LogFormat | None = None
) -> None:
    """Log to stderr, rate-limited: as ``<time> <service> <level> <logger>: <message>``, or
    as JSON lines (``log_format``, by default ``LOG_FORMAT``'s). An invalid ``LOG_FORMAT``
    exits (code 2), saying so, in the text format."""
    refused = None
    if log_format is None:
        try:
            log_format = read_settings(LogSettings).log_format
        except SettingsError as exc:
            log_format, refused = "text", exc
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines(service) if log_format == "json" else text_format(service))
    handler.addFilter(RateLimit(interval))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    if refused is not None:
        log.error("refusing to start: %s", refused)
        sys.exit(2)
