"""The intake's API as the CLI calls it (httpx, synchronous), and what each failure means
for the exit status (:class:`ExitCode`, the contract a script relies on).

Every refusal of the platform is a problem document (RFC 9457: ``type``, ``title``,
``status``, ``detail`` and, for bad input, ``errors: [{"field", "message"}]``); it travels in
:class:`Failure` to be shown as it is. The token goes in the ``Authorization`` header and
nowhere else (no message, no exception carries it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Any
from urllib.parse import quote

import httpx

from singlewindow_cli import sse

Json = dict[str, Any]
UNKNOWN_DECLARATION = "urn:singlewindow:problem:unknown-declaration"
LONG_POLL_S = 25.0  # the server waits at most 30 s; the read timeout leaves room for it
TIMEOUT = httpx.Timeout(10.0, read=LONG_POLL_S + 15.0)
STREAM_TIMEOUT = httpx.Timeout(10.0, read=45.0)  # three keep-alives (every 15 s) missed: gone


class ExitCode(IntEnum):
    """``sw``'s exit status (documented in ``sw --help`` and the README)."""

    OK = 0
    ENDED_BADLY = 1  # a watched declaration ended REJECTED, WITHDRAWN, SANCTIONED or RECALLED
    USAGE = 2  # a bad command line (click's own code for usage errors)
    NOT_SIGNED_IN = 3  # no token, or the platform answered 401 or 403
    NOT_FOUND = 4  # 404: no such declaration among the ones the token acts for
    REFUSED = 5  # any other 4xx (409, 422, 400, 413, 415): the problem document printed
    UNAVAILABLE = 6  # 5xx, 429, or no answer at all (connection refused, timed out)
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


def exit_code_of(status: int) -> ExitCode:
    """The exit status of an HTTP error status."""
    if status in (401, 403):
        return ExitCode.NOT_SIGNED_IN
    if status == 404:
        return ExitCode.NOT_FOUND
    if status == 429 or status >= 500:
        return ExitCode.UNAVAILABLE
    return ExitCode.REFUSED


class Failure(Exception):
    """A command that did not succeed: its exit status, what to tell the user, and the
    platform's problem document when there is one."""

    def __init__(
        self,
        code: ExitCode,
        message: str,
        problem: Json | None = None,
        *,
        hint: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.problem, self.hint = code, message, problem, hint
        self.retry_after_s = retry_after_s

    def document(self) -> Json:
        """The problem document (the platform's, or one saying what went wrong here)."""
        return self.problem or {"type": "about:blank", "title": self.message, "detail": ""}


# what to do about a failure, by HTTP status or else by exit status
HINTS: dict[int, str] = {
    401: "Sign in again: sw login.",
    403: "The token does not act for this declarant: sign in with one that does (sw login).",
    ExitCode.UNAVAILABLE: "Try again later.",
}


class Unsupported(Exception):
    """The platform does not serve what was asked (an older intake: 404 or 405)."""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def failure_of(response: httpx.Response) -> Failure:
    """The failure an error response means, its problem document kept."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {"title": response.reason_phrase, "status": response.status_code, "detail": ""}
    code = exit_code_of(response.status_code)
    hint = HINTS.get(response.status_code) or HINTS.get(code, "")
    title = str(problem.get("title") or response.reason_phrase)
    return Failure(code, title, problem, hint=hint, retry_after_s=_retry_after(response))


def unreachable(url: str, exc: httpx.TransportError) -> Failure:
    """No answer from the platform at ``url``."""
    reason = str(exc) or type(exc).__name__
    return Failure(ExitCode.UNAVAILABLE, f"the platform at {url} did not answer: {reason}")


class Api:
    """The calls of the intake's trader API, on one connection pool."""

    def __init__(self, url: str, token: str, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "sw"},
            timeout=TIMEOUT,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **options)
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from None
        if response.is_error:
            raise failure_of(response)
        return response

    def submit(self, body: bytes, idempotency_key: str | None = None) -> Json:
        """``POST /v1/declarations`` with the file's bytes as they are (the platform's strict
        JSON reading judges them): ``{"declaration_id", "status"}``."""
        headers = {"Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        response = self._send("POST", "/v1/declarations", content=body, headers=headers)
        accepted: Json = response.json()
        return accepted

    def status(
        self, declaration_id: str, wait: float | None = None, seen: str | None = None
    ) -> Json:
        """``GET /v1/declarations/{id}``: the trader's view; with ``wait``, a long poll that
        answers once the status differs from ``seen`` (or the time is up)."""
        params: dict[str, str] = {}
        if wait is not None:
            params["wait"] = str(wait)
            if seen is not None:
                params["seen"] = seen
        response = self._send("GET", _declaration(declaration_id), params=params)
        view: Json = response.json()
        return view

    def declarations(self, status: str | None, limit: int | None, after: str | None) -> Json:
        """``GET /v1/declarations``: the caller's own declarations, newest first, and the
        cursor of the next page (``next``)."""
        params = {
            name: str(value)
            for name, value in (("status", status), ("limit", limit), ("after", after))
            if value is not None
        }
        page: Json = self._send("GET", "/v1/declarations", params=params).json()
        return page

    @contextmanager
    def events(
        self, declaration_id: str, last_event_id: str | None
    ) -> Iterator[Iterator[sse.Event]]:
        """The status stream (``GET /v1/declarations/{id}/events``), resumed after
        ``last_event_id``. Unsupported when the platform has no such stream (404 other than
        an unknown declaration, 405, or an answer that is not an event stream)."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        path = _declaration(declaration_id) + "/events"
        try:
            with self.http.stream("GET", path, headers=headers, timeout=STREAM_TIMEOUT) as response:
                if response.status_code in (404, 405, 406, 501):
                    response.read()
                    failure = failure_of(response)
                    if (failure.problem or {}).get("type") == UNKNOWN_DECLARATION:
                        raise failure
                    raise Unsupported(f"{response.status_code} {response.reason_phrase}")
                if response.is_error:
                    response.read()
                    raise failure_of(response)
                media_type = response.headers.get("content-type", "").partition(";")[0]
                if media_type.strip() != "text/event-stream":
                    raise Unsupported(f"not an event stream: {media_type}")
                yield sse.parse(response.iter_lines())
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from None


def _declaration(declaration_id: str) -> str:
    return "/v1/declarations/" + quote(declaration_id, safe="")


def decoded(event: sse.Event) -> Json | None:
    """The trader's view a ``status`` event carries (None for another kind of event)."""
    if event.event != "status":
        return None
    view = json.loads(event.data)
    return view if isinstance(view, dict) else None
