"""The read model: one document per declaration, built from the events by single-document
atomic upserts (FerretDB has no multi-document transactions).

A document becomes final only when its result and the verdicts it names are all in
(:func:`promotion`). Idempotent and order-tolerant: replaying the topics gives the same
documents, and a stale event never overwrites a newer state (a verdict never demotes a
final status; a replayed declaration never resets one).
"""

from __future__ import annotations

from typing import Any

from singlewindow.events import AgencyVerdict, ClearanceResult, DeclarationSubmitted, Event

COLLECTION = "declarations"
FINAL = ("RELEASED", "INSPECTION_REQUIRED", "HELD", "REJECTED", "TIMED_OUT")
AGENCY_ORDER = ("customs", "ciq", "port")

Update = tuple[dict[str, Any], dict[str, Any], bool]  # filter, update, upsert


def updates_for(event: Event) -> list[Update]:
    """The upserts that apply one event to the read model (pure)."""
    key = {"_id": event.declaration_id}
    doc = event.model_dump(mode="json")
    if isinstance(event, DeclarationSubmitted):
        return [
            (
                key,
                {
                    "$set": {"declaration": doc},
                    "$setOnInsert": {"status": "SUBMITTED", "verdicts": {}, "result": None},
                },
                True,
            )
        ]
    if isinstance(event, AgencyVerdict):
        return [
            (
                key,
                {
                    "$set": {f"verdicts.{event.agency}": doc},
                    "$setOnInsert": {"status": "IN_REVIEW", "result": None},
                },
                True,
            ),
            ({**key, "status": "SUBMITTED"}, {"$set": {"status": "IN_REVIEW"}}, False),
        ]
    if isinstance(event, ClearanceResult):
        return [
            (
                key,
                {"$set": {"result": doc}, "$setOnInsert": {"status": "IN_REVIEW", "verdicts": {}}},
                True,
            ),
            ({**key, "status": "SUBMITTED"}, {"$set": {"status": "IN_REVIEW"}}, False),
        ]
    raise TypeError(f"no projection for {type(event).__name__}")


def promotion(doc: dict[str, Any]) -> Update | None:
    """The update that makes a document final, once its result and every verdict the result
    names are in: a final answer always comes with its verdicts. Monotonic, so idempotent."""
    result = doc.get("result")
    if result is None or doc.get("status") in FINAL:
        return None
    verdicts = doc.get("verdicts") or {}
    if any(d["agency"] not in verdicts for d in result["decisions"]):
        return None
    return (
        {"_id": doc["_id"], "status": {"$nin": list(FINAL)}},
        {"$set": {"status": result["status"]}},
        False,
    )


def status_view(doc: dict[str, Any]) -> dict[str, Any]:
    """The status API's answer for one read-model document."""
    verdicts = doc.get("verdicts") or {}
    ordered = sorted(verdicts, key=lambda a: ((*AGENCY_ORDER, a)).index(a))
    return {
        "declaration_id": doc["_id"],
        "status": doc["status"],
        "verdicts": [verdicts[a] for a in ordered],
        "result": doc.get("result"),
    }
