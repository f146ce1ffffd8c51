"""``python -m services.projector``: the composition root of the read-model projector."""

import os

from services.projector.service import NAME, projector
from singlewindow import runtime
from singlewindow.settings import get_settings

if __name__ == "__main__":
    port = int(os.environ.get("PROJECTOR_METRICS_PORT", "9105"))
    runtime.main(NAME, lambda: projector(get_settings()), port)
