"""Single sign-on in a real browser against a real OpenID provider on loopback
(oidc-provider-mock): sign in through the provider's page, land in the dashboard with the
teams the groups claim gives; the groups change at the provider and the next sign-in
follows them; sign out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts import services
from accounts.models import Membership, User
from tests.browser.conftest import PASSWORD, PageEvents
from tests.oidc_provider import Provider, oidc_provider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def provider(live_server: LiveServer, settings: Any) -> Iterator[Provider]:
    with oidc_provider(f"{live_server.url}/accounts/oidc/idp/login/callback/") as idp:
        settings.SOCIALACCOUNT_PROVIDERS = idp.settings()
        settings.CONTENT_SECURITY_POLICY = idp.csp(settings.CONTENT_SECURITY_POLICY)
        settings.ASSAY_OIDC_GROUP_MAP = {"ml-platform": ("ml", "owner"), "data": ("ds", "member")}
        yield idp


def sign_in_through_provider(page: Page, live_server: LiveServer, sub: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Sign in with Corp SSO").click()
    page.get_by_role("button", name="Continue").click()
    # The provider's own page.
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(f"{live_server.url}/")


def test_sign_in_through_the_provider_and_teams_follow_the_groups(
    page: Page, live_server: LiveServer, provider: Provider, events: PageEvents
) -> None:
    boss = User.objects.create_user("boss", "boss@example.com", "x-pass-123456")
    services.team_create(name="ml", owner=boss)
    services.team_create(name="ds", owner=boss)
    provider.set_user(
        "ana-1",
        {"email": "ana@example.com", "email_verified": True, "preferred_username": "ana", "groups": ["ml-platform"]},
    )

    sign_in_through_provider(page, live_server, "ana-1")

    ana = User.objects.get(email="ana@example.com")
    expect(page.locator("body")).to_contain_text("ana")
    page.goto(f"{live_server.url}/teams/")
    expect(page.get_by_role("link", name="ml", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="ds", exact=True)).to_have_count(0)
    page.goto(f"{live_server.url}/teams/ml/")
    row = page.locator('tr[data-member="ana"]')
    expect(row.get_by_test_id("managed-by-idp")).to_have_text("via SSO (idp)")
    expect(row).to_contain_text("Managed by the identity provider: change the groups there")
    expect(row.get_by_role("button")).to_have_count(0)  # neither "Leave team" nor a role form
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-sso-team.png"), full_page=True)

    # sign out
    page.goto(f"{live_server.url}/logout/")
    page.get_by_role("button", name="Sign Out").click()
    page.wait_for_url(f"{live_server.url}/login/")

    # The groups change at the provider; the next sign-in follows them.
    provider.set_user("ana-1", {"email": "ana@example.com", "email_verified": True, "groups": ["data"]})
    sign_in_through_provider(page, live_server, "ana-1")

    assert dict(Membership.objects.filter(user=ana).values_list("team__name", "role")) == {
        "ana": "owner",
        "ds": "member",
    }
    page.goto(f"{live_server.url}/teams/")
    expect(page.get_by_role("link", name="ds", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="ml", exact=True)).to_have_count(0)
    # The provider's own page loads its stylesheet from a CDN (unreachable here): only
    # uncaught script errors count.
    assert not [e for e in events.errors if e.startswith("uncaught")], events.errors


def test_an_unverified_email_claim_is_refused_in_the_browser(
    page: Page, live_server: LiveServer, provider: Provider
) -> None:
    User.objects.create_user("bob", "bob@example.com", "x-pass-123456")
    provider.set_user("mallory", {"email": "bob@example.com", "email_verified": False})

    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Sign in with Corp SSO").click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_placeholder("sub").fill("mallory")
    page.get_by_role("button", name="Authorize", exact=True).click()

    expect(page.get_by_role("heading", name="This account cannot be linked")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("did not say the address is verified")
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-sso-refused.png"), full_page=True)
    page.goto(f"{live_server.url}/")
    page.wait_for_url(f"{live_server.url}/login/?next=/")


def test_sso_required_refuses_the_password_form(page: Page, live_server: LiveServer, settings: Any) -> None:
    settings.ASSAY_SSO_REQUIRED_DOMAINS = ["corp.example"]
    User.objects.create_user("ana", "ana@corp.example", "x-pass-123456")

    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill("x-pass-123456")
    page.get_by_role("button", name="Sign in", exact=True).click()

    expect(page.get_by_role("alert")).to_contain_text("Your organisation signs in through single sign-on")
    page.goto(f"{live_server.url}/")
    page.wait_for_url(f"{live_server.url}/login/?next=/")


def test_a_teams_sso_requirement_refuses_its_members_password_form(
    page: Page, live_server: LiveServer, provider: Provider, log_in: Any
) -> None:
    # given a team owner in the browser, a provider configured, and a member with a password
    olga = User.objects.create_user("olga", "olga@example.org", PASSWORD)
    ana = User.objects.create_user("ana", "ana@example.org", PASSWORD)
    ml = services.team_create(name="ml", owner=olga)
    Membership.objects.create(team=ml, user=ana, role="member")
    log_in("olga")

    # when the owner requires single sign-on on the team page
    page.goto(f"{live_server.url}/teams/ml/")
    form = page.get_by_test_id("team-sso-form")
    form.get_by_label("Members must sign in through single sign-on").check()
    form.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_contain_text("must sign in through")
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-team-sso.png"), full_page=True)
    page.context.clear_cookies()

    # then the member's password form is refused
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Your organisation signs in through single sign-on")


def test_the_staff_identity_page_tests_a_sign_in_through_the_provider(
    page: Page, live_server: LiveServer, provider: Provider, log_in: Any
) -> None:
    User.objects.create_user("root-admin", "root@example.com", PASSWORD, is_staff=True)
    provider.set_user("root-1", {"email": "root@example.com", "email_verified": True})
    log_in("root-admin")

    page.goto(f"{live_server.url}/-/staff/identity/")
    expect(page.get_by_test_id("providers-table")).to_contain_text("/accounts/oidc/idp/login/callback/")
    page.get_by_role("button", name="Create token").scroll_into_view_if_needed()
    page.get_by_label("New SCIM token for").fill("okta")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_test_id("new-token-value")).to_contain_text("asy_")
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-staff-identity.png"), full_page=True)

    # "Test sign-in" goes through the provider and comes back to the page
    page.get_by_test_id("test-sign-in").click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_placeholder("sub").fill("root-1")
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(f"{live_server.url}/-/staff/identity/")
    expect(page.get_by_role("heading", name="Identity", exact=True)).to_be_visible()
