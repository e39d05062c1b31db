"""Browser fixtures: Debian's chromium driven by Playwright's sync API against live_server.

pytest-django's ``live_server`` is a threaded WSGI server over the test database, with the
static files served from the finders (so ``npm run build`` must have run: ``make test``
does it). Users log in through the real login form.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import rest_framework.views  # noqa: F401  (before experiments.services: core.api has an import cycle)
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page, Playwright, sync_playwright

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a
# thread with a running loop unless told that this is deliberate (tests only).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("ASSAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DIST = Path(__file__).resolve().parents[2] / "frontend" / "static" / "dist"
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (make chromium)")
    if not (DIST / "app.js").exists():
        pytest.fail("frontend/static/dist/app.js is missing: run `npm ci && npm run build` (make frontend)")
    with sync_playwright() as playwright:
        yield playwright


# When docs/ screenshots are refreshed (ASSAY_SCREENSHOTS=1), every page drops the live
# socket's "Reconnecting…" pill: live_server speaks WSGI (no /ws/), so the pill is the test
# server's, not the page's. Normal runs keep it (tests/browser/test_live.py checks it).
HIDE_LIVE_STATUS = """
new MutationObserver(() => document.querySelector('[data-testid=live-status]')?.remove())
  .observe(document, {childList: true, subtree: true});
"""


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    browser = playwright_session.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    if os.environ.get("ASSAY_SCREENSHOTS"):
        new_context = browser.new_context

        def new_context_for_docs(*args: object, **kwargs: object) -> BrowserContext:
            context = new_context(*args, **kwargs)  # type: ignore[arg-type]
            context.add_init_script(HIDE_LIVE_STATUS)
            return context

        browser.new_context = new_context_for_docs  # type: ignore[method-assign]
    yield browser
    browser.close()


@dataclass
class PageEvents:
    """What the page said while a test drove it: console errors and dialogs (alert & co)."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        # live_server speaks WSGI: the pages' live socket (/ws/) cannot connect there, and
        # chromium logs that as an error. tests/browser/test_live.py serves ASGI and tests it.
        if message.type == "error" and "/ws/' failed" not in message.text:
            self.errors.append(message.text)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def events() -> PageEvents:
    return PageEvents()


@pytest.fixture
def page(browser: Browser, events: PageEvents) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("console", events.on_console)
    page.on("pageerror", lambda exc: events.errors.append(f"uncaught: {exc}"))
    page.on("dialog", events.on_dialog)
    yield page
    context.close()


LogIn = Callable[[str], None]


@pytest.fixture
def log_in(page: Page, live_server: object) -> LogIn:
    """Sign in through the login form as ``username`` (whose password is PASSWORD)."""

    def do(username: str) -> None:
        page.goto(f"{live_server}/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server}/")

    return do
