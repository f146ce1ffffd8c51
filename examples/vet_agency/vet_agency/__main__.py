"""``python -m vet_agency``: the whole service. The SDK does the rest (consumer group,
decoding, signature checks, dead letters, signed verdicts, metrics, shutdown); the agency's
entry in the platform's agency registry (AGENCY_REGISTRY_FILE) names its topic and group."""

from singlewindow.agency import run_agency
from vet_agency.reference import load_reference
from vet_agency.rules import assess

if __name__ == "__main__":
    run_agency("vet", assess, load_reference())
