"""The project page's "Has this been tried?" and the runs table grouped by configuration, in a
real browser (issue 22)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.services import team_create, team_member_add
from experiments import services
from tests.browser.conftest import LogIn, PageEvents
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/assay-shots")  # for looking at; docs/ only with ASSAY_SCREENSHOTS=1
DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_a_pasted_yaml_config_finds_the_runs_that_had_it(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    # given three runs of one configuration and one of another, by two people
    olga = UserFactory.create(username="olga")
    ana = UserFactory.create(username="ana")
    team = team_create(name="acme", owner=olga)
    team_member_add(team=team, user=ana)
    for index, (user, lr) in enumerate([(ana, 0.01), (olga, 0.01), (ana, 0.01), (olga, 0.1)]):
        run = services.run_create(
            user=user,
            project_path="acme/churn",
            name=f"sweep-{index}",
            config={"lr": lr, "optimizer": {"name": "adam"}, "epochs": 10, "seed": index},
        )
        services.run_log(
            run=run,
            batch_id=None,
            metric_rows=[{"key": "val/acc", "step": 0, "value": 0.8 + index / 100, "timestamp": 1764150000000}],
        )
    log_in("olga")
    page.goto(f"{live_server.url}/acme/churn/")

    # when olga pastes a YAML config into the box
    page.get_by_test_id("project-tried-link").click()
    page.get_by_test_id("tried-config").fill("lr: 1e-2\nepochs: 10\noptimizer:\n  name: adam\nseed: 99\n")
    page.get_by_test_id("tried-submit").click()

    # then it says three runs had it, with links
    expect(page.get_by_test_id("tried-yes")).to_contain_text("3 runs of this project had this configuration")
    expect(page.get_by_test_id("tried-identical").get_by_role("link")).to_have_count(3)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "tried-box.png"), full_page=True)
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-tried-box.png"), full_page=True)

    # and the runs table groups the duplicates
    page.goto(f"{live_server.url}/acme/churn/?columns=metrics.val/acc")
    page.get_by_test_id("group-by").select_option("attributes.fingerprint")
    groups = page.get_by_test_id("groups-table")
    expect(groups.locator("tbody tr")).to_have_count(2)
    expect(groups.locator("tbody tr").first).to_contain_text("epochs=10, lr=0.01, optimizer.name=adam")
    expect(groups.locator("tbody tr").first.locator("td").nth(1)).to_have_text("3")
    page.screenshot(path=str(SHOTS / "group-same-config.png"), full_page=True)
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-group-same-config.png"), full_page=True)
    assert events.errors == []
