"""promtool, Prometheus' own rule checker and rule unit-test runner: the tests check and test
the alert rules and the dashboard's queries with the parser and engine Prometheus itself runs.

It comes from Debian's ``prometheus`` package (bookworm's, Prometheus 2.42): ``apt-get
download`` fetches the .deb (19 MB) without installing it (the package would install and
start the Prometheus daemon), and only ``/usr/bin/promtool`` is taken out of it, into
``~/.cache/singlewindow/promtool-<Debian version>/promtool``. Measured on this project's
2-core machine: 8 to 14 s in all (download and extraction) with current package lists; with
empty ones (a fresh machine), ``apt-get update`` first adds about 8 s.
The rules use nothing newer than Prometheus 2.42 (``tests/unit/test_monitoring.py`` runs them
on this binary), so they run on any Prometheus from 2.42 to 3.x.

Without apt (or without the version in its archive, or the right to update its lists), it is
built from the Go module proxy instead, as :mod:`deploy.local.components` builds FerretDB:
about 1 GB of module sources and 6 CPU-minutes (10.5 minutes on the 2-core machine with Go's
caches empty), cached as ``promtool-<module version>``.

``python -m deploy.monitoring.promtool`` (``make promtool``, a prerequisite of ``make test``,
so that the download is not inside a test's timeout) fetches it if needed and prints its path;
``--go`` builds the Go one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from deploy.local.components import CACHE

DEBIAN_PACKAGE = "prometheus"
DEBIAN_VERSION = "2.42.0+ds-5+deb12u1"  # bookworm's (and its security update's)
DEBIAN_BINARY = CACHE / f"promtool-{DEBIAN_VERSION}" / "promtool"
MEMBER = "./usr/bin/promtool"

# the fallback: Prometheus v3.16.0 (its Go module's versions are v0.<minor>.<patch>); Go 1.26
PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
GO_VERSION = "v0.316.0"
GO_BINARY = CACHE / f"promtool-{GO_VERSION}" / "promtool"


def install() -> Path:
    """The cached promtool: Debian's, fetched first if needed; the Go build if apt cannot
    give it (said on stderr)."""
    if DEBIAN_BINARY.exists():
        return DEBIAN_BINARY
    try:
        return from_debian()
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"promtool: not from Debian ({exc}); building it with Go", file=sys.stderr)
        return from_go()


def from_debian(binary: Path = DEBIAN_BINARY, member: str = MEMBER) -> Path:
    """``apt-get download prometheus=<version>`` and ``member`` (``/usr/bin/promtool``) out
    of it, cached as ``binary``."""
    if binary.exists():
        return binary
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise RuntimeError("no apt-get or dpkg-deb")
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=binary.parent) as work:
        deb = _download(Path(work))
        partial = Path(work) / binary.name
        _extract(deb, member, partial)
        partial.replace(binary)  # atomic: a concurrent fetch's result is as good
    return binary


def _download(work: Path) -> Path:
    """The package's .deb in ``work``; the package lists updated first if they do not know
    the version (a fresh machine's are empty)."""
    command = ["apt-get", "download", f"{DEBIAN_PACKAGE}={DEBIAN_VERSION}"]
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        update = subprocess.run(["apt-get", "update"], capture_output=True, text=True, check=False)
        if update.returncode != 0:
            raise RuntimeError(
                f"apt-get download: {done.stderr.strip()}; apt-get update: {update.stderr.strip()}"
            )
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"apt-get download: {done.stderr.strip()}")
    (deb,) = work.glob(f"{DEBIAN_PACKAGE}_*.deb")
    return deb


def _extract(deb: Path, member: str, target: Path) -> None:
    """One file of a .deb's data, streamed from ``dpkg-deb --fsys-tarfile`` (the rest, the
    Prometheus server's 50 MB among it, is never written)."""
    with subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE
    ) as deb_tar:
        assert deb_tar.stdout is not None
        with tarfile.open(fileobj=deb_tar.stdout, mode="r|") as tar:
            for info in tar:
                if info.name == member and info.isfile():
                    source = tar.extractfile(info)
                    assert source is not None
                    with source, target.open("wb") as out:
                        shutil.copyfileobj(source, out)
                    target.chmod(0o755)
                    break
            else:
                raise RuntimeError(f"{deb.name} has no {member}")
        deb_tar.stdout.close()  # dpkg-deb may still be writing: it stops at the closed pipe
    if not target.exists():
        raise RuntimeError(f"{deb.name}: {member} not extracted")


def from_go(binary: Path = GO_BINARY) -> Path:
    """The cached promtool built from the Go module proxy, built first if it is not there."""
    if binary.exists():
        return binary
    if shutil.which("go") is None:
        raise RuntimeError("Go (1.26+) is needed to build promtool")
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{PROMETHEUS_MODULE}@{GO_VERSION}"],
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


def main(argv: list[str]) -> int:
    print(from_go() if "--go" in argv else install())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
