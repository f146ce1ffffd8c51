"""Following a declaration: every change of the trader's view, until there is an answer.

Two ways, the better first:

- the status stream (``GET /v1/declarations/{id}/events``, Server-Sent Events): each change
  as it happens; a dropped stream is resumed with ``Last-Event-ID``;
- long polls (``GET /v1/declarations/{id}?wait=25&seen=<status>``) when the platform has no
  stream (404 or 405 on it): the intake answers as soon as the status moves on from the one
  seen, else after 25 s with the view as it is (so a change that keeps the status, a second
  payment step say, shows within 25 s). An answer that comes back early without a change (a
  platform that does not wait) is followed by a pause that doubles up to 10 s.

While the platform is unavailable (5xx, 429, no answer) the watch waits and tries again
(the ``Retry-After`` the platform gave, else 1 s doubling up to 30 s) and gives up after
``give_up_s`` (300 s) without an answer. Any other failure (401, 404...) ends it at once.

When to stop is the caller's: :func:`answered` (the first consolidated answer, what
``sw submit --watch`` waits for) or :func:`settled` (``sw status --watch``: nothing left to
wait for but the trader, or nothing at all).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from singlewindow_cli.api import LONG_POLL_S, Api, ExitCode, Failure, Json, Unsupported, decoded

ASSESSING = frozenset({"SUBMITTED", "IN_REVIEW"})
# the ends a script must not mistake for success: exit status 1 (AMENDMENT_REFUSED is not one:
# the release before the refused change stands)
ENDED_BADLY = frozenset({"REJECTED", "WITHDRAWN", "SANCTIONED", "RECALLED"})


def answered(view: Json) -> bool:
    """The agencies have answered (any status but SUBMITTED and IN_REVIEW)."""
    return view.get("status") not in ASSESSING


def settled(view: Json) -> bool:
    """Nobody but the trader has anything to do: the view's next step is not ``WAIT`` (it is
    ``NONE``, final, or something for the trader: ``PAY``, ``SUPPLY_DOCUMENTS``...). A view
    without a next step (a declaration lodged before versions): once answered."""
    step = view.get("next_step")
    if isinstance(step, dict) and step.get("code"):
        return bool(step["code"] != "WAIT")
    return answered(view)


def exit_code(view: Json) -> ExitCode:
    """1 for a declaration that ended badly, else 0."""
    return ExitCode.ENDED_BADLY if view.get("status") in ENDED_BADLY else ExitCode.OK


@dataclass
class Backoff:
    """Pauses between tries: ``first`` doubling up to ``cap``, or what the platform asked."""

    first: float
    cap: float
    sleep: Callable[[float], None] = time.sleep
    _next: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._next = self.first

    def delay(self, asked: float | None = None) -> float:
        """The next pause (what the platform asked, within reason, else the next step)."""
        delay = min(asked, self.cap * 4) if asked is not None else self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def pause(self, asked: float | None = None) -> None:
        self.sleep(self.delay(asked))

    def reset(self) -> None:
        self._next = self.first


@dataclass
class Follower:
    """The changes of one declaration's view, by stream or by long polls."""

    api: Api
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    wait_s: float = LONG_POLL_S
    give_up_s: float = 300.0
    pending_ok: bool = False  # just lodged: a 404 means the status is not visible yet
    on_retry: Callable[[Failure, float], None] = lambda failure, delay: None

    def changes(self, declaration_id: str, current: Json) -> Iterator[Json]:
        """Each view that differs from the last one seen, starting after ``current``."""
        last = current
        for view in self._views(declaration_id, current):
            if view != last:
                last = view
                yield view

    def _views(self, declaration_id: str, current: Json) -> Iterator[Json]:
        backoff = Backoff(1.0, 30.0, self.sleep)
        trouble = Trouble(self.monotonic, self.give_up_s, backoff, self.pending_ok)
        idle = Backoff(1.0, 10.0, self.sleep)
        last_event_id: str | None = None
        while True:
            try:
                with self.api.events(declaration_id, last_event_id) as events:
                    for event in events:
                        last_event_id = event.id if event.id is not None else last_event_id
                        view = decoded(event)
                        if view is not None:
                            trouble.over()
                            idle.reset()
                            yield view
                idle.pause()  # the platform closed the stream: resume it, soon
            except Unsupported:
                yield from self._polls(declaration_id, current, trouble)
                return
            except Failure as failure:
                self._retry(trouble, failure)

    def _retry(self, trouble: Trouble, failure: Failure) -> None:
        """Say so, and pause before trying again (or raise ``failure``: :meth:`Trouble.delay`)."""
        delay = trouble.delay(failure)
        self.on_retry(failure, delay)
        self.sleep(delay)

    def _polls(self, declaration_id: str, current: Json, trouble: Trouble) -> Iterator[Json]:
        seen = str(current.get("status"))
        idle = Backoff(1.0, 10.0, self.sleep)
        while True:
            asked = self.monotonic()
            try:
                view = self.api.status(declaration_id, wait=self.wait_s, seen=seen)
            except Failure as failure:
                self._retry(trouble, failure)
                continue
            trouble.over()
            moved = view.get("status") != seen
            if moved:
                idle.reset()
            elif self.monotonic() - asked < self.wait_s / 2:
                idle.pause()  # the platform did not wait: do not hammer it
            seen = str(view.get("status"))
            yield view


@dataclass
class Trouble:
    """The platform's unavailability: pauses between tries, and the point of giving up."""

    monotonic: Callable[[], float]
    give_up_s: float
    backoff: Backoff
    pending_ok: bool = False
    since: float | None = None

    def delay(self, failure: Failure) -> float:
        """How long to pause before trying again after ``failure``, or raise it: it is not a
        matter of waiting (401, 404...), or the platform has been unavailable too long."""
        waiting = {ExitCode.UNAVAILABLE} | ({ExitCode.NOT_FOUND} if self.pending_ok else set())
        if failure.code not in waiting:
            raise failure
        now = self.monotonic()
        if self.since is None:
            self.since = now
        elif now - self.since >= self.give_up_s:
            raise failure
        return self.backoff.delay(failure.retry_after_s)

    def over(self) -> None:
        self.since = None
        self.backoff.reset()
