"""Signed events: every event names the key of the service that wrote it and carries its
Ed25519 signature, so an agency can prove a verdict is its own and nobody can speak in its name.

**Algorithm.** Ed25519 (RFC 8032) from the ``cryptography`` package (OpenSSL underneath), the
library the platform already uses for TLS material. SM2 (GB/T 32918) would suit a Chinese
deployment, but no maintained Python library implements it over a vetted backend
(``gmssl`` is pure Python, unaudited, and has no constant-time guarantees); the key registry
names each key's algorithm, so SM2 keys can join when such a library exists.

**Canonical form.** The signature is the last field of every signed event (a record of
``key_id``, ``signed_at`` and ``value``), and the signed bytes are the event's Avro
single-object encoding up to, and not including, the signature value: the header with the
writer schema's fingerprint, every business field, the key id and the signing time. Avro's
binary encoding of a given datum under a given schema is unique, so the signer and every
verifier agree on those bytes without re-encoding anything, and a payload keeps verifying
for as long as its writer schema is kept (``schemas/avro/released/``), whatever readers
come later.

**Key registry.** Public keys live in a registry the operators control (a JSON file, see
:class:`KeyRegistry`; a ConfigMap on Kubernetes): each key has an id, its signer (a service
principal of :mod:`singlewindow.security`), a validity period and, once compromised, a
revocation. A signature is accepted only when its key is known, belongs to the principal
that must sign this kind of event (:func:`signer_of`), is not revoked, and ``signed_at``
lies in its validity period. Rotation: add the new key, point the service at it, then end
the old key's validity; the old key stays listed, so what it signed stays verifiable.
Revocation refuses everything the key ever signed (a stolen key can backdate).

The private key of each service is an input (``SIGNING_KEY_FILE``, ``SIGNING_KEY_ID``), the
registry too (``KEY_REGISTRY_FILE``); ``python -m singlewindow.signing`` makes keys and keeps
the registry.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, Protocol, TypeVar

import typer
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from singlewindow.events import (
    AgencyVerdict,
    ClearanceResult,
    DeclarationSubmitted,
    DeclarationWithdrawn,
    Event,
    GateOut,
    InspectionFinding,
    JoinState,
    PaymentConfirmed,
    Signature,
    UtcMillis,
)
from singlewindow.registry import agency_registry
from singlewindow.settings import Settings

E = TypeVar("E", bound=Event)
ALGORITHM = "Ed25519"
SIGNATURE_BYTES = 64
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
INTAKE, AGGREGATOR, BANK, INSPECTION = "intake", "aggregator", "bank", "inspection"
GATE = "gate"


class SignatureError(ValueError):
    """An event whose signature cannot be accepted; the message says why (no secret in it)."""


class KeyRefused(SignatureError):
    """The signing key is unknown, not the signer's, revoked or outside its validity."""


def signer_of(event: Event) -> str:
    """The principal that must sign ``event``: the intake its declarations and withdrawals,
    each agency its verdicts, the aggregator its results and its join states, the bank its
    payment confirmations, the inspection station the inspectors' findings, the port's gate
    its gate-outs."""
    if isinstance(event, DeclarationSubmitted | DeclarationWithdrawn):
        return INTAKE
    if isinstance(event, PaymentConfirmed):
        return BANK
    if isinstance(event, InspectionFinding):
        return INSPECTION
    if isinstance(event, GateOut):
        return GATE
    if isinstance(event, AgencyVerdict):
        return str(event.agency)
    if isinstance(event, ClearanceResult | JoinState):
        return AGGREGATOR
    raise TypeError(f"{type(event).__name__} is not a signed event")


def _zigzag_varint(n: int) -> bytes:
    """Avro's encoding of a long."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VALUE_PREFIX = _zigzag_varint(SIGNATURE_BYTES)  # the length of an Ed25519 signature value


def signed_message(payload: bytes, signature: Signature) -> bytes:
    """The bytes ``signature`` signs in ``payload``: everything before the value. Raises
    SignatureError when the payload does not end with that value (the signature is not the
    last field, or its length is not encoded the one way Avro encodes it)."""
    suffix = _zigzag_varint(len(signature.value)) + signature.value
    if len(signature.value) != SIGNATURE_BYTES or not payload.endswith(suffix):
        raise SignatureError("malformed signature: not a 64-byte value ending the event")
    return payload[: -len(suffix)]


class SigningKey:
    """A service's private key and its id in the registry; ``repr`` hides the key."""

    def __init__(self, key_id: str, private: Ed25519PrivateKey) -> None:
        if not KEY_ID.fullmatch(key_id):
            raise SignatureError(f"{key_id!r} is not a key id (letters, digits, . _ : -)")
        self.key_id, self._private = key_id, private

    def __repr__(self) -> str:
        return f"SigningKey({self.key_id!r})"

    @classmethod
    def generate(cls, key_id: str) -> SigningKey:
        return cls(key_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, key_id: str, pem: bytes) -> SigningKey:
        try:
            private = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"key {key_id}: not an unencrypted PEM private key") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise SignatureError(f"key {key_id}: not an Ed25519 key")
        return cls(key_id, private)

    def private_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_raw(self) -> bytes:
        return self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, event: E, signed_at: datetime) -> tuple[E, bytes]:
        """``event`` signed now (any signature it had is replaced), and its payload."""
        blank = Signature(key_id=self.key_id, signed_at=signed_at, value=b"")
        unsigned = event.model_copy(update={"signature": blank}).to_avro()
        message = unsigned[:-1]  # drops the empty value's length (one byte, 0x00)
        value = self._private.sign(message)
        signature = blank.model_copy(update={"value": value})
        return event.model_copy(update={"signature": signature}), message + _VALUE_PREFIX + value


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class RegisteredKey(BaseModel):
    """A public key the operators registered."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    key_id: Annotated[str, Field(pattern=KEY_ID.pattern)]
    signer: str = Field(min_length=1, max_length=64, description="the principal it belongs to")
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key: str = Field(description="the raw 32-byte public key, base64url")
    valid_from: UtcMillis
    valid_until: UtcMillis | None = None
    revoked_at: UtcMillis | None = None
    revocation_reason: str = ""

    @model_validator(mode="after")
    def _sane(self) -> RegisteredKey:
        try:
            raw = _unb64(self.public_key)
            Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise ValueError(f"key {self.key_id}: public_key is not a raw Ed25519 key") from exc
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError(f"key {self.key_id}: valid_until is not after valid_from")
        return self

    def refusal(self, signer: str, signed_at: datetime) -> str | None:
        """Why this key cannot vouch for an event of ``signer`` signed at ``signed_at``."""
        if self.signer != signer:
            return f"key {self.key_id} belongs to {self.signer}, not {signer}"
        if self.revoked_at is not None:
            why = f": {self.revocation_reason}" if self.revocation_reason else ""
            return f"key {self.key_id} is revoked since {self.revoked_at.isoformat()}{why}"
        if signed_at < self.valid_from or (
            self.valid_until is not None and signed_at >= self.valid_until
        ):
            return f"key {self.key_id} was not valid at {signed_at.isoformat()}"
        return None


class KeyRegistry(BaseModel):
    """The operators' registry of public keys (the ``KEY_REGISTRY_FILE`` JSON), versioned:
    every change makes a new version."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    version: int = Field(ge=1)
    keys: tuple[RegisteredKey, ...] = ()
    _public: dict[str, tuple[RegisteredKey, Ed25519PublicKey]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> KeyRegistry:
        ids = [k.key_id for k in self.keys]
        doubled = sorted({i for i in ids if ids.count(i) > 1})
        if doubled:
            raise ValueError(f"key ids registered twice: {doubled}")
        return self

    def model_post_init(self, _context: object) -> None:
        self._public = {
            k.key_id: (k, Ed25519PublicKey.from_public_bytes(_unb64(k.public_key)))
            for k in self.keys
        }

    @classmethod
    def load(cls, path: Path) -> KeyRegistry:
        try:
            return cls.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise SignatureError(f"key registry {path}: {exc}") from exc

    def save(self, path: Path) -> None:
        """Write atomically (a service rereading it never sees half a file)."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.model_dump_json(indent=2) + "\n")
        tmp.replace(path)

    def key(self, key_id: str) -> RegisteredKey | None:
        found = self._public.get(key_id)
        return found[0] if found else None

    def check(self, payload: bytes, event: Event) -> RegisteredKey:
        """Accept ``event``, decoded from ``payload``, as signed by the principal that must
        sign it, or raise SignatureError saying why not."""
        signature = event.signature
        if signature is None:
            raise SignatureError(f"unsigned {type(event).__name__}")
        found = self._public.get(signature.key_id)
        if found is None:
            raise KeyRefused(f"unknown signing key {signature.key_id[:128]!r}")
        key, public = found
        refusal = key.refusal(signer_of(event), signature.signed_at)
        if refusal:
            raise KeyRefused(refusal)
        try:
            public.verify(signature.value, signed_message(payload, signature))
        except InvalidSignature:
            raise SignatureError(f"wrong signature (key {key.key_id})") from None
        return key

    # -- what the operators do ---------------------------------------------------------------

    def with_key(self, key: RegisteredKey, retire_others_at: datetime | None = None) -> KeyRegistry:
        """A new version with ``key`` added; with ``retire_others_at``, the signer's other
        open-ended keys end their validity then (rotation)."""
        if self.key(key.key_id) is not None:
            raise SignatureError(f"key {key.key_id} is registered already")
        kept = []
        for k in self.keys:
            if retire_others_at and k.signer == key.signer and k.valid_until is None:
                k = k.model_copy(update={"valid_until": max(retire_others_at, k.valid_from)})
            kept.append(k)
        return KeyRegistry(version=self.version + 1, keys=(*kept, key))

    def revoked(self, key_id: str, at: datetime, reason: str) -> KeyRegistry:
        """A new version in which ``key_id`` is revoked."""
        if self.key(key_id) is None:
            raise SignatureError(f"no key {key_id} in the registry")
        keys = tuple(
            k.model_copy(update={"revoked_at": at, "revocation_reason": reason})
            if k.key_id == key_id
            else k
            for k in self.keys
        )
        return KeyRegistry(version=self.version + 1, keys=keys)


class Verifier(Protocol):
    """What accepts or refuses an event's signature: a :class:`KeyRegistry`, or the
    :class:`RegistryFile` a service keeps current."""

    def check(self, payload: bytes, event: Event) -> RegisteredKey: ...


@dataclass(frozen=True)
class ServiceKeys:
    """What a service that both verifies and signs holds: its own key, and the registry."""

    signer: SigningKey
    registry: Verifier

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceKeys:
        return cls(signing_key(settings), registry_file(settings))


def signing_key(settings: Settings) -> SigningKey:
    """This service's signing key (``SIGNING_KEY_FILE``, ``SIGNING_KEY_ID``); a service that
    writes events refuses to start without one."""
    if settings.signing_key_file is None or not settings.signing_key_id:
        raise SignatureError(
            "SIGNING_KEY_FILE and SIGNING_KEY_ID are required: this service signs what it "
            "writes (`python -m singlewindow.signing new-key` makes a key)"
        )
    try:
        pem = settings.signing_key_file.read_bytes()
    except OSError as exc:
        raise SignatureError(f"SIGNING_KEY_FILE: {exc}") from exc
    return SigningKey.from_pem(settings.signing_key_id, pem)


def registry_file(settings: Settings) -> RegistryFile:
    """The key registry a service verifies with (``KEY_REGISTRY_FILE``, required)."""
    if settings.key_registry_file is None:
        raise SignatureError(
            "KEY_REGISTRY_FILE is required: this service accepts only signed events"
        )
    return RegistryFile(settings.key_registry_file)


def register(key: SigningKey, signer: str, valid_from: datetime) -> RegisteredKey:
    return RegisteredKey(
        key_id=key.key_id, signer=signer, public_key=_b64(key.public_raw()), valid_from=valid_from
    )


class RegistryFile:
    """The registry a running service verifies with: reread when the file changes (checked
    at most once a second), so a new or revoked key takes effect without a restart. A file
    that becomes unreadable keeps the last good version in force."""

    def __init__(self, path: Path, recheck_s: float = 1.0) -> None:
        self.path, self.recheck_s = path, recheck_s
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self.registry = KeyRegistry.load(path)
        self._next_check = time.monotonic() + recheck_s

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def current(self) -> KeyRegistry:
        now = time.monotonic()
        if now >= self._next_check:
            with self._lock:
                self._next_check = now + self.recheck_s
                stamp = self._stat()
                if stamp is not None and stamp != self._stamp:
                    # half-edited or broken: keep verifying with the last good one
                    with contextlib.suppress(SignatureError):
                        self.registry, self._stamp = KeyRegistry.load(self.path), stamp
        return self.registry

    def check(self, payload: bytes, event: Event) -> RegisteredKey:
        return self.current().check(payload, event)


# -- the command line: keys and the registry ------------------------------------------------

cli = typer.Typer(help="Event-signing keys and the key registry.", no_args_is_help=True)


def _now() -> datetime:
    return datetime.now(UTC)


def new_key_files(
    registry_path: Path, signer: str, key_id: str, key_path: Path, rotate: bool
) -> KeyRegistry:
    """Make a key pair for ``signer``: the private key to ``key_path`` (0600, refused if it
    exists), the public key into the registry (made if missing), valid from now; with
    ``rotate``, the signer's other keys end their validity now."""
    key = SigningKey.generate(key_id)
    registry = KeyRegistry.load(registry_path) if registry_path.exists() else None
    now = _now()
    entry = register(key, signer, now)
    if registry is None:
        updated = KeyRegistry(version=1, keys=(entry,))
    else:
        updated = registry.with_key(entry, retire_others_at=now if rotate else None)
    key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key.private_pem())
    updated.save(registry_path)
    return updated


@cli.command("new-key")
def new_key_command(
    signer: str,
    key_id: str,
    key_file: Annotated[Path, typer.Option(help="where the private key goes (must not exist)")],
    registry: Annotated[Path, typer.Option(help="the key registry JSON (made if missing)")],
    rotate: Annotated[
        bool, typer.Option(help="end the validity of the signer's other keys now")
    ] = False,
) -> None:
    """Make a key pair for SIGNER: private key to --key-file, public key into --registry."""
    try:
        updated = new_key_files(registry, signer, key_id, key_file, rotate)
    except (SignatureError, FileExistsError) as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"{key_id} registered for {signer}; registry version {updated.version}")


@cli.command("revoke")
def revoke_command(
    key_id: str,
    reason: Annotated[str, typer.Option(help="why (kept in the registry)")],
    registry: Annotated[Path, typer.Option(help="the key registry JSON")],
) -> None:
    """Revoke KEY_ID: nothing it signed is accepted any more."""
    try:
        updated = KeyRegistry.load(registry).revoked(key_id, _now(), reason)
    except SignatureError as exc:
        raise typer.BadParameter(str(exc)) from None
    updated.save(registry)
    typer.echo(f"{key_id} revoked; registry version {updated.version}")


@cli.command("list")
def list_command(registry: Annotated[Path, typer.Option(help="the key registry JSON")]) -> None:
    """The registered keys, one line each."""
    loaded = KeyRegistry.load(registry)
    typer.echo(f"registry version {loaded.version}")
    for k in loaded.keys:
        until = k.valid_until.isoformat() if k.valid_until else "open"
        state = f"REVOKED {k.revoked_at.isoformat()}" if k.revoked_at else "active"
        typer.echo(f"{k.key_id}\t{k.signer}\t{k.valid_from.isoformat()} .. {until}\t{state}")


def signers() -> Iterable[str]:
    """Every principal that signs events."""
    return (INTAKE, *agency_registry().codes, AGGREGATOR, BANK, INSPECTION, GATE)


if __name__ == "__main__":
    cli()
