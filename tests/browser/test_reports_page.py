"""Reports in a real browser (issue 22): a writer types a report with a live chart block,
previews it, saves it and sees the chart drawn; a newly logged point shows on reload; a
freeze keeps the chart as it was."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from experiments import services
from tests.browser.conftest import PASSWORD, LogIn, PageEvents

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/assay-shots")  # for looking at; docs/ only with ASSAY_SCREENSHOTS=1
DOCS = Path(__file__).resolve().parents[2] / "docs"

BODY = """## Learning-rate sweep

The two higher learning rates converge faster; @ana please check the 0.1 run.

```assay-chart metrics=val/loss,train/loss query="params.lr > 0.001" title="Loss of the lr sweep"
```

```assay-runs query="params.lr > 0.001" columns=name,params.lr,metrics.val/loss order="metrics.val/loss ASC"
```
"""


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / f"screenshot-{name}"), full_page=True)


def _points(page: Page, metric: str) -> list[int]:
    lines = page.locator(f'[data-testid="report-chart"][data-metric="{metric}"] polyline')
    # SVG points are "x y x y …": two numbers a point
    return [len((lines.nth(i).get_attribute("points") or "").split()) // 2 for i in range(lines.count())]


def test_a_report_with_a_live_chart_is_written_drawn_updated_and_frozen(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    # given: three runs of an lr sweep in olga/sweep (ana may see it)
    olga = User.objects.create_user(username="olga", password=PASSWORD)
    User.objects.create_user(username="ana", password=PASSWORD)
    runs = []
    for index, lr in enumerate((0.001, 0.01, 0.1)):
        run = services.run_create(user=olga, project_path="olga/sweep", name=f"lr-{lr}", config={"lr": lr})
        services.run_log(
            run=run,
            batch_id=None,
            params={"lr": str(lr)},
            metric_columns=[
                {"key": "val/loss", "steps": list(range(20)), "values": [1 / (s + 2 + index * 3) for s in range(20)]},
                {
                    "key": "train/loss",
                    "steps": list(range(20)),
                    "values": [0.8 / (s + 2 + index * 4) for s in range(20)],
                },
            ],
        )
        runs.append(run)
    log_in("olga")

    # when: she writes the report in the editor and previews it
    page.goto(f"{live_server.url}/olga/sweep/reports/")
    page.get_by_test_id("report-new").click()
    page.get_by_label("Title").fill("What the lr sweep says")
    page.get_by_label("Text (markdown with live blocks)").fill(BODY)
    page.get_by_test_id("report-preview-button").click()
    expect(page.get_by_test_id("report-preview").locator("svg polyline").first).to_be_visible()
    _shot(page, "report-editor.png")
    page.get_by_test_id("report-save").click()

    # then: the report page draws the chart of the two matching runs, and the table
    page.wait_for_url(re.compile(r".*/olga/sweep/reports/1/$"))
    chart = page.get_by_test_id("report-chart").first
    expect(chart).to_be_visible()
    box = chart.locator("svg").bounding_box()
    assert box is not None
    assert box["width"] > 300
    assert box["height"] > 150
    assert _points(page, "val/loss") == [20, 20]
    expect(page.locator(".report-legend")).to_contain_text("lr-0.1")
    expect(page.locator(".report-legend")).not_to_contain_text("lr-0.001")
    expect(page.locator(".report-table tbody tr").first).to_contain_text("lr-0.1")
    _shot(page, "report-live.png")

    # when: a run logs a new point, the page shows it on the next load
    services.run_log(run=runs[2], batch_id=None, metric_columns=[{"key": "val/loss", "steps": [20], "values": [0.01]}])
    page.reload()
    assert sorted(_points(page, "val/loss")) == [20, 21]

    # when: she freezes it and another point arrives, the chart stays as frozen
    page.get_by_test_id("report-freeze").click()
    expect(page.get_by_test_id("report-frozen")).to_be_visible()
    services.run_log(run=runs[2], batch_id=None, metric_columns=[{"key": "val/loss", "steps": [21], "values": [0.005]}])
    page.reload()
    assert sorted(_points(page, "val/loss")) == [20, 21]
    expect(page.locator('[data-testid="report-block"][data-state="frozen"]').first).to_be_visible()
    _shot(page, "report-frozen.png")

    # and the history lists the two revisions, the diff view shows a frozen one has the same text
    page.get_by_test_id("report-history").click()
    expect(page.get_by_test_id("report-revision-row")).to_have_count(2)
    assert events.errors == []
    assert events.dialogs == []
