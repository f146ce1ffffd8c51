"""The projector's own settings: ``PROJECTOR_*`` environment variables.

- ``PROJECTOR_FETCH_MAX_WAIT_MS`` (250, at most 5000): how long the broker may hold a fetch,
  so the read model's lag, for fewer database writes;
- ``PROJECTOR_METRICS_PORT`` (9105; 0: none).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from singlewindow.settings import Port, ServiceSettings


class ProjectorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PROJECTOR_")

    metrics_port: Port = 9105
    fetch_max_wait_ms: int = Field(250, ge=0, le=5000)
