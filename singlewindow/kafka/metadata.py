"""Back off between failed metadata updates: no busy loop while the broker is away.

aiokafka (0.14) refreshes cluster metadata in ``AIOKafkaClient._md_synchronizer``, woken by
``force_metadata_update()``. The fetcher's and the sender's loops call that whenever a
leader is unknown, and wait for it; when the broker refuses connections the update fails
at once (``Unable to update metadata``), their wait ends at once, and they call it again:
a busy loop. Measured on the local stack during a broker restart: about 900 failed
updates a second in every client of every service, two cores saturated by six services,
the restarting broker's JVM starved for over a minute before it logged its first line, and
logs of hundreds of megabytes. (kafka-python fixed the same loop by honouring
``retry_backoff_ms`` after a failed update; aiokafka issue #1155 reports a sibling.)

:func:`install` wraps ``_metadata_update`` so that a failed update returns only after a
backoff, doubling from the client's ``retry_backoff_ms`` up to ``MAX_BACKOFF_S`` and reset
by the first success. Everyone waiting for the update waits that long too, which is the
point; a successful update is never delayed. ``tests/unit/test_metadata_backoff.py`` fails
when aiokafka changes what this relies on.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.client import AIOKafkaClient

MAX_BACKOFF_S = 1.0
_ATTRIBUTE = "_sw_metadata_backoff_s"

Update = Callable[..., Awaitable[bool]]


def with_backoff(update: Update) -> Update:
    """``update`` (an ``_metadata_update``), sleeping after each failure before it returns."""

    @functools.wraps(update)
    async def patched(self: Any, *args: Any, **kwargs: Any) -> bool:
        ok = await update(self, *args, **kwargs)
        if ok:
            setattr(self, _ATTRIBUTE, 0.0)
            return ok
        backoff = getattr(self, _ATTRIBUTE, 0.0) or self._retry_backoff
        setattr(self, _ATTRIBUTE, min(backoff * 2, MAX_BACKOFF_S))
        await asyncio.sleep(min(backoff, MAX_BACKOFF_S))
        return ok

    patched.sw_backoff = True  # type: ignore[attr-defined]
    return patched


def install() -> None:
    """Patch aiokafka's client (once per process)."""
    update = AIOKafkaClient._metadata_update
    if not getattr(update, "sw_backoff", False):
        AIOKafkaClient._metadata_update = with_backoff(update)
