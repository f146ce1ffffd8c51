"""The bank's settings: ``BANK_*`` environment variables.

Trust (required, as the intake's: ``services.intake.config.TokenSettings`` under ``BANK_``):
``BANK_JWT_ISSUER``, ``BANK_JWT_AUDIENCE``, one of ``BANK_JWKS_URL`` or ``BANK_JWKS_FILE`` (the
issuer of traders' tokens, the intake's), one of ``BANK_ID_SECRET`` or ``BANK_ID_SECRET_FILE``
(at least 32 bytes: the HMAC key of payment ids derived from an Idempotency-Key); optional
``BANK_JWT_ALGORITHMS``, ``BANK_JWT_LEEWAY_SECONDS``, ``BANK_JWT_USCC_CLAIM``.

- ``BANK_HOST`` (``127.0.0.1``) and ``BANK_PORT`` (8081; 0: any free port): where it listens;
- ``BANK_METRICS_PORT`` (9107; 0: none): ``/metrics``, ``/livez``, ``/readyz`` on a port of
  its own, as the consumers';
- ``BANK_PAID_AT_SLACK_SECONDS`` (300): how far in the future a value date may be (clock skew;
  at most 90 days: locally 60 days, so that a simulated payment can be made after a notice's
  due date without waiting for it: ``make demo`` pays late);
- ``BANK_PUBLIC_DOCS`` (false; true locally): ``/docs`` and ``/openapi.json``;
- ``BANK_GUARANTEES_FILE`` (none: no general guarantees, every draw 403): the general
  guarantees the bank issued (JSON, ``services.bank.guarantees``; locally
  ``deploy/local/guarantees.json``);
- ``BANK_DATABASE`` (``singlewindow_bank``): the database of the guarantees' ledgers
  (collection ``guarantees``) on the server of ``MONGODB_URL``: a database of its own, so that
  the bank's database user needs ``readWrite`` on it and nothing on the read model's.
- ``BANK_REPUBLISH_SECONDS`` (60): how often the bank publishes the ledger entries it recorded
  and never published (it stopped in between, and the client never retried: a debit nobody
  would see; ``Bank.publish_pending``, each logged as a warning).

Locally (:func:`local_bank_env`) it trusts the development issuer, with the intake's audience:
``make token`` gives a token both take.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.intake.config import TokenSettings
from services.intake.devissuer import DEFAULT_DIR, local_token_env
from singlewindow.settings import Port

ROOT = Path(__file__).resolve().parents[2]
LOCAL_GUARANTEES = ROOT / "deploy" / "local" / "guarantees.json"
LOCAL_ID_SECRET = ROOT / "var" / "credentials" / "bank" / "id-secret"


LOCAL_VALUE_DATES_AHEAD = timedelta(days=60)


class BankSettings(TokenSettings):
    model_config = SettingsConfigDict(env_prefix="BANK_")

    host: str = "127.0.0.1"
    port: Port = 8081
    metrics_port: Port = 9107
    paid_at_slack_seconds: float = Field(300.0, ge=0, le=90 * 86400, allow_inf_nan=False)
    public_docs: bool = False
    guarantees_file: Path | None = None
    database: str = Field("singlewindow_bank", min_length=1, max_length=63)
    republish_seconds: float = Field(60.0, ge=1, le=3600, allow_inf_nan=False)


def local_bank_env(
    directory: Path = DEFAULT_DIR, id_secret_file: Path = LOCAL_ID_SECRET
) -> dict[str, str]:
    """The bank's environment for a local run: the development issuer and an id secret of
    its own, created if needed; value dates up to 60 days ahead (a simulated late payment);
    the demo's general guarantees (deploy/local/guarantees.json)."""
    return {
        **local_token_env("BANK_", directory, id_secret_file),
        "BANK_PUBLIC_DOCS": "true",
        "BANK_GUARANTEES_FILE": str(LOCAL_GUARANTEES),
        "BANK_PAID_AT_SLACK_SECONDS": str(LOCAL_VALUE_DATES_AHEAD.total_seconds()),
    }
