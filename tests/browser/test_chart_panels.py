"""Chart panels (issue 20): sections by key prefix (system/ last and closed), a search box over
keys, smoothing/log/x axis/zoom/full screen on every chart, one legend shared by the panels,
and the compare page with 100 runs (grouping, colours, parallel coordinates, scatter).

The drawn series are read from ECharts itself (window.assayEcharts.getInstanceByDom)."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from experiments import services
from experiments.models import Run
from tests.browser.conftest import PASSWORD, LogIn, PageEvents

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs"
SHOTS = Path(os.environ.get("ASSAY_SCREENSHOTS_DIR", "/tmp/assay-shots"))
RUN_KEYS = ["lr", "train/loss", "train/acc", "val/loss", "val/acc", "system/gpu", "system/memory"]
STEPS = 3000  # more than the run page's 1,000 points per chart: downsampled, with a band


def _shot(page: Page, name: str) -> None:
    """Screenshots for looking at; into docs/ only with ASSAY_SCREENSHOTS=1."""
    folder = DOCS if os.environ.get("ASSAY_SCREENSHOTS") else SHOTS
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)


def _option(chart: Locator) -> dict[str, Any]:
    """The option ECharts draws for the panel (series data and axes), as JSON."""
    option: dict[str, Any] = chart.locator("[data-chart-canvas]").evaluate(
        """canvas => {
            const option = window.assayEcharts.getInstanceByDom(canvas).getOption();
            return {
              series: option.series.map(s => ({id: s.id, data: s.data, color: s.lineStyle && s.lineStyle.color,
                                               opacity: s.lineStyle && s.lineStyle.opacity})),
              xAxis: option.xAxis.map(a => ({type: a.type, min: a.min, max: a.max})),
              yAxis: option.yAxis.map(a => ({type: a.type})),
            };
        }"""
    )
    return option


def zig(values: list[float]) -> float:
    """The largest jump between successive points (of the curve's middle part)."""
    return max(abs(a - b) for a, b in itertools.pairwise(values[200:400]))


def _series(option: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [s for s in option["series"] if s["id"].startswith(prefix)]


def _run(user: User) -> Run:
    run = services.run_create(user=user, project_path=f"{user.username}/panels", name="resnet-long")
    steps = list(range(STEPS))
    columns = []
    for index, key in enumerate(RUN_KEYS):
        # noisy decaying curves (a zigzag of ±0.05 on top): smoothing visibly changes them
        values = [math.exp(-s / 800) + 0.1 * index + (0.05 if s % 2 else -0.05) + 0.2 for s in steps]
        columns.append({"key": key, "steps": steps, "values": values})
    services.run_log(run=run, batch_id=None, metric_columns=columns)
    return run


def test_run_page_sections_search_and_chart_controls(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    # given: a run with 7 keys in 3 prefixes and none
    ana = User.objects.create_user(username="ana", password=PASSWORD)
    run = _run(ana)
    log_in("ana")

    # when
    page.goto(f"{live_server.url}/ana/panels/runs/{run.id}/")

    # then: sections by prefix, keys without a prefix first, system/ last and closed
    sections = page.locator("details.chart-section")
    expect(sections).to_have_count(4)
    assert [s.get_attribute("data-section") for s in sections.all()] == ["", "train", "val", "system"]
    assert [s.evaluate("d => d.open") for s in sections.all()] == [True, True, True, False]
    gpu = page.locator("[data-metric-chart][data-key='system/gpu']")
    expect(gpu).not_to_be_visible()
    loss = page.locator("[data-metric-chart][data-key='train/loss']")
    expect(loss).to_have_attribute("data-rendered", "true")
    expect(page.get_by_test_id("panel-count")).to_contain_text("7 charts in 4 sections")
    # a section collapses by its title (a <summary>: keyboard too) and opens again
    train = page.locator("details.chart-section[data-section='train'] > summary")
    expect(train).to_contain_text("train/")
    expect(train).to_contain_text("(2)")
    train.click()
    expect(loss).not_to_be_visible()
    train.focus()
    page.keyboard.press("Enter")
    expect(loss).to_be_visible()
    # system/ opens on demand, and its charts are drawn only then (lazily)
    assert gpu.get_attribute("data-rendered") is None
    page.locator("details.chart-section[data-section='system'] > summary").click()
    gpu.scroll_into_view_if_needed()
    expect(gpu).to_have_attribute("data-rendered", "true")
    page.locator("details.chart-section[data-section='system'] > summary").click()

    # when: the search box filters panels by key (a regular expression)
    search = page.get_by_test_id("chart-search")
    search.fill("loss$")
    # then
    expect(page.locator("[data-metric-chart]:visible")).to_have_count(2)
    expect(page.locator("[data-search-count]")).to_have_text("2 of 7 panels match")
    expect(page.locator("details.chart-section[data-section='system']")).to_be_hidden()
    search.fill("^(system|lr)$|gpu")  # system/ opens while it holds a match
    expect(page.locator("[data-metric-chart]:visible")).to_have_count(2)
    expect(gpu).to_be_visible()
    search.fill("val/(")  # not a regular expression: plain text
    expect(page.locator("[data-search-count]")).to_have_text("0 of 7 panels match")
    search.fill("")
    expect(page.locator("[data-metric-chart]:visible")).to_have_count(5)  # system/ closed again
    expect(page.locator("[data-search-count]")).to_have_text("")

    # then: downsampled (3,000 points > 1,000): the raw line and a min/max band behind it
    option = _option(loss)
    main = _series(option, "main:")
    assert len(main) == 1
    assert 900 <= len(main[0]["data"]) <= 1000
    assert len(_series(option, "band-lo:")) == 1
    assert len(_series(option, "band-hi:")) == 1
    raw_values = [p[1] for p in main[0]["data"]]

    # when: smoothing (EMA)
    page.locator("#smoothing").fill("0.9")
    # then: the raw curve stays, faint, behind the smoothed one
    expect(page.locator("[data-smoothing-value]")).to_have_text("0.90")
    option = _option(loss)
    raw = _series(option, "raw:")
    smooth = _series(option, "main:")
    assert len(raw) == 1
    assert len(smooth) == 1
    assert raw[0]["opacity"] < 0.5
    assert [p[1] for p in raw[0]["data"]] == raw_values
    smooth_values = [p[1] for p in smooth[0]["data"]]
    assert smooth_values != raw_values
    # the zigzag is damped: successive smoothed points differ far less than raw ones
    assert zig(smooth_values) < zig(raw_values) / 3
    # a running average smooths differently
    page.locator("#smoothing-kind").select_option("avg")
    expect(page.locator("[data-smoothing-value]")).to_have_text("90 pts")
    average_values = [p[1] for p in _series(_option(loss), "main:")[0]["data"]]
    assert average_values != smooth_values
    assert zig(average_values) < zig(raw_values) / 3

    # when: log scale
    page.get_by_label("Log scale").check()
    # then
    assert _option(loss)["yAxis"][0]["type"] == "log"
    page.get_by_label("Log scale").uncheck()
    assert _option(loss)["yAxis"][0]["type"] == "value"

    # when: drag across the middle of the plot
    box = loss.locator("[data-chart-canvas]").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.4, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
    page.mouse.up()
    # then: the x axis covers about the dragged part; fewer points are drawn
    expect(loss).to_have_attribute("data-zoomed", "true")
    option = _option(loss)
    low, high = option["xAxis"][0]["min"], option["xAxis"][0]["max"]
    assert 0 < low < high < STEPS - 1
    assert high - low < STEPS * 0.4
    zoomed = _series(option, "raw:")[0]["data"]
    assert len(zoomed) < len(raw[0]["data"]) / 2
    assert all(low - 40 <= p[0] <= high + 40 for p in zoomed)
    # other panels keep their range
    assert _option(page.locator("[data-metric-chart][data-key='val/loss']"))["xAxis"][0]["min"] == "dataMin"
    # "Reset zoom" brings the whole range back
    loss.get_by_role("button", name="Reset zoom").click()
    expect(loss).to_have_attribute("data-zoomed", "false")
    assert _option(loss)["xAxis"][0]["min"] == "dataMin"
    # the keyboard zooms too: focus the plot, + zooms in, 0 resets
    loss.locator("[data-chart-canvas]").focus()
    page.keyboard.press("+")
    expect(loss).to_have_attribute("data-zoomed", "true")
    page.keyboard.press("0")
    expect(loss).to_have_attribute("data-zoomed", "false")

    # when: x axis by relative time
    page.locator("#x-axis").select_option("relative")
    option = _option(loss)
    assert option["xAxis"][0]["type"] == "value"
    assert _series(option, "raw:")[0]["data"][0][0] == 0  # seconds since the first point
    page.locator("#x-axis").select_option("time")
    assert _option(loss)["xAxis"][0]["type"] == "time"
    page.locator("#x-axis").select_option("step")

    # when: full screen
    loss.get_by_role("button", name="Full screen").click()
    expect(loss).to_have_class("card chart-card h-100 mb-0 is-fullscreen")
    canvas_height = loss.locator("[data-chart-canvas]").bounding_box()["height"]  # type: ignore[index]
    assert canvas_height > 600
    _shot(page, "screenshot-run-fullscreen.png")
    page.keyboard.press("Escape")
    expect(loss).not_to_have_class("card chart-card h-100 mb-0 is-fullscreen")

    # when: the shared legend hides the run's series in every panel
    legend = page.get_by_test_id("chart-legend").get_by_role("button")
    expect(legend).to_have_count(1)
    expect(legend).to_have_text("resnet-long")
    legend.click()
    expect(legend).to_have_attribute("aria-pressed", "false")
    for key in ("train/loss", "val/acc", "lr"):
        assert _series(_option(page.locator(f"[data-metric-chart][data-key='{key}']")), "main:") == []
    legend.click()

    # then: the settings are remembered (localStorage) across a reload
    page.reload()
    expect(page.locator("#smoothing-kind")).to_have_value("avg")
    expect(page.locator("#smoothing")).to_have_value("0.9")
    expect(loss).to_have_attribute("data-rendered", "true")
    assert len(_series(_option(loss), "raw:")) == 1
    page.locator("#smoothing-kind").select_option("ema")
    page.locator("#smoothing").fill("0.6")
    page.evaluate("window.scrollTo(0, 0)")
    _shot(page, "screenshot-run-panels.png")
    # and in dark mode
    page.evaluate("localStorage.setItem('assay-theme', 'dark')")
    page.reload()
    expect(loss).to_have_attribute("data-rendered", "true")
    page.wait_for_timeout(200)
    _shot(page, "screenshot-run-panels-dark.png")
    assert events.errors == []


COMPARE_RUNS = 100
COMPARE_KEYS = ["train/loss", "val/loss", "val/acc"]


def _sweep(user: User) -> list[Run]:
    runs = []
    for index in range(COMPARE_RUNS):
        optimizer = ("adam", "sgd", "lion", "adamw")[index % 4]
        run = services.run_create(
            user=user,
            project_path=f"{user.username}/sweep",
            name=f"sweep-{index:03d}-{optimizer}",
            config={"optimizer": optimizer, "lr": 0.0001 * (index + 1)},
        )
        steps = list(range(0, 400, 10))
        services.run_log(
            run=run,
            batch_id=None,
            metric_columns=[
                {"key": key, "steps": steps, "values": [1 / (1 + s / 50) + index / 500 + k / 10 for s in steps]}
                for k, key in enumerate(COMPARE_KEYS)
            ],
        )
        runs.append(run)
    return runs


def test_compare_100_runs_fits_groups_and_shares_one_legend(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    # given: 100 runs of four optimizers, a 1,400 px window
    ana = User.objects.create_user(username="ana", password=PASSWORD)
    runs = _sweep(ana)
    log_in("ana")
    page.set_viewport_size({"width": 1400, "height": 900})

    # when
    page.goto(f"{live_server.url}/ana/sweep/compare/?runs={','.join(r.id for r in runs)}")

    # then: every run is compared, every panel drawn, no horizontal overflow
    expect(page.get_by_test_id("compare-runs").locator("li")).to_have_count(COMPARE_RUNS)
    charts = page.get_by_test_id("compare-chart")
    expect(charts).to_have_count(len(COMPARE_KEYS))
    for index in range(len(COMPARE_KEYS)):
        charts.nth(index).scroll_into_view_if_needed()
        expect(charts.nth(index)).to_have_attribute("data-rendered", "true")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    # one line per run, each run's colour distinct and the same in every panel
    first = _series(_option(charts.nth(0)), "main:")
    assert len(first) == COMPARE_RUNS
    colours = {s["id"]: s["color"] for s in first}
    assert len(set(colours.values())) == COMPARE_RUNS
    for index in range(1, len(COMPARE_KEYS)):
        assert {s["id"]: s["color"] for s in _series(_option(charts.nth(index)), "main:")} == colours
    # the legend names all 100 runs (no pages)
    legend = page.get_by_test_id("compare-legend").get_by_role("button")
    expect(legend).to_have_count(COMPARE_RUNS)
    page.evaluate("window.scrollTo(0, 0)")
    _shot(page, "screenshot-compare-100.png")

    # when: hovering a legend entry highlights that run in every panel (the others fade)
    legend.nth(3).hover()
    for index in range(len(COMPARE_KEYS)):
        by_id = {s["id"]: s["opacity"] for s in _series(_option(charts.nth(index)), "main:")}
        assert by_id[f"main:{runs[3].id}"] == 1
        assert by_id[f"main:{runs[4].id}"] < 0.5
    page.mouse.move(0, 0)
    # when: a click hides the run in every panel
    legend.nth(0).click()
    expect(legend.nth(0)).to_have_attribute("aria-pressed", "false")
    for index in range(len(COMPARE_KEYS)):
        ids = {s["id"] for s in _series(_option(charts.nth(index)), "main:")}
        assert f"main:{runs[0].id}" not in ids
        assert len(ids) == COMPARE_RUNS - 1

    # when: group the runs by their optimizer
    page.get_by_test_id("group-by").select_option("config:optimizer")
    # then: one mean line per group with a min–max band; the legend lists the groups
    expect(legend).to_have_count(4)
    expect(legend.nth(0)).to_contain_text("optimizer = adam (25 runs)")
    option = _option(charts.nth(0))
    assert len(_series(option, "main:")) == 4
    assert len(_series(option, "band-hi:")) == 4
    band = _series(option, "band-hi:")[0]["data"]  # [max - min, x] (stacked on the lower edge)
    assert all(p[0] is None or p[0] >= 0 for p in band)
    assert max(p[0] for p in band if p[0] is not None) > 0.1  # the group's runs spread (index/500)
    page.evaluate("window.scrollTo(0, 0)")
    _shot(page, "screenshot-compare-grouped.png")
    legend.nth(1).click()
    assert len(_series(_option(charts.nth(1)), "main:")) == 3

    # then: parallel coordinates and the scatter of any two columns are drawn
    scatter = page.get_by_test_id("scatter")
    scatter.scroll_into_view_if_needed()
    expect(scatter).to_have_attribute("data-rendered", "true")
    expect(page.get_by_test_id("parallel-coordinates")).to_have_attribute("data-rendered", "true")
    scatter.locator("#scatter-x").select_option(label="config lr")
    scatter.locator("#scatter-y").select_option(label="val/loss (last)")
    points = scatter.locator("[data-chart-canvas]").evaluate(
        "c => window.assayEcharts.getInstanceByDom(c).getOption().series[0].data.map(d => d.value)"
    )
    assert len(points) == COMPARE_RUNS
    assert sorted(points)[0][0] == pytest.approx(0.0001)
    page.get_by_test_id("group-by").select_option("")
    expect(legend).to_have_count(COMPARE_RUNS)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    assert events.errors == []


def test_project_page_charts_overlay_the_listed_runs_in_sections(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    # given: three runs logging train/, val/ and system/ keys
    ana = User.objects.create_user(username="ana", password=PASSWORD)
    runs = []
    for index in range(3):
        run = services.run_create(user=ana, project_path="ana/proj", name=f"trial-{index}")
        steps = list(range(50))
        services.run_log(
            run=run,
            batch_id=None,
            metric_columns=[
                {"key": key, "steps": steps, "values": [1 / (1 + s) + index / 10 for s in steps]}
                for key in ("train/loss", "val/loss", "system/cpu")
            ],
        )
        runs.append(run)
    log_in("ana")

    # when
    page.goto(f"{live_server.url}/ana/proj/")

    # then: one panel per key in sections (system/ last and closed), every listed run overlaid
    charts = page.get_by_test_id("project-charts")
    expect(charts.locator("details.chart-section")).to_have_count(3)
    sections = charts.locator("details.chart-section").all()
    assert [s.get_attribute("data-section") for s in sections] == ["train", "val", "system"]
    assert sections[2].evaluate("d => d.open") is False
    loss = charts.locator("figure[data-key='train/loss']")
    expect(loss).to_have_attribute("data-rendered", "true")
    assert {s["id"] for s in _series(_option(loss), "main:")} == {f"main:{r.id}" for r in runs}
    expect(charts.get_by_test_id("chart-legend").get_by_role("button")).to_have_count(3)
    expect(page.get_by_test_id("project-charts-note")).to_contain_text("3 metric keys, 3 runs of this page overlaid")
    # the legend hides a run in every panel of the page
    charts.get_by_test_id("chart-legend").get_by_role("button").first.click()
    val = charts.locator("figure[data-key='val/loss']")
    expect(val).to_have_attribute("data-rendered", "true")
    for figure in (loss, val):
        ids = {s["id"] for s in _series(_option(figure), "main:")}
        assert len(ids) == 2
    charts.scroll_into_view_if_needed()
    _shot(page, "screenshot-project-charts.png")
    assert events.errors == []
