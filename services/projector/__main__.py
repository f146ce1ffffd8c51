"""``python -m services.projector``: the composition root of the read-model projector."""

from services.projector.config import ProjectorSettings
from services.projector.service import NAME, projector
from singlewindow import runtime
from singlewindow.settings import get_settings

if __name__ == "__main__":
    own = runtime.own_settings(NAME, ProjectorSettings.read)
    runtime.main(
        NAME,
        lambda health: projector(get_settings(), own.fetch_max_wait_ms, health),
        own.metrics_port,
    )
