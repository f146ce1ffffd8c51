"""The intake's settings (environment variables) and what they build.

Trust (required: without them the intake refuses to start, it never accepts everyone):

- ``INTAKE_JWT_ISSUER``, ``INTAKE_JWT_AUDIENCE``: the ``iss`` and ``aud`` tokens must carry;
- exactly one of ``INTAKE_JWKS_URL`` (the issuer's JWKS endpoint) or ``INTAKE_JWKS_FILE``;
- exactly one of ``INTAKE_ID_SECRET`` or ``INTAKE_ID_SECRET_FILE``: at least 32 bytes, the
  HMAC key of idempotent declaration ids (``ids``);
- optional: ``INTAKE_JWT_ALGORITHMS`` (comma-separated, default ``EdDSA,ES256,RS256``; only
  asymmetric ones), ``INTAKE_JWT_LEEWAY_SECONDS`` (30), ``INTAKE_JWT_USCC_CLAIM``
  (``usccs``).

Where it listens: ``INTAKE_HOST`` (``127.0.0.1``) and ``INTAKE_PORT`` (8000; 0: any free port).

Limits and exposure: ``INTAKE_RATE_PER_SECOND`` (10) and ``INTAKE_RATE_BURST`` (100) per
subject; ``INTAKE_PUBLIC_DOCS`` and ``INTAKE_PUBLIC_METRICS`` (false: closed unless asked,
because the intake faces the Internet and both describe it to strangers: the API surface, and
traffic volumes and error rates of traders' business); ``INTAKE_METRICS_PORT`` (0: none)
serves the metrics on a port of their own for an internal scraper, as the other services do.
For local runs, ``python -m services.intake.devissuer env`` prints a complete set. Read with
``singlewindow.settings.read_settings``: an invalid value is refused naming its variable.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from services.intake.auth import FileKeys, JwtVerifier, KeySource, UrlKeys
from services.intake.ids import MIN_SECRET_BYTES
from singlewindow.settings import Port


class ConfigError(Exception):
    """The intake is not configured well enough to start; the message says what to set."""


class IntakeSettings(BaseSettings):
    intake_host: str = "127.0.0.1"
    intake_port: Port = 8000
    # Fault injection for tests only: SIGKILL this process between the claim of an
    # Idempotency-Key starting with this prefix and its publish. Empty: never.
    intake_fault_kill_after_claim: str = ""
    intake_jwt_issuer: str = ""
    intake_jwt_audience: str = ""
    intake_jwks_url: str = ""
    intake_jwks_file: Path | None = None
    intake_jwt_algorithms: str = "EdDSA,ES256,RS256"
    intake_jwt_leeway_seconds: float = 30.0
    intake_jwt_uscc_claim: str = "usccs"
    intake_id_secret: SecretStr | None = None
    intake_id_secret_file: Path | None = None
    intake_rate_per_second: float = Field(10.0, gt=0, allow_inf_nan=False)
    intake_rate_burst: int = Field(100, ge=1)
    intake_max_submissions: int = Field(500, ge=1)  # in progress at once; 503 beyond
    intake_public_docs: bool = False
    intake_public_metrics: bool = False
    intake_metrics_port: Port = 0


_NO_ISSUER = (
    "the intake has no token issuer configured, so it could not tell traders apart and "
    "refuses to start. Set INTAKE_JWT_ISSUER, INTAKE_JWT_AUDIENCE and one of INTAKE_JWKS_URL "
    "or INTAKE_JWKS_FILE (for a local run, `python -m services.intake.devissuer env` prints "
    "a development issuer's settings)"
)


def key_source(settings: IntakeSettings) -> KeySource:
    """The issuer's keys: a JWKS URL or a JWKS file, exactly one."""
    url, path = settings.intake_jwks_url, settings.intake_jwks_file
    if url and path:
        raise ConfigError("set INTAKE_JWKS_URL or INTAKE_JWKS_FILE, not both")
    try:
        if url:
            return UrlKeys(url)
        if path:
            return FileKeys(path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    raise ConfigError(_NO_ISSUER)


def build_verifier(settings: IntakeSettings) -> JwtVerifier:
    """The token verifier the settings describe, or ConfigError saying what is missing."""
    issuer, audience = settings.intake_jwt_issuer, settings.intake_jwt_audience
    has_keys = settings.intake_jwks_url or settings.intake_jwks_file
    if not (issuer or audience or has_keys):
        raise ConfigError(_NO_ISSUER)
    missing = [
        name
        for name, value in (
            ("INTAKE_JWT_ISSUER", issuer),
            ("INTAKE_JWT_AUDIENCE", audience),
            ("INTAKE_JWKS_URL or INTAKE_JWKS_FILE", has_keys),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"the token issuer is only partly configured: set {', '.join(missing)}")
    algorithms = [a.strip() for a in settings.intake_jwt_algorithms.split(",") if a.strip()]
    try:
        return JwtVerifier(
            key_source(settings),
            issuer=issuer,
            audience=audience,
            algorithms=algorithms,
            leeway=settings.intake_jwt_leeway_seconds,
            uscc_claim=settings.intake_jwt_uscc_claim,
        )
    except ValueError as exc:
        raise ConfigError(f"INTAKE_JWT_ALGORITHMS: {exc}") from None


def id_secret(settings: IntakeSettings) -> bytes:
    """The HMAC key of idempotent ids: INTAKE_ID_SECRET or the INTAKE_ID_SECRET_FILE content
    (one trailing newline ignored), at least 32 bytes."""
    value, path = settings.intake_id_secret, settings.intake_id_secret_file
    if value is not None and path is not None:
        raise ConfigError("set INTAKE_ID_SECRET or INTAKE_ID_SECRET_FILE, not both")
    if path is not None:
        try:
            secret = path.read_bytes().removesuffix(b"\n")
        except OSError as exc:
            raise ConfigError(f"cannot read INTAKE_ID_SECRET_FILE: {exc}") from None
    elif value is not None:
        secret = value.get_secret_value().encode()
    else:
        raise ConfigError(
            "no id secret: set INTAKE_ID_SECRET_FILE (or INTAKE_ID_SECRET) to at least "
            f"{MIN_SECRET_BYTES} random bytes, e.g. `openssl rand -hex 32`"
        )
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"the id secret must be at least {MIN_SECRET_BYTES} bytes long")
    return secret
