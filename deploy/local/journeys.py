"""A trader's journeys through the life of a declaration, over HTTP only: what a customs
broker does after the first answer (pay, supply documents, amend, withdraw, present the goods
for inspection), as scripts that ``make demo`` prints and the end-to-end tests check
(tests/e2e/test_lifecycle.py).

Each journey lodges its declaration at the intake, follows it with the status API's
long-poll (``wait`` with ``seen``: the status last seen) and acts on the trader's view's
``next_step``; payments go through the bank (``services/bank``), and the agencies'
inspectors record their findings at the inspection station (``services/inspection``), each
with a token of their own agency. Released goods leave the port through its gate
(``services/gate``), let out by a gate officer (an inspector of the port authority, ``port``).
A journey returns the views it saw, one per step (and one more once the trader's view shows
a gate-out), so that a caller can show or check them.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import httpx

from deploy.local.demo_data import joint_inspection_body, scenario_body

View = dict[str, Any]
CHINA = timedelta(hours=8)
POLLS = 8  # a journey gives up on a step after this many long polls' time (30 s each)


# where a journey cannot go on by waiting: the end of a life, or a step someone must act on
DEAD_ENDS = frozenset(
    {
        "RELEASED",
        "REJECTED",
        "WITHDRAWN",
        "SANCTIONED",
        "RECALLED",
        "INSPECTION_REQUIRED",
        "REMEDIATION_REQUIRED",
        "HELD",
        "SUPPLEMENTARY_PAYMENT_DUE",
        "AMENDMENT_REFUSED",
    }
)
Headers = Callable[[str], dict[str, str]]  # an agency's code -> its inspector's headers
GATE_AGENCY = "port"  # a gate officer is an inspector of the port authority
GATE = "CNSHA-WGQ-3"  # the gate the journeys' trucks leave through


class JourneyError(AssertionError):
    """A step did not go as the journey expects (what the platform answered is in it)."""


@dataclass
class Window:
    """The trader's two doors, the intake and the bank, with one token; the inspection
    station, where each agency's inspector records findings with a token of their own; and
    the port's gate, where a gate officer (the port authority's inspector) lets goods out."""

    intake: httpx.AsyncClient
    bank: httpx.AsyncClient
    station: httpx.AsyncClient
    gate: httpx.AsyncClient
    inspectors: Headers
    seen: dict[str, list[View]] = field(default_factory=dict)  # declaration id -> its views
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> the body lodged
    # the Idempotency-Key of each lodging (None: none; a test picks keys whose declarations
    # customs' random sample does not draw, so that a journey meets only the inspections
    # it is about)
    keys: Callable[[], str] | None = None

    @classmethod
    def open(
        cls,
        urls: tuple[str, str, str, str],
        headers: dict[str, str],
        inspectors: Headers,
        keys: Callable[[], str] | None = None,
    ) -> Window:
        """``urls``: the intake's, the bank's, the inspection station's and the gate's."""
        intake, bank, station, gate = urls
        return cls(
            httpx.AsyncClient(base_url=intake, timeout=60, headers=headers),
            httpx.AsyncClient(base_url=bank, timeout=60, headers=headers),
            httpx.AsyncClient(base_url=station, timeout=60),
            httpx.AsyncClient(base_url=gate, timeout=60),
            inspectors,
            keys=keys,
        )

    async def close(self) -> None:
        await self.intake.aclose()
        await self.bank.aclose()
        await self.station.aclose()
        await self.gate.aclose()

    async def lodge(self, body: dict[str, Any]) -> str:
        headers = {"Idempotency-Key": self.keys()} if self.keys else {}
        answer = _accepted(await self.intake.post("/v1/declarations", json=body, headers=headers))
        declaration_id = str(answer["declaration_id"])
        self.seen[declaration_id], self.bodies[declaration_id] = [], body
        return declaration_id

    async def until(self, declaration_id: str, *statuses: str, after: int = 0) -> View:
        """The trader's view once its latest step is one of ``statuses`` and is step
        ``after`` + 1 or later. It long-polls (``wait`` with ``seen``, the status last seen)
        while the status must change; a new step of the same status is polled for."""
        try:
            async with asyncio.timeout(POLLS * 30):
                await self._follow(declaration_id, statuses, after)
        except TimeoutError:
            views = self.seen[declaration_id]
            raise JourneyError(
                f"{declaration_id} never reached {statuses} after step {after}: "
                f"{views[-1] if views else 'no answer'}"
            ) from None
        return self.seen[declaration_id][-1]

    async def _follow(self, declaration_id: str, statuses: tuple[str, ...], after: int) -> None:
        while True:
            views = self.seen[declaration_id]
            last = views[-1]["status"] if views else None
            params: dict[str, Any] = {}
            if last not in statuses:
                params = {"wait": 30, **({"seen": last} if last else {})}
            path = f"/v1/declarations/{declaration_id}"
            response = await self.intake.get(path, params=params)
            if response.status_code != 200:
                raise JourneyError(f"{declaration_id}: {response.status_code} {response.text}")
            view = response.json()
            if not views or view != views[-1]:
                views.append(view)
            if view["status"] in statuses and len(view.get("steps") or ()) > after:
                return
            if view["status"] in DEAD_ENDS and len(view.get("steps") or ()) > after:
                raise JourneyError(f"{declaration_id} ended {view['status']}, not {statuses}")
            if not params:
                await asyncio.sleep(0.5)

    async def pay(
        self, view: View, amount: Decimal | None = None, paid_at: datetime | None = None
    ) -> str:
        """Pay the view's notice (what is outstanding, unless ``amount``) as its owner."""
        outstanding = Decimal(view["payment_notice"]["outstanding"])
        paid = amount if amount is not None else outstanding
        return await self._settle(view, paid, "PAYMENT", paid_at)

    async def guarantee(self, view: View) -> str:
        """Secure the view's notice with a bank guarantee for its amount."""
        amount = Decimal(view["payment_notice"]["amount"])
        return await self._settle(view, amount, "BANK_GUARANTEE", None)

    async def draw(self, view: View) -> str:
        """Secure the view's notice with a draw on its owner's general guarantee (总担保) for
        its amount (the demo's guarantees: deploy/local/guarantees.json)."""
        amount = Decimal(view["payment_notice"]["amount"])
        guarantee = demo_guarantee(owner(self.bodies[view["declaration_id"]]))
        return await self._settle(view, amount, "GENERAL_GUARANTEE", None, guarantee)

    async def repay(self, guarantee_id: str, *notices: str) -> View:
        """Repay the draws on ``notices`` to the guarantee in the consolidated payment
        (汇总征税), now: the bank's answer (one payment per notice)."""
        key = {"Idempotency-Key": f"repay-{uuid.uuid4().hex}"}
        path = f"/v1/guarantees/{guarantee_id}/repayments"
        response = await self.bank.post(path, json={"notices": list(notices)}, headers=key)
        return _accepted(response)

    async def until_drawn(self, declaration_id: str, repaid: bool = False) -> View:
        """The trader's view once it shows the general guarantee's draw (``repaid``: and its
        repayment) as the projector folded the bank's confirmations; it polls, since neither
        changes the status."""

        def shows(view: View) -> bool:
            drawn = (view.get("settlement") or {}).get("guarantee")
            return bool(drawn and (drawn.get("repaid_at") or not repaid))

        return await self.until_shown(
            declaration_id, shows, f"the draw{' repaid' if repaid else ''}"
        )

    async def until_shown(
        self, declaration_id: str, shows: Callable[[View], bool], what: str
    ) -> View:
        """The trader's view once ``shows`` it (polled: what it waits for changes no status)."""
        path = f"/v1/declarations/{declaration_id}"
        views = self.seen[declaration_id]
        try:
            async with asyncio.timeout(POLLS * 30):
                while True:
                    response = await self.intake.get(path)
                    if response.status_code != 200:
                        raise JourneyError(
                            f"{declaration_id}: {response.status_code} {response.text}"
                        )
                    view: View = response.json()
                    if not views or view != views[-1]:
                        views.append(view)
                    if shows(view):
                        return view
                    await asyncio.sleep(0.5)
        except TimeoutError:
            raise JourneyError(
                f"{declaration_id}: the trader's view never showed {what}: "
                f"{views[-1] if views else 'no answer'}"
            ) from None

    async def _settle(
        self,
        view: View,
        amount: Decimal,
        kind: str,
        paid_at: datetime | None,
        guarantee_id: str | None = None,
    ) -> str:
        body: dict[str, Any] = {
            "declaration_id": view["declaration_id"],
            "notice_id": view["payment_notice"]["notice_id"],
            "amount": str(amount),
            "kind": kind,
            "payer": owner(self.bodies[view["declaration_id"]]),
        }
        if guarantee_id is not None:
            body["guarantee_id"] = guarantee_id
        if paid_at is not None:
            body["paid_at"] = paid_at.isoformat()
        key = {"Idempotency-Key": f"pay-{uuid.uuid4().hex}"}
        answer = _accepted(await self.bank.post("/v1/payments", json=body, headers=key))
        return str(answer["payment_id"])

    async def record(
        self, view: View, agency: str, outcome: str = "COMPLIANT", **finding: Any
    ) -> str:
        """``agency``'s inspector records a finding against the view's inspection order
        (``finding``: ``measure``, ``reasons``, ``samples``, ``lab_result``)."""
        order = self.order(view["declaration_id"])
        body = {
            "declaration_id": view["declaration_id"],
            "version": view["version"],
            "outcome": outcome,
            **finding,
        }
        answer = _accepted(
            await self.station.post(
                f"/v1/inspections/{order['order_id']}/findings",
                json=body,
                headers=self.inspectors(agency),
            )
        )
        return str(answer["finding_id"])

    def order(self, declaration_id: str) -> dict[str, Any]:
        """The inspection order the trader was shown (its INSPECTION_REQUIRED step's)."""
        for view in reversed(self.seen[declaration_id]):
            order = (view.get("result") or {}).get("inspection")
            if order:
                return dict(order)
        raise JourneyError(f"{declaration_id}: no inspection order seen")

    def inspected_by(self, declaration_id: str) -> list[str]:
        """The agencies its inspection order names, in the order's order."""
        checks = self.order(declaration_id)["checks"]
        return list(dict.fromkeys(str(c["agency"]) for c in checks))

    def containers(self, declaration_id: str) -> list[str]:
        """The containers of the body lodged (none: bulk or air cargo)."""
        transport = self.bodies[declaration_id].get("transport") or {}
        return [str(c) for c in transport.get("containers") or ()]

    async def try_gate_out(
        self, declaration_id: str, vehicle: str = "沪A12345", key: str | None = None
    ) -> httpx.Response:
        """The port's gate officer asks the gate to let the declaration's containers out on
        ``vehicle``: the gate's answer, whatever it is."""
        body = {
            "declaration_id": declaration_id,
            "gate": GATE,
            "vehicle": vehicle,
            "containers": self.containers(declaration_id),
        }
        headers = {
            **self.inspectors(GATE_AGENCY),
            "Idempotency-Key": key or f"gate-{uuid.uuid4().hex}",
        }
        return await self.gate.post("/v1/gate-out", json=body, headers=headers)

    async def gate_out(self, declaration_id: str, vehicle: str = "沪A12345") -> str:
        """Let the declaration's goods out through the gate (202 or JourneyError): the
        gate-out id."""
        answer = _accepted(await self.try_gate_out(declaration_id, vehicle))
        return str(answer["gate_out_id"])

    async def until_out(self, declaration_id: str, count: int = 1) -> View:
        """The trader's view once it shows ``count`` gate-outs (the projector has folded
        them); it polls, since a gate-out changes no status."""
        return await self.until_shown(
            declaration_id,
            lambda view: len(view.get("gate_outs") or ()) >= count,
            f"{count} gate-out(s)",
        )

    async def supply(self, declaration_id: str, *documents: tuple[str, str]) -> None:
        body = {"documents": [{"type": t, "reference": r} for t, r in documents]}
        _accepted(await self.intake.post(f"/v1/declarations/{declaration_id}/documents", json=body))

    async def amend(self, declaration_id: str, body: dict[str, Any]) -> None:
        _accepted(await self.intake.put(f"/v1/declarations/{declaration_id}", json=body))
        self.bodies[declaration_id] = body

    async def withdraw(self, declaration_id: str, reason: str) -> None:
        body = {"reason": reason}
        _accepted(
            await self.intake.post(f"/v1/declarations/{declaration_id}/withdrawal", json=body)
        )


def _accepted(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 202:
        raise JourneyError(
            f"{response.request.method} {response.request.url}: "
            f"{response.status_code} {response.text}"
        )
    answer: dict[str, Any] = response.json()
    return answer


def owner(body: dict[str, Any]) -> str:
    """The USCC of the goods' owner in a declaration's body (the domestic party, else the
    declarant): who pays its duties."""
    party = body.get("domestic_party") or body["declarant"]
    return str(party["uscc"])


def demo_guarantee(uscc: str) -> str:
    """The id of the demo's general guarantee held by ``uscc`` (deploy/local/guarantees.json,
    what the local bank issued)."""
    from services.bank.config import LOCAL_GUARANTEES
    from services.bank.guarantees import load_guarantees

    held = [g for g in load_guarantees(LOCAL_GUARANTEES).values() if g.holder == uscc]
    if not held:
        raise JourneyError(f"{uscc} holds no general guarantee in {LOCAL_GUARANTEES}")
    return held[0].guarantee_id


def days_after(due_by: str, days: int) -> datetime:
    """10:00 in China, ``days`` after a notice's due date."""
    day = date.fromisoformat(due_by) + timedelta(days=days)
    return datetime.combine(day, time(10), tzinfo=UTC) - CHINA


# -- the journeys ------------------------------------------------------------------------------


async def pay_and_release(window: Window, body: dict[str, Any]) -> list[View]:
    """Cleared by every agency, duties due: pay the notice in time, released; the goods leave
    the port through the gate, and the trader's view shows the gate-out."""
    declaration_id = await window.lodge(body)
    due = await window.until(declaration_id, "AWAITING_PAYMENT")
    await window.pay(due)
    await window.until(declaration_id, "RELEASED")
    await window.gate_out(declaration_id)
    await window.until_out(declaration_id)
    return window.seen[declaration_id]


async def pay_late(window: Window, body: dict[str, Any], days: int = 10) -> list[View]:
    """Pay the notice ``days`` after its due date: late interest is owed, then paid."""
    declaration_id = await window.lodge(body)
    due = await window.until(declaration_id, "AWAITING_PAYMENT")
    paid_at = days_after(due["payment_notice"]["due_by"], days)
    await window.pay(due, paid_at=paid_at)
    owed = await window.until(declaration_id, "AWAITING_PAYMENT", after=len(due["steps"]))
    await window.pay(owed, paid_at=paid_at + timedelta(hours=1))
    await window.until(declaration_id, "RELEASED")
    return window.seen[declaration_id]


async def guaranteed(window: Window, body: dict[str, Any]) -> list[View]:
    """Duties secured by a bank guarantee: released without payment."""
    declaration_id = await window.lodge(body)
    due = await window.until(declaration_id, "AWAITING_PAYMENT")
    await window.guarantee(due)
    await window.until(declaration_id, "RELEASED")
    return window.seen[declaration_id]


async def general_guarantee(window: Window, body: dict[str, Any]) -> list[View]:
    """An authorised trader's duties secured by a draw on its general guarantee (总担保):
    released without payment; the trader's view asks for the consolidated repayment
    (汇总征税), which the trader then makes at the bank; the view shows it repaid."""
    declaration_id = await window.lodge(body)
    due = await window.until(declaration_id, "AWAITING_PAYMENT")
    await window.draw(due)
    await window.until(declaration_id, "RELEASED")
    await window.until_drawn(declaration_id)  # next step: REPAY_GUARANTEE
    await window.repay(demo_guarantee(owner(body)), due["payment_notice"]["notice_id"])
    await window.until_drawn(declaration_id, repaid=True)
    return window.seen[declaration_id]


async def released(window: Window, declaration_id: str, after: int) -> list[View]:
    """After step ``after``: the new version's answer, its notice paid if one is due, and
    the release."""
    due = await window.until(declaration_id, "AWAITING_PAYMENT", "RELEASED", after=after)
    if due["status"] == "AWAITING_PAYMENT":
        await window.pay(due)
        await window.until(declaration_id, "RELEASED")
    return window.seen[declaration_id]


async def documents_lift_a_hold(
    window: Window, body: dict[str, Any], *documents: tuple[str, str]
) -> list[View]:
    """Held for a missing document: supply it, re-assessed, pay, released."""
    declaration_id = await window.lodge(body)
    held = await window.until(declaration_id, "HELD")
    await window.supply(declaration_id, *documents)
    return await released(window, declaration_id, after=len(held["steps"]))


async def amend_and_release(
    window: Window, body: dict[str, Any], amended: dict[str, Any]
) -> list[View]:
    """Held; the trader amends the declaration; the new version is assessed, paid, released."""
    declaration_id = await window.lodge(body)
    held = await window.until(declaration_id, "HELD")
    await window.amend(declaration_id, amended)
    return await released(window, declaration_id, after=len(held["steps"]))


async def withdraw(window: Window, body: dict[str, Any]) -> list[View]:
    """Duties due, and the trader withdraws the declaration instead (撤单)."""
    declaration_id = await window.lodge(body)
    await window.until(declaration_id, "AWAITING_PAYMENT")
    await window.withdraw(declaration_id, "goods sold before arrival; re-exported")
    await window.until(declaration_id, "WITHDRAWN")
    return window.seen[declaration_id]


async def inspected_and_released(window: Window, body: dict[str, Any]) -> list[View]:
    """One joint inspection: every agency the order names finds the goods compliant; the
    duties are paid; released."""
    declaration_id = await window.lodge(body)
    ordered = await window.until(declaration_id, "INSPECTION_REQUIRED")
    for agency in window.inspected_by(declaration_id):
        await window.record(ordered, agency)
    due = await window.until(declaration_id, "AWAITING_PAYMENT", "RELEASED")
    if due["status"] == "AWAITING_PAYMENT":
        await window.pay(due)
        await window.until(declaration_id, "RELEASED")
    return window.seen[declaration_id]


async def inspected_and_seized(window: Window, body: dict[str, Any]) -> list[View]:
    """One joint inspection: CIQ finds the goods non-compliant and seizes them; the others
    find nothing against them. The life ends SANCTIONED."""
    declaration_id = await window.lodge(body)
    ordered = await window.until(declaration_id, "INSPECTION_REQUIRED")
    for agency in window.inspected_by(declaration_id):
        if agency == "ciq":
            fault = {"code": "CIQ-UNSAFE", "message": "brakes fail the safety test", "item": 1}
            await window.record(
                ordered, agency, "NON_COMPLIANT", measure="SEIZURE", reasons=[fault]
            )
        else:
            await window.record(ordered, agency)
    await window.until(declaration_id, "SANCTIONED")
    return window.seen[declaration_id]


async def sampled_then_confirmed(window: Window, body: dict[str, Any]) -> list[View]:
    """One joint inspection: CIQ takes samples for the laboratory; the duties are paid and
    the goods released conditionally; the laboratory finds them compliant: released."""
    declaration_id = await window.lodge(body)
    ordered = await window.until(declaration_id, "INSPECTION_REQUIRED")
    for agency in window.inspected_by(declaration_id):
        if agency == "ciq":
            await window.record(ordered, agency, "SAMPLED", samples=["S-1", "S-2"])
        else:
            await window.record(ordered, agency)
    due = await window.until(declaration_id, "AWAITING_PAYMENT", "CONDITIONALLY_RELEASED")
    if due["status"] == "AWAITING_PAYMENT":
        await window.pay(due)
        due = await window.until(declaration_id, "CONDITIONALLY_RELEASED")
    await window.record(due, "ciq", "COMPLIANT", lab_result=True)
    await window.until(declaration_id, "RELEASED")
    return window.seen[declaration_id]


async def change_after_release(
    window: Window, body: dict[str, Any], changed: dict[str, Any]
) -> list[View]:
    """Paid and released; the trader finds the price was declared wrong and asks customs to
    change the declaration after release (放行后修改: PUT, routed to customs alone); customs
    approves it and its duties are corrected: more, a supplementary notice (补税), paid, and
    released again on the new version; less, released on the new version naming the refund
    (退税). The containers stay those released."""
    declaration_id = await window.lodge(body)
    due = await window.until(declaration_id, "AWAITING_PAYMENT")
    await window.pay(due)
    out = await window.until(declaration_id, "RELEASED")
    await window.amend(declaration_id, changed)
    return await customs_answered(window, declaration_id, after=len(out["steps"]))


async def customs_answered(window: Window, declaration_id: str, after: int) -> list[View]:
    """After step ``after``, customs' answer to a change after release: its supplementary
    notice paid if one is due, and the release."""
    answer = await window.until(
        declaration_id, "SUPPLEMENTARY_PAYMENT_DUE", "RELEASED", after=after
    )
    if answer["status"] == "SUPPLEMENTARY_PAYMENT_DUE":
        await window.pay(answer)
        await window.until(declaration_id, "RELEASED", after=len(answer["steps"]))
    return window.seen[declaration_id]


async def released_pending_valuation(
    window: Window, body: dict[str, Any], agreed: dict[str, Any]
) -> list[View]:
    """Customs questions the price and holds (价格质疑), naming the security; the trader
    secures it with a bank guarantee and the goods are released on condition while the price
    is consulted (担保放行, 价格磋商); the value agreed is lodged as a change, customs approves
    it, the duties on it are paid, and the release is final."""
    declaration_id = await window.lodge(body)
    held = await window.until(declaration_id, "HELD")
    await window.guarantee(held)  # the security notice the HELD step carries
    conditional = await window.until(declaration_id, "CONDITIONALLY_RELEASED")
    await window.amend(declaration_id, agreed)
    return await customs_answered(window, declaration_id, after=len(conditional["steps"]))


def repriced(body: dict[str, Any], factor: str) -> dict[str, Any]:
    """The declaration with every item's invoice price times ``factor`` (the price actually
    paid, found after release)."""
    changed = copy.deepcopy(body)
    for item in changed["items"]:
        item["invoice_price"] = str(
            (Decimal(item["invoice_price"]) * Decimal(factor)).quantize(Decimal("0.01"))
        )
    return changed


def with_phytosanitary_certificate() -> tuple[dict[str, Any], tuple[str, str]]:
    """Cherries without their phytosanitary certificate (CIQ holds), and the certificate."""
    return scenario_body("ciq-cherries-without-phyto"), (
        "PHYTOSANITARY_CERTIFICATE",
        "PC-CL-2026-0415",
    )


def with_the_real_price() -> tuple[dict[str, Any], dict[str, Any]]:
    """Laptops declared at a tenth of their price (customs holds for a price consultation,
    CUS-PRICE-QUERY), and the declaration amended with the price actually paid."""
    body = scenario_body("undervalued-laptops")
    amended = copy.deepcopy(body)
    for item in amended["items"]:
        item["invoice_price"] = str(Decimal(item["invoice_price"]) * 10)
    return body, amended


async def every_journey(
    window: Window, return_exceptions: bool = False
) -> dict[str, list[View] | BaseException]:
    """Every journey once, together, with the demo's declarations; with
    ``return_exceptions``, a journey that fails gives its error instead of its views."""
    held, certificate = with_phytosanitary_certificate()
    cheap, priced = with_the_real_price()
    laptops = scenario_body("clear-laptops")
    cars = joint_inspection_body()
    journeys = {
        "inspection → release": inspected_and_released(window, cars),
        "inspection → seizure": inspected_and_seized(window, cars),
        "inspection → samples → conditional release → release": sampled_then_confirmed(
            window, cars
        ),
        "pay → release": pay_and_release(window, laptops),
        "pay 10 days late → interest → release": pay_late(window, laptops),
        "bank guarantee → release": guaranteed(window, laptops),
        "general guarantee → release (汇总征税) → consolidated repayment": general_guarantee(
            window, laptops
        ),
        "hold → document → release": documents_lift_a_hold(window, held, certificate),
        "hold → amendment → release": amend_and_release(window, cheap, priced),
        "price query → guarantee → conditional release → value → release": (
            released_pending_valuation(window, cheap, priced)
        ),
        "withdrawal": withdraw(window, laptops),
        "release → change after release → supplementary notice → release": (
            change_after_release(window, laptops, repriced(laptops, "1.1"))
        ),
        "release → change after release → refund": change_after_release(
            window, laptops, repriced(laptops, "0.9")
        ),
    }
    views = await asyncio.gather(*journeys.values(), return_exceptions=return_exceptions)
    return dict(zip(journeys, views, strict=True))
