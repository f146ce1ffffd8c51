"""The port's gate (services/gate): ``POST /v1/gate-out`` through the real FastAPI app,
publishing with the SDK's EventProducer on the in-memory broker (singlewindow.testing
.FakeBroker), reading read-model documents from the intake's in-memory read model
(services.intake.ports.InMemoryReadModel) folded from events by ``singlewindow.readmodel``,
with real tokens of the development issuer in a temporary directory.

What a gate officer checks: a 202 means a signed GateOut is on ``gate.out`` naming the release
the goods left under, the body's gate, vehicle and containers, the token's officer and the
gate's time; the gate stays shut (nothing published) for a declaration that is not released,
that does not exist, a container it does not list or one that has gone out already (once the
read model shows it); only the port authority's officers
open it; the same Idempotency-Key gives the same gate-out id; no acknowledgement, no 202.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError

from services.gate.api import create_app
from services.gate.config import (
    GateSettings,
    build_officer_verifier,
    gate_agency,
    local_gate_env,
)
from services.gate.gateout import Gate
from services.intake import devissuer
from services.intake.config import ConfigError
from services.intake.ports import InMemoryReadModel, ReadModelUnavailable
from singlewindow.events import ClearanceStatus, Event, GateOut
from singlewindow.kafka.consumer import decode_signed
from singlewindow.kafka.producer import EventProducer
from singlewindow.readmodel import apply
from singlewindow.settings import Settings, read_settings
from singlewindow.signing import GATE, signer_of
from singlewindow.testing import FakeBroker
from singlewindow.topics import GATE_OUT
from tests import factories
from tests.unit.intake_tokens import USCC_A

T0 = factories.T0  # the gate's clock
SECRET = secrets.token_bytes(32)
TOPIC = GATE_OUT.name
DECLARATION = "DEC-0123456789ABCDEF0123456789ABCDEF"
BULK = "DEC-BULK0000000000000000000000000000"
CONTAINER, OTHER, UNLISTED = "CSQU3054383", "MSCU1234566", "TGHU7654320"
OFFICER = "port-gate-officer-7"


def body(**changes: Any) -> dict[str, Any]:
    """A valid gate-out: one of the declaration's containers on a truck."""
    base = {
        "declaration_id": DECLARATION,
        "gate": "CNSHA-WGQ-3",
        "vehicle": "沪A12345",
        "containers": [CONTAINER],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def life(
    *statuses: ClearanceStatus,
    declaration_id: str = DECLARATION,
    containers: Sequence[str] = (CONTAINER, OTHER),
) -> dict[str, Any]:
    """The read-model document of a versioned declaration whose steps had ``statuses`` in
    turn (result ids R-1, R-2...), as the projector folds it."""
    declaration = factories.declaration(declaration_id, version=1)
    consignment = declaration.consignment.model_copy(update={"containers": tuple(containers)})
    events: list[Event] = [
        declaration.model_copy(update={"consignment": consignment}),
        factories.verdict(declaration_id, declaration_version=1),
    ]
    events += [
        factories.result(declaration_id, status=status, version=1, sequence=n, result_id=f"R-{n}")
        for n, status in enumerate(statuses, start=1)
    ]
    document: dict[str, Any] | None = None
    for event in events:
        document = apply(document, event)
    assert document is not None
    return document


@dataclass
class Issuer:
    """The development issuer in a temporary directory: officers', inspectors' and traders'
    tokens."""

    directory: Path

    def officer(self, sub: str = OFFICER, agency: str = "port") -> dict[str, str]:
        return devissuer.inspector_bearer(sub, agency, directory=self.directory)

    def trader(self, sub: str = "trader-a") -> dict[str, str]:
        return devissuer.bearer(sub, [USCC_A], directory=self.directory)

    def settings(self) -> GateSettings:
        return GateSettings(
            jwt_issuer=devissuer.ISSUER,
            jwt_audience=devissuer.AUDIENCE,
            jwks_file=self.directory / devissuer.JWKS,
            id_secret=SECRET.hex(),
        )


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    devissuer.ensure_keys(tmp_path / "issuer")
    return Issuer(tmp_path / "issuer")


class DownReadModel(InMemoryReadModel):
    async def get(self, declaration_id: str) -> dict[str, Any] | None:
        raise ReadModelUnavailable("connection refused")

    async def statuses(self, ids: Collection[str]) -> dict[str, str]:
        raise ReadModelUnavailable("connection refused")


@dataclass
class Port:
    broker: FakeBroker
    read_model: InMemoryReadModel
    client: httpx.AsyncClient
    issuer: Issuer

    async def out(
        self, wanted: Any, key: str | None = None, auth: dict[str, str] | None = None
    ) -> httpx.Response:
        headers = {} if key is None else {"Idempotency-Key": key}
        headers.update(self.issuer.officer() if auth is None else auth)
        return await self.client.post("/v1/gate-out", json=wanted, headers=headers)

    def published(self) -> list[GateOut]:
        """The gate-outs on the topic, each accepted as the gate's (its signature checked as
        a consumer checks it)."""
        return [
            decode_signed(GateOut, record, factories.REGISTRY)
            for record in self.broker.records(TOPIC)
        ]


@asynccontextmanager
async def port(
    issuer: Issuer, *documents: dict[str, Any], read_model: InMemoryReadModel | None = None
) -> AsyncIterator[Port]:
    read_model = read_model or InMemoryReadModel()
    for document in documents:
        read_model.put(document)
    async with FakeBroker() as broker:
        producer = EventProducer(Settings(), GATE, factories.SIGNING[GATE], transport=broker)
        verifier = build_officer_verifier(issuer.settings())
        gate = Gate(producer, read_model, verifier=verifier, id_secret=SECRET, clock=lambda: T0)
        transport = httpx.ASGITransport(create_app(gate), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gate") as client:
            yield Port(broker, read_model, client, issuer)
        await producer.stop()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document["status"] == status
    return document


# -- let out ---------------------------------------------------------------------------------


async def test_a_released_declaration_goes_out_once_signed_by_the_gate(issuer: Issuer) -> None:
    released = life(ClearanceStatus.AWAITING_PAYMENT, ClearanceStatus.RELEASED)
    async with port(issuer, released) as gate:
        response = await gate.out(body(containers=[CONTAINER, OTHER]))
        assert response.status_code == 202, response.text
        [event] = gate.published()
        [record] = gate.broker.records(TOPIC)
    assert response.json() == {
        "gate_out_id": event.gate_out_id,
        "declaration_id": DECLARATION,
        "result_id": "R-2",  # the latest step: the release, not the payment notice
    }
    assert event.gate_out_id.startswith("GATE-") and len(event.gate_out_id) == 37
    assert event.unsigned() == GateOut(
        gate_out_id=event.gate_out_id,
        declaration_id=DECLARATION,
        result_id="R-2",
        gate="CNSHA-WGQ-3",
        vehicle="沪A12345",
        containers=(CONTAINER, OTHER),
        passed_at=T0,
        officer=OFFICER,  # the token's subject
    )
    assert record.key == DECLARATION.encode()  # co-partitioned with the declaration's life
    assert signer_of(event) == GATE
    assert event.signature is not None and event.signature.key_id == "gate-test"


async def test_a_conditional_release_opens_the_gate(issuer: Issuer) -> None:
    sampled = life(ClearanceStatus.INSPECTION_REQUIRED, ClearanceStatus.CONDITIONALLY_RELEASED)
    async with port(issuer, sampled) as gate:
        response = await gate.out(body())
        [event] = gate.published()
    assert response.status_code == 202, response.text
    assert event.result_id == response.json()["result_id"] == "R-2"


async def test_a_declaration_without_versions_released_at_its_first_answer(
    issuer: Issuer,
) -> None:
    document: dict[str, Any] | None = None
    for event in (
        factories.declaration(DECLARATION),
        factories.verdict(DECLARATION),
        factories.result(DECLARATION, result_id="R-only"),
    ):
        document = apply(document, event)
    assert document is not None and "version" not in document
    async with port(issuer, document) as gate:
        response = await gate.out(body())
    assert response.status_code == 202, response.text
    assert response.json()["result_id"] == "R-only"


async def test_bulk_cargo_goes_out_without_containers(issuer: Issuer) -> None:
    async with port(
        issuer, life(ClearanceStatus.RELEASED, declaration_id=BULK, containers=())
    ) as gate:
        omitted = await gate.out(body(declaration_id=BULK, containers=None))
        empty = await gate.out(body(declaration_id=BULK, containers=[]))
        first, second = gate.published()
    assert omitted.status_code == empty.status_code == 202, (omitted.text, empty.text)
    assert first.containers == second.containers == ()


async def test_a_declaration_that_lists_no_containers_lets_no_container_out(
    issuer: Issuer,
) -> None:
    """Bulk or air cargo: vehicles pass, but no container (it would be another declaration's
    box leaving under this release)."""
    async with port(issuer, life(ClearanceStatus.RELEASED, containers=())) as gate:
        boxed = await gate.out(body(containers=[UNLISTED]))
        assert gate.published() == []
        bulk = await gate.out(body(containers=[]))
        [event] = gate.published()
    assert boxed.status_code == 422, boxed.text
    assert boxed.json()["type"].endswith("unknown-container")
    assert bulk.status_code == 202, bulk.text
    assert event.containers == ()


# -- the gate stays shut: nothing published ------------------------------------------------


@pytest.mark.parametrize(
    "steps",
    [
        (ClearanceStatus.HELD,),
        (ClearanceStatus.AWAITING_PAYMENT,),
        (ClearanceStatus.INSPECTION_REQUIRED,),
        (ClearanceStatus.REMEDIATION_REQUIRED,),
        (
            ClearanceStatus.INSPECTION_REQUIRED,
            ClearanceStatus.CONDITIONALLY_RELEASED,
            ClearanceStatus.RECALLED,
        ),
        (ClearanceStatus.REJECTED,),
        (ClearanceStatus.WITHDRAWN,),
        (ClearanceStatus.SANCTIONED,),
        (),  # lodged, a verdict in, no answer yet
    ],
    ids=lambda steps: "-".join(str(s) for s in steps) or "IN_REVIEW",
)
async def test_a_declaration_not_released_is_409(
    issuer: Issuer, steps: tuple[ClearanceStatus, ...]
) -> None:
    async with port(issuer, life(*steps)) as gate:
        response = await gate.out(body())
        assert gate.broker.records(TOPIC) == []
    document = problem(response, 409)
    assert document["type"].endswith(":not-released")
    assert (str(steps[-1]) if steps else "IN_REVIEW") in document["detail"]


async def test_a_release_whose_verdicts_are_not_in_yet_is_409(issuer: Issuer) -> None:
    """The read model shows a step only once the verdicts it names are in (IN_REVIEW until
    then): the gate reads the status, not the result alone."""
    declaration = factories.declaration(DECLARATION, version=1)
    result = factories.result(DECLARATION, version=1, sequence=1, result_id="R-1")
    document = apply(apply(None, declaration), result)
    assert document["status"] == "IN_REVIEW" and document["result"]["status"] == "RELEASED"
    async with port(issuer, document) as gate:
        response = await gate.out(body())
        assert gate.broker.records(TOPIC) == []
    problem(response, 409)


async def test_no_such_declaration_is_404(issuer: Issuer) -> None:
    verdicts_only = apply(None, factories.verdict(BULK))  # never submitted: no declaration
    async with port(issuer, life(ClearanceStatus.RELEASED), verdicts_only) as gate:
        unknown = await gate.out(body(declaration_id="DEC-NOSUCH"))
        never_lodged = await gate.out(body(declaration_id=BULK))
        assert gate.broker.records(TOPIC) == []
    for response in (unknown, never_lodged):
        assert problem(response, 404)["type"].endswith(":unknown-declaration")


async def test_a_container_the_declaration_does_not_list_is_422(issuer: Issuer) -> None:
    async with port(issuer, life(ClearanceStatus.RELEASED)) as gate:
        response = await gate.out(body(containers=[CONTAINER, UNLISTED]))
        assert gate.broker.records(TOPIC) == []
    document = problem(response, 422)
    assert document["type"].endswith(":unknown-container")
    assert document["errors"] == [
        {"field": "containers[1]", "message": f"{UNLISTED} is not a container of the declaration"}
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"containers": ["CSQU3054384"]}, "containers[0]"),  # wrong check digit
        ({"containers": [CONTAINER, CONTAINER]}, "containers"),
        ({"containers": CONTAINER}, "containers"),
        ({"gate": ""}, "gate"),
        ({"gate": "G" * 33}, "gate"),
        ({"gate": "gate 3"}, "gate"),
        ({"vehicle": ""}, "vehicle"),
        ({"vehicle": "沪A" + "1" * 15}, "vehicle"),
        ({"vehicle": "沪A 12345"}, "vehicle"),
        ({"vehicle": 12345}, "vehicle"),
        ({"declaration_id": ""}, "declaration_id"),
        ({"declaration_id": None}, "declaration_id"),
        ({"officer": "someone-else"}, "officer"),  # the token's, never the body's
    ],
)
async def test_a_bad_field_is_422_naming_it(
    issuer: Issuer, changes: dict[str, Any], field: str
) -> None:
    async with port(issuer, life(ClearanceStatus.RELEASED)) as gate:
        response = await gate.out(body(**changes))
        assert gate.broker.records(TOPIC) == []
    document = problem(response, 422)
    assert field in {e["field"] for e in document["errors"]}, document


async def test_what_is_not_a_json_object_is_refused(issuer: Issuer) -> None:
    async with port(issuer, life(ClearanceStatus.RELEASED)) as gate:
        headers = {**issuer.officer(), "Content-Type": "application/json"}
        not_json = await gate.client.post("/v1/gate-out", content=b"{", headers=headers)
        form = await gate.client.post(
            "/v1/gate-out", data={"declaration_id": DECLARATION}, headers=issuer.officer()
        )
        assert gate.broker.records(TOPIC) == []
    problem(not_json, 400)
    problem(form, 415)


# -- who may open the gate -------------------------------------------------------------------


async def test_a_customs_inspector_is_no_gate_officer_403(issuer: Issuer) -> None:
    async with port(issuer, life(ClearanceStatus.RELEASED)) as gate:
        customs = await gate.out(body(), auth=issuer.officer("customs-inspector-1", "customs"))
        ciq = await gate.out(body(), auth=issuer.officer("ciq-inspector-1", "ciq"))
        assert gate.broker.records(TOPIC) == []
    for response in (customs, ciq):
        document = problem(response, 403)
        assert document["type"].endswith(":not-a-gate-officer")
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_a_traders_token_or_none_is_401(issuer: Issuer, tmp_path: Path) -> None:
    async with port(issuer, life(ClearanceStatus.RELEASED)) as gate:
        trader = await gate.out(body(), auth=issuer.trader())
        bare = await gate.client.post("/v1/gate-out", json=body())
        forged = await gate.out(
            body(), auth=devissuer.inspector_bearer(OFFICER, "port", directory=tmp_path / "x")
        )
        assert gate.broker.records(TOPIC) == []
    for response in (trader, bare, forged):
        problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_gate_agency_is_a_setting(issuer: Issuer, tmp_path: Path) -> None:
    read_model = InMemoryReadModel()
    read_model.put(life(ClearanceStatus.RELEASED))
    async with FakeBroker() as broker:
        producer = EventProducer(Settings(), GATE, factories.SIGNING[GATE], transport=broker)
        verifier = build_officer_verifier(issuer.settings())
        gate = Gate(producer, read_model, verifier=verifier, id_secret=SECRET, agency="customs")
        transport = httpx.ASGITransport(create_app(gate), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gate") as client:
            customs = issuer.officer("customs-1", "customs")
            port_officer = issuer.officer()
            opened = await client.post("/v1/gate-out", json=body(), headers=customs)
            refused = await client.post("/v1/gate-out", json=body(), headers=port_officer)
        await producer.stop()
    assert opened.status_code == 202, opened.text
    problem(refused, 403)


# -- once out, a container stays out ------------------------------------------------------


def projected(gate: Port) -> None:
    """Fold what the gate published into the read model, as the projector does."""
    for event in gate.published():
        document = gate.read_model.documents[event.declaration_id]
        gate.read_model.put(apply(document, event))


async def test_a_container_out_already_is_409_and_nothing_is_published(issuer: Issuer) -> None:
    async with port(issuer, life(ClearanceStatus.RELEASED)) as gate:
        first = await gate.out(body(containers=[CONTAINER]))
        projected(gate)
        again = await gate.out(body(vehicle="沪B54321", containers=[OTHER, CONTAINER]))
        assert len(gate.broker.records(TOPIC)) == 1  # nothing more
        other = await gate.out(body(vehicle="沪B54321", containers=[OTHER]))
        projected(gate)
        both = await gate.out(body(vehicle="沪C00001", containers=[CONTAINER, OTHER]))
        assert len(gate.published()) == 2
    assert first.status_code == other.status_code == 202, (first.text, other.text)
    document = problem(again, 409)
    assert document["type"].endswith(":already-out")
    passed = factories.gate_out(passed_at=T0).model_dump(mode="json")["passed_at"]
    assert document["errors"] == [
        {
            "field": "containers[1]",
            "message": f"{CONTAINER} left the port at {passed} through gate CNSHA-WGQ-3",
        }
    ]
    assert [e["field"] for e in problem(both, 409)["errors"]] == [
        "containers[0]",
        "containers[1]",
    ]
    assert OFFICER not in again.text  # the officer who let it out is not named


async def test_the_retry_of_a_gate_out_already_recorded_is_no_second_one(
    issuer: Issuer,
) -> None:
    """The answer was lost, the gate-out is in the read model: the officer's retry with the
    same key publishes the same gate-out again (the fold keeps one); another key is refused."""
    async with port(issuer, life(ClearanceStatus.RELEASED)) as gate:
        first = await gate.out(body(), key="truck-17")
        projected(gate)
        retry = await gate.out(body(), key="truck-17")
        other = await gate.out(body(), key="truck-18")
        first_out, again = gate.published()
        projected(gate)
        document = gate.read_model.documents[DECLARATION]
    assert first.status_code == retry.status_code == 202, (first.text, retry.text)
    assert first_out.gate_out_id == again.gate_out_id == retry.json()["gate_out_id"]
    assert problem(other, 409)["type"].endswith(":already-out")
    assert [g["gate_out_id"] for g in document["gate_outs"]] == [first_out.gate_out_id]


async def test_a_key_reused_for_another_gate_out_gives_another_id(issuer: Issuer) -> None:
    """The same key on another truck with the same container is another gate-out: the
    already-out rule sees it (it would have passed as a retry of the first)."""
    async with port(issuer, life(ClearanceStatus.RELEASED)) as gate:
        first = await gate.out(body(), key="lane-3")
        projected(gate)
        reused = await gate.out(body(vehicle="沪B99999"), key="lane-3")
        [event] = gate.published()
    assert first.status_code == 202, first.text
    assert problem(reused, 409)["type"].endswith(":already-out")
    assert event.gate_out_id == first.json()["gate_out_id"]


async def test_a_release_of_an_older_version_than_the_document_shows_is_409(
    issuer: Issuer,
) -> None:
    """An amendment raced the release and the join ignored it: the document lists the new
    version's containers, not the released goods', so the gate stays shut."""
    document = life(ClearanceStatus.RELEASED)
    amended = factories.declaration(DECLARATION, version=2)
    document = apply(document, amended)
    async with port(issuer, document) as gate:
        response = await gate.out(body())
        assert gate.published() == []
    assert problem(response, 409)["type"].endswith(":amendment-pending")


async def test_bulk_cargo_passes_several_vehicles_under_one_release(issuer: Issuer) -> None:
    async with port(
        issuer, life(ClearanceStatus.RELEASED, declaration_id=BULK, containers=())
    ) as gate:
        for plate in ("沪A11111", "沪A22222", "沪A33333"):
            response = await gate.out(body(declaration_id=BULK, vehicle=plate, containers=None))
            assert response.status_code == 202, response.text
            projected(gate)
        document = gate.read_model.documents[BULK]
    # the gate's clock stands still here: the same passed_at, so any order
    assert sorted(g["vehicle"] for g in document["gate_outs"]) == [
        "沪A11111",
        "沪A22222",
        "沪A33333",
    ]


async def test_a_container_out_under_another_declaration_is_not_this_ones(
    issuer: Issuer,
) -> None:
    """The gate reads the declaration's own document: a container the same importer's other
    declaration took out (an earlier shipment in the same box) does not shut the gate."""
    other_declaration = "DEC-FFFF0123456789ABCDEF0123456789AB"
    async with port(
        issuer,
        life(ClearanceStatus.RELEASED),
        life(ClearanceStatus.RELEASED, declaration_id=other_declaration),
    ) as gate:
        first = await gate.out(body(declaration_id=other_declaration))
        projected(gate)
        second = await gate.out(body())
    assert first.status_code == second.status_code == 202, (first.text, second.text)


# -- idempotency -----------------------------------------------------------------------------


async def test_the_same_idempotency_key_gives_the_same_gate_out_id(issuer: Issuer) -> None:
    async with port(issuer, life(ClearanceStatus.RELEASED)) as gate:
        first = await gate.out(body(), key="truck-17")
        again = await gate.out(body(), key="truck-17")
        other_key = await gate.out(body(), key="truck-18")
        theirs = await gate.out(body(), key="truck-17", auth=issuer.officer("port-gate-2"))
        no_key = [await gate.out(body()) for _ in range(2)]
        ids = [e.gate_out_id for e in gate.published()]
    assert all(r.status_code == 202 for r in (first, again, other_key, theirs, *no_key))
    assert first.json()["gate_out_id"] == again.json()["gate_out_id"] == ids[0] == ids[1]
    assert len(set(ids)) == 5  # another key, another officer's key, and each without a key
    assert [r.json()["gate_out_id"] for r in (other_key, theirs, *no_key)] == ids[2:]


# -- unavailable: 503, nothing promised ---------------------------------------------------


async def test_kafka_down_is_503_and_the_retry_publishes_the_same_id(issuer: Issuer) -> None:
    async with port(issuer, life(ClearanceStatus.RELEASED)) as gate:
        gate.broker.fail(TOPIC, KafkaConnectionError())
        down = await gate.out(body(), key="k-retry")
        assert gate.broker.records(TOPIC) == []
        up = await gate.out(body(), key="k-retry")
        [event] = gate.published()
    document = problem(down, 503)
    assert down.headers["Retry-After"] == "5" and document["type"].endswith(":publish")
    assert up.status_code == 202 and up.json()["gate_out_id"] == event.gate_out_id


async def test_the_database_down_is_503(issuer: Issuer) -> None:
    async with port(issuer, read_model=DownReadModel()) as gate:
        response = await gate.out(body())
        assert gate.broker.records(TOPIC) == []
    document = problem(response, 503)
    assert response.headers["Retry-After"] == "5" and document["type"].endswith(":read-model")


async def test_liveness_and_readiness_are_open(issuer: Issuer) -> None:
    async with port(issuer) as gate:
        answers = {p: await gate.client.get(p) for p in ("/livez", "/healthz", "/readyz")}
    assert {p: r.status_code for p, r in answers.items()} == dict.fromkeys(answers, 200)
    assert answers["/healthz"].json() == answers["/livez"].json() == {"status": "live", "loops": {}}
    assert answers["/readyz"].json() == {"status": "ready", "checks": {}}


# -- settings --------------------------------------------------------------------------------


def test_the_settings_and_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GATE_AGENCY", "GATE_PORT", "GATE_METRICS_PORT", "GATE_PUBLIC_DOCS"):
        monkeypatch.delenv(name, raising=False)
    own = read_settings(GateSettings)
    assert (own.agency, own.port, own.metrics_port, own.public_docs) == ("port", 8083, 9109, False)
    assert gate_agency(own) == "port"
    monkeypatch.setenv("GATE_AGENCY", "ciq")
    assert gate_agency(read_settings(GateSettings)) == "ciq"
    for unregistered in ("harbour", "gate", "intake"):
        monkeypatch.setenv("GATE_AGENCY", unregistered)
        with pytest.raises(ConfigError, match="GATE_AGENCY"):
            gate_agency(read_settings(GateSettings))


def test_without_an_issuer_the_gate_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GATE_JWT_ISSUER", "GATE_JWT_AUDIENCE", "GATE_JWKS_URL", "GATE_JWKS_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="GATE_JWT_ISSUER"):
        build_officer_verifier(read_settings(GateSettings))


def test_the_local_environment_trusts_the_development_issuer(tmp_path: Path) -> None:
    env = local_gate_env(tmp_path / "issuer", tmp_path / "gate" / "id-secret")
    assert env["GATE_JWT_ISSUER"] == devissuer.ISSUER
    assert env["GATE_JWT_AUDIENCE"] == devissuer.AUDIENCE
    assert env["GATE_PUBLIC_DOCS"] == "true"
    assert len((tmp_path / "gate" / "id-secret").read_bytes()) >= 32
