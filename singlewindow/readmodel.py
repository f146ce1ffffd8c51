"""The read model: one document per declaration, a pure fold of its events.

``apply(doc, event)`` is deterministic and order-tolerant: of several copies of a declaration
(a retried submission) or of an agency's verdict (a redelivery) the earliest wins, the first
result wins (the aggregator writes exactly one), the status only moves forward
(SUBMITTED, IN_REVIEW, then final), and a document turns final only once its result and every
verdict the result names are in, so a final answer always comes with its verdicts. Replaying
the topics gives the same documents. The projector is the only writer of an existing
document (co-partitioning gives each declaration to one projector instance); FerretDB has no
multi-document transactions, so each write is one single-document replace.

A *versioned* declaration (``version`` set: lodged since amendments exist) lives on after
its first result (:mod:`services.aggregator.join`), and its document says so. It is still a
pure function of the set of its events, whatever their order and repeats:

- ``declaration``: the highest version's (within a version the earliest copy); ``version``:
  its number (None while no declaration is in);
- ``verdicts``: the agencies' verdicts on that version (earliest copy each);
  ``pending_verdicts``: verdicts on a later version that came before their declaration
  (they count once it arrives); verdicts on an older version no longer count and are dropped;
- ``steps``: every result (one per step), deduplicated by ``result_id``, ordered by
  ``sequence``; ``result``: the latest step;
- ``withdrawal`` (the trader's, earliest copy) and ``payments`` (the bank's confirmations,
  by ``payment_id``, in the order paid) as facts;
- ``findings``: the inspectors' findings at the joint inspection, as facts: every one the
  station recorded, by ``finding_id`` (earliest copy), in the order recorded, whatever order
  and version they name (a later finding of an agency supersedes its earlier one on the same
  order: :mod:`services.aggregator.inspection` says which count; the steps say what they
  added up to). The key is there only once a finding is in, so the document of a life
  without an inspection keeps its shape;
- ``status``: the latest step's once the verdicts it names are in (a step of a version the
  document has moved past, or whose verdicts are missing, leaves it ``IN_REVIEW``), and a
  final step (RELEASED, REJECTED, WITHDRAWN, SANCTIONED, RECALLED) wins whatever came after
  it, but for a release (RELEASED, or AMENDMENT_REFUSED: a refused change after release) which
  a change after release may follow. After a step that locks its version (a final one, a
  release, conditional or not, an inspection order: one inspection) the join ignores every
  later version, so an amendment that raced it shows as the declaration while the status
  stays the latest step of the version before it (the steps say which); a change after release
  (its declaration marked ``after_release``) shows IN_REVIEW until customs' answer is in
  (SUPPLEMENTARY_PAYMENT_DUE, RELEASED, AMENDMENT_REFUSED).

A declaration without versions keeps exactly the document it always had (none of the new
keys): its life ends at its first result. Its events never carry a version, nor does the
join give it withdrawals, payments or findings, which are ignored if one ever comes.

``gate_outs``: the port's gate-outs (``gate.out``: goods that left the port under a release,
:mod:`services.gate`), as facts, versioned declaration or not: every one, by
``gate_out_id`` (of two copies, a redelivery or a retry under the same Idempotency-Key, the
earliest passed), in the order passed. A gate-out changes nothing else in the document (the
status stays the release's), and nothing else changes them, so the document stays a pure
function of the set of its events. The key is there only once a gate-out is in.

``revision``: how many times the document changed, on every document (one that predates it
counts from 0): each event that changes anything else adds one, a duplicate adds nothing. It
is what the status stream's event ids are (``GET /v1/declarations/{id}/events``: a client
resumes from the revision it has), so it only ever grows. It is the one key that depends on
the order the events were folded in (a later copy of a verdict read before the earlier one
is two changes, not one): everything else is a function of the set of events, and a rebuild
compares documents without it (:mod:`services.audit.readmodel_rebuild`).
"""

from __future__ import annotations

import json
from typing import Any

from singlewindow.events import (
    FINAL_STATUSES,
    RELEASED_STATUSES,
    REOPENABLE,
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    DeclarationSubmitted,
    DeclarationWithdrawn,
    Event,
    GateOut,
    InspectionFinding,
    PaymentConfirmed,
)

COLLECTION = "declarations"
# where the document of a declaration without versions stops moving (its first answer)
FINAL = ("RELEASED", "INSPECTION_REQUIRED", "HELD", "REJECTED", "TIMED_OUT")
# where a versioned declaration's life ends
LIFE_FINAL: tuple[str, ...] = tuple(sorted(str(s) for s in FINAL_STATUSES))
# the final steps nothing comes after: a release (or a refused change after it) may be
# followed by the steps of a change after release, with customs' approval
ENDING = frozenset(LIFE_FINAL) - {str(s) for s in REOPENABLE}
# the steps after which the join takes no new version of the declaration
# (services.aggregator.join): the life ends, the goods are out, or an inspection is ordered
LOCKING = frozenset(
    {*LIFE_FINAL, *(str(s) for s in RELEASED_STATUSES), str(ClearanceStatus.INSPECTION_REQUIRED)}
)
VERSIONED_KEYS = ("version", "steps", "pending_verdicts", "withdrawal", "payments", "findings")
# events that only a versioned declaration's life has
LIFE_EVENTS = (DeclarationWithdrawn, PaymentConfirmed, InspectionFinding)

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
    """The document after one event (pure; the input is not modified), its ``revision`` one
    more than the input's if anything else changed (:func:`revised`)."""
    return revised(doc, _fold(doc, event))


def revised(before: Doc | None, after: Doc) -> Doc:
    """``after`` with its ``revision``: the input's (``before``'s; 0 when it has none) if
    nothing else changed, else one more. A duplicate changes nothing, so it bumps nothing."""
    if before is None or after != before:  # ``after`` carries ``before``'s revision
        after["revision"] = int((before or {}).get("revision") or 0) + 1
    return after


def content_of(doc: Doc) -> Doc:
    """The document without its ``revision``: what two folds of the same events in other
    orders agree on."""
    return {key: value for key, value in doc.items() if key != "revision"}


def _fold(doc: Doc | None, event: Event) -> Doc:
    """The document after one event, its revision not counted yet."""
    doc = {**new_document(event.declaration_id), **(doc or {})}
    data = event.model_dump(mode="json", exclude={"signature"})  # signatures stay on the log
    if isinstance(event, GateOut):  # a fact beside the rest, whatever the declaration's kind
        return _apply_gate_out(doc, data)
    without_versions = (doc["declaration"] or {"version": 0}).get("version") is None
    if "version" in doc or (_versioned(event) and not without_versions):
        return _apply_versioned(doc, event, data)
    if isinstance(event, LIFE_EVENTS):
        return doc  # a declaration without versions has no life after its result
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


def _versioned(event: Event) -> bool:
    """Whether the event belongs to the life of a versioned declaration."""
    if isinstance(event, DeclarationSubmitted | ClearanceResult):
        return event.version is not None
    if isinstance(event, AgencyVerdict):
        return event.declaration_version is not None
    return isinstance(event, LIFE_EVENTS)


def _version_of(data: Doc, field: str = "version") -> int:
    """The version an event's data names (1 for one written without)."""
    return int(data.get(field) or 1)


def _apply_versioned(doc: Doc, event: Event, data: Doc) -> Doc:
    """The document of a versioned declaration after one event (see the module's text)."""
    declaration: Doc | None = doc.get("declaration")
    # every verdict kept, by (version, agency): the current version's and the later ones
    pool: dict[tuple[int, str], Doc] = {
        (_version_of(v, "declaration_version"), str(v["agency"])): v
        for v in (*(doc.get("verdicts") or {}).values(), *(doc.get("pending_verdicts") or ()))
    }
    steps: dict[str, Doc] = {s["result_id"]: s for s in doc.get("steps") or ()}
    if doc.get("result") and not steps:  # a document written before it knew of versions
        steps[doc["result"]["result_id"]] = doc["result"]
    payments: dict[str, Doc] = {p["payment_id"]: p for p in doc.get("payments") or ()}
    withdrawal: Doc | None = doc.get("withdrawal")
    findings: dict[str, Doc] = {f["finding_id"]: f for f in doc.get("findings") or ()}
    if isinstance(event, DeclarationSubmitted):
        if declaration is None or _version_of(data) > _version_of(declaration):
            declaration = data
        elif _version_of(data) == _version_of(declaration):
            declaration = _earliest(declaration, data, "submitted_at", "event_id")
    elif isinstance(event, AgencyVerdict):
        key = (_version_of(data, "declaration_version"), str(event.agency))
        pool[key] = _earliest(pool.get(key), data, "decided_at", "verdict_id")
    elif isinstance(event, ClearanceResult):
        steps.setdefault(event.result_id, data)
    elif isinstance(event, DeclarationWithdrawn):
        withdrawal = _earliest(withdrawal, data, "withdrawn_at", "event_id")
    elif isinstance(event, PaymentConfirmed):
        payments[event.payment_id] = _earliest(
            payments.get(event.payment_id), data, "paid_at", "payment_id"
        )
    elif isinstance(event, InspectionFinding):
        findings[event.finding_id] = _first_copy(findings.get(event.finding_id), data)
    else:
        raise TypeError(f"no projection for {type(event).__name__}")
    version = None if declaration is None else _version_of(declaration)
    current = version or 1  # verdicts before any declaration: on its first version
    verdicts = {a: v for (n, a), v in sorted(pool.items()) if n == current}
    history = sorted(steps.values(), key=lambda s: (s["sequence"], s["result_id"]))
    doc.update(
        declaration=declaration,
        version=version,
        verdicts=verdicts,
        pending_verdicts=[v for (n, _), v in sorted(pool.items()) if n > current],
        steps=history,
        result=history[-1] if history else None,
        withdrawal=withdrawal,
        payments=sorted(payments.values(), key=lambda p: (p["paid_at"], p["payment_id"])),
    )
    if findings:
        doc["findings"] = sorted(findings.values(), key=_copy_order)
    changing = bool((declaration or {}).get("after_release"))
    doc["status"] = _life_status(verdicts, history, current, changing)
    return doc


def _copy_order(finding: Doc) -> tuple[str, str, str]:
    """Findings in the order recorded, then by id (the join's order: an agency's last finding
    here is the one that counts there, :func:`services.aggregator.inspection.later`); copies
    of one finding (a redelivery) by their content, so that the copy kept never depends on the
    order they were read in."""
    return finding["recorded_at"], finding["finding_id"], json.dumps(finding, sort_keys=True)


def _first_copy(current: Doc | None, new: Doc) -> Doc:
    """Of two copies of a finding the earliest recorded (see :func:`_copy_order`)."""
    return new if current is None or _copy_order(new) < _copy_order(current) else current


def _apply_gate_out(doc: Doc, data: Doc) -> Doc:
    """The document with one more gate-out (see the module's text): nothing else changes."""
    gate_outs: dict[str, Doc] = {g["gate_out_id"]: g for g in doc.get("gate_outs") or ()}
    current = gate_outs.get(data["gate_out_id"])
    if current is None or _passed_order(data) < _passed_order(current):
        gate_outs[data["gate_out_id"]] = data
    doc["gate_outs"] = sorted(gate_outs.values(), key=_passed_order)
    return doc


def _passed_order(gate_out: Doc) -> tuple[str, str]:
    """Gate-outs in the order passed; copies of one by their content (as findings')."""
    return gate_out["passed_at"], json.dumps(gate_out, sort_keys=True)


def _life_status(verdicts: Doc, steps: list[Doc], current: int, changing: bool = False) -> str:
    """The status of a versioned declaration (see the module's text); ``changing``: the
    declaration shown is a change after release."""
    final = next((s for s in steps if s["status"] in ENDING), None)
    latest = final or (steps[-1] if steps else None)
    if latest is None:
        return "IN_REVIEW" if verdicts else "SUBMITTED"
    named = all(d["agency"] in verdicts for d in latest["decisions"])
    if _version_of(latest) == current and named:
        return str(latest["status"])
    version = _version_of(latest)
    if changing and version < current:
        return "IN_REVIEW"  # a change after release: customs is assessing it
    locked = any(s["status"] in LOCKING and _version_of(s) == version for s in steps)
    if locked and version < current:
        return str(latest["status"])  # an amendment the join ignored: the version's steps stand
    return "IN_REVIEW"


def status_view(doc: Doc) -> Doc:
    """The status API's answer for one read-model document."""
    verdicts = doc.get("verdicts") or {}
    # in the order the declaration names its agencies (the routing table's), then any other
    asked = list((doc.get("declaration") or {}).get("required_agencies") or ())
    ordered = sorted(
        verdicts, key=lambda a: (asked.index(a), "") if a in asked else (len(asked), a)
    )
    view = {
        "declaration_id": doc["_id"],
        "status": doc["status"],
        "verdicts": [verdicts[a] for a in ordered],
        "result": doc.get("result"),
    }
    if "version" in doc:  # a versioned declaration: its life too
        view.update({key: doc.get(key) for key in VERSIONED_KEYS})
    if "gate_outs" in doc:  # goods out of the port
        view["gate_outs"] = doc["gate_outs"]
    return view
