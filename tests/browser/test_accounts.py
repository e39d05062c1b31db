"""Accounts in a real browser: sign-up, invitations, roles taking effect, API tokens, and the
"done when" path: an administrator, from the dashboard alone, creates a team, invites two
people, gives one maintainer and the other viewer on a project, and each sees exactly
what the role allows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import Membership, ProjectRole, User
from tests.browser.conftest import PASSWORD, LogIn, PageEvents
from tests.factories import ProjectFactory, RunFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"accounts-{name}.png"), full_page=True)


@pytest.fixture
def second_page(browser: Browser) -> Iterator[Page]:
    """Another person's browser (its own cookies)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _sign_up_through(page: Page, live_server: LiveServer, link: str, username: str) -> None:
    page.goto(link)
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    page.get_by_role("button", name="Accept and join").click()


def test_open_sign_up(page: Page, live_server: LiveServer, settings: Any, events: PageEvents) -> None:
    settings.ASSAY_SIGNUP = "open"

    page.goto(f"{live_server}/login/")
    page.get_by_role("link", name="Create one").click()
    page.get_by_label("Username").fill("newbie")
    page.get_by_label("Email").fill("newbie@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)
    shot(page, "signup")
    page.get_by_role("button", name="Sign Up").click()

    expect(page.get_by_test_id("user-menu")).to_have_text("newbie")
    assert User.objects.filter(username="newbie").exists()
    assert not events.errors


def test_token_creation_shows_the_token_once_and_it_works(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    User.objects.create_user(username="ana", password=PASSWORD, email="ana@example.com")
    log_in("ana")

    page.get_by_test_id("user-menu").click()
    page.get_by_role(
        "link", name="API tokens", exact=True
    ).click()  # the menu item (the home page links "API tokens page" too)
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("read — only read", exact=False).check()
    page.get_by_role("button", name="Create token").click()

    raw = page.get_by_test_id("new-token-value").inner_text()
    shot(page, "tokens")
    assert raw.startswith("asy_")
    me = httpx.get(f"{live_server}/api/v1/me/", headers={"Authorization": f"Bearer {raw}"})
    assert me.json()["username"] == "ana"
    # read scope: no writes
    assert (
        httpx.post(
            f"{live_server}/api/v1/teams/", json={"name": "x"}, headers={"Authorization": f"Bearer {raw}"}
        ).status_code
        == 403
    )
    # shown once: a reload does not show it again; the list shows its prefix
    page.goto(f"{live_server}/settings/tokens/")
    expect(page.get_by_test_id("new-token-value")).to_have_count(0)
    expect(page.get_by_test_id("tokens-table")).to_contain_text(raw[:12])
    page.get_by_role("button", name="Revoke laptop").click()
    expect(page.get_by_test_id("tokens-table")).to_contain_text("revoked")
    assert httpx.get(f"{live_server}/api/v1/me/", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert not events.errors


def test_done_when_an_admin_sets_up_a_team_and_each_person_sees_what_the_role_allows(
    page: Page,
    second_page: Page,
    browser: Browser,
    live_server: LiveServer,
    log_in: LogIn,
    events: PageEvents,
    settings: Any,
) -> None:
    settings.PUBLIC_URL = str(live_server)  # the links in invitations
    # given: a site administrator and a project of theirs with a run; invite-only sign-up
    admin = User.objects.create_user(username="root", password=PASSWORD, email="root@example.com", is_staff=True)
    project = ProjectFactory.create(team=admin.personal_team, name="forecast", created_by=admin)
    RunFactory.create(project=project, author=admin, name="baseline")
    log_in("root")

    # when: the administrator creates a team from the dashboard
    page.get_by_test_id("user-menu").click()
    page.get_by_role("link", name="Teams").click()
    page.get_by_label("Name (URL)").fill("vision")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("heading", name="vision")).to_be_visible()

    # and invites two people by e-mail, each getting a link
    links = []
    for email in ("mia@example.com", "vic@example.com"):
        page.get_by_label("Username or e-mail").fill(email)
        page.get_by_role("button", name="Invite").click()
        links.append(page.get_by_test_id("invitation-url").inner_text())
    shot(page, "team")

    # and each signs up through their link and joins
    _sign_up_through(second_page, live_server, links[0], "mia")
    expect(second_page.get_by_role("heading", name="vision")).to_be_visible()
    vic_context = browser.new_context()
    vic_page = vic_context.new_page()
    _sign_up_through(vic_page, live_server, links[1], "vic")
    assert set(Membership.objects.filter(team__name="vision").values_list("user__username", "role")) == {
        ("root", "owner"),
        ("mia", "member"),
        ("vic", "member"),
    }

    # and gives mia maintainer and vic viewer on root/forecast
    page.goto(f"{live_server}/root/forecast/")
    page.get_by_test_id("project-access-link").click()
    for name, role in (("mia", "maintainer"), ("vic", "viewer")):
        page.get_by_label("Username or team").fill(name)
        page.get_by_label("Role", exact=True).select_option(role)
        page.get_by_role("button", name="Grant").click()
    expect(page.get_by_test_id("grants-table")).to_contain_text("mia")
    shot(page, "access")

    # then: both see the project and its run, neither may manage its access
    for person in (second_page, vic_page):
        person.goto(f"{live_server}/")
        person.get_by_role("link", name="forecast").click()
        expect(person.get_by_role("link", name="baseline")).to_be_visible()
        person.get_by_test_id("project-access-link").click()
        expect(person.get_by_test_id("grants-table")).to_be_visible()
        expect(person.get_by_role("button", name="Grant")).to_have_count(0)
        expect(person.get_by_role("link", name="Audit log")).to_have_count(0)
        refused = person.goto(f"{live_server}/root/forecast/audit/")
        assert refused is not None
        assert refused.status == 403
    from accounts import access

    assert access.role_on(User.objects.get(username="mia"), project) == ProjectRole.MAINTAINER
    assert access.role_on(User.objects.get(username="vic"), project) == ProjectRole.VIEWER

    # when: the administrator makes vic admin of the project, the change takes effect at once
    page.get_by_label("Role of user vic").select_option("admin")
    page.locator("tr[data-grant='user:vic']").get_by_role("button", name="Change").click()
    vic_page.goto(f"{live_server}/root/forecast/access/")
    expect(vic_page.get_by_role("button", name="Grant")).to_be_visible()
    expect(vic_page.get_by_role("link", name="Audit log")).to_be_visible()
    shot(vic_page, "access-as-new-admin")

    # and the audit log tells the story
    page.goto(f"{live_server}/-/staff/audit/?action=grant")
    expect(page.get_by_test_id("audit-table")).to_contain_text("grant.change")
    shot(page, "audit")
    vic_context.close()
    assert not events.errors
