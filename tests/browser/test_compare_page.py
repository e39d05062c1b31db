"""The compare page with many runs and many metric keys (issue 16): it fits a 1,400 px window,
says how many metric keys it charts of how many and lets the user pick them, shares one
legend that never paginates, and shows single-point metrics as values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from experiments import services
from experiments.models import Run
from tests.browser.conftest import PASSWORD, LogIn, PageEvents

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RUNS = 20
# 26 charted keys (more than the 20 charted at once) and one logged once per run.
KEYS = [f"{group}/{name}" for group in ("train", "val") for name in "abcdefghijklm"]
SHOTS = Path(os.environ.get("ASSAY_SCREENSHOTS_DIR", "/tmp/assay-shots"))


def _runs(user: User) -> list[Run]:
    runs = []
    for index in range(RUNS):
        run = services.run_create(
            user=user,
            project_path=f"{user.username}/wide",
            name=f"sweep-{index:02d}-adamw-lr{0.0001 * (index + 1):.4f}-bs{32 * (1 + index % 4)}",
            config={"lr": 0.0001 * (index + 1), "optimizer": {"name": "adamw" if index % 2 else "sgd"}},
        )
        services.run_log(
            run=run,
            batch_id=None,
            params={"seed": str(index)},
            metric_columns=[
                {"key": key, "steps": list(range(5)), "values": [1 / (s + 1 + index + k) for s in range(5)]}
                for k, key in enumerate(KEYS)
            ]
            + [{"key": "test/accuracy", "steps": [0], "values": [0.9 + index / 1000 + 1 / 3000]}],
        )
        runs.append(run)
    return runs


def test_compare_fits_the_window_with_a_key_picker_and_one_legend(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    # given: 20 runs with 27 metric keys, a 1,400 px window
    ana = User.objects.create_user(username="ana", password=PASSWORD)
    runs = _runs(ana)
    log_in("ana")
    page.set_viewport_size({"width": 1400, "height": 900})

    # when
    page.goto(f"{live_server.url}/ana/wide/compare/?runs={','.join(r.id for r in runs)}")

    # then: no horizontal page overflow (tables scroll inside their own box)
    charts = page.get_by_test_id("compare-chart")
    expect(charts).to_have_count(20)
    expect(charts.first).to_have_attribute("data-rendered", "true")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    # it says how many keys it charts of how many, and why
    expect(page.get_by_test_id("keys-shown")).to_contain_text("Charting 20 of 26 metric keys")
    expect(page.get_by_test_id("keys-shown")).to_contain_text("at most 20 charts")
    # the metric logged once per run is a row of values (4-5 significant digits, full on hover), not a chart
    single = page.get_by_test_id("single-values").locator("tr[data-single-key='test/accuracy'] td")
    expect(single).to_have_count(RUNS)
    expect(single.nth(0)).to_have_text("0.90033")
    expect(single.nth(0)).to_have_attribute("title", repr(0.9 + 1 / 3000))
    expect(page.locator("[data-compare-chart][data-key='test/accuracy']")).to_have_count(0)
    # one legend for all charts, every run in it (no pages), and it hides a run everywhere
    legend = page.get_by_test_id("compare-legend").locator("button")
    expect(legend).to_have_count(RUNS)
    expect(legend.nth(RUNS - 1)).to_contain_text(runs[-1].name)
    legend.nth(0).click()
    expect(legend.nth(0)).to_have_attribute("aria-pressed", "false")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "compare-20-runs.png"), full_page=True)

    # when: choose the val/ keys with the picker
    page.get_by_test_id("key-picker").locator("summary").click()
    page.get_by_test_id("key-search").fill("val/")
    picker = page.locator("[data-key-picker]")
    expect(picker.locator("[data-key-option]:visible")).to_have_count(13)
    picker.get_by_role("button", name="Clear").click()
    picker.get_by_role("button", name="Select shown").click()
    expect(picker.locator("[data-key-count]")).to_contain_text("13 of 26 selected")
    page.get_by_test_id("keys-apply").click()

    # then: those 13 are charted, and the page says they were chosen
    expect(page.get_by_test_id("keys-shown")).to_contain_text("Charting the 13 chosen of 26 metric keys")
    charts = page.get_by_test_id("compare-chart")
    expect(charts).to_have_count(13)
    expect(charts.first).to_have_attribute("data-key", "val/a")
    expect(charts.first).to_have_attribute("data-rendered", "true")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    assert not events.errors, events.errors


def test_each_panel_asks_for_its_series_once_and_the_runs_details_once(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    # given: 20 runs, a window tall enough for every panel
    ana = User.objects.create_user(username="ana", password=PASSWORD)
    runs = _runs(ana)
    log_in("ana")
    page.set_viewport_size({"width": 1400, "height": 4000})
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/api/v1/compare/" in request.url else None)

    # when: every panel in view is drawn, and the grouping choices are there
    page.goto(f"{live_server.url}/ana/wide/compare/?runs={','.join(r.id for r in runs)}")
    charts = page.get_by_test_id("compare-chart")
    expect(charts).to_have_count(20)
    keys = charts.evaluate_all("els => els.map(e => e.dataset.key)")
    in_view = charts.evaluate_all(
        "els => els.filter(e => { const r = e.getBoundingClientRect(); return r.top < innerHeight && r.height > 0; }).length"
    )
    for index in range(in_view):
        expect(charts.nth(index)).to_have_attribute("data-rendered", "true")
    expect(page.locator("#group-by option[value='config:optimizer.name']")).to_have_count(1)

    # then: one request per panel drawn (the preloaded ones reused), each for its series alone,
    # and one for the runs' details; none for a panel twice
    series = [url for url in asked if "only=series" in url]
    details = [url for url in asked if "only=runs" in url]
    assert len(series) == len(set(series)) >= in_view > 3
    assert {url.split("keys=")[1].split("&")[0].replace("%2F", "/") for url in series} <= set(keys)
    assert len(details) == 1
    assert len(asked) == len(series) + len(details)
    assert not events.errors, events.errors
