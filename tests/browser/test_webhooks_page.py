"""Project settings → Webhooks in a real browser: an admin adds a webhook from the project
page, sends a test event to a real receiver and sees the delivery and its attempt; a bad URL
comes back naming the field. With ASSAY_SCREENSHOTS set, the page is saved to docs/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from accounts.services import team_create
from config.celery import app as celery_app
from tests.automations.receiver import receiver
from tests.browser.conftest import PASSWORD, LogIn, PageEvents
from tests.factories import ProjectFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def test_an_admin_adds_a_webhook_and_sends_a_test_event(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents, settings: Any, eager_tasks: None
) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]
    ana = User.objects.create_user(username="ana", password=PASSWORD, email="ana@example.com")
    ProjectFactory.create(team=team_create(name="ana-team", owner=ana), name="fraud", created_by=ana)
    log_in("ana")
    with receiver() as rx:
        page.goto(f"{live_server.url}/ana-team/fraud/")
        page.get_by_test_id("project-webhooks-link").click()
        expect(page.get_by_test_id("no-webhooks")).to_be_visible()

        # a metadata address is refused, naming the field, the form kept
        page.get_by_label("Payload URL").fill("http://169.254.169.254/latest/meta-data/")
        page.get_by_label("Name").fill("deploy-bot")
        page.get_by_test_id("webhook-create").click()
        expect(page.locator(".alert")).to_contain_text("Webhook not created")
        expect(page.get_by_label("Payload URL")).to_have_class("form-control mono is-invalid")
        expect(page.get_by_label("Name")).to_have_value("deploy-bot")

        page.get_by_label("Payload URL").fill(rx.url)
        page.get_by_label("Format").select_option("slack")
        page.get_by_label("review_request.merged").check()
        page.get_by_test_id("webhook-create").click()
        expect(page.get_by_role("heading", name="Webhook deploy-bot")).to_be_visible()
        expect(page.locator(".alert").first).to_contain_text("shown this once")

        page.get_by_test_id("webhook-send-test").click()
        expect(page.get_by_test_id("delivery-state")).to_have_text("delivered")
        expect(page.get_by_test_id("attempt")).to_contain_text("HTTP 200")
        assert len(rx.requests) == 1
        assert rx.requests[0].headers["x-assay-event"] == "webhook.test"

        page.get_by_test_id("redeliver").click()
        expect(page.get_by_test_id("delivery-row")).to_have_count(2)
        assert len(rx.requests) == 2
    # the refused form's answer (400) is the only console message
    assert [e for e in events.errors if "status of 400" not in e] == []
    shots = os.environ.get("ASSAY_SCREENSHOTS")
    target = Path(__file__).resolve().parents[2] / "docs" if shots else Path("/tmp/assay-shots")
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / "screenshot-webhooks.png"), full_page=True)
