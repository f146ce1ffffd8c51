"""``python -m services.aggregator``: the composition root of the aggregator process."""

from services.aggregator.config import AggregatorSettings
from services.aggregator.service import Aggregator
from services.aggregator.tasks import NAME
from singlewindow import runtime
from singlewindow.settings import get_settings

if __name__ == "__main__":
    own = runtime.own_settings(NAME, AggregatorSettings.read)
    runtime.main(
        NAME,
        lambda health: Aggregator(
            get_settings(),
            own.deadline,
            retention=own.retention,
            inspection_deadline=own.inspection_deadline,
            health=health,
        ),
        own.metrics_port,
    )
