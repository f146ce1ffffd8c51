"""No busy loop on metadata while the broker is away (singlewindow.kafka.metadata)."""

from __future__ import annotations

import asyncio
import inspect
import socket
import time

import pytest
from aiokafka.client import AIOKafkaClient

import singlewindow.kafka  # noqa: F401  (installs the patch)
from singlewindow.kafka import metadata
from singlewindow.kafka.options import kafka_options
from singlewindow.settings import Settings


def test_the_patch_point_is_what_the_synchronizer_awaits() -> None:
    """aiokafka's synchronizer must still call ``self._metadata_update`` and the client must
    keep ``_retry_backoff``: if this fails, re-read aiokafka before moving the patch."""
    assert "await self._metadata_update(" in inspect.getsource(AIOKafkaClient._md_synchronizer)
    assert "self._retry_backoff" in inspect.getsource(AIOKafkaClient.__init__)
    assert getattr(AIOKafkaClient._metadata_update, "sw_backoff", False)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on return: connections are refused


async def test_without_a_broker_a_client_retries_metadata_a_few_times_not_thousands() -> None:
    """What the fetcher and the sender do while the broker is away: update, fail, again."""
    nowhere = Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{_closed_port()}", kafka_security_protocol="PLAINTEXT"
    )
    client = AIOKafkaClient(**kafka_options(nowhere), retry_backoff_ms=100)
    attempts, deadline = 0, time.monotonic() + 2.0
    try:
        while time.monotonic() < deadline:
            assert not await client._metadata_update(client.cluster, [])
            attempts += 1
    finally:
        await client.close()
    # unpatched: thousands (each attempt fails at once); patched: 0.1+0.2+0.4+0.8 s > 1.5 s
    assert attempts <= 5, attempts


async def test_backoff_doubles_up_to_the_bound_and_resets_on_success(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes = iter([False, False, False, False, False, True, False])
    slept: list[float] = []

    async def update(self: object) -> bool:
        return next(outcomes)

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    class Client:
        _retry_backoff = 0.1

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    patched, client = metadata.with_backoff(update), Client()
    results = [await patched(client) for _ in range(7)]
    assert results == [False] * 5 + [True, False]
    assert slept == [0.1, 0.2, 0.4, 0.8, 1.0, 0.1]
