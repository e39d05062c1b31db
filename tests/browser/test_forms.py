"""Issue 16, bug 14, in a real browser: the token page shows each scope's whole explanation
(a select used to clip it), and the new review request form follows the chosen model: its
versions, and a suggested title until the user writes their own."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from registry import services as registry_services
from registry.models import ModelVersion
from tests.browser.conftest import PASSWORD, LogIn, PageEvents
from tests.registry.conftest import MakeArtifact, MakeRun, make_artifact, make_run, model  # noqa: F401
from tests.reviews.conftest import register, v1, v2  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_token_page_shows_each_scopes_whole_explanation(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    User.objects.create_user(username="ana", password=PASSWORD, email="ana@example.com")
    log_in("ana")
    page.set_viewport_size({"width": 1024, "height": 800})  # a laptop's width, where the select clipped
    page.goto(f"{live_server}/settings/tokens/")
    for scope, words in (("write", "everything else you may do"), ("read", "only read")):
        label = page.get_by_test_id(f"scope-{scope}")
        expect(label).to_be_visible()
        expect(label).to_contain_text(words)
        clipped = label.evaluate(
            "e => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > innerWidth"
        )
        assert not clipped, f"the {scope} scope's text is clipped"
    page.get_by_label("read — only read", exact=False).check()
    page.get_by_label("Name").fill("notebook")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_test_id("tokens-table")).to_contain_text("read")
    assert not events.errors


def test_the_new_request_form_follows_the_chosen_model(
    page: Page,
    live_server: LiveServer,
    log_in: LogIn,
    events: PageEvents,
    owner: User,
    v2: ModelVersion,  # noqa: F811
    make_run: MakeRun,  # noqa: F811
    make_artifact: MakeArtifact,  # noqa: F811
) -> None:
    other = registry_services.model_create(user=owner, project=v2.repository.project, name="churn")
    run = make_run(metrics={"auc": 0.8})
    make_artifact(run, content=b"churn-weights", status="ready")
    registry_services.version_register(user=owner, repository=other, run=run, artifact="model.pkl")
    log_in("owner")
    page.goto(f"{live_server}/acme/proj/reviews/new/")
    title, version = page.get_by_label("Title"), page.get_by_label("Candidate version")
    expect(title).to_have_value("Move production to v1 of churn")  # models by name: churn first
    page.get_by_label("Model").select_option("fraud")
    expect(version).to_have_value("v2")  # the newest version production does not hold
    expect(title).to_have_value("Move production to v2 of fraud")
    page.get_by_label("Into alias").fill("staging")
    expect(title).to_have_value("Move staging to v2 of fraud")
    title.fill("Ship the recall fix")
    version.select_option("v1")
    expect(title).to_have_value("Ship the recall fix")  # the user's own title stays
    page.get_by_label("Into alias").fill("production")
    version.select_option("v2")
    page.get_by_role("button", name="Open review request").click()
    expect(page.get_by_test_id("request-title")).to_contain_text("Ship the recall fix")
    expect(page.get_by_test_id("candidate")).to_have_text("v2")
    assert not events.errors
