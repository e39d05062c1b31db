"""The dashboard in a real browser: log in, browse a project, open a run and see its charts;
user-written text stays text; outsiders get 404."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from experiments import services
from experiments.models import Run
from tests.browser.conftest import PASSWORD, LogIn, PageEvents
from tests.browser.demo_data import DIGITS, confusion, demo_project, log_training

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

METRIC_KEYS = ["gpu/util", "lr", "train/loss", "val/accuracy", "val/loss"]
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def _user(username: str) -> User:
    return User.objects.create_user(username=username, password=PASSWORD)


def _csp_violations(events: PageEvents) -> list[str]:
    return [e for e in events.errors if "Content Security Policy" in e]


def test_owner_browses_project_and_sees_run_charts(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    # given
    ana = _user("ana")
    run = demo_project(ana, runs=4)

    # when: log in and walk from the home page to the run
    log_in("ana")
    page.get_by_role("link", name="mnist-cnn").click()

    # then: the runs table lists the project's runs with the chosen columns
    table = page.get_by_test_id("runs-table")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(table.locator("th[data-column='metrics.val/loss']")).to_be_visible()
    expect(table.locator("th[data-column='params.lr']")).to_be_visible()
    expect(table.locator(".status-badge").first).to_have_text("running")

    # when
    table.get_by_role("link", name=run.name).click()

    # then: one drawn line chart per metric key, and both confusion matrices drawn
    expect(page.get_by_test_id("run-name")).to_have_text(run.name)
    charts = page.get_by_test_id("metric-chart")
    expect(charts).to_have_count(len(METRIC_KEYS))
    for index in range(len(METRIC_KEYS)):
        expect(charts.nth(index)).to_have_attribute("data-rendered", "true")
        expect(charts.nth(index).locator("canvas")).to_have_count(1)
    heatmaps = page.get_by_test_id("confusion-matrix")
    expect(heatmaps).to_have_count(2)
    for index in range(2):
        expect(heatmaps.nth(index)).to_have_attribute("data-rendered", "true")
        expect(heatmaps.nth(index).locator("canvas")).to_have_count(1)
    # Hovering a line chart shows a tooltip (DOM built with textContent): the step and every
    # series' value, named by its run (the panel's title names the key).
    charts.nth(2).locator("canvas").hover(position={"x": 150, "y": 100})
    tooltip = page.locator(".chart-tooltip").first
    expect(tooltip).to_contain_text("step")
    expect(tooltip).to_contain_text(run.name)
    expect(page.get_by_test_id("params-table")).to_contain_text("optimizer")
    expect(page.get_by_test_id("summary-table")).to_contain_text("val/accuracy")
    expect(page.get_by_test_id("info-code")).to_contain_text("python train.py --epochs 20")
    assert events.errors == []


def test_nan_values_are_gaps_and_the_chart_still_draws(page: Page, live_server: LiveServer, log_in: LogIn) -> None:
    # given: a run whose train/loss holds NaN and Infinity
    ana = _user("ana")
    run = services.run_create(user=ana, project_path="ana/nan", name="diverged")
    log_training(run, rng=random.Random(1), steps=50, with_nan=True)

    # when
    log_in("ana")
    page.goto(f"{live_server.url}/ana/nan/runs/{run.id}/")

    # then
    chart = page.locator("[data-metric-chart][data-key='train/loss']")
    expect(chart).to_have_attribute("data-rendered", "true")
    expect(chart.locator("[data-chart-note]")).to_contain_text("9 NaN/∞ shown as gaps")


def test_user_written_text_is_shown_as_text(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    # given: every user-written field of a run carries markup
    ana = _user("ana")
    run = services.run_create(
        user=ana,
        project_path="ana/xss",
        experiment=XSS,
        name=XSS,
        notes=f"line one\n{XSS}",
        tags={"note": XSS},
        info={"code": {"branch": XSS, "command": XSS}},
    )
    services.run_log(
        run=run, batch_id=None, params={"model": XSS}, metric_rows=[{"key": "loss", "step": 0, "value": 1.0}]
    )
    services.figure_confusion_matrix_add(run=run, name=XSS, labels=[XSS, "plain"], matrix=[[3, 1], [0, 4]])

    # when: the project page and the run page are shown
    log_in("ana")
    page.goto(f"{live_server.url}/ana/xss/")
    table = page.get_by_test_id("runs-table")

    # then: the markup is visible literally and nothing ran
    expect(table.get_by_role("link", name=XSS)).to_be_visible()
    expect(page.get_by_test_id("experiments")).to_contain_text(XSS)

    # when
    table.get_by_role("link", name=XSS).click()

    # then
    expect(page.get_by_test_id("run-name")).to_have_text(XSS)
    expect(page.get_by_test_id("notes")).to_have_text(f"line one\n{XSS}")
    expect(page.get_by_test_id("tags")).to_contain_text(XSS)
    expect(page.get_by_test_id("params-table")).to_contain_text(XSS)
    expect(page.get_by_test_id("info-code")).to_contain_text(XSS)
    heatmap = page.get_by_test_id("confusion-matrix")
    expect(heatmap).to_have_attribute("data-rendered", "true")
    expect(heatmap).to_contain_text(XSS)  # the caption, as text
    expect(page.locator("img[src='x']")).to_have_count(0)
    # Hovering a cell whose label is markup builds the tooltip with textContent.
    heatmap.locator("canvas").hover(position={"x": 80, "y": 80})
    page.wait_for_timeout(300)
    expect(page.locator("img[src='x']")).to_have_count(0)
    assert events.dialogs == []
    assert _csp_violations(events) == []


def test_outsider_gets_404_for_another_users_project_and_run(
    page: Page, live_server: LiveServer, log_in: LogIn
) -> None:
    # given
    ana = _user("ana")
    _user("eve")
    run = services.run_create(user=ana, project_path="ana/secret", name="hidden-run")

    # when
    log_in("eve")
    project_response = page.goto(f"{live_server.url}/ana/secret/")
    run_response = page.goto(f"{live_server.url}/ana/secret/runs/{run.id}/")
    missing_response = page.goto(f"{live_server.url}/ana/no-such-project/")

    # then: invisible looks exactly like missing
    assert project_response is not None
    assert project_response.status == 404
    assert run_response is not None
    assert run_response.status == 404
    assert missing_response is not None
    assert missing_response.status == 404
    expect(page.locator("body")).not_to_contain_text("hidden-run")


def test_runs_table_sorts_by_header_and_pages(page: Page, live_server: LiveServer, log_in: LogIn) -> None:
    # given: 55 runs, more than one page
    ana = _user("ana")
    for index in range(55):
        run = services.run_create(user=ana, project_path="ana/many", name=f"run-{index:02d}")
        services.run_log(run=run, batch_id=None, metric_rows=[{"key": "acc", "step": 0, "value": index / 100}])

    # when
    log_in("ana")
    page.goto(f"{live_server.url}/ana/many/")

    # then: 50 on the first page
    table = page.get_by_test_id("runs-table")
    expect(table.locator("tbody tr")).to_have_count(50)
    expect(page.get_by_test_id("runs-count")).to_contain_text("1–50 of 55")

    # when: sort by the acc metric, twice (ascending, then descending)
    table.locator("th[data-column='metrics.acc'] a").click()
    expect(table.locator("th[data-column='metrics.acc']")).to_have_attribute("aria-sort", "ascending")
    expect(table.locator("tbody tr").first.get_by_role("link")).to_have_text("run-00")
    table.locator("th[data-column='metrics.acc'] a").click()

    # then
    expect(table.locator("th[data-column='metrics.acc']")).to_have_attribute("aria-sort", "descending")
    expect(table.locator("tbody tr").first.get_by_role("link")).to_have_text("run-54")

    # when: next page keeps the sort
    page.get_by_role("link", name="Next").click()

    # then
    expect(table.locator("tbody tr")).to_have_count(5)
    expect(table.locator("tbody tr").last.get_by_role("link")).to_have_text("run-00")


def test_empty_home_tells_how_to_log_a_run_and_logout_works(page: Page, live_server: LiveServer, log_in: LogIn) -> None:
    # given
    _user("newbie")

    # when
    log_in("newbie")

    # then
    empty = page.get_by_test_id("empty-home")
    expect(empty).to_contain_text('assay.init(project="newbie/quickstart")')
    expect(empty).to_contain_text("Authorization: Bearer <token>")
    expect(empty).to_contain_text("assay login")  # issue 16, bug 15: not manage.py on the server
    expect(empty.get_by_test_id("tokens-link")).to_have_attribute("href", "/settings/tokens/")

    # when: theme toggle, then sign out from the user menu
    before = page.locator("html").get_attribute("data-bs-theme")
    page.locator("#theme-toggle").click()
    assert page.locator("html").get_attribute("data-bs-theme") != before
    page.reload()
    assert page.locator("html").get_attribute("data-bs-theme") != before
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()

    # then
    page.wait_for_url(f"{live_server.url}/login/")
    page.goto(f"{live_server.url}/")
    assert page.url.startswith(f"{live_server.url}/login/")


@pytest.mark.skipif(not os.environ.get("ASSAY_SCREENSHOTS"), reason="set ASSAY_SCREENSHOTS=1 to refresh docs/*.png")
def test_docs_screenshots(page: Page, live_server: LiveServer, log_in: LogIn) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    ana = _user("ana")
    run = demo_project(ana, runs=24)
    services.figure_confusion_matrix_add(
        run=run, name="val/confusion@5", labels=DIGITS, matrix=confusion(random.Random(3), DIGITS, 0.81), step=5
    )
    # a final test accuracy, logged once per run: shown as a value, not a chart (issue 16, bug 7)
    for index, each in enumerate(Run.objects.filter(project__name="mnist-cnn").order_by("start_time")):
        services.run_log(
            run=each, batch_id=None, metric_rows=[{"key": "test/accuracy", "step": 200, "value": 0.9 + index / 317}]
        )
    log_in("ana")
    page.set_viewport_size({"width": 1680, "height": 1300})
    page.goto(f"{live_server.url}/ana/mnist-cnn/")
    # live_server speaks WSGI (no /ws/): its "Reconnecting…" badge is the test server's, not the page's
    page.evaluate("document.querySelector('[data-testid=live-status]')?.remove()")
    # The window, not the full page: the charts below it are drawn only as they scroll into view.
    page.wait_for_selector("[data-rendered='true']", timeout=15_000)
    page.screenshot(path=str(docs / "screenshot-project.png"))
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/ana/mnist-cnn/runs/{run.id}/")
    for element in page.locator("[data-metric-chart], [data-heatmap]").all():
        element.scroll_into_view_if_needed()
        expect(element).to_have_attribute("data-rendered", "true")
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    page.evaluate("document.querySelector('[data-testid=live-status]')?.remove()")
    page.screenshot(path=str(docs / "screenshot-run.png"), full_page=True)
    # the compare page with 20 runs in a 1,400 px window (issue 16): it fits, one legend
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/ana/mnist-cnn/compare/?filter=metrics.val/accuracy+>+0")
    for element in page.locator("[data-compare-chart], [data-parallel], [data-heatmap]").all():
        element.scroll_into_view_if_needed()
        expect(element).to_have_attribute("data-rendered", "true")
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    page.screenshot(path=str(docs / "screenshot-compare.png"), full_page=True)
