"""Issue 16, bug 18: the interactive API docs render under the site's content-security policy,
which allows no inline style or script; the browser reports no violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from tests.browser.conftest import PageEvents

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def test_the_api_docs_render_without_a_csp_violation(page: Page, live_server: LiveServer, events: PageEvents) -> None:
    page.add_init_script(RECORD_VIOLATIONS)
    response = page.goto(f"{live_server}/api/docs/")

    assert response is not None
    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Assay API")
    expect(page.locator(".opblock").first).to_be_visible()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__cspViolations") == []
    assert [e for e in events.errors if "Content Security Policy" in e] == []
