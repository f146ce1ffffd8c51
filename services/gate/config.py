"""The gate's settings: ``GATE_*`` environment variables.

Trust (required, as the inspection station's: ``services.intake.config.TokenSettings`` under
``GATE_``): ``GATE_JWT_ISSUER``, ``GATE_JWT_AUDIENCE``, one of ``GATE_JWKS_URL`` or
``GATE_JWKS_FILE`` (the issuer of gate officers' tokens, inspectors' tokens naming an agency),
one of ``GATE_ID_SECRET`` or ``GATE_ID_SECRET_FILE`` (at least 32 bytes: the HMAC key of
gate-out ids derived from an Idempotency-Key); optional ``GATE_JWT_ALGORITHMS``,
``GATE_JWT_LEEWAY_SECONDS``, ``GATE_JWT_AGENCY_CLAIM`` (``agency``) and
``GATE_JWT_USCC_CLAIM`` (``usccs``: a token with it is a trader's, refused).

- ``GATE_AGENCY`` (``port``): the registered agency whose officers work the gate (the port
  authority); an inspector of any other agency is refused;
- ``GATE_HOST`` (``127.0.0.1``) and ``GATE_PORT`` (8083; 0: any free port);
- ``GATE_METRICS_PORT`` (9109; 0: none): ``/metrics``, ``/livez``, ``/readyz`` on a port of
  its own;
- ``GATE_PUBLIC_DOCS`` (false; true locally): ``/docs`` and ``/openapi.json``.

The read model is the shared settings' (``MONGODB_URL``, ``MONGODB_DATABASE``), as the
intake's; the gate only reads it (``find_one`` by id), so give it a read-only user where the
server can express one.

Locally (:func:`local_gate_env`) it trusts the development issuer, with the intake's
audience: ``make inspector-token AGENCY=port`` gives a gate officer's token.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from services.intake.auth import ClaimsVerifier, Inspector, inspector_of
from services.intake.config import ConfigError, TokenSettings, build_claims_verifier
from services.intake.devissuer import DEFAULT_DIR, local_token_env
from singlewindow.events import RESERVED_NAMES
from singlewindow.registry import agency_registry
from singlewindow.settings import Port

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ID_SECRET = ROOT / "var" / "credentials" / "gate" / "id-secret"


class GateSettings(TokenSettings):
    model_config = SettingsConfigDict(env_prefix="GATE_")

    agency: str = "port"
    host: str = "127.0.0.1"
    port: Port = 8083
    metrics_port: Port = 9109
    jwt_agency_claim: str = "agency"
    public_docs: bool = False

    @classmethod
    def service(cls) -> str:
        return "gate"


def gate_agency(settings: GateSettings) -> str:
    """The agency whose officers work the gate: a registered one (ConfigError otherwise)."""
    agency = settings.agency
    if agency in RESERVED_NAMES or agency not in agency_registry():
        raise ConfigError(
            f"{settings.variable('agency')}={agency!r} is not a registered agency "
            f"(agencies.toml: {', '.join(agency_registry().codes)})"
        )
    return agency


def build_officer_verifier(settings: GateSettings) -> ClaimsVerifier[Inspector]:
    """The verifier of officers' (inspectors') tokens the settings describe (ConfigError
    otherwise); which agency may work the gate is :func:`gate_agency`'s."""
    agency_claim, uscc_claim = settings.jwt_agency_claim, settings.jwt_uscc_claim
    return build_claims_verifier(
        settings, lambda claims: inspector_of(claims, agency_claim, uscc_claim)
    )


def local_gate_env(
    directory: Path = DEFAULT_DIR, id_secret_file: Path = LOCAL_ID_SECRET
) -> dict[str, str]:
    """The gate's environment for a local run: the development issuer and an id secret of
    its own, created if needed; docs open."""
    return {
        **local_token_env("GATE_", directory, id_secret_file),
        "GATE_PUBLIC_DOCS": "true",
    }
