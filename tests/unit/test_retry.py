"""The SDK's one retry-with-backoff loop (singlewindow/retry.py)."""

from __future__ import annotations

import asyncio

import pytest

from singlewindow import retry as retry_module
from singlewindow.retry import Stopped, retry


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses taken, instead of sleeping them."""
    taken: list[float] = []

    async def pause(seconds: float, stopping: asyncio.Event | None = None) -> None:
        taken.append(seconds)

    monkeypatch.setattr(retry_module, "pause", pause)
    return taken


class Failing:
    """An attempt that raises each of ``failures`` in turn, then returns ``"done"``."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures, self.calls = list(failures), 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


async def test_retryable_failures_are_retried_with_doubling_pauses_up_to_the_bound(
    pauses: list[float],
) -> None:
    attempt = Failing(*(OSError(n) for n in range(7)))
    seen: list[BaseException] = []
    result = await retry(
        attempt, lambda e: isinstance(e, OSError), first_s=0.1, max_s=1.0, on_retry=seen.append
    )
    assert result == "done"
    assert attempt.calls == 8
    assert pauses == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert [str(e) for e in seen] == [str(n) for n in range(7)]


async def test_any_other_failure_is_raised_at_once(pauses: list[float]) -> None:
    attempt = Failing(OSError("transient"), ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        await retry(attempt, lambda e: isinstance(e, OSError))
    assert attempt.calls == 2
    assert pauses == [pytest.approx(0.1)]


async def test_retryable_may_count_failures(pauses: list[float]) -> None:
    """Asked once per failure: a bounded number of attempts is a counter in it."""
    failures = 0

    def up_to_three(exc: BaseException) -> bool:
        nonlocal failures
        failures += 1
        return failures < 3

    attempt = Failing(*(RuntimeError(n) for n in range(5)))
    with pytest.raises(RuntimeError, match="2"):
        await retry(attempt, up_to_three)
    assert attempt.calls == 3


async def test_a_cancellation_is_not_retried_unless_retryable_says_so(
    pauses: list[float],
) -> None:
    with pytest.raises(asyncio.CancelledError):
        await retry(Failing(asyncio.CancelledError()), lambda e: isinstance(e, Exception))
    attempt = Failing(asyncio.CancelledError())
    assert await retry(attempt, lambda e: True) == "done"


async def test_on_retry_may_be_a_coroutine_and_is_awaited_before_the_pause(
    pauses: list[float],
) -> None:
    order: list[str] = []

    async def on_retry(exc: BaseException) -> None:
        await asyncio.sleep(0)
        order.append(f"on_retry {exc}")

    async def attempt() -> None:
        order.append(f"attempt after {len(pauses)} pauses")
        if len(order) < 3:
            raise OSError("x")

    await retry(attempt, lambda e: True, on_retry=on_retry)
    assert order == ["attempt after 0 pauses", "on_retry x", "attempt after 1 pauses"]


async def test_no_attempt_once_stopping_is_set() -> None:
    stopping = asyncio.Event()
    stopping.set()
    attempt = Failing()
    with pytest.raises(Stopped):
        await retry(attempt, lambda e: True, stopping=stopping)
    assert attempt.calls == 0


async def test_stopping_cuts_a_pause_short_and_ends_the_retrying() -> None:
    stopping = asyncio.Event()
    attempt = Failing(*(OSError(n) for n in range(100)))
    loop = asyncio.get_running_loop()
    started = loop.time()
    retrying = asyncio.create_task(
        retry(attempt, lambda e: True, first_s=30, max_s=30, stopping=stopping)
    )
    await asyncio.sleep(0.05)
    stopping.set()
    with pytest.raises(Stopped):
        await asyncio.wait_for(retrying, 5)
    assert attempt.calls == 1
    assert loop.time() - started < 5
