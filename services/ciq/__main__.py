"""``python -m services.ciq``: the composition root of the ciq service.

Each declaration is assessed with the reference data in force on its acceptance date
(:func:`services.ciq.rules.assess_on_acceptance`).
"""

from datetime import datetime

from services.ciq.rules import assess_on_acceptance
from singlewindow.agency import run_agency
from singlewindow.events import AgencyVerdict, DeclarationSubmitted


def _on_acceptance(declaration: DeclarationSubmitted, _: None, now: datetime) -> AgencyVerdict:
    return assess_on_acceptance(declaration, now)


if __name__ == "__main__":
    run_agency("ciq", _on_acceptance, None)
