"""The trader's window in a real browser (headless Chromium, ``tests.browser``) against the
in-memory intake served on a loopback port: what the end-to-end test does on the platform
(tests/e2e/test_window_browser.py), with the agencies' answers projected by the test.

``make screenshots`` runs it with ``SW_SCREENSHOTS=docs/window``: the README's pictures."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.intake import devissuer
from services.intake.auth import FileKeys, JwtVerifier
from tests.browser import ANSWERED, screenshot, window_page
from tests.unit.intake_tokens import USCC_A, USCC_B
from tests.unit.test_intake_schema import valid_body
from tests.unit.window_server import Served, released, serving


@pytest.fixture
async def window(tmp_path: Path) -> AsyncIterator[Served]:
    """The in-memory intake with a development issuer: the page offers its sign-in."""
    issuer = tmp_path / "issuer"
    devissuer.ensure_keys(issuer)
    keys = FileKeys(issuer / devissuer.JWKS)
    verifier = JwtVerifier(keys, issuer=devissuer.ISSUER, audience=devissuer.AUDIENCE)
    async with serving(dev_issuer=issuer, verifier=verifier) as served:
        served.issuer = issuer  # type: ignore[attr-defined]
        yield served


async def test_a_trader_lodges_through_the_form_and_watches_it_live(window: Served) -> None:
    issuer: Path = window.issuer  # type: ignore[attr-defined]
    theirs = valid_body()
    theirs["declarant"]["uscc"] = USCC_B
    async with httpx.AsyncClient(base_url=window.url) as client:
        other = devissuer.bearer("another-trader", [USCC_B], directory=issuer)
        lodged = await client.post("/v1/declarations", json=theirs, headers=other)
        assert lodged.status_code == 202, lodged.text
    window.project(window.intake.publisher.events[-1])
    theirs_id = lodged.json()["declaration_id"]

    async with window_page(window.url) as trader:
        await screenshot(trader.page, "sign-in")
        await trader.sign_in(USCC_A)
        await trader.new_declaration()
        await trader.fill_example()
        await trader.type_containers("CSQU3054384")  # the check digit is 3
        error = await trader.field_error("Container numbers (ISO 6346)")
        assert "check digit" in error.lower() or "CSQU3054384" in error
        await screenshot(trader.page, "form-with-an-error")
        await trader.type_containers("CSQU3054383")
        await trader.field_is_valid("Container numbers (ISO 6346)")
        mine = await trader.lodge()
        assert [e.declaration_id for e in window.intake.publisher.events][-1] == mine
        window.project(window.intake.publisher.events[-1])  # as the intake's seeder does
        assert await trader.wait_for_status(re.compile("Submitted")) == "Submitted"
        doc = released(window, mine)  # the agencies answer: the page shows it, not reloaded
        await trader.wait_for_status(ANSWERED)
        await trader.wait_for_status_code(doc["status"])
        await screenshot(trader.page, "declaration")
        listed = await trader.listed()
        assert listed == [mine] and theirs_id not in listed
        await screenshot(trader.page, "list")
        await trader.page.get_by_role("button", name="中文").click()  # the language switch
        await trader.page.get_by_role("heading", name="我的报关单").wait_for()
        assert await trader.page.locator("html").get_attribute("lang") == "zh-CN"
        await trader.page.set_viewport_size({"width": 390, "height": 844})  # a phone
        await screenshot(trader.page, "list-zh-phone")
        assert trader.problems == [], trader.problems  # no script error, nothing refused (CSP)
