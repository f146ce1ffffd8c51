"""``python -m services.customs``: the composition root of the customs service."""

from services.customs.reference import load_reference
from services.customs.rules import assess
from singlewindow.agency import run_agency
from singlewindow.events import Agency

if __name__ == "__main__":
    run_agency(Agency.CUSTOMS, assess, load_reference(), default_metrics_port=9101)
