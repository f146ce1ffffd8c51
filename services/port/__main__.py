"""``python -m services.port``: the composition root of the port service."""

from services.port.reference import load_reference
from services.port.rules import assess
from singlewindow.agency import run_agency

if __name__ == "__main__":
    run_agency("port", assess, load_reference())
