"""The ``kustomize`` binary the tests render the overlays with: built from its Go module
(``go install``, through the Go module proxy) on first use and kept under
``~/.cache/singlewindow/kustomize-<version>/``, as ``deploy/local/components.py`` builds
FerretDB (whose build leaves Go's build cache warm for this one). The first time: about a
minute and a half with Go's caches warm, four and a half minutes on a loaded 2-core machine
with empty ones (downloading the modules included); nothing after.

``python -m deploy.k8s.kustomize build deploy/k8s/overlays/prod`` runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

VERSION = "v5.8.2"  # the newest whose modules build with this machine's Go (1.26)
MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "singlewindow"


def binary() -> Path:
    return CACHE / f"kustomize-{VERSION}" / "kustomize"


def kustomize() -> Path:
    """The binary, built first if it is not there yet (RuntimeError without Go)."""
    target = binary()
    if target.exists():
        return target
    if shutil.which("go") is None:
        raise RuntimeError(f"Go is needed to build kustomize ({MODULE}@{VERSION})")
    work = target.parent / "bin.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "GOBIN": str(work), "GOTOOLCHAIN": "local"}
    subprocess.run(["go", "install", f"{MODULE}@{VERSION}"], check=True, env=env)
    (work / "kustomize").replace(target)
    shutil.rmtree(work, ignore_errors=True)
    return target


def build(directory: Path) -> str:
    """``kustomize build <directory>``: the rendered resources as one YAML stream."""
    done = subprocess.run(
        [str(kustomize()), "build", str(directory)], check=True, capture_output=True, text=True
    )
    return done.stdout


if __name__ == "__main__":
    sys.exit(subprocess.run([str(kustomize()), *sys.argv[1:]], check=False).returncode)
