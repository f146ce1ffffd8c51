"""Customs' sampling keys are inputs: parsed strictly, never shown, required to start."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from services.customs import sampling
from services.customs.sampling import SamplingKey, SamplingKeyError, current_key, load_keyring
from tests.processes import run_module

SECRET_1 = "11" * 32  # test secrets, 32 bytes each
SECRET_2 = "22" * 40


def test_one_inline_key_is_the_current_one() -> None:
    key = current_key({"CUSTOMS_SAMPLING_KEYS": f"k1:{SECRET_1}"})
    assert key == SamplingKey("k1", bytes.fromhex(SECRET_1))


def test_several_keys_need_the_current_version_named() -> None:
    both = {"CUSTOMS_SAMPLING_KEYS": f"k1:{SECRET_1}, k2:{SECRET_2}"}
    keyring = load_keyring(both)
    assert keyring is not None and keyring.versions == ("k1", "k2")
    with pytest.raises(SamplingKeyError, match="CUSTOMS_SAMPLING_KEY_VERSION"):
        current_key(both)
    assert current_key({**both, "CUSTOMS_SAMPLING_KEY_VERSION": "k2"}).version == "k2"
    with pytest.raises(SamplingKeyError, match="names no key"):
        current_key({**both, "CUSTOMS_SAMPLING_KEY_VERSION": "k3"})


def test_a_keyring_file_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2026-11\nk1:{SECRET_1}\n\nk2:{SECRET_2}  # current\n")
    env = {"CUSTOMS_SAMPLING_KEYS_FILE": str(path), "CUSTOMS_SAMPLING_KEY_VERSION": "k2"}
    keyring = load_keyring(env)
    assert keyring is not None and keyring.get("k1") == SamplingKey("k1", bytes.fromhex(SECRET_1))
    assert current_key(env).secret == bytes.fromhex(SECRET_2)


def test_no_key_configured() -> None:
    assert load_keyring({}) is None  # the auditor may have none
    with pytest.raises(SamplingKeyError, match="CUSTOMS_SAMPLING_KEYS_FILE"):
        current_key({})  # the service must


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ("k1", "not 'version:hexsecret'"),
        (f"k1:{SECRET_1[:-1]}", "not 'version:hexsecret'"),  # odd number of digits
        (f"k1:{'zz' * 32}", "not 'version:hexsecret'"),
        ("k1:" + "ab" * 31, "at least 32 bytes"),
        (f"k1:{SECRET_1},k1:{SECRET_2}", "listed twice"),
        (f"bad version:{SECRET_1}", "must be 1-64"),
        (f":{SECRET_1}", "must be 1-64"),
        (" , ", "no sampling key"),
    ],
)
def test_malformed_keys_are_refused_without_showing_the_secret(entries: str, problem: str) -> None:
    with pytest.raises(SamplingKeyError, match=problem) as caught:
        load_keyring({"CUSTOMS_SAMPLING_KEYS": entries})
    assert SECRET_1 not in str(caught.value) and SECRET_2 not in str(caught.value)


def test_both_sources_or_an_unreadable_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SamplingKeyError, match="not both"):
        load_keyring({"CUSTOMS_SAMPLING_KEYS": f"k1:{SECRET_1}", "CUSTOMS_SAMPLING_KEYS_FILE": "x"})
    with pytest.raises(SamplingKeyError, match="CUSTOMS_SAMPLING_KEYS_FILE"):
        load_keyring({"CUSTOMS_SAMPLING_KEYS_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("# nothing yet\n")
    with pytest.raises(SamplingKeyError, match="no sampling key"):
        load_keyring({"CUSTOMS_SAMPLING_KEYS_FILE": str(tmp_path / "empty")})


def test_the_secret_never_shows_in_a_repr() -> None:
    key = SamplingKey("k1", bytes.fromhex(SECRET_1))
    assert SECRET_1 not in repr(key) and "k1" in repr(key)
    keyring = load_keyring({"CUSTOMS_SAMPLING_KEYS": f"k1:{SECRET_1}"})
    assert SECRET_1 not in repr(keyring) and str(bytes.fromhex(SECRET_1)) not in repr(keyring)


def test_new_entries_are_fresh_and_parse() -> None:
    first, second = sampling.new_entry("v7"), sampling.new_entry("v7")
    assert first != second
    key = current_key({"CUSTOMS_SAMPLING_KEYS": first})
    assert key.version == "v7" and len(key.secret) == 32


def test_the_development_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secrets" / "customs-sampling.keys"
    assert sampling.ensure_key_file(path) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    made = path.read_text()
    key = current_key({"CUSTOMS_SAMPLING_KEYS_FILE": str(path)})
    assert key.version.startswith("local-")
    sampling.ensure_key_file(path)  # a second start keeps the key
    assert path.read_text() == made
    other = tmp_path / "elsewhere.keys"
    assert current_key({"CUSTOMS_SAMPLING_KEYS_FILE": str(sampling.ensure_key_file(other))}) != key


def test_a_launcher_adds_the_development_keyring_only_when_none_is_configured(
    tmp_path: Path,
) -> None:
    path = tmp_path / "var" / "secrets" / "customs-sampling.keys"
    assert sampling.local_environment({"CUSTOMS_SAMPLING_KEYS": f"k1:{SECRET_1}"}, path) == {}
    assert sampling.local_environment({"CUSTOMS_SAMPLING_KEYS_FILE": "/run/keys"}, path) == {}
    assert not path.exists()
    added = sampling.local_environment({}, path)
    assert added == {"CUSTOMS_SAMPLING_KEYS_FILE": str(path.resolve())}
    assert current_key(added).version.startswith("local-")


def test_the_customs_service_refuses_to_start_without_a_key() -> None:
    """Exits before it touches Kafka: no key, no service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMS_SAMPLING_")}
    done = run_module("services.customs", env)
    assert done.returncode == 1
    assert "customs: cannot start: no random-sampling key" in done.stderr
    assert "CUSTOMS_SAMPLING_KEYS_FILE" in done.stderr
