"""Issue 16's page details in a real browser: separators that belong to facts only (bug 4), a
versions table that shows every column (bug 5)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import Project, ProjectRole, User
from accounts.services import team_create
from experiments.models import MetricSummary, Run
from registry import services as registry_services
from registry.models import ModelRepository
from reviews import services as review_services
from tests.browser.conftest import LogIn, PageEvents
from tests.browser.test_registry_pages import _run
from tests.factories import ProjectFactory, ProjectGrantFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/assay-shots")  # for looking at; docs/ only with ASSAY_SCREENSHOTS=1
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _before(locator: Locator) -> str:
    """What CSS puts before the element (``none`` when nothing)."""
    return str(locator.evaluate("el => getComputedStyle(el, '::before').content"))


@pytest.fixture
def demo(db: None) -> tuple[Project, ModelRepository, Run]:
    owner = UserFactory.create(username="olga")
    team = team_create(name="acme", owner=owner)
    project = ProjectFactory.create(team=team, name="fraud", created_by=owner)
    ProjectGrantFactory.create(project=project, user=UserFactory.create(username="ana"), role=ProjectRole.MAINTAINER)
    model = registry_services.model_create(user=owner, project=project, name="fraud-detector")
    run = _run(project, owner, seed="1", acc=0.91, content=b"v1", packages={"numpy": "1.26.4"})
    # many metrics: the versions table must still show its last column without scrolling
    for i in range(12):
        value = 0.123456789 * (i + 1)
        MetricSummary.objects.create(
            run=run, key=f"val/metric_{i:02d}", last=value, min=value, max=value, last_step=1, last_timestamp=0, count=1
        )
    registry_services.version_register(user=owner, repository=model, run=run, artifact="model.pkl")
    return project, model, run


def test_pills_and_buttons_carry_no_separator_dot(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents, demo: tuple[Project, ModelRepository, Run]
) -> None:
    project, model, run = demo
    olga = User.objects.get(username="olga")
    rr, _ = review_services.review_request_open(
        user=olga,
        project=project,
        model=model.name,
        version="v1",
        alias="production",
        title="Ship v1",
        reviewers=["ana"],
    )
    log_in("olga")

    page.goto(f"{live_server}/acme/fraud/runs/{run.id}/")
    button = page.get_by_test_id("register-model")
    expect(button).to_be_visible()
    assert _before(button) == "none"
    assert _before(page.get_by_test_id("run-meta").locator("> span").nth(1)) == '"·"'  # facts keep theirs

    page.goto(f"{live_server}/acme/fraud/reviews/{rr.number}/")
    pill = page.locator(".meta-line .tag-chip", has_text="reviewer")
    expect(pill).to_contain_text("ana")
    assert _before(pill) == "none"
    assert events.errors == []


def test_the_versions_table_shows_its_created_column(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents, demo: tuple[Project, ModelRepository, Run]
) -> None:
    _, _, run = demo
    log_in("olga")
    page.set_viewport_size({"width": 1280, "height": 900})  # a laptop's window
    page.goto(f"{live_server}/acme/fraud/models/fraud-detector/")
    table = page.get_by_test_id("versions-table")
    created = table.locator("tbody tr td").last
    expect(created.locator("time")).to_be_visible()
    wrap = table.locator("xpath=..")
    # nothing hidden to the right: the table fits its box, and the Created cell is not cut
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    assert created.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    cell_box, wrap_box = created.bounding_box(), wrap.bounding_box()
    assert cell_box is not None
    assert wrap_box is not None
    assert cell_box["x"] + cell_box["width"] <= wrap_box["x"] + wrap_box["width"] + 1
    # the Run column links to the run; the alias history's Review column is checked in tests/registry
    expect(page.get_by_test_id("version-run").get_by_role("link")).to_have_attribute(
        "href", f"/acme/fraud/runs/{run.id}/"
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "model-versions.png"), full_page=True)
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-model.png"), full_page=True)
    assert events.errors == []


def test_404_and_403_pages_are_the_sites_pages(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents, demo: tuple[Project, ModelRepository, Run]
) -> None:
    log_in("ana")  # a maintainer: she may not read the project's audit log
    SHOTS.mkdir(parents=True, exist_ok=True)

    response = page.goto(f"{live_server}/acme/no-such-project/")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_test_id("error-title")).to_have_text("Page not found")
    expect(page.get_by_test_id("user-menu")).to_be_visible()  # the navigation is there
    page.screenshot(path=str(SHOTS / "error-404.png"), full_page=True)
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-404.png"))

    response = page.goto(f"{live_server}/acme/fraud/audit/")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_test_id("error-title")).to_have_text("You may not do this")
    page.get_by_role("link", name="Your projects").click()
    expect(page.get_by_role("link", name="fraud").first).to_be_visible()
    page.go_back()
    page.screenshot(path=str(SHOTS / "error-403.png"), full_page=True)
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-403.png"))
    assert [e for e in events.errors if "404" not in e and "403" not in e] == []


def test_the_changes_tab_of_a_first_candidate_lists_its_contents(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents, demo: tuple[Project, ModelRepository, Run]
) -> None:
    project, model, _ = demo
    olga = User.objects.get(username="olga")
    rr, _ = review_services.review_request_open(
        user=olga, project=project, model=model.name, version="v1", alias="production", title="First to production"
    )
    log_in("ana")
    page.goto(f"{live_server}/acme/fraud/reviews/{rr.number}/?tab=changes")
    expect(page.get_by_test_id("changes-all-new")).to_be_visible()
    table = page.get_by_test_id("diff-table")
    for kind in ("param", "metric", "file", "code", "environment", "package", "dataset"):
        expect(table.locator(f"tr[data-kind='{kind}']").first).to_be_visible()
    page.screenshot(path=str(SHOTS / "review-changes-new.png"), full_page=True)
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-review-changes.png"), full_page=True)
    assert events.errors == []


def test_the_run_page_explains_an_artifact_waiting_for_sync(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents, demo: tuple[Project, ModelRepository, Run]
) -> None:
    from artifacts.models import Artifact, Blob
    from experiments import services as experiment_services

    project, _, run = demo
    blob = Blob.objects.create(project=project, sha256="b" * 64, size=2048)
    Artifact.objects.create(project=project, run=run, blob=blob, path="model.joblib", sha256="b" * 64, size=2048)
    experiment_services.run_update(
        run=run,
        status="finished",
        info={
            "uploads": {
                "pending": ["model.joblib"],
                "reason": "upload failed after 3 attempts: the object store could not be reached "
                "(http://127.0.0.1:8000): [Errno 111] Connection refused",
                "spool": "/home/olga/.assay/spool/" + run.id,
                "host": "gpu-box-1",
            }
        },
    )
    log_in("olga")
    page.goto(f"{live_server}/acme/fraud/runs/{run.id}/")
    notice = page.get_by_test_id("uploads-pending")
    expect(notice).to_contain_text("1 artifact file not uploaded yet")
    expect(notice).to_contain_text("assay sync")
    expect(page.locator("tr[data-path='model.joblib'] .artifact-status")).to_have_text("waiting for assay sync")
    notice.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "run-uploads-pending.png"), full_page=True)
    assert events.errors == []
