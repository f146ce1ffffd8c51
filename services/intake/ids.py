"""Declaration and event ids, and the scope of an Idempotency-Key.

An Idempotency-Key belongs to the subject that sent it: the store records the claim under
:func:`scoped_key` (subject, key), so two subjects using the same key never meet. The ids of
an idempotent submission are derived from (subject, key) with HMAC-SHA256 under a server-side
secret (an input: ``INTAKE_ID_SECRET`` or ``INTAKE_ID_SECRET_FILE``), so nobody can compute a
declaration id from a key, not even the subject who chose the key; they are also stored in
the claim, so a retry republishes exactly the ids it claimed first, whatever the secret is by
then (a rotated secret only changes the ids of keys claimed after the rotation). Without a
key, ids are random.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

MIN_SECRET_BYTES = 32
_SEPARATOR = "\x1f"  # never in a subject (no control characters) nor a key (printable ASCII)


def scoped_key(subject: str, key: str) -> str:
    """The idempotency store's key for ``key`` sent by ``subject`` (unambiguous: neither may
    contain the separator)."""
    return f"{subject}{_SEPARATOR}{key}"


def version_key(declaration_id: str, version: int) -> str:
    """The idempotency store's key of a declaration's version: the first claim of it wins, so
    that two amendments computed from the same read model never both become version n+1.
    It starts with the separator, so no subject's key (a subject is never empty) is one."""
    return f"{_SEPARATOR}version{_SEPARATOR}{declaration_id}{_SEPARATOR}{version}"


def random_declaration_id() -> str:
    """``DEC-`` and 32 upper-case hex digits from a random uuid4."""
    return "DEC-" + uuid.uuid4().hex.upper()


def random_event_id() -> str:
    return str(uuid.uuid4())


class KeyedIds:
    """Ids derived from (subject, Idempotency-Key) under a secret (HMAC-SHA256)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the id secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def digest(self, purpose: str, subject: str, key: str) -> bytes:
        """HMAC-SHA256 of (``purpose``, subject, key): ids of different purposes never meet."""
        message = json.dumps([purpose, subject, key], ensure_ascii=True).encode()
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def request_id(self, prefix: str, subject: str, key: str | None, *request: object) -> str:
        """``prefix`` and 32 upper-case hex digits: random without a key; with one, the same
        for every request of the subject's key with the same ``request`` (JSON values: the
        body, and what else identifies it), so that a key reused for another request (another
        payment, another finding, another truck) gives another id instead of passing for a
        retry of the first."""
        if key is None:
            return prefix + uuid.uuid4().hex.upper()
        body = json.dumps(request, sort_keys=True, ensure_ascii=True)
        return prefix + self.digest(prefix, subject, f"{key}\n{body}")[:16].hex().upper()

    def declaration_id(self, subject: str, key: str) -> str:
        """``DEC-`` and 32 upper-case hex digits (the format of a random id)."""
        return "DEC-" + self.digest("declaration", subject, key)[:16].hex().upper()

    def event_id(self, subject: str, key: str) -> str:
        """A uuid (version 4 layout: the bits are pseudo-random)."""
        return str(uuid.UUID(bytes=self.digest("event", subject, key)[:16], version=4))
