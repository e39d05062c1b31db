"""Issue #8's "done when", in a real browser with two users: the author opens a review
request and mentions the reviewer; the reviewer finds the notification, comments on a
metric line and requests changes; the author registers a new version and pushes it, which
dismisses the old review's standing and re-runs the checks; the reviewer approves; the
author cannot approve their own request; a maintainer merges and production points to the
new version."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import Project, ProjectRole, User
from accounts.services import team_create
from config.celery import app as celery_app
from registry import services as registry_services
from registry.models import Alias, ModelRepository
from tests.browser.conftest import LogIn, PageEvents
from tests.browser.test_registry_pages import _run
from tests.factories import ProjectFactory, ProjectGrantFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("ASSAY_SCREENSHOTS", "/tmp/assay-shots"))


@pytest.fixture
def eager_checks() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def review_demo(db: None) -> tuple[Project, ModelRepository]:
    owner = UserFactory.create(username="olga")
    team = team_create(name="acme", owner=owner)
    project = ProjectFactory.create(team=team, name="fraud", created_by=owner)
    for name in ("ben", "ana"):  # ben authors, ana reviews: both maintainers
        ProjectGrantFactory.create(project=project, user=UserFactory.create(username=name), role=ProjectRole.MAINTAINER)
    model = registry_services.model_create(user=owner, project=project, name="fraud-detector")
    first = _run(project, owner, seed="1", acc=0.91, content=b"v1", packages={"numpy": "1.26.4"})
    second = _run(project, owner, seed="2", acc=0.89, content=b"v2", packages={"numpy": "2.0.0"})
    v1 = registry_services.version_register(user=owner, repository=model, run=first, artifact="model.pkl")
    registry_services.alias_move(
        alias="production",
        version=v1,
        user=owner,
        merge=registry_services.ReviewMerge(review_request_id="seed", number=0, alias="production", version_id=v1.id),
    )
    registry_services.version_register(user=owner, repository=model, run=second, artifact="model.pkl")
    return project, model


def _log_out(page: Page) -> None:
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()


def test_two_users_take_a_model_to_production_through_a_review(
    page: Page,
    live_server: LiveServer,
    log_in: LogIn,
    events: PageEvents,
    eager_checks: None,
    review_demo: tuple[Project, ModelRepository],
) -> None:
    project, model = review_demo
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = f"{live_server}/acme/fraud/reviews"

    # the author opens a request from the version page and mentions the reviewer (with completion)
    log_in("ben")
    page.goto(f"{live_server}/acme/fraud/models/fraud-detector/v2/")
    page.get_by_role("link", name="Open review request").click()
    expect(page.get_by_label("Candidate version")).to_have_value("v2")
    expect(page.get_by_label("Into alias")).to_have_value("production")
    expect(page.get_by_label("Model")).to_have_value("fraud-detector")
    page.get_by_label("Title").fill("Ship the v2 fraud detector")
    description = page.get_by_label("Description (markdown; @mention people and teams)")
    description.fill("Retrained on October data. ")
    description.press_sequentially("@an")
    page.get_by_test_id("mention-option").filter(has_text="@ana").click()
    expect(description).to_have_value("Retrained on October data. @ana ")
    description.press_sequentially("please review.")
    page.get_by_role("button", name="Open review request").click()
    expect(page.get_by_test_id("request-title")).to_contain_text("Ship the v2 fraud detector")
    expect(page.get_by_test_id("description")).to_contain_text("@ana please review.")
    # R1: the author sees no Approve button
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "review-opened.png"), full_page=True)
    _log_out(page)

    # the reviewer finds the notification
    log_in("ana")
    expect(page.get_by_test_id("unread-count")).to_contain_text("1")
    page.get_by_test_id("nav-notifications").click()
    page.screenshot(path=str(SHOTS / "notifications.png"), full_page=True)
    page.get_by_test_id("notification").filter(has_text="mentioned you").get_by_role("link").click()
    expect(page.get_by_test_id("request-title")).to_contain_text("#1")

    # ... comments on the metric line and requests changes
    page.get_by_test_id("tab-changes").click()
    row = page.locator('[data-testid="diff-row"][data-kind="metric"][data-key="acc"]')
    expect(row).to_contain_text("0.89")
    row.get_by_test_id("comment-line").click()
    row.get_by_label("Comment on metric acc").fill("acc dropped from 0.91 to 0.89: why?")
    row.get_by_role("button", name="Add comment").click()
    expect(page.get_by_test_id("thread")).to_contain_text("acc dropped from 0.91 to 0.89")
    expect(page.get_by_test_id("thread")).to_contain_text("metric acc")
    page.screenshot(path=str(SHOTS / "review-changes-tab.png"), full_page=True)
    page.get_by_test_id("tab-conversation").click()
    page.get_by_label("Leave a comment or review (markdown; @mentions notify)").fill("Please retrain with the fix.")
    page.get_by_role("button", name="Request changes").click()
    expect(page.get_by_test_id("status")).to_contain_text("changes requested")
    _log_out(page)

    # the author registers a new version and pushes it: the old review is outdated, checks re-run
    ben = User.objects.get(username="ben")
    third = _run(project, ben, seed="3", acc=0.93, content=b"v3", packages={"numpy": "2.0.0"})
    registry_services.version_register(user=ben, repository=model, run=third, artifact="model.pkl")
    log_in("ben")
    page.goto(f"{base}/1/")
    page.get_by_label("New candidate").select_option("3")
    page.get_by_role("button", name="Push candidate").click()
    expect(page.get_by_test_id("candidate")).to_have_text("v3")
    expect(page.get_by_test_id("timeline")).to_contain_text("pushed v3 (was v2)")
    expect(
        page.get_by_test_id("review").filter(has_text="requested changes").get_by_test_id("outdated")
    ).to_be_visible()
    page.get_by_test_id("tab-checks").click()
    expect(page.locator('[data-testid="check-row"][data-name="artifact-integrity"]')).to_have_attribute(
        "data-status", "passed"
    )
    page.screenshot(path=str(SHOTS / "review-checks.png"), full_page=True)
    # the author still cannot approve, nor merge while changes are requested
    page.get_by_test_id("tab-conversation").click()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_test_id("merge")).to_have_count(0)
    _log_out(page)

    # the reviewer approves the new candidate and, as a maintainer, merges
    log_in("ana")
    page.goto(f"{base}/1/")
    page.get_by_label("Leave a comment or review (markdown; @mentions notify)").fill("Thanks, looks good now.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_test_id("status")).to_contain_text("approved")
    page.screenshot(path=str(SHOTS / "review-approved.png"), full_page=True)
    page.get_by_test_id("merge").click()
    expect(page.get_by_test_id("status")).to_contain_text("merged")
    expect(page.get_by_test_id("merge-box")).to_contain_text("production → v3")
    page.screenshot(path=str(SHOTS / "review-merged.png"), full_page=True)

    assert Alias.objects.get(repository=model, name="production").version.number == 3
    page.goto(f"{base}/?tab=closed")
    expect(page.get_by_test_id("review-row")).to_have_count(1)
    page.screenshot(path=str(SHOTS / "review-list.png"), full_page=True)
    # The live-updates socket (issue 9) has no endpoint on live_server's WSGI server.
    assert [e for e in events.errors if "/ws/" not in e] == []
