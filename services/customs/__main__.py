"""``python -m services.customs``: the composition root of the customs service.

Needs the random-sampling key (see :mod:`services.customs.sampling`): without one it refuses
to start, with a message naming the variables to set.
"""

import os
import sys
from functools import partial

from services.customs.reference import load_reference
from services.customs.rules import assess
from services.customs.sampling import SamplingKey, SamplingKeyError, current_key
from singlewindow.agency import run_agency


def sampling_key() -> SamplingKey:
    """The key new draws use, from the environment; exits with the reason when there is none."""
    try:
        return current_key(os.environ)
    except SamplingKeyError as exc:
        sys.exit(f"customs: cannot start: {exc}")


if __name__ == "__main__":
    draw_with = partial(assess, sampling_key=sampling_key())
    run_agency("customs", draw_with, load_reference())
