"""The runs table and the run page in a real browser (issue 20): columns chosen (by keyboard)
persist after a reload, a pinned run stays on top, the column search finds a key among
thousands, a failed run's error is at the top; light and dark screenshots into docs/ when
ASSAY_SCREENSHOTS=1."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from assay.run import error_info
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from experiments import services
from experiments.models import ProjectKey
from tests.browser.conftest import PASSWORD, LogIn, PageEvents
from tests.browser.demo_data import demo_project, log_training

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs"


def shot(page: Page, name: str) -> None:
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / f"screenshot-{name}.png"), full_page=False)


def _user(username: str) -> User:
    return User.objects.create_user(username=username, password=PASSWORD)


def test_columns_chosen_by_keyboard_persist_after_a_reload(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    # given
    ana = _user("ana")
    demo_project(ana, runs=6)
    log_in("ana")
    page.goto(f"{live_server.url}/ana/mnist-cnn/")
    table = page.get_by_test_id("runs-table")
    expect(table.locator("th[data-column='metrics.val/loss']")).to_be_visible()

    # when: only the keyboard — focus "Columns", open it, untick val/loss, pin lr, apply
    page.get_by_role("button", name="Columns").focus()
    page.keyboard.press("Enter")
    form = page.get_by_test_id("columns-form")
    expect(form).to_be_visible()
    shown = form.get_by_test_id("shown-columns")
    shown.get_by_label("metrics.val/loss", exact=True).focus()
    page.keyboard.press("Space")
    shown.get_by_label("Pin params.lr to the left").focus()
    page.keyboard.press("Space")
    form.get_by_test_id("columns-apply").focus()
    page.keyboard.press("Enter")

    # then: as chosen, and still so after a reload
    page.wait_for_load_state()
    for _ in range(2):
        expect(table.locator("th[data-column='metrics.val/loss']")).to_have_count(0)
        expect(table.locator("th[data-column]").first).to_have_attribute("data-column", "params.lr")
        expect(table.locator("th[data-column='params.lr']")).to_have_class("pinned-col sticky-col")
        page.reload()
    # and the pinned column stays in sight when the table scrolls sideways
    wrap = page.locator(".runs-table-wrap").last
    wrap.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    left = table.locator("th[data-column='params.lr']").bounding_box()
    box = wrap.bounding_box()
    assert left is not None
    assert box is not None
    assert box["x"] <= left["x"] < box["x"] + 400
    assert events.errors == []


def test_a_pinned_run_stays_on_top_whatever_the_sort(page: Page, live_server: LiveServer, log_in: LogIn) -> None:
    # given
    ana = _user("ana")
    demo_project(ana, runs=6)
    log_in("ana")
    page.goto(f"{live_server.url}/ana/mnist-cnn/")
    rows = page.get_by_test_id("runs-table").locator("tbody tr")
    last = rows.last
    name = last.locator(".run-link").inner_text()

    # when
    last.get_by_test_id("pin-run").click()

    # then
    page.wait_for_load_state()
    expect(rows.first.locator(".run-link")).to_have_text(name)
    expect(rows.first).to_have_attribute("data-pinned", "")
    for header in ("Name", "Started"):
        page.get_by_test_id("runs-table").get_by_role("link", name=header, exact=True).click()
        page.wait_for_load_state()
        expect(rows.first.locator(".run-link")).to_have_text(name)
        expect(page.get_by_test_id("runs-table").locator(f".run-link:text-is('{name}')")).to_have_count(1)
    shot(page, "runs-table")

    # and the dark theme keeps the pinned row and the sticky cells readable
    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")
    background = rows.first.locator("td").first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
    shot(page, "runs-table-dark")

    # when: unpinned, it goes back to its place
    rows.first.get_by_test_id("pin-run").click()
    page.wait_for_load_state()
    expect(page.get_by_test_id("pinned-run")).to_have_count(0)


def test_the_column_search_finds_a_key_among_thousands(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents
) -> None:
    # given: 3,000 keys in the project's key registry, one of them logged by the newest run
    ana = _user("ana")
    run = demo_project(ana, runs=3)
    ProjectKey.objects.bulk_create(
        [ProjectKey(project=run.project, kind="metric", key=f"probe/layer{i:04d}/grad_norm") for i in range(3000)]
    )
    services.run_log(
        run=run,
        batch_id=None,
        params={},
        tags={},
        metric_rows=[{"key": "probe/layer2718/grad_norm", "step": 1, "value": 0.0271828, "timestamp": 1764150000000}],
    )
    log_in("ana")
    page.goto(f"{live_server.url}/ana/mnist-cnn/")
    expect(page.get_by_test_id("columns-form")).to_contain_text("among 3,0")  # 3,000 + the demo's keys

    # when
    page.get_by_role("button", name="Columns").click()
    page.get_by_test_id("column-search").fill("layer2718")

    # then
    results = page.get_by_test_id("column-search-results")
    found = results.get_by_label("metrics.probe/layer2718/grad_norm")
    expect(found).to_be_visible()
    expect(results.locator("input")).to_have_count(1)
    shot(page, "column-search")

    # when: ticked (by keyboard) and applied
    found.focus()
    page.keyboard.press("Space")
    page.get_by_test_id("columns-apply").click()

    # then: the column is there with the run's value, and sorts
    header = page.locator("th[data-column='metrics.probe/layer2718/grad_norm']")
    expect(header).to_be_visible()
    expect(page.get_by_test_id("runs-table")).to_contain_text("0.027183")
    header.get_by_role("link").click()
    expect(page.locator("th[data-column='metrics.probe/layer2718/grad_norm']")).to_have_attribute(
        "aria-sort", "ascending"
    )
    # a search that finds nothing says so
    page.get_by_role("button", name="Columns").click()
    page.get_by_test_id("column-search").fill("no-such-key-anywhere")
    expect(page.get_by_test_id("column-search-note")).to_have_text("No key contains “no-such-key-anywhere”.")
    assert events.errors == []


def test_a_failed_runs_error_is_at_the_top(page: Page, live_server: LiveServer, log_in: LogIn) -> None:
    # given: a run whose script raised, as the SDK records it
    ana = _user("ana")
    run = services.run_create(user=ana, project_path="ana/mnist-cnn", name="diverged-lr1e-1")
    log_training(run, rng=random.Random(3), steps=60, lr=0.1)
    try:
        {"loss": float("nan")}["val_loss"]
    except KeyError as exc:
        error = error_info(exc)
    services.run_update(run=run, status="failed", end_time=timezone.now(), info={"error": error})

    # when
    log_in("ana")
    page.goto(f"{live_server.url}/ana/mnist-cnn/runs/{run.id}/")

    # then: the error is the first thing below the run's name, in view without scrolling
    box = page.get_by_test_id("run-error")
    expect(box).to_be_visible()
    expect(box).to_contain_text("Failed: KeyError: 'val_loss'")
    expect(box).to_contain_text("test_runs_table_page.py")
    error_top = box.bounding_box()
    charts_top = page.locator("#charts-title").bounding_box()
    assert error_top is not None
    assert charts_top is not None
    assert error_top["y"] < charts_top["y"]
    assert error_top["y"] + error_top["height"] < 1000  # the viewport's height
    # the traceback opens by keyboard
    box.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("run-error-traceback")).to_be_visible()
    shot(page, "run-error")


def test_a_running_runs_duration_ticks_in_the_table(page: Page, live_server: LiveServer, log_in: LogIn) -> None:
    ana = _user("ana")
    demo_project(ana, runs=2)
    services.run_create(user=ana, project_path="ana/mnist-cnn", name="just-started")  # seconds old: 4.2s, 5.3s, …
    log_in("ana")
    page.goto(f"{live_server.url}/ana/mnist-cnn/")

    running = page.get_by_test_id("runs-table").locator("[data-running]").first
    first = running.inner_text()

    expect(running).not_to_have_text(first, timeout=5000)
