"""``python -m services.projector``: the composition root of the read-model projector."""

from pydantic import Field
from pydantic_settings import BaseSettings

from services.projector.service import NAME, projector
from singlewindow import runtime
from singlewindow.settings import get_settings


class ProjectorSettings(BaseSettings):
    projector_metrics_port: int = 9105
    # how long the broker may hold a fetch: the read model's lag, for fewer database writes
    projector_fetch_max_wait_ms: int = Field(250, ge=0, le=5000)


if __name__ == "__main__":
    own = ProjectorSettings()
    runtime.main(
        NAME,
        lambda: projector(get_settings(), own.projector_fetch_max_wait_ms),
        own.projector_metrics_port,
    )
