"""Liveness and readiness of one process, as its parts report them (``/livez``, ``/readyz``).

Kubernetes asks two different questions, and restarting answers only the first:

- *Live*: is the process making progress? Its loops (the consume loop, the aggregator's
  loop) say so with :meth:`Health.progress` on every iteration, idle polls and retries in an
  outage included (waiting for Kafka is progress: a restart would not bring Kafka back). A
  loop that has not reported for ``stall_s`` is hung, and the process is not live. A blocked
  event loop cannot answer at all: the ops server (:mod:`singlewindow.ops`) runs in it.
- *Ready*: may it be counted on? Every :class:`Check` must pass: a part sets its state as it
  changes (:meth:`Health.check`: the consumer's assignment), or gives a probe that asks
  (:meth:`Health.probe`: a Kafka metadata round trip, a database ping), bounded by
  ``timeout_s`` and its answer reused for ``ttl_s``, so a probe every few seconds costs one
  round trip at most, whoever asks.

Both answers are JSON naming each part: ``{"status": "not ready", "checks": {"kafka":
{"ok": false, "detail": "connecting"}}}``. Readiness is mirrored in
``singlewindow_ready{service}`` whenever it is evaluated (each ``/readyz`` and each scrape).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from singlewindow.metrics import READY

# a loop silent this long is hung: above every bounded wait inside one iteration (a batch's
# retries pause 5 s at most, a send waits 10 s, the aggregator's transaction 30 s)
STALL_S = 120.0
PROBE_TIMEOUT_S = 3.0
PROBE_TTL_S = 5.0
Probe = Callable[[], Awaitable[object]]


class NotReady(Exception):
    """A probe's answer: this part is not ready, for the reason given."""


@dataclass
class Check:
    """One part's readiness, as the part last set it."""

    ok: bool
    detail: str

    def set(self, ok: bool, detail: str) -> None:
        self.ok, self.detail = ok, detail


class _Probed:
    """A probe's last answer, reused for ``ttl_s``; one probe in flight at most."""

    def __init__(
        self, probe: Probe, timeout_s: float, ttl_s: float, clock: Callable[[], float]
    ) -> None:
        self.probe, self.timeout_s, self.ttl_s, self.clock = probe, timeout_s, ttl_s, clock
        self.answer = Check(False, "not asked yet")
        self.at: float | None = None
        self._asking: asyncio.Future[Check] | None = None

    async def ask(self, now: float) -> Check:
        if self.at is not None and now - self.at < self.ttl_s:
            return self.answer
        if self._asking is None:  # concurrent askers share the one round trip
            self._asking = asyncio.ensure_future(self._ask())
        try:
            return await asyncio.shield(self._asking)
        finally:
            if self._asking is not None and self._asking.done():
                self._asking = None

    async def _ask(self) -> Check:
        try:
            async with asyncio.timeout(self.timeout_s):
                found = await self.probe()
            answer = Check(True, found if isinstance(found, str) else "ok")
        except NotReady as exc:
            answer = Check(False, str(exc))
        except TimeoutError:
            answer = Check(False, f"no answer within {self.timeout_s:g}s")
        except Exception as exc:  # any failure of the probe is an answer: not ready
            answer = Check(False, f"{type(exc).__name__}: {exc}"[:300])
        self.answer, self.at = answer, self.clock()
        return answer


class Health:
    """The liveness and readiness of the process ``service`` (``clock``: seconds, monotonic)."""

    def __init__(
        self,
        service: str,
        stall_s: float = STALL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service, self.stall_s, self.clock = service, stall_s, clock
        self.loops: dict[str, float] = {}  # loop -> when it last made progress
        self.checks: dict[str, Check] = {}
        self.probes: dict[str, _Probed] = {}
        self._ready = READY.labels(service)
        self._ready.set(0)

    # -- liveness ---------------------------------------------------------------------------

    def progress(self, loop: str) -> None:
        """``loop`` made progress now (cheap: once per iteration of a hot loop)."""
        self.loops[loop] = self.clock()

    def ended(self, loop: str) -> None:
        """``loop`` ended on purpose (stopping): its silence is no hang."""
        self.loops.pop(loop, None)

    def live(self) -> tuple[bool, dict[str, Any]]:
        """Live unless a loop has been silent for ``stall_s``; the body of ``/livez``."""
        now = self.clock()
        silent = {loop: now - at for loop, at in self.loops.items()}
        hung = {loop: s for loop, s in silent.items() if s >= self.stall_s}
        body: dict[str, Any] = {
            "status": "hung" if hung else "live",
            "loops": {
                loop: {"ok": loop not in hung, "silent_seconds": round(s, 1)}
                for loop, s in sorted(silent.items())
            },
        }
        return not hung, body

    # -- readiness --------------------------------------------------------------------------

    def check(self, name: str, detail: str = "not started") -> Check:
        """The check ``name``, failing with ``detail`` until its part says otherwise."""
        check = self.checks.get(name)
        if check is None:
            check = self.checks[name] = Check(False, detail)
        return check

    def probe(
        self,
        name: str,
        probe: Probe,
        timeout_s: float = PROBE_TIMEOUT_S,
        ttl_s: float = PROBE_TTL_S,
    ) -> None:
        """Readiness of ``name`` is what ``probe()`` answers: ready when it returns (a
        string it returns is the detail), not when it raises (:class:`NotReady`: its reason;
        any other error; no answer within ``timeout_s``). Asked at most every ``ttl_s``."""
        self.probes[name] = _Probed(probe, timeout_s, ttl_s, self.clock)

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        """Ready when every check and every probe passes; the body of ``/readyz``."""
        now = self.clock()
        names = list(self.probes)
        answers = await asyncio.gather(*(self.probes[n].ask(now) for n in names))
        checks = {**self.checks, **dict(zip(names, answers, strict=True))}
        ok = all(c.ok for c in checks.values())
        self._ready.set(1 if ok else 0)
        body = {
            "status": "ready" if ok else "not ready",
            "checks": {n: {"ok": c.ok, "detail": c.detail} for n, c in sorted(checks.items())},
        }
        return ok, body
