"""``python -m deploy.local.run <service>``: run one service of the local platform with the
environment the local stack made for it (what the ``Procfile`` and the test launcher use).

The environment is :func:`deploy.local.launcher.local_env` for the service: its own Kafka
credentials, the intake's token issuer and id secret, customs' sampling key; anything set
already in the environment wins over the local defaults.
"""

from __future__ import annotations

import os
import sys

from deploy.local.launcher import SERVICES, local_env


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in SERVICES:
        sys.exit(f"usage: python -m deploy.local.run {{{','.join(SERVICES)}}}")
    service = argv[0]
    env = local_env(service, dict(os.environ))
    os.execvpe(sys.executable, [sys.executable, "-m", f"services.{service}"], env)


if __name__ == "__main__":
    main(sys.argv[1:])
