"""The whole platform as separate processes, as ``make run`` starts it, on the real broker
and database; tests talk to it over HTTP only."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from deploy.local.launcher import ROOT, Platform, running_platform

__all__ = ["DEADLINE_SECONDS", "ROOT", "Platform"]
INTAKE_PORT = int(os.environ.get("E2E_INTAKE_PORT", "18000"))
DEADLINE_SECONDS = 600  # longer than any stall the chaos tests cause: nothing times out


@pytest.fixture(scope="package")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    logs = tmp_path_factory.mktemp("platform-logs")
    try:
        with running_platform(logs, INTAKE_PORT, DEADLINE_SECONDS) as platform:
            yield platform
    except RuntimeError as exc:
        pytest.fail(str(exc))
