"""Awaiting many things at once, the way the platform needs it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def all_settled(aws: Iterable[Awaitable[T]], concurrency: int | None = None) -> list[T]:
    """Await every one (at most ``concurrency`` at a time), then their results in order; or,
    once every one has ended, the first failure. Nothing is left running when this returns
    or raises: a write that failed beside others never has one of them land later."""
    gate = asyncio.Semaphore(concurrency) if concurrency else None

    async def one(aw: Awaitable[T]) -> T:
        if gate is None:
            return await aw
        async with gate:
            return await aw

    outcomes = await asyncio.gather(*(one(aw) for aw in aws), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes  # type: ignore[return-value]  # no exception among them
