"""The joint inspection station (services/inspection): ``POST /v1/inspections/{order_id}/findings``
through the real FastAPI app, publishing with the SDK's EventProducer on the in-memory broker
(singlewindow.testing.FakeBroker), with real tokens of the development issuer in a temporary
directory.

What an inspector checks: a 202 means a signed InspectionFinding is on ``inspections.findings``
with the body's findings, the token's agency and inspector and the station's time, one per
request (the same one again for the same Idempotency-Key); what is refused publishes nothing;
a trader's token is no inspector's, nor an inspector's a trader's; and what the station
records is what the aggregator's join decides the order with.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError

from services.aggregator import join
from services.bank.config import BankSettings, local_bank_env
from services.inspection import findings
from services.inspection.api import create_app
from services.inspection.config import (
    InspectionSettings,
    build_inspector_verifier,
    local_inspection_env,
)
from services.inspection.findings import Station
from services.intake import devissuer
from services.intake.auth import InvalidToken, inspector_of
from services.intake.config import ConfigError, IntakeSettings, build_verifier, id_secret
from services.intake.errors import Problem
from singlewindow.events import (
    ClearanceStatus,
    Decision,
    FindingOutcome,
    InspectionCheck,
    InspectionFinding,
    Measure,
)
from singlewindow.kafka.consumer import decode_signed
from singlewindow.kafka.producer import EventProducer
from singlewindow.settings import Settings, read_settings
from singlewindow.signing import INSPECTION
from singlewindow.testing import FakeBroker
from singlewindow.topics import INSPECTION_FINDINGS
from tests import factories
from tests.unit import test_lifecycle as life
from tests.unit.intake_tokens import USCC_A

T0 = factories.T0  # the station's clock: 2026-11-27T08:30:15.123Z
SECRET = secrets.token_bytes(32)
TOPIC = INSPECTION_FINDINGS.name
DECLARATION = "DEC-0123456789ABCDEF0123456789ABCDEF"
ORDER = join.order_id(DECLARATION, 1)  # the one order version 1 can have


def body(**changes: Any) -> dict[str, Any]:
    """A valid finding: compliant, with a reason."""
    base = {
        "declaration_id": DECLARATION,
        "version": 1,
        "outcome": "COMPLIANT",
        "reasons": [{"code": "INS-OK", "message": "goods as declared", "item": 1}],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@dataclass
class Issuer:
    """The development issuer in a temporary directory: inspectors' and traders' tokens."""

    directory: Path

    def inspector(
        self, sub: str = "customs-inspector-7", agency: str = "customs"
    ) -> dict[str, str]:
        return devissuer.inspector_bearer(sub, agency, directory=self.directory)

    def trader(self, sub: str = "trader-a") -> dict[str, str]:
        return devissuer.bearer(sub, [USCC_A], directory=self.directory)

    def settings(self) -> InspectionSettings:
        return InspectionSettings(
            jwt_issuer=devissuer.ISSUER,
            jwt_audience=devissuer.AUDIENCE,
            jwks_file=self.directory / devissuer.JWKS,
            id_secret=SECRET.hex(),
        )


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    devissuer.ensure_keys(tmp_path / "issuer")
    return Issuer(tmp_path / "issuer")


@dataclass
class Site:
    broker: FakeBroker
    client: httpx.AsyncClient
    issuer: Issuer

    async def record(
        self,
        finding: Any,
        key: str | None = None,
        auth: dict[str, str] | None = None,
        order: str = ORDER,
    ) -> httpx.Response:
        headers = {} if key is None else {"Idempotency-Key": key}
        headers.update(self.issuer.inspector() if auth is None else auth)
        url = f"/v1/inspections/{order}/findings"
        return await self.client.post(url, json=finding, headers=headers)

    def recorded(self) -> list[InspectionFinding]:
        """The findings on the topic, each accepted as the station's (its signature checked as
        the aggregator checks it)."""
        return [
            decode_signed(InspectionFinding, record, factories.REGISTRY)
            for record in self.broker.records(TOPIC)
        ]


@asynccontextmanager
async def site(issuer: Issuer, clock: Callable[[], datetime] = lambda: T0) -> AsyncIterator[Site]:
    async with FakeBroker() as broker:
        producer = EventProducer(
            Settings(), INSPECTION, factories.SIGNING[INSPECTION], transport=broker
        )
        verifier = build_inspector_verifier(issuer.settings())
        app = create_app(Station(producer, verifier=verifier, id_secret=SECRET, clock=clock))
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://station") as client:
            yield Site(broker, client, issuer)
        await producer.stop()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document["status"] == status
    return document


# -- accepted ------------------------------------------------------------------------------


async def test_a_finding_is_published_once_signed_by_the_station_as_the_tokens_agency(
    issuer: Issuer,
) -> None:
    async with site(issuer) as station:
        response = await station.record(
            body(
                outcome="NON_COMPLIANT",
                measure="RELABELLING",
                reasons=[{"code": "CIQ-LABEL", "message": "no Chinese label", "item": 2}],
            ),
            auth=issuer.inspector("ciq-inspector-3", "ciq"),
        )
        assert response.status_code == 202, response.text
        answer = response.json()
        [finding] = station.recorded()
        [record] = station.broker.records(TOPIC)
    assert answer == {
        "finding_id": finding.finding_id,
        "declaration_id": DECLARATION,
        "order_id": ORDER,
    }
    assert finding.finding_id.startswith("FND-") and len(finding.finding_id) == 36
    assert finding.finding_id[4:] == finding.finding_id[4:].upper()
    assert record.key == DECLARATION.encode()  # co-partitioned with the join
    assert (finding.declaration_id, finding.order_id, finding.version) == (DECLARATION, ORDER, 1)
    assert (finding.agency, finding.inspector) == ("ciq", "ciq-inspector-3")  # the token's
    assert finding.outcome is FindingOutcome.NON_COMPLIANT
    assert finding.measure is Measure.RELABELLING
    assert [(r.code, r.message, r.item) for r in finding.reasons] == [
        ("CIQ-LABEL", "no Chinese label", 2)
    ]
    assert (finding.samples, finding.lab_result) == ((), False)
    assert finding.recorded_at == T0  # the station's clock
    assert finding.signature is not None and finding.signature.key_id == "inspection-test"


async def test_samples_and_a_laboratory_result_are_recorded_as_given(issuer: Issuer) -> None:
    async with site(issuer) as station:
        sampled = await station.record(body(outcome="SAMPLED", samples=["S-1", "S-2"]))
        lab = await station.record(body(reasons=None, lab_result=True))
        assert sampled.status_code == lab.status_code == 202, (sampled.text, lab.text)
        first, second = station.recorded()
    assert (first.outcome, first.samples, first.lab_result) == (
        FindingOutcome.SAMPLED,
        ("S-1", "S-2"),
        False,
    )
    assert (second.outcome, second.lab_result, second.reasons) == (
        FindingOutcome.COMPLIANT,
        True,
        (),
    )


async def test_the_202_comes_only_once_kafka_acknowledged(issuer: Issuer) -> None:
    async with site(issuer) as station:
        hold = station.broker.hold(TOPIC)
        recording = asyncio.create_task(station.record(body()))
        await hold.reached()  # a valid request: its send is held, unacknowledged
        await asyncio.sleep(0.05)
        assert not recording.done() and station.broker.records(TOPIC) == []
        hold.release()
        assert (await recording).status_code == 202
        assert len(station.recorded()) == 1


# -- idempotency ---------------------------------------------------------------------------


async def test_the_same_idempotency_key_gives_the_same_finding_id(issuer: Issuer) -> None:
    async with site(issuer) as station:
        first = await station.record(body(), key="visit-17")
        again = await station.record(body(), key="visit-17")
        other_key = await station.record(body(), key="visit-18")
        no_key = [await station.record(body()) for _ in range(2)]
        ids = [f.finding_id for f in station.recorded()]
    assert first.status_code == again.status_code == 202
    assert first.json()["finding_id"] == again.json()["finding_id"] == ids[0] == ids[1]
    assert other_key.json()["finding_id"] == ids[2]
    assert len(set(ids)) == 4  # another key, and each request without a key: new findings
    assert [r.json()["finding_id"] for r in no_key] == ids[3:]


async def test_a_key_belongs_to_its_inspector(issuer: Issuer) -> None:
    async with site(issuer) as station:
        mine = await station.record(body(), key="k1")
        theirs = await station.record(body(), key="k1", auth=issuer.inspector("customs-2"))
    assert mine.json()["finding_id"] != theirs.json()["finding_id"]


async def test_a_key_reused_for_another_finding_gives_another_id(issuer: Issuer) -> None:
    """The same key for SAMPLED and then for the laboratory's result: two findings, not a
    redelivery the join would drop."""
    async with site(issuer) as station:
        sampled = await station.record(body(outcome="SAMPLED", samples=["S-1"]), key="k")
        lab = await station.record(body(lab_result=True), key="k")
    assert sampled.status_code == lab.status_code == 202
    assert sampled.json()["finding_id"] != lab.json()["finding_id"]


# -- refused: nothing published --------------------------------------------------------------


async def test_an_order_that_is_not_the_declaration_versions_is_422(issuer: Issuer) -> None:
    """The order id is the declaration version's (deterministic): a finding naming another
    order, or the right order with another version, answers nothing and is refused."""
    async with site(issuer) as station:
        elsewhere = await station.record(body(), order=join.order_id(DECLARATION, 2))
        wrong_version = await station.record(body(version=2))
        assert station.recorded() == []
    for refused in (elsewhere, wrong_version):
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["order_id"]


async def test_no_token_or_an_invalid_one_is_401(issuer: Issuer, tmp_path: Path) -> None:
    async with site(issuer) as station:
        bare = await station.client.post(f"/v1/inspections/{ORDER}/findings", json=body())
        other_issuer = devissuer.inspector_bearer("x", "customs", directory=tmp_path / "other")
        forged = await station.record(body(), auth=other_issuer)
        expired = await station.record(
            body(),
            auth=devissuer.inspector_bearer(
                "inspector-7",
                "customs",
                directory=issuer.directory,
                now=T0 - timedelta(days=1),
            ),
        )
        garbage = await station.record(body(), auth={"Authorization": "Bearer not-a-jwt"})
        assert station.broker.records(TOPIC) == []
    problem(bare, 401)
    assert bare.headers["WWW-Authenticate"].startswith("Bearer")
    for refused in (forged, expired, garbage):
        problem(refused, 401)
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


async def test_a_traders_token_is_no_inspectors(issuer: Issuer) -> None:
    async with site(issuer) as station:
        response = await station.record(body(), auth=issuer.trader())
        assert station.broker.records(TOPIC) == []
    document = problem(response, 401)
    assert "agency" in document["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "claims",
    [
        {"agency": "bank"},  # a platform service, not an agency
        {"agency": "inspection"},
        {"agency": "vet"},  # not registered
        {"agency": ["customs"]},
        {"agency": "customs", "usccs": [USCC_A]},  # a trader's token naming an agency too
        {},
    ],
)
def test_an_inspector_names_one_registered_agency_and_no_usccs(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        inspector_of({"sub": "someone", **claims})
    assert inspector_of({"sub": "someone", "agency": "port"}).agency == "port"


def test_the_dev_issuer_mints_no_inspector_of_an_unregistered_agency(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="registered agency"):
        devissuer.mint_inspector("x", "bank", directory=tmp_path)
    assert devissuer.main(["--dir", str(tmp_path), "inspector-token", "--agency", "vet"]) == 2
    assert devissuer.main(["--dir", str(tmp_path), "inspector-token"]) == 2


def test_the_inspector_token_command_prints_a_token_the_station_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert devissuer.main(["--dir", str(tmp_path), "inspector-token", "--agency", "ciq"]) == 0
    token = capsys.readouterr().out.strip()
    verifier = build_inspector_verifier(Issuer(tmp_path).settings())
    inspector = asyncio.run(verifier.verify(token))
    assert (inspector.subject, inspector.agency) == ("local-inspector-ciq", "ciq")


async def test_an_inspectors_token_is_refused_by_the_intake_and_the_bank(
    issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same issuer, same audience: what keeps an inspector from lodging or paying is that its
    token lists no USCCs."""
    local = {
        **devissuer.local_intake_env(issuer.directory, tmp_path / "intake-id"),
        **local_bank_env(issuer.directory, tmp_path / "bank-id"),
    }
    for name, value in local.items():
        monkeypatch.setenv(name, value)
    intake = build_verifier(read_settings(IntakeSettings))
    bank = build_verifier(read_settings(BankSettings))
    token = issuer.inspector()["Authorization"].removeprefix("Bearer ")
    for verifier in (intake, bank):
        with pytest.raises(InvalidToken, match="USCCs"):
            await verifier.verify(token)
    trader = issuer.trader()["Authorization"].removeprefix("Bearer ")
    assert (await intake.verify(trader)).usccs == {USCC_A}  # the same issuer's trader: taken


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"outcome": "NON_COMPLIANT"}, "measure"),  # a non-compliance calls for a measure
        ({"measure": "SEIZURE"}, "measure"),  # ... and only a non-compliance
        ({"outcome": "SAMPLED"}, "samples"),  # sampled: which samples?
        ({"samples": ["S-1"]}, "samples"),  # compliant, with samples
        ({"outcome": "SAMPLED", "samples": ["S-1"], "lab_result": True}, "lab_result"),
        ({"outcome": "PASSED"}, "outcome"),
        ({"outcome": None}, "outcome"),
        ({"measure": "FINE", "outcome": "NON_COMPLIANT"}, "measure"),
        ({"version": 0}, "version"),
        ({"version": "1"}, "version"),  # a string is not a version
        ({"version": None}, "version"),
        ({"declaration_id": ""}, "declaration_id"),
        ({"declaration_id": "DEC\n1"}, "declaration_id"),
        ({"lab_result": "yes"}, "lab_result"),
        ({"samples": "S-1", "outcome": "SAMPLED"}, "samples"),
        ({"samples": [""], "outcome": "SAMPLED"}, "samples[0]"),
        ({"reasons": [{"code": "X"}]}, "reasons[0].message"),
        ({"reasons": [{"code": "X", "message": "m", "item": 0}]}, "reasons[0].item"),
        ({"reasons": [{"code": "X", "message": "m", "why": "?"}]}, "reasons[0].why"),
        ({"agency": "ciq"}, "agency"),  # the agency is the token's: an unknown field
        ({"inspector": "someone"}, "inspector"),
        ({"recorded_at": "2026-11-27T08:00:00Z"}, "recorded_at"),
    ],
)
async def test_an_invalid_finding_is_422_naming_the_field(
    issuer: Issuer, changes: dict[str, Any], field: str
) -> None:
    async with site(issuer) as station:
        response = await station.record(body(**changes))
        assert station.broker.records(TOPIC) == []
    document = problem(response, 422)
    assert field in {e["field"] for e in document["errors"]}, document


def test_every_rule_of_the_event_across_fields_is_named_by_its_field() -> None:
    """The station names the field of each of InspectionFinding's cross-field rules by a word
    of its message: a reworded rule must keep naming it."""
    inspector = inspector_of({"sub": "i", "agency": "customs"})
    cases = {
        "measure": {"outcome": "COMPLIANT", "measure": "SEIZURE"},
        "samples": {"outcome": "NON_COMPLIANT", "measure": "RETURN", "samples": ["S-1"]},
        "lab_result": {"outcome": "SAMPLED", "samples": ["S-1"], "lab_result": True},
    }
    station = Station(_NoProducer(), verifier=_NoVerifier(), id_secret=SECRET, clock=lambda: T0)
    for field, changes in cases.items():
        request = findings.FindingRequest.model_validate(body(**changes))
        with pytest.raises(Problem) as refused:
            station.finding(inspector, ORDER, request, None)
        assert [e.field for e in refused.value.errors] == [field], refused.value.errors


class _NoProducer:
    async def publish(self, topic: str, event: Any, parent_trace: bytes | None = None) -> None:
        raise AssertionError("nothing is published")


class _NoVerifier:
    async def verify(self, token: str) -> Any:
        raise AssertionError("nobody is verified")


async def test_a_bad_order_id_or_key_and_a_body_that_is_not_json_are_refused(
    issuer: Issuer,
) -> None:
    async with site(issuer) as station:
        long_order = await station.record(body(), order="O" * 65)
        spaced_order = await station.record(body(), order="an%20order")
        long_key = await station.record(body(), key="k" * 129)
        not_json = await station.client.post(
            f"/v1/inspections/{ORDER}/findings",
            content=b"outcome=COMPLIANT",
            headers={**issuer.inspector(), "content-type": "application/json"},
        )
        form = await station.client.post(
            f"/v1/inspections/{ORDER}/findings",
            data={"outcome": "COMPLIANT"},
            headers=issuer.inspector(),
        )
        assert station.broker.records(TOPIC) == []
    for refused in (long_order, spaced_order, long_key):
        problem(refused, 422)
    problem(not_json, 400)
    problem(form, 415)


async def test_kafka_down_is_503_with_retry_after_and_the_retry_publishes_the_same_id(
    issuer: Issuer,
) -> None:
    async with site(issuer) as station:
        station.broker.fail(TOPIC, KafkaConnectionError())
        down = await station.record(body(), key="k-retry")
        assert station.broker.records(TOPIC) == []  # nothing promised, nothing there
        up = await station.record(body(), key="k-retry")
        assert up.status_code == 202
        [finding] = station.recorded()
    document = problem(down, 503)
    assert down.headers["Retry-After"] == "5" and "finding_id" not in document
    assert up.json()["finding_id"] == finding.finding_id


async def test_liveness_and_readiness_are_open(issuer: Issuer) -> None:
    async with site(issuer) as station:
        answers = {p: await station.client.get(p) for p in ("/livez", "/healthz", "/readyz")}
    assert {p: r.status_code for p, r in answers.items()} == dict.fromkeys(answers, 200)
    assert answers["/healthz"].json() == answers["/livez"].json() == {"status": "live", "loops": {}}
    assert answers["/readyz"].json() == {"status": "ready", "checks": {}}


# -- what the join makes of it ---------------------------------------------------------------


async def test_what_the_station_records_is_what_the_join_decides_the_order_with(
    issuer: Issuer,
) -> None:
    """Customs and CIQ both want to see the goods: one order. Customs finds them compliant,
    CIQ seizes them: the life ends SANCTIONED by CIQ's finding."""
    customs = life.ruled("customs", Decision.INSPECT).model_copy(
        update={"checks": (InspectionCheck(agency="customs", check="open-container"),)}
    )
    ciq = life.ruled("ciq", Decision.INSPECT).model_copy(
        update={"checks": (InspectionCheck(agency="ciq", check="quarantine"),)}
    )
    events: list[object] = [life.declared(), customs, ciq, life.ruled("port")]
    _, results = life.run(events)
    assert results[-1].status is ClearanceStatus.INSPECTION_REQUIRED
    assert results[-1].inspection is not None
    order = results[-1].inspection.order_id
    declaration_id = factories.declaration().declaration_id
    async with site(issuer, clock=lambda: T0 + timedelta(hours=3)) as station:
        for auth, finding in (
            (issuer.inspector("customs-7", "customs"), body()),
            (
                issuer.inspector("ciq-3", "ciq"),
                body(
                    outcome="NON_COMPLIANT",
                    measure="SEIZURE",
                    reasons=[{"code": "CIQ-PEST", "message": "live pests found"}],
                ),
            ),
        ):
            response = await station.record(
                {**finding, "declaration_id": declaration_id}, auth=auth, order=order
            )
            assert response.status_code == 202, response.text
        recorded = station.recorded()
    _, results = life.run([*events, *recorded])
    assert results[-1].status is ClearanceStatus.SANCTIONED
    assert results[-1].sanction is not None
    assert (results[-1].sanction.agency, results[-1].sanction.measure) == ("ciq", Measure.SEIZURE)
    assert results[-1].sanction.finding_id == recorded[1].finding_id


# -- settings --------------------------------------------------------------------------------


def test_the_station_refuses_to_start_without_an_issuer_naming_its_own_variables() -> None:
    with pytest.raises(ConfigError) as refused:
        build_inspector_verifier(InspectionSettings())
    assert "the inspection station has no token issuer" in str(refused.value)
    assert "INSPECTION_JWT_ISSUER" in str(refused.value) and "INTAKE_" not in str(refused.value)
    with pytest.raises(ConfigError, match="INSPECTION_ID_SECRET_FILE"):
        id_secret(InspectionSettings())


async def test_the_local_station_takes_the_local_issuers_inspector_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = local_inspection_env(tmp_path / "issuer", tmp_path / "inspection-id")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    own = InspectionSettings()
    assert (own.host, own.port, own.metrics_port, own.public_docs) == (
        "127.0.0.1",
        8082,
        9108,
        True,
    )
    async with FakeBroker() as broker:
        producer = EventProducer(
            Settings(), INSPECTION, factories.SIGNING[INSPECTION], transport=broker
        )
        station = Station(
            producer, verifier=build_inspector_verifier(own), id_secret=id_secret(own)
        )
        app = create_app(station, docs=own.public_docs)
        headers = devissuer.inspector_bearer("local", "port", directory=tmp_path / "issuer")
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://station") as client:
            url = f"/v1/inspections/{ORDER}/findings"
            recorded = await client.post(url, json=body(), headers=headers)
            docs = await client.get("/openapi.json")
        await producer.stop()
        assert recorded.status_code == 202, recorded.text
        assert len(broker.records(TOPIC)) == 1
    assert "/v1/inspections/{order_id}/findings" in docs.json()["paths"]
