"""The run page's "same configuration as run X (ana, 3 days ago)" in a real browser (issue 22)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.services import team_create, team_member_add
from experiments import services
from tests.browser.conftest import LogIn, PageEvents
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/assay-shots")  # for looking at; docs/ only with ASSAY_SCREENSHOTS=1
DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_run_page_links_the_earlier_run_with_the_same_configuration(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    # given ana's run three days ago and olga's run of the same configuration today
    olga = UserFactory.create(username="olga")
    ana = UserFactory.create(username="ana")
    team = team_create(name="acme", owner=olga)
    team_member_add(team=team, user=ana)
    config = {"lr": 0.01, "optimizer": {"name": "adam"}, "epochs": 10, "seed": 1}
    earlier = services.run_create(
        user=ana,
        project_path="acme/churn",
        name="ana-baseline",
        config=config,
        start_time=timezone.now() - timedelta(days=3),
    )
    again = services.run_create(
        user=olga, project_path="acme/churn", name="olga-retry", config={**config, "lr": "1e-2", "seed": 7}
    )
    # when olga opens her run
    log_in("olga")
    page.goto(f"{live_server.url}/acme/churn/runs/{again.id}/")
    # then it names ana's run, and the link leads there
    same = page.get_by_test_id("same-config")
    expect(same).to_contain_text("Same configuration as run ana-baseline (ana, 3 days ago)")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "run-same-config.png"))
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-run-same-config.png"))
    same.get_by_role("link", name="ana-baseline").click()
    page.wait_for_url(f"{live_server.url}/acme/churn/runs/{earlier.id}/")
    expect(page.get_by_test_id("same-config")).to_contain_text("olga-retry (olga,")
    assert events.errors == []
