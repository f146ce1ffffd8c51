"""``sw``, the trader's command line, as installed with the project (``.venv/bin/sw``), run
as a process against the whole platform: sign in with a token of the local development
issuer, lodge the demo's declarations, watch them to their answer, list them, and the exit
statuses a script relies on."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deploy.local.demo_data import DEMO_BROKER, demo_usccs, scenario_body
from tests.e2e.checks import unsampled_keys
from tests.e2e.conftest import DEADLINE_SECONDS, Platform
from tests.unit.test_intake_schema import changed

pytestmark = pytest.mark.e2e
SW = Path(sys.executable).with_name("sw")  # the console script beside the venv's python
OTHER_USCC = "91110000600037341L"  # a valid USCC that no demo declaration names
OK, ENDED_BADLY, NOT_SIGNED_IN, NOT_FOUND, REFUSED, UNAVAILABLE = 0, 1, 3, 4, 5, 6


class Trader:
    """A trader's shell: ``sw`` with SW_URL and SW_CONFIG_DIR of its own."""

    def __init__(self, url: str, home: Path) -> None:
        self.env = {**os.environ, "SW_URL": url, "SW_CONFIG_DIR": str(home), "COLUMNS": "160"}
        self.home = home

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SW), *args], env=self.env, capture_output=True, text=True,
            timeout=DEADLINE_SECONDS,
        )  # fmt: skip

    def lines(self, *args: str, expect: int = OK) -> list[dict[str, Any]]:
        """The JSON lines of ``sw ... --json``, once it exited with ``expect``."""
        done = self(*args, "--json")
        assert done.returncode == expect, (args, done.stdout, done.stderr)
        return [json.loads(line) for line in done.stdout.splitlines()]

    def file(self, name: str, body: dict[str, Any]) -> str:
        path = self.home / name
        path.write_text(json.dumps(body, ensure_ascii=False))
        return str(path)


@pytest.fixture
def broker(platform: Platform, tmp_path: Path) -> Trader:
    """The demo's customs broker, signed in with a token of the local issuer."""
    trader = Trader(platform.url, tmp_path / "broker")
    signed_in = trader("login", "--dev-uscc", ",".join(demo_usccs()), "--dev-sub", DEMO_BROKER)
    assert signed_in.returncode == OK, signed_in.stderr
    return trader


def test_sw_is_installed_with_the_project() -> None:
    assert SW.is_file() and os.access(SW, os.X_OK)
    assert subprocess.run([str(SW), "--help"], capture_output=True, check=True).returncode == 0


def test_lodge_watch_and_list_through_the_cli(broker: Trader) -> None:
    token_file = broker.home / "token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    # laptops, cleared: the duties are due, and the watch stops where the trader must pay
    laptops = broker.file("laptops.json", scenario_body("clear-laptops"))
    key = unsampled_keys()()  # never drawn for a random inspection
    [accepted] = broker.lines("submit", laptops, "--idempotency-key", key)
    laptops_id = accepted["declaration_id"]
    watched = broker.lines("status", laptops_id, "--watch")
    assert watched[-1]["status"] == "AWAITING_PAYMENT"
    assert watched[-1]["next_step"]["code"] == "PAY"
    assert all(v["next_step"]["code"] == "WAIT" for v in watched[:-1])
    # the same key and file again: the same declaration, not a second one
    assert broker.lines("submit", laptops, "--idempotency-key", key) == [accepted]
    # worn clothing is prohibited: submit --watch waits for the answer, and it ended badly
    clothing = broker.file("clothing.json", scenario_body("prohibited-worn-clothing"))
    accepted_clothing, *views = broker.lines("submit", clothing, "--watch", expect=ENDED_BADLY)
    clothing_id = accepted_clothing["declaration_id"]
    assert views[-1]["declaration_id"] == clothing_id
    assert views[-1]["status"] == "REJECTED"
    assert {v["agency"]: v["decision"] for v in views[-1]["verdicts"]}["customs"] == "REJECT"
    # both in the broker's list, newest first; the rejected one among the rejected
    [page] = broker.lines("list", "--limit", "100")
    listed = [row["declaration_id"] for row in page["declarations"]]
    assert listed.index(clothing_id) < listed.index(laptops_id)
    [rejected] = broker.lines("list", "--status", "REJECTED", "--limit", "100")
    assert clothing_id in {row["declaration_id"] for row in rejected["declarations"]}
    # a person's view: the status and what to do
    shown = broker("status", laptops_id)
    assert shown.returncode == OK
    assert "AWAITING_PAYMENT" in shown.stdout and "PAY" in shown.stdout
    assert token_file.read_text().strip() not in shown.stdout + shown.stderr


def test_the_exit_statuses_a_script_relies_on(
    broker: Trader, platform: Platform, tmp_path: Path
) -> None:
    # 5: a bad container number, refused at the door with the field named
    bad = broker.file("bad.json", changed("transport.containers", ["CSQU3054384"]))
    refused = broker("submit", bad)
    assert refused.returncode == REFUSED, refused.stderr
    assert "transport.containers[0]" in refused.stderr
    # 4: an unknown declaration, and another trader's exactly alike
    laptops = broker.file("laptops.json", scenario_body("clear-laptops"))
    declaration_id = broker("submit", laptops).stdout.strip()
    assert broker("status", "DEC-" + "0" * 32).returncode == NOT_FOUND
    stranger = Trader(platform.url, tmp_path / "stranger")
    assert stranger("login", "--dev-uscc", OTHER_USCC).returncode == OK
    assert stranger("status", declaration_id).returncode == NOT_FOUND
    assert stranger("status", declaration_id, "--watch").returncode == NOT_FOUND
    [page] = stranger.lines("list", "--limit", "100")
    assert declaration_id not in {row["declaration_id"] for row in page["declarations"]}
    # 3: not signed in; a declarant the token does not act for
    nobody = Trader(platform.url, tmp_path / "nobody")
    assert nobody("status", declaration_id).returncode == NOT_SIGNED_IN
    assert stranger("submit", laptops).returncode == NOT_SIGNED_IN
    # 6: no platform there
    with socket.socket() as held:  # bound, never listening: connection refused
        held.bind(("127.0.0.1", 0))
        away = Trader(f"http://127.0.0.1:{held.getsockname()[1]}", broker.home)
        assert away("status", declaration_id).returncode == UNAVAILABLE
    # 2: a bad command line
    assert broker("status").returncode == 2
