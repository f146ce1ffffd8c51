"""Webhook signatures (Stripe's scheme) and the per-subscription secrets behind them.

A delivery carries ``SW-Signature: t=<unix seconds>,v1=<hex>`` where the hex is
``HMAC-SHA256(secret, "<t>.<raw body>")``, the key being the secret's UTF-8 characters (as
Stripe's ``whsec_...`` secrets are used). The receiver recomputes it over the bytes it
received, compares in constant time, and refuses a timestamp too far from its clock (a
replayed delivery): :func:`verify` does both.

The secrets are never stored. A subscription stores a random ``nonce`` (32 bytes) and the
version of the webhook key it was made under; its secret is derived,
``"whsec_" + hex(HMAC-SHA256(key, "sw-webhook-secret\\0" + webhook_id + "\\0" + nonce))``,
by the intake when it shows the secret (once, at creation) and by the delivery service when
it signs. Reading the database therefore gives nobody the power to sign (nor to forge) a
delivery: that takes the key too, which only those two processes hold (an input, a file).
A secret cannot be shown twice because the API never derives it again after the creation.

Keys are a keyring file, ``version:hexsecret`` a line (at least 32 bytes; blank lines and
``#`` comments skipped), the last entry the one new subscriptions are made under: rotating
is appending an entry; an older entry stays as long as subscriptions made under it do.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

MIN_KEY_BYTES = 32
NONCE_BYTES = 32
SECRET_PREFIX = "whsec_"
TOLERANCE_S = 300  # how far a receiver accepts a timestamp from its clock (Stripe's default)
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_CONTEXT = b"sw-webhook-secret\x00"


class WebhookKeyError(ValueError):
    """The webhook keys are missing or malformed (the message never holds a secret)."""


class BadSignature(ValueError):
    """A signature header that does not verify (malformed, stale, or wrong)."""


@dataclass(frozen=True)
class WebhookKeys:
    """The keyring: keys by version, and the version new subscriptions use."""

    keys: Mapping[str, bytes] = field(repr=False)
    current: str

    def secret(self, version: str, webhook_id: str, nonce: bytes) -> str:
        """The secret of a subscription made under key ``version`` (KeyError: not in the
        ring)."""
        digest = hmac.digest(
            self.keys[version], _CONTEXT + webhook_id.encode() + b"\x00" + nonce, "sha256"
        )
        return SECRET_PREFIX + digest.hex()


def parse_keys(text: str, where: str) -> WebhookKeys:
    """A keyring from a file's text (``where`` names it in errors)."""
    keys: dict[str, bytes] = {}
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    for number, entry in enumerate((line for line in lines if line), start=1):
        version, colon, hexed = (part.strip() for part in entry.partition(":"))
        if not colon or not _VERSION.fullmatch(version) or not _HEX.fullmatch(hexed):
            raise WebhookKeyError(f"{where}: entry {number} is not 'version:hexsecret'")
        if version in keys:
            raise WebhookKeyError(f"{where}: version {version!r} is listed twice")
        if len(hexed) < 2 * MIN_KEY_BYTES:
            raise WebhookKeyError(f"{where}: key {version} is shorter than {MIN_KEY_BYTES} bytes")
        keys[version] = bytes.fromhex(hexed)
    if not keys:
        raise WebhookKeyError(f"{where}: no webhook key in it")
    return WebhookKeys(MappingProxyType(keys), current=list(keys)[-1])


def load_keys(path: Path) -> WebhookKeys:
    """The keyring in file ``path`` (WebhookKeyError when unreadable or malformed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WebhookKeyError(f"cannot read the webhook keys {path}: {exc.strerror}") from None
    return parse_keys(text, str(path))


def ensure_key_file(path: Path) -> Path:
    """A development keyring at ``path`` (mode 0600), made unless one exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write("# webhook secret keys of this machine (development only)\n")
        out.write(f"local-{secrets.token_hex(4)}:{secrets.token_hex(MIN_KEY_BYTES)}\n")
    return path


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The ``SW-Signature`` header of a delivery sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, now: float, tolerance_s: float = TOLERANCE_S
) -> int:
    """What a receiver does: the header's timestamp if one of its ``v1`` signatures is the
    body's under ``secret`` and the timestamp is within ``tolerance_s`` of ``now``; else
    BadSignature. (Several ``v1`` are accepted, as Stripe sends during a secret's rotation.)"""
    parts = [item.partition("=") for item in header.split(",")]
    stamps = [value for key, _, value in parts if key.strip() == "t"]
    candidates = [value.strip() for key, _, value in parts if key.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not candidates:
        raise BadSignature("malformed signature header")
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance_s:
        raise BadSignature("timestamp outside the tolerance")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise BadSignature("no signature matches")
    return timestamp
