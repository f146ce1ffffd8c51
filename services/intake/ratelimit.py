"""Per-subject rate limiting: one token bucket per authenticated subject, in this process.

Each subject's bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second;
every submission and every read (a long-poll included) takes one. An empty bucket answers
429 with ``Retry-After``: the whole seconds until the next token. Buckets live in memory, so
with N intake processes behind a load balancer a subject gets at most N times the rate.
A bucket that has refilled completely is the same as no bucket: those are dropped when the
table grows beyond ``max_subjects``, so memory stays bounded by the recently active subjects.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by subject: ``take(subject)`` -> 0 if allowed, else seconds to wait."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_subjects: int = 10_000,
    ) -> None:
        if not (rate > 0 and math.isfinite(rate)) or burst < 1:
            raise ValueError("the rate must be a positive number and the burst at least 1")
        self.rate, self.burst, self.clock, self.max_subjects = rate, burst, clock, max_subjects
        self.buckets: dict[str, _Bucket] = {}

    def _level(self, bucket: _Bucket, now: float) -> float:
        """The bucket's tokens at ``now`` (refilled since its last update, capped)."""
        return min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)

    def take(self, subject: str) -> float:
        """Take a token for ``subject``: 0.0 when granted, else the seconds until one is due."""
        now = self.clock()
        bucket = self.buckets.get(subject)
        if bucket is None:
            self._make_room(now)
            bucket = self.buckets[subject] = _Bucket(float(self.burst), now)
        bucket.tokens, bucket.updated = self._level(bucket, now), now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _make_room(self, now: float) -> None:
        """Beyond ``max_subjects`` buckets, forget the full ones (they limit nothing)."""
        if len(self.buckets) >= self.max_subjects:
            full = [s for s, b in self.buckets.items() if self._level(b, now) >= self.burst]
            for subject in full:
                del self.buckets[subject]


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
