"""The whole platform as separate processes, as ``make run`` starts it, on the real broker
and database; tests talk to it over HTTP only."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from deploy.local.journeys import Window
from deploy.local.launcher import ROOT, Platform, running_platform

__all__ = ["DEADLINE_SECONDS", "ROOT", "Platform"]
INTAKE_PORT = int(os.environ.get("E2E_INTAKE_PORT", "18000"))
DEADLINE_SECONDS = 600  # longer than any stall the chaos tests cause: nothing times out


@pytest.fixture(scope="package")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    logs = tmp_path_factory.mktemp("platform-logs")
    try:
        with pytest.MonkeyPatch.context() as env:
            # every process traces, into a file of its own (tests/e2e/test_tracing.py reads
            # them), flushed every 200 ms rather than 5 s
            env.setenv("OTEL_TRACES_FILE", str(traces_dir(logs) / "{service}.jsonl"))
            env.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
            with running_platform(logs, INTAKE_PORT, DEADLINE_SECONDS) as platform:
                yield platform
    except RuntimeError as exc:
        pytest.fail(str(exc))


def traces_dir(logs: Path) -> Path:
    """Where the platform's processes write their spans (OTEL_TRACES_FILE)."""
    return logs / "traces"


@pytest.fixture
async def window(platform: Platform) -> AsyncIterator[Window]:
    """A trader's window on every door of the platform: the demo broker's token, inspectors'
    tokens, and Idempotency-Keys customs' random sample never draws (journeys that must reach
    a payment)."""
    from tests.e2e.checks import inspector, trader, unsampled_keys  # checks imports this module

    urls = (platform.url, platform.bank_url, platform.inspection_url, platform.gate_url)
    window = Window.open(urls, trader(), inspector, unsampled_keys())
    yield window
    await window.close()
