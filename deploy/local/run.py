"""``python -m deploy.local.run <service>``: run one service of the local platform with the
environment the local stack made for it (what the ``Procfile`` and the test launcher use).

The environment is :func:`deploy.local.launcher.local_env` for the service: its own Kafka
credentials, the intake's token issuer and id secret, customs' sampling key; anything set
already in the environment wins over the local defaults.
"""

from __future__ import annotations

import os
import sys

from deploy.local.launcher import local_env, module_of, services


def procfile() -> str:
    """The Procfile of ``make run``: one line per service, agencies from the registry."""
    return "".join(f"{s}: python -m deploy.local.run {s}\n" for s in services())


def main(argv: list[str]) -> None:
    if argv == ["--procfile"]:
        sys.stdout.write(procfile())
        return
    if len(argv) != 1 or argv[0] not in services():
        sys.exit(f"usage: python -m deploy.local.run {{{','.join(services())}|--procfile}}")
    service = argv[0]
    env = local_env(service, dict(os.environ))
    os.execvpe(sys.executable, [sys.executable, "-m", module_of(service)], env)


if __name__ == "__main__":
    main(sys.argv[1:])
