"""Customs' random inspection sample: keyed by a secret, so only the agency knows who is drawn.

A declaration is in the sample of rate ``r`` when the first 32 bits of
``HMAC-SHA256(secret, declaration_id)`` (UTF-8, read big-endian), divided by ``0xFFFFFFFF``,
lie below ``r`` (an exact comparison). The trader can derive the declaration id, but not the
secret, so nobody outside the agency can tell in advance which declarations are sampled;
the agency, and an auditor it gives the key, can recompute every draw for ever, because the
verdict names the version of the key it drew with.

Keys are inputs, never code. A *keyring* is a set of ``version:hexsecret`` entries (a secret
of at least 32 bytes, in hex; a version of letters, digits, ``.``, ``_`` and ``-``) from:

- ``CUSTOMS_SAMPLING_KEYS_FILE``: a file, one entry a line, blank lines and ``#`` comments
  ignored (a mounted secret), or
- ``CUSTOMS_SAMPLING_KEYS``: the entries separated by commas,

not both. ``CUSTOMS_SAMPLING_KEY_VERSION`` names the version new draws use; it may be left out
when the ring holds one key. The customs service refuses to start without a key (it never
invents one: replicas with keys of their own would draw different samples). Rotation: add the
new entry to the ring, point ``CUSTOMS_SAMPLING_KEY_VERSION`` at it; auditors keep the old
entries as long as the verdicts drawn with them must stay verifiable.

``python -m services.customs.sampling new-key VERSION`` prints a fresh entry;
``python -m services.customs.sampling dev-key PATH`` creates a per-machine development
keyring file if there is none (what a local launcher runs; see :func:`ensure_key_file`).
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType

import typer

KEYS_FILE_ENV = "CUSTOMS_SAMPLING_KEYS_FILE"
KEYS_ENV = "CUSTOMS_SAMPLING_KEYS"
VERSION_ENV = "CUSTOMS_SAMPLING_KEY_VERSION"
MIN_SECRET_BYTES = 32
SAMPLE_SPACE = 0xFFFFFFFF
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


class SamplingKeyError(ValueError):
    """The sampling keys are missing or malformed (the message never contains a secret)."""


@dataclass(frozen=True, slots=True)
class SamplingKey:
    """One version of the secret sampling key; its ``repr`` hides the secret."""

    version: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not _VERSION.fullmatch(self.version):
            raise SamplingKeyError(
                f"sampling key version {self.version!r} must be 1-64 letters, digits, '.', '_' "
                "or '-', starting with a letter or digit"
            )
        if len(self.secret) < MIN_SECRET_BYTES:
            raise SamplingKeyError(
                f"sampling key {self.version}: the secret must have at least "
                f"{MIN_SECRET_BYTES} bytes ({2 * MIN_SECRET_BYTES} hex digits)"
            )


@dataclass(frozen=True, slots=True)
class SampleDraw:
    """The outcome of one declaration's draw: sampled or not, under which key version."""

    key_version: str | None
    sampled: bool


@dataclass(frozen=True)
class Keyring:
    """The sampling keys by version, and the version new draws use (None: not chosen)."""

    keys: Mapping[str, SamplingKey]
    current_version: str | None = None

    @property
    def versions(self) -> tuple[str, ...]:
        """Every version in the ring, sorted."""
        return tuple(sorted(self.keys))

    def get(self, version: str) -> SamplingKey | None:
        """The key of ``version``, or None when the ring does not hold it."""
        return self.keys.get(version)

    @property
    def current(self) -> SamplingKey:
        """The key new draws use; :class:`SamplingKeyError` when none is chosen."""
        if self.current_version is None:
            raise SamplingKeyError(
                f"the sampling keyring holds {len(self.keys)} keys ({', '.join(self.versions)}): "
                f"set {VERSION_ENV} to the one to draw with"
            )
        return self.keys[self.current_version]


# --- the draw (pure) ---------------------------------------------------------------------------


def sample_fraction(declaration_id: str, key: SamplingKey) -> Fraction:
    """Where a declaration falls in [0, 1] under ``key``: first 32 bits of the HMAC / 0xFFFFFFFF."""
    digest = hmac.digest(key.secret, declaration_id.encode("utf-8"), "sha256")
    return Fraction(int.from_bytes(digest[:4], "big"), SAMPLE_SPACE)


def is_sampled(declaration_id: str, rate: Decimal, key: SamplingKey) -> bool:
    """Whether the declaration is in the random sample of ``rate`` under ``key`` (exact)."""
    return sample_fraction(declaration_id, key) < Fraction(rate)


def draw(declaration_id: str, rate: Decimal, key: SamplingKey) -> SampleDraw:
    """The draw of one declaration at ``rate`` under ``key``, naming the key's version."""
    return SampleDraw(key.version, is_sampled(declaration_id, rate, key))


# --- keys as inputs ----------------------------------------------------------------------------


def parse_entries(entries: Iterable[str], where: str) -> dict[str, SamplingKey]:
    """Keys from ``version:hexsecret`` entries (``where`` names the source in errors)."""
    keys: dict[str, SamplingKey] = {}
    for number, entry in enumerate(entries, start=1):
        version, colon, secret = entry.strip().partition(":")
        version, secret = version.strip(), secret.strip()
        if not colon or not _HEX.fullmatch(secret):
            raise SamplingKeyError(
                f"{where}: entry {number} is not 'version:hexsecret' (the secret in hex)"
            )
        if version in keys:
            raise SamplingKeyError(f"{where}: version {version!r} is listed twice")
        keys[version] = SamplingKey(version, bytes.fromhex(secret))
    if not keys:
        raise SamplingKeyError(f"{where}: no sampling key in it")
    return keys


def file_entries(text: str) -> list[str]:
    """The entries of a keyring file: one a line, blank lines and ``#`` comments skipped."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def keyring_from(keys: Mapping[str, SamplingKey], version: str | None, where: str) -> Keyring:
    """A keyring whose current version is ``version``, or its only key when ``version`` is None."""
    if version is not None and version not in keys:
        raise SamplingKeyError(
            f"{VERSION_ENV}={version!r} names no key in {where} "
            f"(versions there: {', '.join(sorted(keys))})"
        )
    if version is None and len(keys) == 1:
        version = next(iter(keys))
    return Keyring(MappingProxyType(dict(keys)), version)


def load_keyring(environ: Mapping[str, str]) -> Keyring | None:
    """The keyring the environment configures, or None when it configures none.

    Raises :class:`SamplingKeyError` (with a message fit for an operator) when the keys are
    malformed or both sources are set.
    """
    path, inline = environ.get(KEYS_FILE_ENV, "").strip(), environ.get(KEYS_ENV, "").strip()
    version = environ.get(VERSION_ENV, "").strip() or None
    if path and inline:
        raise SamplingKeyError(f"set {KEYS_FILE_ENV} or {KEYS_ENV}, not both")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SamplingKeyError(f"{KEYS_FILE_ENV}={path}: {exc.strerror or exc}") from None
        return keyring_from(parse_entries(file_entries(text), path), version, path)
    if inline:
        entries = [entry for entry in inline.split(",") if entry.strip()]
        return keyring_from(parse_entries(entries, KEYS_ENV), version, KEYS_ENV)
    return None


def current_key(environ: Mapping[str, str]) -> SamplingKey:
    """The key new draws use, as the environment configures it (a service needs one).

    Raises :class:`SamplingKeyError` when there is none, or the configuration is wrong.
    """
    keyring = load_keyring(environ)
    if keyring is None:
        raise SamplingKeyError(
            f"no random-sampling key: set {KEYS_FILE_ENV} to a keyring file (or {KEYS_ENV}) "
            "with entries 'version:hexsecret'; `python -m services.customs.sampling new-key "
            "VERSION` makes one"
        )
    return keyring.current


def new_entry(version: str) -> str:
    """A fresh keyring entry ``version:hexsecret`` with a random 32-byte secret."""
    key = SamplingKey(version, secrets.token_bytes(MIN_SECRET_BYTES))
    return f"{key.version}:{key.secret.hex()}"


def ensure_key_file(path: Path) -> Path:
    """Create a development keyring at ``path`` (mode 0600) unless one exists; return ``path``.

    The one key's version is ``local-`` plus random hex, so a key made again later (after
    ``var/`` was removed) never shares a version with an older one: an auditor then reports
    the older verdicts as not checkable instead of as wrong.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = new_entry(f"local-{secrets.token_hex(4)}")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write("# customs random-sampling keys of this machine (development only)\n")
        out.write(entry + "\n")
    return path


def local_environment(environ: Mapping[str, str], path: Path) -> dict[str, str]:
    """What a local launcher adds to a service's environment: nothing when ``environ``
    already configures keys, else ``CUSTOMS_SAMPLING_KEYS_FILE`` naming the development
    keyring at ``path`` (made by :func:`ensure_key_file` if missing)."""
    if environ.get(KEYS_FILE_ENV, "").strip() or environ.get(KEYS_ENV, "").strip():
        return {}
    return {KEYS_FILE_ENV: str(ensure_key_file(path).resolve())}


cli = typer.Typer(help="Customs random-sampling keys.", no_args_is_help=True)


@cli.command("new-key")
def new_key_command(version: str) -> None:
    """Print a fresh keyring entry ``VERSION:hexsecret`` (keep it secret)."""
    try:
        typer.echo(new_entry(version))
    except SamplingKeyError as exc:
        raise typer.BadParameter(str(exc)) from None


@cli.command("dev-key")
def dev_key_command(path: Path) -> None:
    """Create a development keyring file at PATH unless one exists; print its path."""
    typer.echo(ensure_key_file(path).resolve())


if __name__ == "__main__":
    cli()
