"""Per-subject token buckets of the intake."""

from __future__ import annotations

import pytest

from services.intake.ratelimit import RateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_refill_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 100  # refills up to the burst, not beyond
    assert [limiter.take("a") for _ in range(4)][-1] > 0


def test_subjects_do_not_share_a_bucket() -> None:
    limiter = RateLimiter(1.0, 1, clock=Clock())
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    assert limiter.take("b") == 0.0


def test_full_buckets_are_forgotten_when_the_table_is_full() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 2, clock=clock, max_subjects=3)
    for subject in ("a", "b", "c"):
        limiter.take(subject)
    clock.now += 10  # all full again
    limiter.take("d")
    assert set(limiter.buckets) == {"d"}


def test_a_refused_request_keeps_the_bucket_fair() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 1, clock=clock)
    limiter.take("a")
    for _ in range(10):  # hammering does not push the next token further away
        assert limiter.take("a") == pytest.approx(1.0)
    clock.now += 1
    assert limiter.take("a") == 0.0


@pytest.mark.parametrize(("seconds", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (7.9, "8")])
def test_retry_after_is_whole_seconds_rounded_up(seconds: float, header: str) -> None:
    assert retry_after(seconds) == header


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("inf"), 1), (1, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)
