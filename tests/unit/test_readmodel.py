"""The read model's fold: order-tolerant, idempotent, monotonic, final only when complete;
the joint inspection's findings too."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from services.aggregator.join import INSPECTION_DEADLINE, tick
from services.aggregator.join import fold as join_fold
from services.aggregator.join import step as join_step
from services.audit.log import AUDITED, LoggedEvent
from services.audit.readmodel_rebuild import fold as rebuild_fold
from services.projector.service import KINDS
from singlewindow.events import (
    AgencyVerdict,
    ClearanceResult,
    ClearanceStatus,
    Decision,
    DeclarationSubmitted,
    Event,
    FindingOutcome,
    GateOut,
    InspectionCheck,
    InspectionFinding,
    Measure,
    Reason,
    Signature,
    TaxKind,
    TaxTotal,
)
from singlewindow.kafka.consumer import PoisonMessage, decode_signed
from singlewindow.readmodel import FINAL, apply, content_of, status_view
from singlewindow.security import principal
from singlewindow.topics import GATE_OUT, INSPECTION_FINDINGS
from tests import factories
from tests.factories import REGISTRY

EVENTS: list[Event] = [
    factories.declaration("D-RM", required_agencies=("customs", "port")),
    factories.verdict("D-RM", "customs", Decision.INSPECT, verdict_id="V1"),
    factories.verdict("D-RM", "port", Decision.CLEAR),
    factories.result("D-RM", status=ClearanceStatus.INSPECTION_REQUIRED),
]


def fold(events: list[Event]) -> dict[str, Any]:
    doc = None
    for event in events:
        doc = apply(doc, event)
    assert doc is not None
    return doc


@given(st.permutations(range(4)), st.lists(st.integers(0, 3), max_size=8))
def test_any_order_with_replays_gives_the_same_document(order: list[int], again: list[int]) -> None:
    events = [EVENTS[i] for i in order] + [EVENTS[i] for i in again]
    assert content_of(fold(events)) == content_of(fold(EVENTS))


def test_every_change_adds_one_to_the_revision_and_a_duplicate_nothing() -> None:
    revisions, doc = [], None
    for event in [*EVENTS, EVENTS[1], EVENTS[3], EVENTS[0]]:
        doc = apply(doc, event)
        revisions.append(doc["revision"])
    assert revisions == [1, 2, 3, 4, 4, 4, 4]


@given(st.permutations(range(4)), st.lists(st.integers(0, 3), max_size=8))
def test_the_revision_grows_whenever_the_document_changes(
    order: list[int], again: list[int]
) -> None:
    """Whatever the order: the status stream's ids grow with every change it shows."""
    doc: dict[str, Any] | None = None
    for event in [EVENTS[i] for i in order] + [EVENTS[i] for i in again]:
        after = apply(doc, event)
        if doc is not None and content_of(after) == content_of(doc):
            assert after["revision"] == doc["revision"]
        else:
            assert after["revision"] == (doc or {"revision": 0})["revision"] + 1
        doc = after


def test_a_document_written_before_revisions_counts_from_zero() -> None:
    old = content_of(fold(EVENTS[:2]))
    assert apply(old, EVENTS[1]) == old  # unchanged: not even the revision is added
    assert apply(old, EVENTS[2])["revision"] == 1


def test_status_walks_forward_and_is_final_only_with_every_named_verdict() -> None:
    statuses = []
    doc = None
    for event in [EVENTS[0], EVENTS[3], EVENTS[2], EVENTS[1]]:
        doc = apply(doc, event)
        statuses.append(doc["status"])
    assert statuses == ["SUBMITTED", "IN_REVIEW", "IN_REVIEW", "INSPECTION_REQUIRED"]


def test_a_late_duplicate_never_changes_a_final_document() -> None:
    final = fold(EVENTS)
    assert final["status"] in FINAL
    late = factories.verdict("D-RM", "customs", Decision.REJECT, verdict_id="V1")
    assert apply(final, late) == final
    assert apply(final, EVENTS[0]) == final


def test_the_status_view_lists_verdicts_in_agency_order() -> None:
    view = status_view(fold(list(reversed(EVENTS))))
    assert view["declaration_id"] == "D-RM"
    assert [v["agency"] for v in view["verdicts"]] == ["customs", "port"]
    assert view["result"]["status"] == "INSPECTION_REQUIRED"


# -- the life of a versioned declaration ------------------------------------------------------
# The results come from the join itself (services.aggregator.join.fold), so the projection is
# tested against the steps the aggregator really writes.

V_ALL = ("customs", "port")
CAR_TAX = (
    TaxTotal(kind=TaxKind.DUTY, assessed=Decimal("24795.00"), collected=Decimal("24795.00")),
)


def _declared(version: int, at: int, **changes: Any) -> DeclarationSubmitted:
    return factories.declaration(
        "D-LV",
        version=version,
        required_agencies=V_ALL,
        submitted_at=factories.T0 + timedelta(seconds=at),
        event_id=f"E{version}",
        **changes,
    )


def _ruled(agency: str, decision: Decision, version: int, at: int) -> AgencyVerdict:
    taxed = agency == "customs" and decision is Decision.CLEAR
    return factories.verdict(
        "D-LV",
        agency,
        decision,
        declaration_version=version,
        decided_at=factories.T0 + timedelta(seconds=at),
        verdict_id=f"V-{agency}-v{version}",
        tax_totals=CAR_TAX if taxed else (),
        total_duties=Decimal("24795.00") if taxed else Decimal("0"),
    )


def _life(*, withdraw: bool = False) -> list[Event]:
    """Held on version 1, amended, cleared with a notice, paid in two parts (released), or
    withdrawn while the notice is due; inputs and the join's results, in the join's order."""
    inputs: list[Any] = [
        _declared(1, 0),
        _ruled("customs", Decision.HOLD, 1, 1),
        _ruled("port", Decision.CLEAR, 1, 2),
        _declared(2, 10),
        _ruled("customs", Decision.CLEAR, 2, 11),
        _ruled("port", Decision.CLEAR, 2, 12),
    ]
    _, results = join_fold(inputs, timedelta(seconds=120))
    notice = results[-1].payment_notice
    assert notice is not None
    if withdraw:
        inputs.append(factories.withdrawal("D-LV", version=2))
    else:
        inputs += [
            factories.payment(
                "D-LV", notice.notice_id, payment_id="P1", amount=Decimal("20000.00")
            ),
            factories.payment(
                "D-LV",
                notice.notice_id,
                payment_id="P2",
                amount=Decimal("4795.00"),
                paid_at=factories.T0 + timedelta(hours=2),
            ),
        ]
    _, results = join_fold(inputs, timedelta(seconds=120))
    return [*inputs, *results]


LIFE = _life()
WITHDRAWN = _life(withdraw=True)


def test_a_versioned_life_is_folded_into_its_steps() -> None:
    doc = fold(LIFE)
    assert doc["version"] == 2 and doc["declaration"]["event_id"] == "E2"
    assert [(s["sequence"], s["version"], s["status"]) for s in doc["steps"]] == [
        (1, 1, "HELD"),
        (2, 2, "AWAITING_PAYMENT"),
        (3, 2, "AWAITING_PAYMENT"),
        (4, 2, "RELEASED"),
    ]
    assert doc["result"] == doc["steps"][-1] and doc["status"] == "RELEASED"
    assert {a: v["declaration_version"] for a, v in doc["verdicts"].items()} == {
        "customs": 2,
        "port": 2,
    }
    assert doc["pending_verdicts"] == [] and doc["withdrawal"] is None
    assert [p["payment_id"] for p in doc["payments"]] == ["P1", "P2"]
    assert doc["result"]["settlement"]["paid"] == "24795.00"
    assert status_view(doc)["steps"] == doc["steps"]


def test_a_withdrawn_life_ends_withdrawn() -> None:
    doc = fold(WITHDRAWN)
    assert doc["status"] == "WITHDRAWN" and doc["withdrawal"]["version"] == 2
    assert [s["status"] for s in doc["steps"]][-1] == "WITHDRAWN"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_versioned_life_in_any_order_with_replays_gives_one_document(data: st.DataObject) -> None:
    history = data.draw(st.sampled_from([LIFE, WITHDRAWN]))
    order = data.draw(st.permutations(range(len(history))))
    again = data.draw(st.lists(st.integers(0, len(history) - 1), max_size=6))
    events = [history[i] for i in order] + [history[i] for i in again]
    assert content_of(fold(events)) == content_of(fold(history))


def test_the_status_follows_the_steps_of_the_current_version() -> None:
    statuses = []
    doc = None
    for event in LIFE:
        doc = apply(doc, event)
        statuses.append(doc["status"])
    # the inputs first (no result yet: version 2 is the current one from the 4th), then the
    # results: version 1's HELD no longer stands, version 2's steps do
    assert statuses == [
        *("SUBMITTED", "IN_REVIEW", "IN_REVIEW", "SUBMITTED", "IN_REVIEW", "IN_REVIEW"),
        *("IN_REVIEW", "IN_REVIEW", "IN_REVIEW", "AWAITING_PAYMENT", "AWAITING_PAYMENT"),
        "RELEASED",
    ]


def test_after_an_amendment_the_old_answer_no_longer_stands() -> None:
    held = [e for e in LIFE if not isinstance(e, ClearanceResult)][:3]
    first = next(e for e in LIFE if isinstance(e, ClearanceResult))
    doc = fold([*held, first])
    assert doc["status"] == "HELD" and doc["version"] == 1
    doc = apply(doc, _declared(2, 10))
    assert doc["status"] == "IN_REVIEW" and doc["version"] == 2
    assert doc["verdicts"] == {} and doc["result"]["status"] == "HELD"  # v1's no longer count


def test_verdicts_on_a_later_version_wait_for_their_declaration() -> None:
    early = _ruled("port", Decision.CLEAR, 2, 12)
    doc = fold([_declared(1, 0), early])
    assert doc["verdicts"] == {} and doc["pending_verdicts"][0]["verdict_id"] == "V-port-v2"
    doc = apply(doc, _declared(2, 10))
    assert list(doc["verdicts"]) == ["port"] and doc["pending_verdicts"] == []


def test_a_declaration_without_versions_keeps_its_document() -> None:
    doc = fold(EVENTS)
    assert set(doc) == {"_id", "status", "declaration", "verdicts", "result", "revision"}
    assert apply(doc, factories.withdrawal("D-RM")) == doc
    assert apply(doc, factories.payment("D-RM")) == doc


# -- the joint inspection ---------------------------------------------------------------------
# One order on version 1 of D-IN (customs and port inspect); the findings against it, the
# payment and the laboratory's result, through the join; the steps are the join's own.

D_IN = "D-IN"
DUTY = (TaxTotal(kind=TaxKind.DUTY, assessed=Decimal("100.00"), collected=Decimal("100.00")),)


def _at(seconds: int) -> Any:
    return factories.T0 + timedelta(seconds=seconds)


def _inspecting(agency: str, check: str, at: int) -> AgencyVerdict:
    return factories.verdict(
        D_IN,
        agency,
        Decision.INSPECT,
        declaration_version=1,
        verdict_id=f"V-{agency}",
        decided_at=_at(at),
        checks=(InspectionCheck(agency=agency, check=check, item=1),),
        tax_totals=DUTY if agency == "customs" else (),
        total_duties=Decimal("100.00") if agency == "customs" else Decimal("0"),
    )


INSPECTED: list[Any] = [
    factories.declaration(D_IN, version=1, required_agencies=V_ALL, event_id="E1"),
    _inspecting("customs", "UNIT_VALUE", 1),
    _inspecting("port", "DG_SEGREGATION", 2),
]
ORDER = join_fold(INSPECTED, timedelta(seconds=120))[1][-1].inspection
assert ORDER is not None


def _found(agency: str, outcome: FindingOutcome, at: int, **changes: Any) -> InspectionFinding:
    finding_id = changes.pop("finding_id", f"F-{agency}-{at}")
    return factories.finding(
        D_IN,
        agency,
        outcome,
        finding_id=finding_id,
        order_id=ORDER.order_id,
        recorded_at=_at(at),
        **changes,
    )


def _inspection_life(*found: Event, lab: InspectionFinding | None = None) -> list[Event]:
    """The inspection's inputs, ``found`` (findings, an amendment), the payment of the notice
    if the join issues one, then the laboratory's result ``lab``; and the join's results, in
    the join's order."""
    inputs: list[Any] = [*INSPECTED, *found]
    _, results = join_fold(inputs, timedelta(seconds=120))
    notice = next(r.payment_notice for r in results if r.payment_notice is not None)
    inputs.append(
        factories.payment(
            D_IN, notice.notice_id, payment_id="P1", amount=Decimal("100.00"), paid_at=_at(200)
        )
    )
    inputs += [lab] if lab is not None else []
    _, results = join_fold(inputs, timedelta(seconds=120))
    return [*inputs, *results]


SAMPLED = _found("customs", FindingOutcome.SAMPLED, 100, samples=("S-1",))
PORT_OK = _found("port", FindingOutcome.COMPLIANT, 110)
LAB_OK = _found("customs", FindingOutcome.COMPLIANT, 300, lab_result=True)
LAB_BAD = _found(
    "customs",
    FindingOutcome.NON_COMPLIANT,
    300,
    measure=Measure.DESTRUCTION,
    lab_result=True,
    reasons=(Reason(code="LAB-1", message="residues above the limit", item=1),),
)
RELABEL = _found("customs", FindingOutcome.NON_COMPLIANT, 100, measure=Measure.RELABELLING)
RELABELLED = _found("customs", FindingOutcome.COMPLIANT, 150)
AMENDED = factories.declaration(
    D_IN, version=2, required_agencies=V_ALL, event_id="E2", submitted_at=_at(50)
)
INSPECTION_LIVES = {
    "confirmed": _inspection_life(SAMPLED, PORT_OK, lab=LAB_OK),
    "recalled": _inspection_life(SAMPLED, PORT_OK, lab=LAB_BAD),
    "remedied": _inspection_life(RELABEL, PORT_OK, RELABELLED),
    # an amendment after the order, which the join ignores (one inspection)
    "amended": _inspection_life(AMENDED, SAMPLED, PORT_OK),
}


def _statuses(life: list[Event]) -> list[str]:
    return [e.status for e in life if isinstance(e, ClearanceResult)]


def test_the_join_gives_the_inspection_lives_these_steps() -> None:
    assert {name: _statuses(life) for name, life in INSPECTION_LIVES.items()} == {
        "confirmed": [
            "INSPECTION_REQUIRED",
            "AWAITING_PAYMENT",
            "CONDITIONALLY_RELEASED",
            "RELEASED",
        ],
        "recalled": [
            "INSPECTION_REQUIRED",
            "AWAITING_PAYMENT",
            "CONDITIONALLY_RELEASED",
            "RECALLED",
        ],
        "remedied": ["INSPECTION_REQUIRED", "REMEDIATION_REQUIRED", "AWAITING_PAYMENT", "RELEASED"],
        "amended": ["INSPECTION_REQUIRED", "AWAITING_PAYMENT", "CONDITIONALLY_RELEASED"],
    }


def test_the_findings_are_folded_in_the_order_recorded() -> None:
    doc = fold(INSPECTION_LIVES["confirmed"])
    assert doc["status"] == "RELEASED"
    assert [(f["agency"], f["outcome"], f["lab_result"]) for f in doc["findings"]] == [
        ("customs", "SAMPLED", False),
        ("port", "COMPLIANT", False),
        ("customs", "COMPLIANT", True),
    ]
    assert doc["findings"][0]["samples"] == ["S-1"]
    assert all(f["order_id"] == ORDER.order_id for f in doc["findings"])
    assert "signature" not in doc["findings"][0]
    assert status_view(doc)["findings"] == doc["findings"]
    recalled = fold(INSPECTION_LIVES["recalled"])
    assert recalled["status"] == "RECALLED"
    assert recalled["result"]["sanction"]["measure"] == "DESTRUCTION"
    assert recalled["findings"][-1]["measure"] == "DESTRUCTION"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_an_inspection_life_in_any_order_with_replays_gives_one_document(
    data: st.DataObject,
) -> None:
    history = data.draw(st.sampled_from(sorted(INSPECTION_LIVES.values(), key=len)))
    order = data.draw(st.permutations(range(len(history))))
    again = data.draw(st.lists(st.integers(0, len(history) - 1), max_size=6))
    events = [history[i] for i in order] + [history[i] for i in again]
    assert content_of(fold(events)) == content_of(fold(history))


def test_a_duplicate_finding_changes_nothing() -> None:
    doc = fold(INSPECTION_LIVES["remedied"])
    for finding in (RELABEL, PORT_OK, RELABELLED):
        assert apply(doc, finding) == doc
    signed = RELABEL.model_copy(
        update={"signature": Signature(key_id="k", signed_at=factories.T0, value=b"x" * 64)}
    )
    assert apply(doc, signed) == doc  # the signature stays on the log


def test_copies_of_one_finding_keep_one_whatever_their_order() -> None:
    start = fold(INSPECTED)
    late = RELABEL.model_copy(update={"recorded_at": _at(101)})
    one, other = apply(apply(start, RELABEL), late), apply(apply(start, late), RELABEL)
    assert content_of(one) == content_of(other) and [f["recorded_at"] for f in one["findings"]] == [
        RELABEL.model_dump(mode="json")["recorded_at"]
    ]


def test_the_status_follows_the_inspection() -> None:
    statuses = []
    doc = None
    for event in INSPECTION_LIVES["remedied"]:
        doc = apply(doc, event)
        statuses.append(doc["status"])
    # inputs first (the findings change no status: the steps do), then the join's steps
    assert statuses[-4:] == [
        "INSPECTION_REQUIRED",
        "REMEDIATION_REQUIRED",
        "AWAITING_PAYMENT",
        "RELEASED",
    ]
    assert set(statuses[:-4]) == {"SUBMITTED", "IN_REVIEW"}


def test_an_amendment_the_join_ignored_after_the_order_leaves_the_steps_standing() -> None:
    life = INSPECTION_LIVES["amended"]
    assert {r.version for r in life if isinstance(r, ClearanceResult)} == {1}  # v2 ignored
    doc = fold(life)
    assert doc["version"] == 2 and doc["status"] == "CONDITIONALLY_RELEASED"
    ordered = fold([*INSPECTED, AMENDED, next(e for e in life if isinstance(e, ClearanceResult))])
    assert ordered["status"] == "INSPECTION_REQUIRED"  # not IN_REVIEW: the order stands


def escalated_inspection(*found: Event, after: tuple[Event, ...] = ()) -> list[Event]:
    """The inspection's inputs, ``found``, the join's clock past the order's deadline (customs
    and the port are named; the escalation names who had not recorded by then), then
    ``after``; and the join's results, in the join's order."""
    inputs: list[Any] = [*INSPECTED, *found]
    state, results = join_fold(inputs, timedelta(seconds=120), INSPECTION_DEADLINE)
    assert state is not None
    state, escalation = tick(state, factories.T0 + timedelta(days=3), timedelta(days=60))
    life: list[Event] = [*inputs, *results, *escalation]
    for event in after:
        assert state is not None
        state, out = join_step(state, event, timedelta(seconds=120), INSPECTION_DEADLINE)
        life += [event, *out]
    return life


def test_an_escalated_inspection_shows_timed_out_with_its_order_and_a_late_finding_decides() -> (
    None
):
    customs = _found("customs", FindingOutcome.COMPLIANT, 100)
    life = escalated_inspection(customs)
    doc = fold(life)
    assert doc["status"] == "TIMED_OUT"
    assert doc["result"]["missing_agencies"] == ["port"]
    assert doc["result"]["inspection"] == ORDER.model_dump(mode="json")
    assert [s["status"] for s in doc["steps"]] == ["INSPECTION_REQUIRED", "TIMED_OUT"]
    # an amendment that raced the escalation: the join ignores it, the steps stand
    assert fold([*life, AMENDED])["status"] == "TIMED_OUT"
    late = _found("port", FindingOutcome.COMPLIANT, 4 * 86400)
    decided = fold(escalated_inspection(customs, after=(late,)))
    assert [s["status"] for s in decided["steps"]][-1] == "AWAITING_PAYMENT"
    assert decided["status"] == "AWAITING_PAYMENT"


def test_a_life_without_an_inspection_has_no_findings_key() -> None:
    assert "findings" not in fold(LIFE)
    assert "findings" not in fold(WITHDRAWN)


def test_a_declaration_without_versions_ignores_findings() -> None:
    doc = fold(EVENTS)
    assert apply(doc, factories.finding("D-RM")) == doc


def test_the_projector_reads_the_stations_signed_findings() -> None:
    assert KINDS[INSPECTION_FINDINGS.name] is InspectionFinding
    finding = factories.finding("D-P")

    def record(value: bytes) -> ConsumerRecord[bytes, bytes]:
        return ConsumerRecord(INSPECTION_FINDINGS.name, 0, 0, 0, 0, b"D-P", value, None, 0, 0, ())

    read = decode_signed(
        KINDS[INSPECTION_FINDINGS.name], record(factories.signed(finding)), REGISTRY
    )
    assert read.unsigned() == finding and apply(None, read)["findings"][0]["finding_id"]
    forged = factories.SIGNING["bank"].sign(finding, factories.T0)[1]  # not the station's key
    with pytest.raises(PoisonMessage, match="signature refused"):
        decode_signed(InspectionFinding, record(forged), REGISTRY)


def test_the_audit_rebuild_folds_the_findings_as_the_projector_does() -> None:
    life = INSPECTION_LIVES["recalled"]
    logged = [
        LoggedEvent("any", 0, offset, factories.T0, event.declaration_id, event)
        for offset, event in enumerate(life)
    ]
    assert rebuild_fold(logged) == {D_IN: fold(life)}


# -- the port's gate-outs ---------------------------------------------------------------------
# LIFE is released by step 4; two vehicles leave under that release, one of them redelivered.

RELEASE = next(e for e in reversed(LIFE) if isinstance(e, ClearanceResult))
FIRST_OUT = factories.gate_out(
    "D-LV",
    gate_out_id="G-1",
    result_id=RELEASE.result_id,
    containers=("CSQU3054383",),
    passed_at=factories.T0 + timedelta(hours=3),
)
SECOND_OUT = factories.gate_out(
    "D-LV",
    gate_out_id="G-2",
    result_id=RELEASE.result_id,
    vehicle="沪B54321",
    containers=("MSKU1234565",),
    passed_at=factories.T0 + timedelta(hours=4),
)
OUT_LIFE = [*LIFE, SECOND_OUT, FIRST_OUT]


def test_the_gate_outs_are_folded_in_the_order_passed() -> None:
    doc = fold(OUT_LIFE)
    assert [g["gate_out_id"] for g in doc["gate_outs"]] == ["G-1", "G-2"]
    assert doc["gate_outs"][1]["containers"] == ["MSKU1234565"]
    assert "signature" not in doc["gate_outs"][0]
    assert doc["status"] == "RELEASED"
    others = {k: v for k, v in doc.items() if k not in ("gate_outs", "revision")}
    assert others == content_of(fold(LIFE))  # nothing else
    assert status_view(doc)["gate_outs"] == doc["gate_outs"]


@settings(max_examples=300, deadline=None)
@given(st.permutations(range(len(OUT_LIFE))), st.lists(st.integers(0, len(OUT_LIFE) - 1)))
def test_a_life_with_gate_outs_in_any_order_with_replays_gives_one_document(
    order: list[int], again: list[int]
) -> None:
    events = [OUT_LIFE[i] for i in order] + [OUT_LIFE[i] for i in again[:6]]
    assert content_of(fold(events)) == content_of(fold(OUT_LIFE))


def test_copies_of_one_gate_out_keep_the_earliest_whatever_their_order() -> None:
    start = fold(LIFE)
    retried = FIRST_OUT.model_copy(update={"passed_at": FIRST_OUT.passed_at + timedelta(1)})
    one, other = apply(apply(start, FIRST_OUT), retried), apply(apply(start, retried), FIRST_OUT)
    assert content_of(one) == content_of(other) and [g["passed_at"] for g in one["gate_outs"]] == [
        FIRST_OUT.model_dump(mode="json")["passed_at"]
    ]
    assert apply(one, FIRST_OUT) == one


def test_a_life_without_a_gate_out_has_no_gate_outs_key() -> None:
    assert "gate_outs" not in fold(LIFE) and "gate_outs" not in status_view(fold(LIFE))
    assert "gate_outs" not in fold(EVENTS)


@given(st.permutations(range(4)))
def test_a_declaration_without_versions_records_its_gate_outs_too(order: list[int]) -> None:
    released = [
        factories.declaration("D-RM", required_agencies=("customs",)),
        factories.verdict("D-RM", "customs", Decision.CLEAR, verdict_id="V1"),
        factories.result("D-RM"),
        factories.gate_out("D-RM"),
    ]
    doc = fold([released[i] for i in order])
    assert content_of(doc) == content_of(fold(released))
    keys = {"_id", "status", "declaration", "verdicts", "result", "gate_outs", "revision"}
    assert set(doc) == keys
    assert doc["status"] == "RELEASED" and doc["gate_outs"][0]["gate_out_id"] == "G-D-RM"
    assert status_view(doc)["gate_outs"] == doc["gate_outs"]


def test_the_projector_reads_the_gates_signed_gate_outs() -> None:
    assert KINDS[GATE_OUT.name] is GateOut
    assert set(KINDS) == set(principal("projector").reads) == set(AUDITED)
    out = factories.gate_out("D-P")

    def record(value: bytes) -> ConsumerRecord[bytes, bytes]:
        return ConsumerRecord(GATE_OUT.name, 0, 0, 0, 0, b"D-P", value, None, 0, 0, ())

    read = decode_signed(KINDS[GATE_OUT.name], record(factories.signed(out)), REGISTRY)
    assert read.unsigned() == out and apply(None, read)["gate_outs"][0]["gate_out_id"] == "G-D-P"
    forged = factories.SIGNING["bank"].sign(out, factories.T0)[1]  # not the gate's key
    with pytest.raises(PoisonMessage, match="signature refused"):
        decode_signed(GateOut, record(forged), REGISTRY)


def test_the_audit_rebuild_folds_the_gate_outs_as_the_projector_does() -> None:
    logged = [
        LoggedEvent("any", 0, offset, factories.T0, event.declaration_id, event)
        for offset, event in enumerate(OUT_LIFE)
    ]
    assert rebuild_fold(logged) == {"D-LV": fold(OUT_LIFE)}
