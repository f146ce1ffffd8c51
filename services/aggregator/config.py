"""The aggregator's own settings: ``AGGREGATOR_*`` environment variables.

- ``AGGREGATOR_DEADLINE_SECONDS`` (120): how long a declaration waits for its agencies'
  verdicts before it is decided ``TIMED_OUT``;
- ``AGGREGATOR_INSPECTION_DEADLINE_SECONDS`` (2 days): how long a joint inspection order
  waits, from its time, for the findings of every agency it names before it is escalated
  (``TIMED_OUT`` naming the agencies that have not recorded; their findings still decide).
  Two days: the goods are moved to the station and every agency's officer attends within a
  working day or two, and an agency that forgot is escalated before the terminal's free
  storage runs out and demurrage falls on the trader. Auditors set the same value
  (``audit verify`` checks the escalation's time against it);
- ``AGGREGATOR_RETENTION_SECONDS`` (60 days): how long a join is kept after its last event (then
  tombstoned); submissions older than that are dead-lettered as stale;
- ``AGGREGATOR_METRICS_PORT`` (9104; 0: none).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.aggregator.join import INSPECTION_DEADLINE
from services.aggregator.service import RETENTION
from singlewindow.settings import Port, ServiceSettings


class AggregatorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AGGREGATOR_")

    metrics_port: Port = 9104
    deadline_seconds: float = Field(120.0, gt=0, allow_inf_nan=False)
    inspection_deadline_seconds: float = Field(
        INSPECTION_DEADLINE.total_seconds(), gt=0, le=36500 * 86400, allow_inf_nan=False
    )
    retention_seconds: float = Field(RETENTION.total_seconds(), gt=0, le=36500 * 86400)

    @property
    def deadline(self) -> timedelta:
        return timedelta(seconds=self.deadline_seconds)

    @property
    def inspection_deadline(self) -> timedelta:
        return timedelta(seconds=self.inspection_deadline_seconds)

    @property
    def retention(self) -> timedelta:
        return timedelta(seconds=self.retention_seconds)
