"""``python -m services.ciq``: the composition root of the ciq service."""

from services.ciq.reference import load_reference
from services.ciq.rules import assess
from singlewindow.agency import run_agency

if __name__ == "__main__":
    run_agency("ciq", assess, load_reference())
