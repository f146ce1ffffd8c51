"""``python -m services.aggregator``: the composition root of the aggregator process."""

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings

from services.aggregator.service import RETENTION, Aggregator
from services.aggregator.tasks import NAME
from singlewindow import runtime
from singlewindow.settings import get_settings


class AggregatorSettings(BaseSettings):
    aggregator_deadline_seconds: float = Field(120.0, gt=0)
    # how long a decided join is kept (then tombstoned); submissions older are dead-lettered
    aggregator_retention_seconds: float = Field(RETENTION.total_seconds(), gt=0, le=36500 * 86400)
    aggregator_metrics_port: int = 9104


if __name__ == "__main__":
    own = AggregatorSettings()
    deadline = timedelta(seconds=own.aggregator_deadline_seconds)
    retention = timedelta(seconds=own.aggregator_retention_seconds)
    runtime.main(
        NAME,
        lambda: Aggregator(get_settings(), deadline, retention=retention),
        own.aggregator_metrics_port,
    )
