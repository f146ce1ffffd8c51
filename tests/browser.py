"""Driving the trader's window in a real browser: Debian's headless Chromium (``chromium``,
which ``make test`` installs when missing: ``make browser``) through Playwright's Python
package (a dev dependency; its own browser download is never used).

:func:`window_page` opens a page on the window; :class:`WindowPage` is what a trader does
there, in the words of the page (its labels and roles, English), so that the unit test on
the in-memory intake (tests/unit/test_window_browser.py) and the end-to-end test on the
platform (tests/e2e/test_window_browser.py) read alike. :func:`screenshot` keeps a picture
of a page when ``SW_SCREENSHOTS`` names a folder (``make screenshots``: docs/window/).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ANSWERED = re.compile(
    "Released|Inspection required|Documents required|Rejected|Escalated|Awaiting payment|"
    "Withdrawn|Sanctioned|Remediation required|Released on condition|Recalled|"
    "Supplementary payment due|Change refused"
)


def chromium_or_skip() -> str:
    """Debian's Chromium, or a skip naming the command that installs it."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: `make browser` installs Debian's package")
    return CHROMIUM


async def screenshot(page: object, name: str) -> None:
    """Keep a full-page picture as ``$SW_SCREENSHOTS/<name>.png`` when that is set."""
    folder = os.environ.get("SW_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


@asynccontextmanager
async def window_page(url: str, width: int = 1100) -> AsyncIterator[WindowPage]:
    """A fresh browser page (its own session storage) on the window at ``url``."""
    from playwright.async_api import async_playwright

    executable = chromium_or_skip()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(
                viewport={"width": width, "height": 900}, locale="en-GB"
            )
            page = await context.new_page()
            page.set_default_timeout(15_000)
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            # script errors and refusals (CSP: "Refused to ..."); not the log line of every
            # answer >= 400 ("Failed to load resource"), which the page expects (422, 404)
            page.on(
                "console",
                lambda m: (
                    problems.append(m.text)
                    if m.type == "error" and not m.text.startswith("Failed to load resource")
                    else None
                ),
            )
            await page.goto(f"{url}/app/")
            yield WindowPage(page, problems)
        finally:
            await browser.close()


class WindowPage:
    """What a trader does in the window (a Playwright page on it)."""

    def __init__(self, page: object, problems: list[str]) -> None:
        from playwright.async_api import Page

        assert isinstance(page, Page)
        self.page, self.problems = page, problems

    async def sign_in(self, uscc: str) -> None:
        """The development sign-in, for ``uscc``; then the list is shown."""
        page = self.page
        await page.get_by_label("USCC you act for").fill(uscc)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await page.get_by_role("heading", name="My declarations").wait_for()

    async def new_declaration(self) -> None:
        await self.page.get_by_role("link", name="New declaration").first.click()
        await self.page.get_by_role("heading", name="New declaration").wait_for()

    async def fill_example(self) -> None:
        """The example declaration in the form, validated (the routing line shows)."""
        await self.page.get_by_role("button", name="Fill with an example").click()
        await self.page.get_by_text("This declaration goes to:").wait_for()

    async def type_containers(self, containers: str) -> None:
        field = self.page.get_by_label("Container numbers (ISO 6346)")
        await field.fill(containers)

    async def field_error(self, label: str) -> str:
        """The error shown under the field labelled ``label`` once the page marks it."""
        field = self.page.get_by_label(label)
        await self.page.wait_for_function(
            "id => document.getElementById(id).getAttribute('aria-invalid') === 'true'",
            arg=await field.get_attribute("id"),
        )
        error = self.page.locator(f"#{await field.get_attribute('id')}-error")
        return await error.inner_text()

    async def field_is_valid(self, label: str) -> None:
        field = self.page.get_by_label(label)
        await self.page.wait_for_function(
            "id => !document.getElementById(id).hasAttribute('aria-invalid')",
            arg=await field.get_attribute("id"),
        )

    async def lodge(self) -> str:
        """Submit the form; the declaration's page opens: its id."""
        await self.page.get_by_role("button", name="Lodge the declaration").click()
        heading = self.page.locator("#detail-title")
        await self.page.wait_for_function(
            "() => /DEC-/.test(document.getElementById('detail-title').textContent)"
        )
        return (await heading.inner_text()).split()[-1]

    async def status(self) -> str:
        return await self.page.locator("#detail-status").inner_text()

    async def wait_for_status(self, pattern: re.Pattern[str], timeout_ms: float = 15_000) -> str:
        """The status the page shows once it matches ``pattern`` (it changes live)."""
        await self.page.locator("#detail-status").get_by_text(pattern).wait_for(timeout=timeout_ms)
        return await self.status()

    async def wait_for_status_code(self, status: str) -> None:
        """Until the page shows ``status`` (the API's code, whatever the language)."""
        await self.page.locator(f"#detail-status .s-{status}").wait_for()

    async def listed(self, timeout_ms: float = 15_000, including: str | None = None) -> list[str]:
        """The ids in the list of one's declarations (``timeout_ms``: for the list's answer;
        ``including``: once it shows that id, for a list asked before it was lodged may
        still be answering)."""
        loads = await self.page.locator("#list").get_attribute("data-loads") or "0"
        await self.page.get_by_role("link", name="My declarations").click()
        await self.page.get_by_role("heading", name="My declarations").wait_for()
        await self.page.wait_for_function(
            "before => (document.getElementById('list').dataset.loads || '0') !== before",
            arg=loads,
            timeout=timeout_ms,
        )
        if including is not None:
            await (
                self.page.locator("#list tbody tr td:first-child")
                .get_by_text(including, exact=True)
                .wait_for(timeout=timeout_ms)
            )
        cells = self.page.locator("#list tbody tr td:first-child")
        return [text.strip() for text in await cells.all_inner_texts()]
