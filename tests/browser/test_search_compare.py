"""The issue's "done when" path in a real browser: type a filter with OR and parentheses,
sort by accuracy, group by optimizer, save the view, select three runs and compare them."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from experiments import services
from experiments.models import SavedView
from tests.browser.conftest import PASSWORD, LogIn, PageEvents

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPEC = [
    ("adam", 0.91),
    ("sgd", 0.85),
    ("rmsprop", 0.97),
    ("adam", 0.72),
    ("sgd", 0.88),
    ("adam", 0.83),
    ("adagrad", 0.95),
]


def _sweep(user: User) -> None:
    for index, (optimizer, acc) in enumerate(SPEC):
        run = services.run_create(user=user, project_path=f"{user.username}/sweep", name=f"run-{index}-{optimizer}")
        services.run_log(
            run=run,
            batch_id=None,
            params={"optimizer": optimizer, "lr": str(0.001 * (index + 1))},
            metric_rows=[
                {
                    "key": "acc",
                    "step": s,
                    "value": round(acc * (1 - 0.5 ** (s + 1)), 4),
                    "timestamp": 1764150000000 + s * 1000,
                }
                for s in range(20)
            ]
            + [
                {"key": "loss", "step": s, "value": 1.5 - acc + 1 / (s + 1), "timestamp": 1764150000000 + s * 1000}
                for s in range(20)
            ],
        )
        services.figure_confusion_matrix_add(run=run, name="val", labels=["cat", "dog"], matrix=[[5, index], [1, 7]])


def test_filter_sort_group_save_and_compare(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # given
    ana = User.objects.create_user(username="ana", password=PASSWORD)
    _sweep(ana)
    shots = tmp_path_factory.mktemp("shots")
    log_in("ana")
    page.goto(f"{live_server}/ana/sweep/")

    # when: type the filter, using the key completion for the first field
    bar = page.get_by_test_id("filter-input")
    bar.click()
    bar.type("metrics.ac")
    suggestion = page.get_by_role("option", name="metrics.acc")
    expect(suggestion).to_be_visible()
    bar.press("ArrowDown")
    bar.press("Enter")
    expect(bar).to_have_value("metrics.acc ")
    bar.type("> 0.8 and (params.optimizer = 'adam' or params.optimizer = 'sgd')")
    page.get_by_test_id("filter-apply").click()

    # then: only adam/sgd runs above 0.8
    table = page.get_by_test_id("runs-table")
    expect(table.locator("tbody tr")).to_have_count(4)

    # when: sort by accuracy (descending: click the header twice)
    table.locator("th[data-column='metrics.acc'] a").click()
    page.get_by_test_id("runs-table").locator("th[data-column='metrics.acc'] a").click()
    table = page.get_by_test_id("runs-table")
    expect(table.locator("th[data-column='metrics.acc']")).to_have_attribute("aria-sort", "descending")
    expect(table.locator("tbody tr").first).to_contain_text("run-0-adam")
    expect(page.get_by_test_id("filter-input")).to_have_value(
        "metrics.acc > 0.8 and (params.optimizer = 'adam' or params.optimizer = 'sgd')"
    )

    # when: group by optimizer
    page.get_by_test_id("group-by").select_option("params.optimizer")
    groups = page.get_by_test_id("groups-table")
    expect(groups).to_be_visible()
    expect(groups.locator("tbody tr")).to_have_count(2)
    expect(groups.locator("tr[data-group='adam'] td").nth(1)).to_have_text("2")
    expect(groups.locator("tr[data-group='sgd'] td").nth(1)).to_have_text("2")
    page.screenshot(path=str(shots / "project-grouped.png"), full_page=True)

    # when: save the view
    page.get_by_test_id("views-menu").click()
    page.get_by_test_id("view-name").fill("good adam+sgd")
    page.get_by_test_id("save-view").click()

    # then: it is saved with the filter, sort and grouping, and listed
    expect(page.get_by_text("Saved the view")).to_be_visible()
    view = SavedView.objects.get()
    assert "group_by=params.optimizer" in view.query
    assert "sort=-metrics.acc" in view.query
    page.get_by_test_id("views-menu").click()
    expect(page.get_by_test_id("saved-views")).to_contain_text("good adam+sgd")
    page.keyboard.press("Escape")

    # when: select three runs and compare
    rows = page.get_by_test_id("runs-table").locator("tbody tr")
    for index in range(3):
        rows.nth(index).locator("[data-compare-checkbox]").check()
    compare = page.get_by_test_id("compare-selected")
    expect(compare).to_have_text("Compare 3 runs")
    compare.click()

    # then: the compare page overlays the metrics, shows the differing params, the best
    # values, the parallel coordinates and the confusion matrices side by side
    expect(page.get_by_role("heading", name="Compare 3 runs")).to_be_visible()
    charts = page.get_by_test_id("compare-chart")
    expect(charts).to_have_count(2)
    for index in range(2):
        expect(charts.nth(index)).to_have_attribute("data-rendered", "true")
    expect(page.get_by_test_id("parallel-coordinates")).to_have_attribute("data-rendered", "true")
    expect(page.get_by_test_id("params-diff")).to_contain_text("optimizer")
    expect(page.get_by_test_id("metrics-compare").locator("[data-best='true']")).to_have_count(2)
    expect(page.locator("[data-heatmap][data-rendered='true']")).to_have_count(3)

    # when: the chart controls change
    page.get_by_label("Log scale").check()
    page.get_by_label("X axis").select_option("relative")
    page.locator("#smoothing").fill("0.6")
    expect(page.locator("[data-smoothing-value]")).to_have_text("0.60")
    page.screenshot(path=str(shots / "compare.png"), full_page=True)
    print(f"screenshots in {shots}")
    assert not events.errors, events.errors
