"""The delivery service's settings: ``WEBHOOKS_*`` environment variables.

- ``WEBHOOKS_KEYS_FILE`` (required): the webhook keyring (:mod:`services.webhooks.signing`),
  the same file as the intake's ``INTAKE_WEBHOOK_KEYS_FILE``; without it the service refuses
  to start (it could sign nothing);
- ``WEBHOOKS_ALLOW_LOOPBACK`` (false): ``http://`` to loopback receivers (local runs and
  tests); ``WEBHOOKS_ALLOW_PRIVATE`` (false): receivers on private networks
  (:mod:`services.webhooks.destinations`); set both as the intake's;
- ``WEBHOOKS_MAX_ATTEMPTS`` (8), ``WEBHOOKS_FIRST_BACKOFF_SECONDS`` (10),
  ``WEBHOOKS_MAX_BACKOFF_SECONDS`` (3600): tries and pauses before ``failed`` (8 tries span
  about an hour at the defaults);
- ``WEBHOOKS_TIMEOUT_SECONDS`` (10): one try, whole; ``WEBHOOKS_CONCURRENCY`` (64) tries in
  flight, ``WEBHOOKS_PER_WEBHOOK`` (4) of them for one webhook;
- ``WEBHOOKS_POLL_SECONDS`` (1): how often the outbox is queried when nothing happens;
- ``WEBHOOKS_METRICS_PORT`` (9110; 0: none).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.webhooks.deliverer import Options
from services.webhooks.destinations import DestinationPolicy
from singlewindow.settings import Port, ServiceSettings


class WebhooksSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOKS_")

    metrics_port: Port = 9110
    keys_file: Path | None = None
    allow_loopback: bool = False
    allow_private: bool = False
    max_attempts: int = Field(8, ge=1, le=100)
    first_backoff_seconds: float = Field(10.0, gt=0, le=86400, allow_inf_nan=False)
    max_backoff_seconds: float = Field(3600.0, gt=0, le=7 * 86400, allow_inf_nan=False)
    timeout_seconds: float = Field(10.0, gt=0, le=300, allow_inf_nan=False)
    concurrency: int = Field(64, ge=1, le=10_000)
    per_webhook: int = Field(4, ge=1, le=1000)
    poll_seconds: float = Field(1.0, gt=0, le=60, allow_inf_nan=False)

    def options(self) -> Options:
        return Options(
            max_attempts=self.max_attempts,
            first_backoff_s=self.first_backoff_seconds,
            max_backoff_s=self.max_backoff_seconds,
            timeout_s=self.timeout_seconds,
            concurrency=self.concurrency,
            per_webhook=self.per_webhook,
            poll_interval_s=self.poll_seconds,
        )

    def policy(self) -> DestinationPolicy:
        return DestinationPolicy(self.allow_loopback, self.allow_private)


def local_webhook_env(service: str, keys_file: Path) -> dict[str, str]:
    """What a local launcher gives ``service`` (``intake`` or ``webhooks``): the development
    keyring at ``keys_file`` (made if missing) and receivers on loopback allowed."""
    from services.webhooks.signing import ensure_key_file

    prefix = "INTAKE_WEBHOOK_" if service == "intake" else "WEBHOOKS_"
    return {
        f"{prefix}KEYS_FILE": str(ensure_key_file(keys_file).resolve()),
        f"{prefix}ALLOW_LOOPBACK": "true",
    }
