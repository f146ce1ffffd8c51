"""The read model: one document per declaration, a pure fold of its events.

``apply(doc, event)`` is deterministic and order-tolerant: of several copies of a declaration
(a retried submission) or of an agency's verdict (a redelivery) the earliest wins, the first
result wins (the aggregator writes exactly one), the status only moves forward
(SUBMITTED, IN_REVIEW, then final), and a document turns final only once its result and every
verdict the result names are in, so a final answer always comes with its verdicts. Replaying
the topics gives the same documents. The projector is the only writer of an existing
document (co-partitioning gives each declaration to one projector instance); FerretDB has no
multi-document transactions, so each write is one single-document replace.
"""

from __future__ import annotations

from typing import Any

from singlewindow.events import AgencyVerdict, ClearanceResult, DeclarationSubmitted, Event

COLLECTION = "declarations"
FINAL = ("RELEASED", "INSPECTION_REQUIRED", "HELD", "REJECTED", "TIMED_OUT")

Doc = dict[str, Any]


def new_document(declaration_id: str) -> Doc:
    return {
        "_id": declaration_id,
        "status": "SUBMITTED",
        "declaration": None,
        "verdicts": {},
        "result": None,
    }


def _earliest(current: Doc | None, new: Doc, time: str, tiebreak: str) -> Doc:
    """Of two copies (a retried submission, a redelivered verdict) the earliest, so that the
    document does not depend on the order the copies were read in."""
    if current is None or (new[time], new[tiebreak]) < (current[time], current[tiebreak]):
        return new
    return current


def apply(doc: Doc | None, event: Event) -> Doc:
    """The document after one event (pure; the input is not modified)."""
    doc = {**new_document(event.declaration_id), **(doc or {})}
    data = event.model_dump(mode="json", exclude={"signature"})  # signatures stay on the log
    if isinstance(event, DeclarationSubmitted):
        doc["declaration"] = _earliest(doc.get("declaration"), data, "submitted_at", "event_id")
    elif isinstance(event, AgencyVerdict):
        verdicts = dict(doc.get("verdicts") or {})
        agency = str(event.agency)
        verdicts[agency] = _earliest(verdicts.get(agency), data, "decided_at", "verdict_id")
        doc["verdicts"] = verdicts
    elif isinstance(event, ClearanceResult):
        doc["result"] = doc.get("result") or data
    else:
        raise TypeError(f"no projection for {type(event).__name__}")
    if doc["status"] not in FINAL:
        doc["status"] = "IN_REVIEW" if doc["verdicts"] or doc["result"] else "SUBMITTED"
        result = doc["result"]
        if result and all(d["agency"] in doc["verdicts"] for d in result["decisions"]):
            doc["status"] = result["status"]
    return doc


def status_view(doc: Doc) -> Doc:
    """The status API's answer for one read-model document."""
    verdicts = doc.get("verdicts") or {}
    # in the order the declaration names its agencies (the routing table's), then any other
    asked = list((doc.get("declaration") or {}).get("required_agencies") or ())
    ordered = sorted(
        verdicts, key=lambda a: (asked.index(a), "") if a in asked else (len(asked), a)
    )
    return {
        "declaration_id": doc["_id"],
        "status": doc["status"],
        "verdicts": [verdicts[a] for a in ordered],
        "result": doc.get("result"),
    }
