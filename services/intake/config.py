"""The intake's settings (environment variables) and what they build.

Trust (required: without them the intake refuses to start, it never accepts everyone):

- ``INTAKE_JWT_ISSUER``, ``INTAKE_JWT_AUDIENCE``: the ``iss`` and ``aud`` tokens must carry;
- exactly one of ``INTAKE_JWKS_URL`` (the issuer's JWKS endpoint) or ``INTAKE_JWKS_FILE``;
- exactly one of ``INTAKE_ID_SECRET`` or ``INTAKE_ID_SECRET_FILE``: at least 32 bytes, the
  HMAC key of idempotent declaration ids (``ids``);
- optional: ``INTAKE_JWT_ALGORITHMS`` (comma-separated, default ``EdDSA,ES256,RS256``; only
  asymmetric ones), ``INTAKE_JWT_LEEWAY_SECONDS`` (30), ``INTAKE_JWT_USCC_CLAIM``
  (``usccs``).

These are :class:`TokenSettings`, which any service that takes traders' tokens shares under
its own prefix (the bank's are ``BANK_JWT_ISSUER``...): :func:`build_verifier` and
:func:`id_secret` build them, naming the service's own variables when something is missing.

Where it listens: ``INTAKE_HOST`` (``127.0.0.1``) and ``INTAKE_PORT`` (8000; 0: any free port).

Limits and exposure: ``INTAKE_RATE_PER_SECOND`` (10) and ``INTAKE_RATE_BURST`` (100) per
subject; ``INTAKE_CHANGE_AFTER_RELEASE_DAYS`` (30): how long after its latest step a released
declaration may still be changed with customs' approval (keep it under the aggregator's
retention); ``INTAKE_PUBLIC_DOCS`` and ``INTAKE_PUBLIC_METRICS`` (false: closed unless asked,
because the intake faces the Internet and both describe it to strangers: the API surface, and
traffic volumes and error rates of traders' business); ``INTAKE_METRICS_PORT`` (0: none)
serves the ops endpoints (``/metrics``, ``/livez``, ``/readyz``) on a port of their own for an
internal scraper, as the other services do.
Webhooks (``/v1/webhooks``, :mod:`services.intake.webhooks`): served only when
``INTAKE_WEBHOOK_KEYS_FILE`` names the webhook keyring (the delivery service's
``WEBHOOKS_KEYS_FILE``; without it the routes answer 404); ``INTAKE_WEBHOOK_ALLOW_LOOPBACK``
and ``INTAKE_WEBHOOK_ALLOW_PRIVATE`` (false) widen the URLs accepted as the delivery
service's settings do; ``INTAKE_MAX_WEBHOOKS`` (10) per subject.
``INTAKE_MAX_STREAMS`` (1000): status streams open at once (503 beyond).
``INTAKE_DEV_SIGNIN`` (false): the web page offers a development sign-in that mints tokens
from the development issuer (``devissuer``) whose ``INTAKE_JWKS_FILE`` is set; refused with
``INTAKE_JWKS_URL`` (a real issuer: the page asks for one of its tokens). Local runs set it.
For local runs, ``python -m services.intake.devissuer env`` prints a complete set. Read with
``singlewindow.settings.read_settings``: an invalid value is refused naming its variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.intake.auth import ClaimsVerifier, FileKeys, JwtVerifier, KeySource, P, UrlKeys
from services.intake.ids import MIN_SECRET_BYTES
from singlewindow.settings import Port

V = TypeVar("V")


class ConfigError(Exception):
    """The intake is not configured well enough to start; the message says what to set."""


class TokenSettings(BaseSettings):
    """Who may call a service that takes traders' bearer tokens: the issuer it trusts, and the
    secret its idempotent ids are keyed with. A service subclasses it with its own
    ``env_prefix`` (``INTAKE_``, ``BANK_``): ``<PREFIX>JWT_ISSUER`` and so on."""

    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwks_url: str = ""
    jwks_file: Path | None = None
    jwt_algorithms: str = "EdDSA,ES256,RS256"
    jwt_leeway_seconds: float = 30.0
    jwt_uscc_claim: str = "usccs"
    id_secret: SecretStr | None = None
    id_secret_file: Path | None = None

    @classmethod
    def service(cls) -> str:
        """The service these settings are of, for messages: ``intake`` for ``INTAKE_``."""
        return cls.prefix().rstrip("_").lower() or "service"

    @classmethod
    def prefix(cls) -> str:
        return str(cls.model_config.get("env_prefix") or "").upper()

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of ``field``: ``INTAKE_JWT_ISSUER`` for ``jwt_issuer``."""
        return f"{cls.prefix()}{field}".upper()


class IntakeSettings(TokenSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_")

    host: str = "127.0.0.1"
    port: Port = 8000
    # Fault injection for tests only: SIGKILL this process between the claim of an
    # Idempotency-Key starting with this prefix and its publish. Empty: never.
    fault_kill_after_claim: str = ""
    rate_per_second: float = Field(10.0, gt=0, allow_inf_nan=False)
    rate_burst: int = Field(100, ge=1)
    max_submissions: int = Field(500, ge=1)  # in progress at once; 503 beyond
    # changes after release are taken this long after the latest step: keep it well under
    # AGGREGATOR_RETENTION_SECONDS (60 days), which drops a released life after its last event
    change_after_release_days: float = Field(30.0, gt=0, le=36500, allow_inf_nan=False)
    public_docs: bool = False
    public_metrics: bool = False
    metrics_port: Port = 0
    # webhooks (services.intake.webhooks): served only with a keyring, the delivery
    # service's (WEBHOOKS_KEYS_FILE); the URL policy as the delivery service's
    webhook_keys_file: Path | None = None
    webhook_allow_loopback: bool = False
    webhook_allow_private: bool = False
    max_webhooks: int = Field(10, ge=1, le=1000)  # per subject
    max_streams: int = Field(1000, ge=1)  # status streams open at once; 503 beyond
    # the web page's development sign-in: tokens minted by the development issuer whose
    # JWKS file INTAKE_JWKS_FILE is (its private key beside it); local runs only
    dev_signin: bool = False


def _no_issuer(settings: TokenSettings) -> str:
    v = settings.variable
    return (
        f"the {settings.service()} has no token issuer configured, so it could not tell its "
        f"callers apart and refuses to start. Set {v('jwt_issuer')}, {v('jwt_audience')} and "
        f"one of {v('jwks_url')} or {v('jwks_file')} (for a local run, `python -m "
        "services.intake.devissuer env` prints a development issuer's settings)"
    )


def key_source(settings: TokenSettings) -> KeySource:
    """The issuer's keys: a JWKS URL or a JWKS file, exactly one."""
    url, path = settings.jwks_url, settings.jwks_file
    if url and path:
        v = settings.variable
        raise ConfigError(f"set {v('jwks_url')} or {v('jwks_file')}, not both")
    try:
        if url:
            return UrlKeys(url)
        if path:
            return FileKeys(path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    raise ConfigError(_no_issuer(settings))


def build_verifier(settings: TokenSettings) -> JwtVerifier:
    """The traders' token verifier the settings describe, or ConfigError saying what is
    missing."""
    return _verifier(
        settings,
        lambda keys, **options: JwtVerifier(keys, uscc_claim=settings.jwt_uscc_claim, **options),
    )


def build_claims_verifier(
    settings: TokenSettings, principal: Callable[[Mapping[str, Any]], P]
) -> ClaimsVerifier[P]:
    """A verifier of the settings' issuer whose tokens name ``principal(claims)`` (the
    inspection station's inspectors), or ConfigError saying what is missing."""
    return _verifier(
        settings, lambda keys, **options: ClaimsVerifier(keys, principal=principal, **options)
    )


def _verifier(settings: TokenSettings, make: Callable[..., V]) -> V:
    """``make(keys, issuer=, audience=, algorithms=, leeway=)`` of the settings' issuer."""
    issuer, audience = settings.jwt_issuer, settings.jwt_audience
    has_keys = settings.jwks_url or settings.jwks_file
    if not (issuer or audience or has_keys):
        raise ConfigError(_no_issuer(settings))
    v = settings.variable
    missing = [
        name
        for name, value in (
            (v("jwt_issuer"), issuer),
            (v("jwt_audience"), audience),
            (f"{v('jwks_url')} or {v('jwks_file')}", has_keys),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"the token issuer is only partly configured: set {', '.join(missing)}")
    algorithms = [a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()]
    keys = key_source(settings)
    try:
        return make(
            keys,
            issuer=issuer,
            audience=audience,
            algorithms=algorithms,
            leeway=settings.jwt_leeway_seconds,
        )
    except ValueError as exc:
        raise ConfigError(f"{v('jwt_algorithms')}: {exc}") from None


def dev_issuer(settings: IntakeSettings) -> Path | None:
    """The development issuer's directory the web page's sign-in mints tokens from
    (``INTAKE_DEV_SIGNIN``), None when it is off; ConfigError when it is on without a local
    issuer (a JWKS file with the private key beside it)."""
    if not settings.dev_signin:
        return None
    path = settings.jwks_file
    if path is None or not (path.parent / "private-key.pem").is_file():
        raise ConfigError(
            "INTAKE_DEV_SIGNIN needs the development issuer: INTAKE_JWKS_FILE its jwks.json, "
            "with its private key beside it (`python -m services.intake.devissuer env`)"
        )
    return path.parent


def id_secret(settings: TokenSettings) -> bytes:
    """The HMAC key of idempotent ids: <PREFIX>ID_SECRET or the <PREFIX>ID_SECRET_FILE
    content (one trailing newline ignored), at least 32 bytes."""
    value, path = settings.id_secret, settings.id_secret_file
    named, file = settings.variable("id_secret"), settings.variable("id_secret_file")
    if value is not None and path is not None:
        raise ConfigError(f"set {named} or {file}, not both")
    if path is not None:
        try:
            secret = path.read_bytes().removesuffix(b"\n")
        except OSError as exc:
            raise ConfigError(f"cannot read {file}: {exc}") from None
    elif value is not None:
        secret = value.get_secret_value().encode()
    else:
        raise ConfigError(
            f"no id secret: set {file} (or {named}) to at least "
            f"{MIN_SECRET_BYTES} random bytes, e.g. `openssl rand -hex 32`"
        )
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"the id secret must be at least {MIN_SECRET_BYTES} bytes long")
    return secret
