"""Project settings → Alerts in a real browser: an admin opens Alerts from the project page,
a malformed condition comes back naming the field with the form kept, a threshold rule is
added; a run then crosses it and the alert shows on the page and in the notification
centre. With ASSAY_SCREENSHOTS set, the page is saved to docs/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from accounts.services import team_create
from config.celery import app as celery_app
from experiments import services as experiment_services
from tests.browser.conftest import PASSWORD, LogIn, PageEvents
from tests.factories import ProjectFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def test_an_admin_adds_a_threshold_rule_and_sees_it_fire(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents, eager_tasks: None
) -> None:
    ana = User.objects.create_user(username="ana", password=PASSWORD, email="ana@example.com")
    ProjectFactory.create(team=team_create(name="ana-team", owner=ana), name="fraud", created_by=ana)
    log_in("ana")
    page.goto(f"{live_server.url}/ana-team/fraud/")
    page.get_by_test_id("project-alerts-link").click()
    expect(page.get_by_test_id("no-alerts")).to_be_visible()

    # a malformed condition is refused, naming the field, the form kept
    page.get_by_label("Condition").fill("val/loss => 2")
    page.get_by_label("Name", exact=True).fill("loss diverged")
    page.get_by_test_id("alert-create").click()
    expect(page.locator(".alert").first).to_contain_text("Alert rule not created")
    expect(page.locator(".alert").first).to_contain_text("condition")
    expect(page.get_by_label("Condition")).to_have_class("form-control mono is-invalid")
    expect(page.get_by_label("Name", exact=True)).to_have_value("loss diverged")

    page.get_by_label("Condition").fill("val/loss > 2")
    page.get_by_test_id("alert-create").click()
    expect(page.get_by_test_id("alert-row")).to_contain_text("val/loss > 2")
    expect(page.get_by_test_id("nothing-fired")).to_be_visible()

    # a run crosses the threshold (the log path, in this process; the firing runs eagerly)
    run = experiment_services.run_create(user=ana, project_path="ana-team/fraud", name="brisk-river")
    rows = [{"key": "val/loss", "step": s, "value": v} for s, v in enumerate([1.2, 1.9, 2.7, 3.1])]
    experiment_services.run_log(run=run, batch_id=None, metric_rows=rows)
    page.reload()
    expect(page.get_by_test_id("fired-row")).to_have_count(1)
    expect(page.get_by_test_id("fired-row")).to_contain_text("run brisk-river logged val/loss = 2.7 at step 2")
    shots = os.environ.get("ASSAY_SCREENSHOTS")
    target = Path(__file__).resolve().parents[2] / "docs" if shots else Path("/tmp/assay-shots")
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / "screenshot-alerts.png"), full_page=True)

    # the notification centre has it, linking the run
    page.goto(f"{live_server.url}/notifications/")
    notification = page.get_by_test_id("notification")
    expect(notification).to_have_count(1)
    expect(notification).to_have_attribute("data-kind", "metric_alert")
    notification.get_by_role("link").click()
    expect(page).to_have_url(f"{live_server.url}/ana-team/fraud/runs/{run.id}/")
    # the refused form's answer (400) is the only console message
    assert [e for e in events.errors if "status of 400" not in e] == []
