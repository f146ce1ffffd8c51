"""promtool, Prometheus' own rule checker and rule unit-test runner, built from the Go module
proxy and cached as ``~/.cache/singlewindow/promtool-<version>/promtool`` (as
:mod:`deploy.local.components` builds FerretDB): the tests check and test the alert rules
and the dashboard's queries with the parser and engine Prometheus itself runs.

``python -m deploy.monitoring.promtool`` (``make promtool``, a prerequisite of ``make test``)
builds it if needed and prints its path. The first build on a machine downloads about 1 GB of
module sources and compiles for about 6 CPU-minutes: measured on this project's 2-core
machine while other builds ran, 10.5 minutes with Go's caches empty, 7.5 with its module cache
warm; later calls find the binary at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from deploy.local.components import CACHE

# Prometheus v3.16.0 (its Go module's versions are v0.<minor>.<patch>); needs Go 1.26
PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
VERSION = "v0.316.0"
BINARY = CACHE / f"promtool-{VERSION}" / "promtool"


def install(binary: Path = BINARY) -> Path:
    """The cached promtool, built first if it is not there."""
    if binary.exists():
        return binary
    if shutil.which("go") is None:
        raise RuntimeError("Go (1.26+) is needed to build promtool")
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{PROMETHEUS_MODULE}@{VERSION}"],
        check=True,
        capture_output=True,
        text=True,
    )
    source = Path(json.loads(out.stdout)["Dir"])
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"promtool.partial-{os.getpid()}")
    # built in the (read-only) module cache: `go build` writes only its output there; the
    # module's go.work names folders its module zip leaves out, so it is switched off.
    # remove_all_sd leaves out the cloud service discoveries (AWS, Azure, GCE... SDKs) that
    # rule checks and rule tests never use: most of the download and of the compile time.
    subprocess.run(
        [
            "go",
            "build",
            "-trimpath",
            "-tags",
            "remove_all_sd",
            "-o",
            str(partial),
            "./cmd/promtool",
        ],
        check=True,
        cwd=source,
        env={**os.environ, "GOWORK": "off", "GOTOOLCHAIN": "local"},
    )
    partial.replace(binary)  # atomic: a concurrent build's result is as good
    return binary


def main() -> int:
    print(install())
    return 0


if __name__ == "__main__":
    sys.exit(main())
