"""The inspection station's settings: ``INSPECTION_*`` environment variables.

Trust (required, as the intake's: ``services.intake.config.TokenSettings`` under
``INSPECTION_``): ``INSPECTION_JWT_ISSUER``, ``INSPECTION_JWT_AUDIENCE``, one of
``INSPECTION_JWKS_URL`` or ``INSPECTION_JWKS_FILE`` (the issuer of inspectors' tokens), one of
``INSPECTION_ID_SECRET`` or ``INSPECTION_ID_SECRET_FILE`` (at least 32 bytes: the HMAC key of
finding ids derived from an Idempotency-Key); optional ``INSPECTION_JWT_ALGORITHMS``,
``INSPECTION_JWT_LEEWAY_SECONDS``, ``INSPECTION_JWT_AGENCY_CLAIM`` (``agency``: the claim
naming the agency an inspector inspects for) and ``INSPECTION_JWT_USCC_CLAIM`` (``usccs``: a
token with it is a trader's, refused).

- ``INSPECTION_HOST`` (``127.0.0.1``) and ``INSPECTION_PORT`` (8082; 0: any free port);
- ``INSPECTION_METRICS_PORT`` (9108; 0: none): ``/metrics``, ``/livez``, ``/readyz`` on a
  port of its own;
- ``INSPECTION_PUBLIC_DOCS`` (false; true locally): ``/docs`` and ``/openapi.json``.

Locally (:func:`local_inspection_env`) it trusts the development issuer, with the intake's
audience: ``make inspector-token AGENCY=customs`` gives a token it takes (and the intake and
the bank refuse: it lists no USCCs).
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from services.intake.auth import ClaimsVerifier, Inspector, inspector_of
from services.intake.config import TokenSettings, build_claims_verifier
from services.intake.devissuer import DEFAULT_DIR, local_token_env
from singlewindow.settings import Port

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ID_SECRET = ROOT / "var" / "credentials" / "inspection" / "id-secret"


class InspectionSettings(TokenSettings):
    model_config = SettingsConfigDict(env_prefix="INSPECTION_")

    host: str = "127.0.0.1"
    port: Port = 8082
    metrics_port: Port = 9108
    jwt_agency_claim: str = "agency"
    public_docs: bool = False

    @classmethod
    def service(cls) -> str:
        return "inspection station"


def build_inspector_verifier(settings: InspectionSettings) -> ClaimsVerifier[Inspector]:
    """The verifier of inspectors' tokens the settings describe (ConfigError otherwise)."""
    agency_claim, uscc_claim = settings.jwt_agency_claim, settings.jwt_uscc_claim
    return build_claims_verifier(
        settings, lambda claims: inspector_of(claims, agency_claim, uscc_claim)
    )


def local_inspection_env(
    directory: Path = DEFAULT_DIR, id_secret_file: Path = LOCAL_ID_SECRET
) -> dict[str, str]:
    """The station's environment for a local run: the development issuer and an id secret
    of its own, created if needed; docs open."""
    return {
        **local_token_env("INSPECTION_", directory, id_secret_file),
        "INSPECTION_PUBLIC_DOCS": "true",
    }
