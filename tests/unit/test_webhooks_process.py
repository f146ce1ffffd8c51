"""``python -m services.webhooks`` refuses to start, naming what to set, before it connects
anywhere, when it could sign nothing (no keyring; a broken one is refused alike:
``test_webhook_signing``)."""

from __future__ import annotations

import os

from tests.processes import run_module


def environment(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    return {**keep, **extra}


def test_without_a_keyring_it_refuses_to_start_saying_what_to_set() -> None:
    done = run_module("services.webhooks", environment())
    assert done.returncode == 2, done.stderr
    assert "WEBHOOKS_KEYS_FILE" in done.stderr
