"""A development token issuer, for local runs and tests: never for production.

Given a directory (``var/credentials/issuer/`` by default) it creates, once, an Ed25519 key
pair: ``private-key.pem`` (mode 0600) and ``jwks.json``, the public key set the local intake
reads (``INTAKE_JWKS_FILE``), its ``kid`` the RFC 7638 thumbprint of the key. Concurrent
first uses (a launcher and ``make token`` at once) agree on one key: a file is created with
a hard link, which fails if another process got there first. It also creates the intake's id
secret (``var/credentials/intake/id-secret``) the same way.

- ``python -m services.intake.devissuer token --uscc <uscc>[,<uscc>...] [--sub <subject>]``
  prints a token valid for one hour (``make token USCC=... [SUB=...]``);
- ``python -m services.intake.devissuer inspector-token --agency <code> [--sub <subject>]``
  prints an inspector's token for the local inspection station (``services.inspection``):
  ``sub`` and the registered ``agency`` it inspects for, no USCCs (``make inspector-token
  AGENCY=...``); same issuer and audience, which the intake and the bank refuse;
- ``python -m services.intake.devissuer env`` prints the intake's settings for local runs
  (``KEY=value`` lines; :func:`local_intake_env` returns them to a launcher);
- :func:`mint` and :func:`bearer` make traders' tokens for tests from the same directory,
  :func:`mint_inspector` and :func:`inspector_bearer` inspectors'.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import secrets
import shlex
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from services.intake.auth import InvalidToken, inspector_of, principal_of

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / "var" / "credentials" / "issuer"
DEFAULT_ID_SECRET = ROOT / "var" / "credentials" / "intake" / "id-secret"
ISSUER = "urn:singlewindow:local-issuer"
AUDIENCE = "urn:singlewindow:intake"
PRIVATE_KEY = "private-key.pem"
JWKS = "jwks.json"
TTL = timedelta(hours=1)


def _private_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each mode 0700 (existing ones unchanged)."""
    for missing in reversed([folder, *folder.parents]):
        if not missing.exists():
            missing.mkdir(mode=0o700, exist_ok=True)


def _write_once(path: Path, content: bytes) -> bytes:
    """Create ``path`` (mode 0600) with ``content`` unless it exists; return what it holds,
    ours or the earlier writer's."""
    _private_folder(path.parent)
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            with contextlib.suppress(FileExistsError):  # another process won: use its file
                os.link(temporary, path)  # atomic, and fails if the file exists
        finally:
            os.unlink(temporary)
    return path.read_bytes()


def _write_public(path: Path, content: bytes) -> None:
    """Replace ``path`` (mode 0644) with ``content`` atomically, unless it holds it already."""
    if path.exists() and path.read_bytes() == content:
        return
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as file:
        file.write(content)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of an OKP public key (base64url SHA-256 of its members)."""
    members = json.dumps(
        {name: jwk[name] for name in ("crv", "kty", "x")}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(members.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def public_jwk(private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The public JWK of the key, with ``kid``, ``alg`` and ``use``."""
    jwk: dict[str, Any] = OKPAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**jwk, "kid": thumbprint(jwk), "alg": "EdDSA", "use": "sig"}


def ensure_keys(directory: Path = DEFAULT_DIR) -> Ed25519PrivateKey:
    """The issuer's private key, created once in ``directory`` with the JWKS beside it."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    stored = _write_once(directory / PRIVATE_KEY, pem)
    private_key = serialization.load_pem_private_key(stored, password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ValueError(f"{directory / PRIVATE_KEY} is not an Ed25519 private key")
    jwks = json.dumps({"keys": [public_jwk(private_key)]}, indent=2) + "\n"
    _write_public(directory / JWKS, jwks.encode())
    return private_key


def ensure_id_secret(path: Path = DEFAULT_ID_SECRET) -> Path:
    """The intake's id secret file (64 random hex characters), created once."""
    _write_once(path, secrets.token_hex(32).encode() + b"\n")
    return path


def mint(
    subject: str,
    usccs: Sequence[str],
    *,
    directory: Path = DEFAULT_DIR,
    ttl: timedelta = TTL,
    now: datetime | None = None,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
) -> str:
    """A token for ``subject`` acting for ``usccs``, signed by the issuer in ``directory``
    (created on first use). ValueError if the intake would refuse the subject or a USCC."""
    claims = _claims(subject, {"usccs": list(usccs)}, ttl, now, issuer, audience)
    return _signed(claims, principal_of, directory)


def mint_inspector(
    subject: str,
    agency: str,
    *,
    directory: Path = DEFAULT_DIR,
    ttl: timedelta = TTL,
    now: datetime | None = None,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
) -> str:
    """A token for the inspector ``subject`` inspecting for ``agency`` (no USCCs), signed by
    the issuer in ``directory`` (created on first use). ValueError if the inspection station
    would refuse the subject or the agency (not a registered agency's code)."""
    claims = _claims(subject, {"agency": agency}, ttl, now, issuer, audience)
    return _signed(claims, inspector_of, directory)


def _claims(
    subject: str,
    names: dict[str, Any],
    ttl: timedelta,
    now: datetime | None,
    issuer: str,
    audience: str,
) -> dict[str, Any]:
    """A token's claims: who it is for (``sub``), what it names (``names``), when it is valid."""
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    return {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        **names,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "jti": str(uuid.uuid4()),
    }


def _signed(
    claims: dict[str, Any], check: Callable[[dict[str, Any]], object], directory: Path
) -> str:
    """``claims`` signed by the issuer in ``directory`` (created on first use), once ``check``
    (what the verifying service makes of them) accepts them: ValueError saying why not."""
    try:
        check(claims)
    except InvalidToken as exc:
        raise ValueError(str(exc)) from None
    private_key = ensure_keys(directory)
    headers = {"kid": public_jwk(private_key)["kid"], "typ": "at+jwt"}
    return jwt.encode(claims, private_key, algorithm="EdDSA", headers=headers)


def bearer(subject: str, usccs: Sequence[str], **options: Any) -> dict[str, str]:
    """The ``Authorization`` header of a fresh :func:`mint` token (for tests' clients)."""
    return {"Authorization": f"Bearer {mint(subject, usccs, **options)}"}


def inspector_bearer(subject: str, agency: str, **options: Any) -> dict[str, str]:
    """The ``Authorization`` header of a fresh :func:`mint_inspector` token."""
    return {"Authorization": f"Bearer {mint_inspector(subject, agency, **options)}"}


def local_token_env(prefix: str, directory: Path, id_secret_file: Path) -> dict[str, str]:
    """The token settings (``config.TokenSettings``) under ``prefix`` of a service that takes
    this issuer's tokens locally, the credentials created if needed: this issuer, its
    audience, the id secret file."""
    ensure_keys(directory)
    ensure_id_secret(id_secret_file)
    return {
        f"{prefix}JWT_ISSUER": ISSUER,
        f"{prefix}JWT_AUDIENCE": AUDIENCE,
        f"{prefix}JWKS_FILE": str(directory / JWKS),
        f"{prefix}ID_SECRET_FILE": str(id_secret_file),
    }


def local_intake_env(
    directory: Path = DEFAULT_DIR, id_secret_file: Path = DEFAULT_ID_SECRET
) -> dict[str, str]:
    """The intake's environment for a local run, the credentials created if needed: this
    issuer, the id secret file, docs and metrics open, the web page's sign-in with this
    issuer's tokens."""
    return {
        **local_token_env("INTAKE_", directory, id_secret_file),
        "INTAKE_PUBLIC_DOCS": "true",
        "INTAKE_PUBLIC_METRICS": "true",
        "INTAKE_DEV_SIGNIN": "true",
    }


def _usccs(values: Sequence[str]) -> list[str]:
    """``--uscc A --uscc B,C`` -> ``[A, B, C]``."""
    return [u.strip() for value in values for u in value.split(",") if u.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.intake.devissuer")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the issuer's directory")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print a token for the local intake")
    token.add_argument("--uscc", action="append", default=[], help="USCC(s), comma-separated")
    token.add_argument("--sub", default="", help="subject (default: local-trader-<uscc>)")
    token.add_argument("--ttl", type=int, default=int(TTL.total_seconds()), help="seconds")
    inspector = commands.add_parser(
        "inspector-token", help="print an inspector's token for the local inspection station"
    )
    inspector.add_argument("--agency", default="", help="the agency inspected for: customs...")
    inspector.add_argument("--sub", default="", help="subject (default: local-inspector-<agency>)")
    inspector.add_argument("--ttl", type=int, default=int(TTL.total_seconds()), help="seconds")
    env = commands.add_parser("env", help="print the local intake's settings (KEY=value)")
    env.add_argument("--id-secret", type=Path, default=DEFAULT_ID_SECRET, help="its file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "env":
        for name, value in local_intake_env(args.dir, args.id_secret).items():
            print(f"{name}={shlex.quote(value)}")
        return 0
    if args.command == "inspector-token":
        return _inspector_token(args)
    usccs = _usccs(args.uscc)
    if not usccs:
        print(
            "give the USCC the token acts for: --uscc <uscc> (make token USCC=...)", file=sys.stderr
        )
        return 2
    subject = args.sub or f"local-trader-{usccs[0]}"
    try:
        token = mint(subject, usccs, directory=args.dir, ttl=timedelta(seconds=args.ttl))
    except ValueError as exc:
        print(f"no token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _inspector_token(args: argparse.Namespace) -> int:
    """``inspector-token``: print an inspector's token; the exit status."""
    agency = args.agency.strip()
    if not agency:
        print(
            "give the agency the inspector inspects for: --agency <code> "
            "(make inspector-token AGENCY=...)",
            file=sys.stderr,
        )
        return 2
    subject = args.sub or f"local-inspector-{agency}"
    try:
        token = mint_inspector(subject, agency, directory=args.dir, ttl=timedelta(seconds=args.ttl))
    except ValueError as exc:
        print(f"no token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
