"""The trader's window on the whole platform, in a real browser (Debian's headless Chromium
through Playwright, ``tests.browser``): a trader signs in (the development sign-in of the local
intake), is told about a bad container number as it is typed, lodges the declaration through
the form, watches it reach the agencies' answer live (Server-Sent Events: the page is not
reloaded), and does not see another trader's declaration in the list."""

from __future__ import annotations

import httpx
import pytest

from services.intake.devissuer import bearer
from tests.browser import ANSWERED, window_page
from tests.e2e.conftest import Platform
from tests.factories import declaration_body

pytestmark = pytest.mark.e2e
TRADER = "91350100M000100Y43"  # the declarant of the page's example
ANOTHER = "91110105F4Y88L4U5D"  # another demo declarant, another trader's


async def test_a_trader_lodges_through_the_window_and_watches_it_to_the_answer(
    platform: Platform,
) -> None:
    theirs = declaration_body()
    theirs["declarant"]["uscc"] = ANOTHER
    async with httpx.AsyncClient(base_url=platform.url, timeout=30) as client:
        lodged = await client.post(
            "/v1/declarations", json=theirs, headers=bearer("another-trader", [ANOTHER])
        )
        assert lodged.status_code == 202, lodged.text
    theirs_id = lodged.json()["declaration_id"]

    async with window_page(platform.url) as trader:
        await trader.sign_in(TRADER)
        await trader.new_declaration()
        await trader.fill_example()
        await trader.type_containers("CSQU3054384")  # its check digit is 3
        assert "check digit" in await trader.field_error("Container numbers (ISO 6346)")
        await trader.type_containers("CSQU3054383")
        await trader.field_is_valid("Container numbers (ISO 6346)")
        mine = await trader.lodge()
        await trader.wait_for_status(ANSWERED, timeout_ms=180_000)  # live: never reloaded
        headers = bearer(f"local-trader-{TRADER}", [TRADER])
        async with httpx.AsyncClient(base_url=platform.url, timeout=30) as client:
            view = (await client.get(f"/v1/declarations/{mine}", headers=headers)).json()
        assert view["status"] not in ("SUBMITTED", "IN_REVIEW")
        await trader.wait_for_status_code(view["status"])  # the page shows what the API says
        # the read model holds every e2e test's declarations by now, and FerretDB 1.x scans it
        listed = await trader.listed(timeout_ms=120_000, including=mine)
        assert mine in listed and theirs_id not in listed
        assert trader.problems == [], trader.problems
