"""``python -m services.customs``: the composition root of the customs service.

Each declaration is assessed with the reference data in force on its acceptance date
(:func:`services.customs.rules.assess_on_acceptance`). Needs the random-sampling key (see
:mod:`services.customs.sampling`): without one it refuses to start, with a message naming
the variables to set.
"""

import os
import sys
from datetime import datetime

from services.customs.rules import assess_on_acceptance
from services.customs.sampling import SamplingKey, SamplingKeyError, current_key
from singlewindow.agency import run_agency
from singlewindow.events import AgencyVerdict, DeclarationSubmitted


def sampling_key() -> SamplingKey:
    """The key new draws use, from the environment; exits with the reason when there is none."""
    try:
        return current_key(os.environ)
    except SamplingKeyError as exc:
        sys.exit(f"customs: cannot start: {exc}")


if __name__ == "__main__":
    key = sampling_key()

    def on_acceptance(declaration: DeclarationSubmitted, _: None, now: datetime) -> AgencyVerdict:
        return assess_on_acceptance(declaration, now, key)

    run_agency("customs", on_acceptance, None)
