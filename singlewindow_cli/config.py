"""What the CLI remembers and whom it asks.

The token is kept in ``~/.config/singlewindow/token`` (``SW_CONFIG_DIR`` names another
folder): a bearer token is a password for as long as it is valid, so the file is created
with mode 0600 inside a folder of mode 0700, written to a temporary file first and renamed
over the old one (a crash never leaves half a token), and never printed. The platform is
``SW_URL`` (default ``http://127.0.0.1:8000``, the intake of ``make run``) unless ``--url``
says otherwise.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt

DEFAULT_URL = "http://127.0.0.1:8000"
TOKEN_FILE = "token"


def config_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``SW_CONFIG_DIR``, else ``~/.config/singlewindow``."""
    named = environ.get("SW_CONFIG_DIR")
    return Path(named).expanduser() if named else Path.home() / ".config" / "singlewindow"


def token_path(environ: Mapping[str, str] = os.environ) -> Path:
    return config_dir(environ) / TOKEN_FILE


def save_token(token: str, path: Path) -> None:
    """Keep ``token`` in ``path`` (mode 0600, its folder created with mode 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(token + "\n")
        os.chmod(temporary, 0o600)  # whatever the umask
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def load_token(path: Path) -> str | None:
    """The token kept in ``path``, or None when there is none."""
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    return token or None


def forget_token(path: Path) -> bool:
    """Remove the kept token; whether there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


@dataclass(frozen=True)
class Identity:
    """Who a token says it is for (read without verifying it: the platform verifies; this
    only tells the user whom they signed in as, and until when)."""

    subject: str
    usccs: tuple[str, ...]
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def as_json(self) -> dict[str, Any]:
        expires = self.expires_at.isoformat() if self.expires_at else None
        return {"subject": self.subject, "usccs": list(self.usccs), "expires_at": expires}


def identity_of(token: str) -> Identity | None:
    """The claims a person recognises (``sub``, ``usccs``, ``exp``), or None if ``token`` is
    not a JWT."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    usccs = claims.get("usccs")
    expires = claims.get("exp")
    return Identity(
        subject=str(claims.get("sub") or ""),
        usccs=tuple(str(u) for u in usccs) if isinstance(usccs, list) else (),
        expires_at=datetime.fromtimestamp(expires, UTC) if isinstance(expires, int) else None,
    )
