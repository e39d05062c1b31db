"""The registry's pages in a real browser: diff two versions, see the lineage graph, register
a version from the run page, and have a protected alias refused by the page's form."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import Project, User
from accounts.services import team_create
from artifacts.models import Artifact, Blob
from experiments.models import MetricSummary, Param, Run
from registry import services
from tests.browser.conftest import LogIn, PageEvents
from tests.factories import ExperimentFactory, ProjectFactory, RunFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("ASSAY_SCREENSHOTS", "/tmp/assay-shots"))


def _run(project: Project, owner: User, *, seed: str, acc: float, content: bytes, packages: dict[str, str]) -> Run:
    run = RunFactory.create(
        project=project,
        experiment=project.experiments.first() or ExperimentFactory.create(project=project),
        author=owner,
        name=f"train-seed-{seed}",
        config={"epochs": 3, "optimizer": {"lr": 0.01}},
        info={
            "code": {
                "command": ["python", "train.py"],
                "git": {"commit": "a" * 40, "remote": "https://example.com/r.git"},
            },
            "environment": {"python": "3.11.9", "os": "Linux", "packages": packages},
            "datasets": {"train": {"uri": "s3://data/train.csv", "digest": "sha256:" + "1" * 64, "rows": 1000}},
        },
    )
    Param.objects.create(run=run, key="seed", value=seed)
    MetricSummary.objects.create(run=run, key="acc", last=acc, min=acc, max=acc, last_step=1, last_timestamp=0, count=1)
    sha = hashlib.sha256(content).hexdigest()
    blob = Blob.objects.create(project=project, sha256=sha, size=len(content), status=Blob.Status.VERIFIED)
    Artifact.objects.create(
        project=project, run=run, blob=blob, path="model.pkl", sha256=sha, size=len(content), status="ready"
    )
    return run


@pytest.fixture
def registry_demo(db: None) -> tuple[User, Project, Run]:
    owner = UserFactory.create(username="ana")
    team = team_create(name="acme", owner=owner)
    project = ProjectFactory.create(team=team, name="fraud", created_by=owner)
    model = services.model_create(
        user=owner, project=project, name="fraud-detector", description="**Card fraud** scorer."
    )
    first = _run(project, owner, seed="1", acc=0.91, content=b"v1", packages={"numpy": "1.26.4", "torch": "2.1.0"})
    second = _run(project, owner, seed="2", acc=0.94, content=b"v2", packages={"numpy": "2.0.0", "torch": "2.1.0"})
    services.version_register(user=owner, repository=model, run=first, artifact="model.pkl", aliases=["staging"])
    services.version_register(user=owner, repository=model, run=second, artifact="model.pkl", parents=["v1"])
    third = _run(project, owner, seed="3", acc=0.95, content=b"v3", packages={})
    return owner, project, third


def test_diffing_two_versions_in_the_dashboard(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents, registry_demo: tuple[User, Project, Run]
) -> None:
    log_in("ana")

    page.goto(f"{live_server}/acme/fraud/models/fraud-detector/")
    expect(page.get_by_test_id("versions-table").get_by_test_id("version-row")).to_have_count(2)
    expect(page.get_by_test_id("aliases")).to_contain_text("staging")
    expect(page.get_by_test_id("aliases")).to_contain_text("production")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "model.png"), full_page=True)

    page.get_by_role("link", name="v2", exact=True).first.click()
    expect(page.get_by_test_id("version-title")).to_have_text("fraud-detector v2")
    expect(page.get_by_test_id("lineage")).to_have_attribute("data-rendered", "true")
    diff = page.get_by_test_id("diff-table")
    expect(diff).to_contain_text("param seed")
    expect(diff).to_contain_text("metric acc")
    expect(diff).to_contain_text("package numpy")
    expect(diff).to_contain_text("upgraded")
    expect(diff).to_contain_text("binary")
    page.screenshot(path=str(SHOTS / "version.png"), full_page=True)

    # compare v1 with v2 through the form
    page.goto(f"{live_server}/acme/fraud/models/fraud-detector/v1/")
    page.get_by_label("Compare with").select_option("v2")
    page.get_by_role("button", name="Diff").click()
    expect(page.get_by_test_id("diff-table")).to_contain_text("downgraded")
    assert events.errors == []


def test_the_page_refuses_a_direct_move_of_a_protected_alias(
    page: Page, live_server: LiveServer, log_in: LogIn, registry_demo: tuple[User, Project, Run]
) -> None:
    log_in("ana")
    page.goto(f"{live_server}/acme/fraud/models/fraud-detector/")

    form = page.get_by_test_id("alias-form")
    form.get_by_label("Alias").fill("production")
    form.get_by_label("Version").select_option("2")
    form.get_by_role("button", name="Move alias").click()

    expect(page.get_by_role("status").first).to_contain_text("protected")
    expect(page.get_by_test_id("alias-history")).not_to_contain_text("production")

    form = page.get_by_test_id("alias-form")
    form.get_by_label("Alias").fill("staging")
    form.get_by_label("Version").select_option("2")
    form.get_by_label("Why").fill("better acc")
    form.get_by_role("button", name="Move alias").click()
    expect(page.get_by_test_id("alias-history")).to_contain_text("better acc")


def test_registering_a_version_from_the_run_page(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents, registry_demo: tuple[User, Project, Run]
) -> None:
    _, _, run = registry_demo
    log_in("ana")
    page.goto(f"{live_server}/acme/fraud/runs/{run.id}/")

    page.get_by_test_id("register-model").click()
    page.get_by_label("Model name").fill("fraud-detector")
    page.get_by_label("Aliases (comma-separated, optional)").fill("champion")
    page.get_by_role("button", name="Register").click()

    expect(page.get_by_test_id("version-title")).to_have_text("fraud-detector v3")
    page.screenshot(path=str(SHOTS / "registered.png"), full_page=True)
    assert events.errors == []


def test_editing_a_versions_description_and_finding_the_model_in_the_global_search(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents, registry_demo: tuple[User, Project, Run]
) -> None:
    log_in("ana")
    page.goto(f"{live_server}/acme/fraud/models/fraud-detector/v2/")
    content_hash = page.locator(".meta-line .mono").first.inner_text()

    page.get_by_test_id("edit-metadata").click()
    page.get_by_label("Description (markdown)").fill("Retrained on **November** data.\n\n<img src=x onerror=alert(1)>")
    page.get_by_label("Tags, one key=value a line").fill("stage=shadow-eval")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "version-edit.png"), full_page=True)
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_test_id("version-title")).to_have_text("fraud-detector v2")
    expect(page.locator(".markdown strong")).to_have_text("November")
    expect(page.locator(".markdown img")).to_have_count(0)  # sanitised
    expect(page.locator(".meta-line")).to_contain_text("shadow-eval")
    assert page.locator(".meta-line .mono").first.inner_text() == content_hash
    page.screenshot(path=str(SHOTS / "version-edited.png"), full_page=True)

    page.goto(f"{live_server}/-/search/?q=shadow")
    results = page.get_by_test_id("search-results")
    expect(results).to_contain_text("fraud-detector")
    results.get_by_role("link", name="fraud-detector").click()
    expect(page.get_by_test_id("model-name")).to_have_text("fraud-detector")
    page.goto(f"{live_server}/-/search/?q=fraud")
    page.screenshot(path=str(SHOTS / "search-models.png"), full_page=True)
    assert events.errors == []
