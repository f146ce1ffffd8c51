"""Backward, transitive: the current schemas read everything any earlier version wrote."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from singlewindow import events as ev
from singlewindow.avro import decode, default_registry
from singlewindow.avro.compatibility import incompatibilities, plain
from singlewindow.avro.registry import SchemaRegistry, canonical_fingerprint, schema_dir
from singlewindow.avro.release import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True
    ).stdout


def historical_registries(tmp: Path) -> list[tuple[str, SchemaRegistry]]:
    """The schema directory as every commit that touched it left it."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git history of the source tree")
    commits = _git("log", "--format=%H", "--", "schemas/avro").split()
    found = []
    for commit in commits:
        folder = tmp / commit
        folder.mkdir()
        for path in _git("ls-tree", "--name-only", f"{commit}:schemas/avro").split():
            if path.endswith(".avsc"):
                (folder / path).write_text(_git("show", f"{commit}:schemas/avro/{path}"))
        found.append((commit, SchemaRegistry(folder)))
    return found


def test_every_version_in_git_history_is_readable(tmp_path: Path) -> None:
    current = default_registry()
    for commit, old in historical_registries(tmp_path):
        for name, writer in old.current.items():
            if name in current.current:
                problems = incompatibilities(current.reader(name), writer)
                assert not problems, f"{name} at {commit[:10]}: {problems}"


def test_every_released_schema_is_readable_and_current_events_are_released() -> None:
    registry = default_registry()
    released = sorted((schema_dir() / "released").glob("*.avsc"))
    assert released
    for path in released:
        writer = json.loads(path.read_text())
        assert not incompatibilities(registry.reader(writer["name"]), writer), path.name
    for name in EVENT_TYPES:
        fp = registry.fingerprint(name).hex()
        assert (schema_dir() / "released" / f"{name}.{fp}.avsc").exists(), (
            f"{name} changed: run `python -m singlewindow.avro.release` and "
            "`python -m tests.golden.refresh`"
        )


def projected(now: Any, written: Any) -> Any:
    """``now`` restricted, at every depth, to the fields ``written`` has: a field added since
    (in a nested record too) may appear, nothing written may change or disappear."""
    if isinstance(written, dict) and isinstance(now, dict):
        return {k: projected(now.get(k, "<missing>"), v) for k, v in written.items()}
    if isinstance(written, list) and isinstance(now, list) and len(now) == len(written):
        return [projected(n, w) for n, w in zip(now, written, strict=True)]
    return now


def test_golden_payloads_of_every_release_still_decode() -> None:
    payloads = sorted(GOLDEN.glob("*.avro"))
    assert {p.name.split(".")[3] for p in payloads} >= {n.split(".")[-1] for n in EVENT_TYPES}
    for path in payloads:
        name, record = decode(path.read_bytes())
        event = ev.EVENTS[name].model_validate(record)
        written = json.loads(path.with_name(path.name.replace(".avro", ".json")).read_text())
        now = event.model_dump(mode="json")
        assert projected(now, written) == written, path.name


def test_a_field_added_since_reads_as_its_default_from_old_payloads() -> None:
    for path in sorted(GOLDEN.glob("cn.singlewindow.events.AgencyVerdict.*.avro")):
        written = json.loads(path.with_name(path.name.replace(".avro", ".json")).read_text())
        verdict = ev.AgencyVerdict.from_avro(path.read_bytes())
        expected = written.get("sampling_key_version")  # absent: written before the field
        assert verdict.sampling_key_version == expected, path.name


def test_the_checker_rejects_an_incompatible_change(tmp_path: Path) -> None:
    old = plain(default_registry().reader("cn.singlewindow.events.AgencyVerdict"))
    added = copy.deepcopy(old)
    added["fields"].append({"name": "officer", "type": "string", "doc": "no default"})
    assert incompatibilities(added, old), "a new field without default cannot read old data"
    added["fields"][-1]["default"] = ""
    assert not incompatibilities(added, old)

    renamed = copy.deepcopy(old)
    renamed["fields"][3]["type"] = {
        "type": "enum",
        "name": "Decision",
        "namespace": "cn.singlewindow.events",
        "symbols": ["CLEAR", "HOLD", "REJECT"],
    }
    assert incompatibilities(renamed, old), "a removed enum symbol cannot read old data"

    retyped = copy.deepcopy(old)
    retyped["fields"][0]["type"] = "long"
    assert incompatibilities(retyped, old)

    # the same check through a temporary schema directory, as a history entry would be
    folder = tmp_path / "schemas"
    shutil.copytree(schema_dir(), folder, ignore=shutil.ignore_patterns("released"))
    path = folder / "cn.singlewindow.events.Reason.avsc"
    reason = json.loads(path.read_text())
    reason["fields"][0]["type"] = "int"
    path.write_text(json.dumps(reason))
    changed = SchemaRegistry(folder)
    name = "cn.singlewindow.events.Reason"
    assert canonical_fingerprint(changed.reader(name)) != default_registry().fingerprint(name)
    assert incompatibilities(changed.reader(name), default_registry().reader(name))
