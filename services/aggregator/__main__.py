"""``python -m services.aggregator``: the composition root of the aggregator process."""

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings

from services.aggregator.service import NAME, Aggregator
from singlewindow import runtime
from singlewindow.settings import get_settings


class AggregatorSettings(BaseSettings):
    aggregator_deadline_seconds: float = Field(120.0, gt=0)
    aggregator_metrics_port: int = 9104


if __name__ == "__main__":
    own = AggregatorSettings()
    deadline = timedelta(seconds=own.aggregator_deadline_seconds)
    runtime.main(NAME, lambda: Aggregator(get_settings(), deadline), own.aggregator_metrics_port)
