"""What the fault-injection tests check: every accepted declaration has exactly one result
(read_committed), equal to the pure join of its recorded verdicts, and a final read-model
document agreeing with it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from deploy.local.components import VAR
from deploy.local.demo_data import DEMO_BROKER, demo_usccs, sample_declaration_body
from deploy.local.trust import LocalTrust
from services.aggregator.join import fold
from services.audit.guarantees import verify_ledgers
from services.customs import rules as customs_rules
from services.customs.sampling import current_key, is_sampled, local_environment
from services.intake.devissuer import DEFAULT_ID_SECRET, bearer, inspector_bearer
from services.intake.ids import KeyedIds
from singlewindow.avro import CodecError
from singlewindow.db import find_by_ids, mongo_client
from singlewindow.events import (
    ClearanceResult,
    ClearanceStatus,
    DeclarationSubmitted,
    PaymentConfirmed,
)
from singlewindow.kafka.reader import key_text, read_topic
from singlewindow.readmodel import COLLECTION
from singlewindow.settings import get_settings
from singlewindow.signing import SigningKey
from singlewindow.topics import (
    CLEARANCE_RESULTS,
    DECLARATIONS_SUBMITTED,
    INSPECTION_FINDINGS,
    PAYMENTS_CONFIRMED,
    events_by_topic,
    inputs,
    verdict_topics,
)
from tests.e2e.conftest import DEADLINE_SECONDS


def local_signer(signer: str) -> SigningKey:
    """The local stack's signing key of ``signer`` (what a stolen key would give a forger)."""
    env = LocalTrust(VAR).signing_env(signer)
    return SigningKey.from_pem(env["SIGNING_KEY_ID"], Path(env["SIGNING_KEY_FILE"]).read_bytes())


def unsampled_keys(subject: str = DEMO_BROKER) -> Callable[[], str]:
    """Fresh Idempotency-Keys of ``subject`` whose declarations customs' random sample (3 %)
    does not draw: the id a key gives is the intake's HMAC under the local id secret, and the
    draw is customs' under the local sampling key, both this stack's own. A journey that must
    reach a payment uses them, so that it never stops at a random joint inspection."""
    keyed = KeyedIds(DEFAULT_ID_SECRET.read_bytes().removesuffix(b"\n"))
    environ = local_environment({}, VAR / "secrets" / "customs-sampling.keys")
    key = current_key(environ)
    rate = customs_rules.load_reference().random_inspection_rate

    def fresh() -> str:
        while True:
            candidate = f"life-{uuid.uuid4().hex}"
            if not is_sampled(keyed.declaration_id(subject, candidate), rate, key):
                return candidate

    return fresh


def trader(hours: float = 12) -> dict[str, str]:
    """The Authorization header of the demo customs broker, who acts for every demo
    declarant (valid long enough for the longest chaos run)."""
    return bearer(DEMO_BROKER, demo_usccs(), ttl=timedelta(hours=hours))


@dataclass
class TraderStats:
    answers_503: int = 0
    unreachable: int = 0  # connection refused or dropped: the intake was down
    slowest_s: float = 0.0


async def submit_patiently(
    url: str, count: int, offset: int, prefix: str, concurrency: int = 8
) -> tuple[list[str], TraderStats]:
    """A patient trader: each declaration has its Idempotency-Key and is sent again with it
    (after 1 s) until it gets a 202: on a 503, a 409 "still in progress", or no answer at
    all. Returns the ids answered 202, in order."""
    accepted: list[str] = []
    stats = TraderStats()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(offset + i)

    async def send(client: httpx.AsyncClient, i: int) -> str:
        while True:
            started = time.monotonic()
            try:
                response = await client.post(
                    "/v1/declarations",
                    json=sample_declaration_body(i),
                    headers={"Idempotency-Key": f"{prefix}-{offset}-{i}"},
                )
            except httpx.TransportError:
                stats.unreachable += 1
                await asyncio.sleep(1)
                continue
            stats.slowest_s = max(stats.slowest_s, time.monotonic() - started)
            if response.status_code == 202:
                return str(response.json()["declaration_id"])
            assert response.status_code in (503, 409), response.text
            assert int(response.headers["retry-after"]) > 0
            stats.answers_503 += response.status_code == 503
            await asyncio.sleep(1)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            accepted.append(await send(client, queue.get_nowait()))

    # Idle connections are closed here before uvicorn's keep-alive (5 s) closes them there,
    # so a request never goes out on a connection the server is closing.
    limits = httpx.Limits(keepalive_expiry=1.0)
    async with httpx.AsyncClient(
        base_url=url, timeout=120, limits=limits, headers=trader()
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return accepted, stats


async def recorded(ids: set[str]) -> dict[str, dict[str, list[Any]]]:
    """Every recorded event of these declarations, per topic, in log order."""
    settings = get_settings()
    events: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    topics = events_by_topic((*inputs(), CLEARANCE_RESULTS.name))
    for topic, kind in topics.items():
        for record in await read_topic(settings, topic, "read_committed"):
            if record.key is not None and key_text(record) in ids:
                events[key_text(record)][topic].append(kind.from_avro(record.value))
    return events


async def wait_for_results(ids: set[str], timeout_s: float, sequence: int = 1) -> None:
    """Until every declaration of ``ids`` has its step ``sequence`` on the results topic."""
    await first_results(ids, timeout_s, sequence)


async def first_results(
    ids: set[str], timeout_s: float, sequence: int = 1
) -> dict[str, ClearanceResult]:
    """Each declaration's result of step ``sequence`` (read_committed), once all are there."""
    settings = get_settings()
    async with asyncio.timeout(timeout_s):
        while True:
            records = await read_topic(settings, CLEARANCE_RESULTS.name, "read_committed")
            found: dict[str, ClearanceResult] = {}
            for record in records:
                if record.key is None or key_text(record) not in ids:
                    continue
                result = ClearanceResult.from_avro(record.value)
                if result.sequence == sequence:
                    found.setdefault(result.declaration_id, result)
            if ids <= set(found):
                return found
            await asyncio.sleep(2)


async def read_model_statuses(expected: dict[str, str], timeout_s: float) -> dict[str, str]:
    """The read model's statuses of the declarations, once each shows the expected one (or
    at ``timeout_s``: what it shows then)."""
    settings = get_settings()
    client = mongo_client(settings)
    collection = client[settings.mongodb_database][COLLECTION]
    statuses: dict[str, str] = {}
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while True:
                    docs = await find_by_ids(collection, set(expected), {"status": 1})
                    statuses = {key: doc["status"] for key, doc in docs.items()}
                    if all(statuses.get(i) == status for i, status in expected.items()):
                        break
                    await asyncio.sleep(2)
    finally:
        await client.close()
    return statuses


Request = tuple[str, dict[str, Any], dict[str, str]]  # path, JSON body, headers


async def post_patiently(
    url: str, requests: list[Request], headers: dict[str, str], concurrency: int = 8
) -> TraderStats:
    """Each request sent (with ``headers`` and its own, its Idempotency-Key among them) and
    sent again (after 1 s) until it is answered 202: on a 503 or no answer at all (the
    service, or Kafka, killed)."""
    stats = TraderStats()
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)

    async def send(client: httpx.AsyncClient, path: str, body: Any, own: dict[str, str]) -> None:
        while True:
            try:
                response = await client.post(path, json=body, headers=own)
            except httpx.TransportError:
                stats.unreachable += 1
                await asyncio.sleep(1)
                continue
            if response.status_code == 202:
                return
            assert response.status_code == 503, response.text
            stats.answers_503 += 1
            await asyncio.sleep(1)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            await send(client, *queue.get_nowait())

    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return stats


async def pay_patiently(
    bank_url: str, notices: dict[str, ClearanceResult], drawn: Mapping[str, str] | None = None
) -> TraderStats:
    """A patient payer: every notice is paid in full by its owner, or, for the declarations
    ``drawn`` names, secured by a draw on that general guarantee; each request with its
    Idempotency-Key (:func:`post_patiently`)."""
    owners = await _owners(set(notices))
    drawn = drawn or {}
    requests: list[Request] = []
    for result in notices.values():
        notice = result.payment_notice
        assert notice is not None
        body = {
            "declaration_id": result.declaration_id,
            "notice_id": notice.notice_id,
            "amount": str(notice.amount),
            "payer": owners[result.declaration_id],
        }
        key = {"Idempotency-Key": f"pay-{notice.notice_id}"}
        if result.declaration_id in drawn:
            body |= {"kind": "GENERAL_GUARANTEE", "guarantee_id": drawn[result.declaration_id]}
        requests.append(("/v1/payments", body, key))
    return await post_patiently(bank_url, requests, trader())


async def guarantee_balance(bank_url: str, guarantee_id: str) -> Decimal:
    """A general guarantee's balance as the bank shows its holder (asked again while the
    bank, or its database, is away)."""
    async with httpx.AsyncClient(base_url=bank_url, timeout=30, headers=trader()) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                response = await client.get(f"/v1/guarantees/{guarantee_id}")
                if response.status_code == 200:
                    return Decimal(response.json()["balance"])
                assert response.status_code == 503, response.text
            await asyncio.sleep(1)


async def drawable(
    notices: dict[str, ClearanceResult], holder: str, guarantee_id: str, balance: Decimal
) -> dict[str, str]:
    """The holder's notices a general guarantee with ``balance`` left covers, taken in
    declaration-id order while it lasts: declaration id -> the guarantee."""
    owners = await _owners(set(notices))
    chosen: dict[str, str] = {}
    for declaration_id in sorted(d for d in notices if owners[d] == holder):
        notice = notices[declaration_id].payment_notice
        assert notice is not None
        if notice.amount <= balance:
            chosen[declaration_id] = guarantee_id
            balance -= notice.amount
    return chosen


async def ledger_findings() -> list[str]:
    """What ``audit verify`` finds in the general guarantees' ledgers on payments.confirmed
    (read_committed): gaps, repeated sequences, overdraws, balances that do not follow."""
    records = await read_topic(get_settings(), PAYMENTS_CONFIRMED.name, "read_committed")
    found: list[str] = []
    entries = []
    for record in records:  # what is no payment (the security tests' garbage) is no entry
        with contextlib.suppress(CodecError, ValidationError):
            entries.append(PaymentConfirmed.from_avro(record.value))
    verify_ledgers(lambda kind, d, detail: found.append(f"{kind}: {d} {detail}"), entries, {})
    return found


def inspector(agency: str, hours: float = 12) -> dict[str, str]:
    """The Authorization header of an inspector of ``agency`` at the inspection station."""
    return inspector_bearer(f"{agency}-inspector-1", agency, ttl=timedelta(hours=hours))


async def record_patiently(station_url: str, orders: dict[str, ClearanceResult]) -> TraderStats:
    """Patient inspectors: every agency an INSPECTION_REQUIRED result's order names records
    the goods COMPLIANT at the station, each finding with its Idempotency-Key
    (:func:`post_patiently`)."""
    requests: list[Request] = []
    tokens: dict[str, dict[str, str]] = {}
    for result in orders.values():
        assert result.inspection is not None
        order = result.inspection.order_id
        body = {
            "declaration_id": result.declaration_id,
            "version": result.version,
            "outcome": "COMPLIANT",
        }
        for agency in dict.fromkeys(str(c.agency) for c in result.inspection.checks):
            token = tokens.setdefault(agency, inspector(agency))
            own = {**token, "Idempotency-Key": f"find-{order}-{agency}"}
            requests.append((f"/v1/inspections/{order}/findings", body, own))
    return await post_patiently(station_url, requests, {})


async def _owners(ids: set[str]) -> dict[str, str]:
    """Who owns each declaration's goods (and pays its duties), as recorded."""
    records = await read_topic(get_settings(), DECLARATIONS_SUBMITTED.name, "read_committed")
    owners: dict[str, str] = {}
    for record in records:
        if record.key is not None and key_text(record) in ids:
            declaration = DeclarationSubmitted.from_avro(record.value)
            owners.setdefault(declaration.declaration_id, declaration.owner.uscc)
    return owners


@dataclass
class Outcome:
    accepted: int
    results: int
    lost: int
    duplicates: int
    mismatches: int
    read_model_disagreements: int
    paid: int = 0
    released_after_payment: int = 0
    inspected: int = 0
    decided_on_findings: int = 0

    def line(self) -> str:
        return (
            f"accepted={self.accepted} results={self.results} lost={self.lost} "
            f"duplicates={self.duplicates} mismatches={self.mismatches} "
            f"read_model_disagreements={self.read_model_disagreements} paid={self.paid} "
            f"released_after_payment={self.released_after_payment} "
            f"inspected={self.inspected} decided_on_findings={self.decided_on_findings}"
        )

    def assert_exactly_once(self) -> None:
        assert self.lost == 0 and self.duplicates == 0, self.line()
        assert self.mismatches == 0 and self.read_model_disagreements == 0, self.line()
        assert self.released_after_payment == self.paid, self.line()
        assert self.decided_on_findings == self.inspected, self.line()


async def outcome(
    accepted: list[str], paid: dict[str, int] | None = None, inspected: Iterable[str] = ()
) -> Outcome:
    """Wait for every accepted declaration's first answer (for the ``paid`` ones, their
    release, the step the dict names; for the ``inspected`` ones, the step after the
    inspection), then compare everything: one result per step (no step twice, none
    missing), the first answer equal to the pure join of the recorded declaration and
    verdicts, each inspected declaration decided on every agency's findings, each paid
    declaration released once with its settlement, and the read model showing each
    declaration's last step."""
    ids, paid, inspected = set(accepted), paid or {}, set(inspected)
    await wait_for_results(ids, timeout_s=300 + len(ids) / 20)
    if inspected:
        await wait_for_results(inspected, timeout_s=300 + len(inspected) / 20, sequence=2)
    for sequence in sorted(set(paid.values())):
        due = {d for d, s in paid.items() if s == sequence}
        await wait_for_results(due, timeout_s=300 + len(due) / 20, sequence=sequence)
    events = await recorded(ids)
    mismatches = duplicates = lost = released = on_findings = 0
    last: dict[str, str] = {}
    for d in ids:
        results = events[d][CLEARANCE_RESULTS.name]
        steps = Counter(r.sequence for r in results)
        duplicates += sum(n - 1 for n in steps.values())
        lost += 1 not in steps or sorted(steps) != list(range(1, len(steps) + 1))
        if not results:
            continue
        declaration = events[d][DECLARATIONS_SUBMITTED.name][:1]
        verdicts = [v for t in verdict_topics().values() for v in events[d][t.name]]
        verdicts.sort(key=lambda v: v.agency)  # order across agencies does not matter
        _, expected = fold([*declaration, *verdicts], timedelta(seconds=DEADLINE_SECONDS))
        first = min(results, key=lambda r: r.sequence)
        mismatches += expected[:1] != [first.unsigned()]
        final = max(results, key=lambda r: r.sequence)
        last[d] = final.status
        if d in paid:
            released += sum(
                r.status is ClearanceStatus.RELEASED and r.settlement is not None for r in results
            )
        if d in inspected and first.inspection is not None:
            after = next((r for r in results if r.sequence == 2), None)
            named = {str(c.agency) for c in first.inspection.checks}
            found = {f.agency for f in events[d][INSPECTION_FINDINGS.name]}
            on_findings += (
                after is not None
                and after.status in (ClearanceStatus.AWAITING_PAYMENT, ClearanceStatus.RELEASED)
                and len(after.finding_ids) == len(named)
                and found == named
            )
    statuses = await read_model_statuses(last, timeout_s=120)
    return Outcome(
        accepted=len(accepted),
        results=sum(len(events[d][CLEARANCE_RESULTS.name]) for d in ids),
        lost=lost,
        duplicates=duplicates,
        mismatches=mismatches,
        read_model_disagreements=sum(statuses.get(d) != status for d, status in last.items()),
        paid=len(paid),
        released_after_payment=released,
        inspected=len(inspected),
        decided_on_findings=on_findings,
    )


def shown(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print past pytest's capture: the figures belong in the test log."""

    def say(line: str) -> None:
        with capsys.disabled():
            print(line)

    return say
