"""Live pages in two browser contexts (two users) against an ASGI server (uvicorn in a thread,
over the test database and the Redis channel layer): pytest-django's live_server speaks WSGI,
which has no WebSockets."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from django.db import connections
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from experiments import services as experiment_services
from experiments.models import Run
from registry.models import ModelVersion
from reviews import services as review_services
from reviews.models import Notification
from tests.browser.conftest import PASSWORD
from tests.e2e.test_embedded_smoke import free_port
from tests.registry.conftest import maintainer, make_artifact, make_run, model  # noqa: F401
from tests.reviews.conftest import register, v1, v2  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class AsgiServer:
    """uvicorn serving config.asgi in a thread; ``stop()`` and ``start()`` again on the same port
    (what a restart or a network cut looks like to the pages' sockets)."""

    def __init__(self, application: Any) -> None:
        self.application, self.port = application, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            self.application,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        assert self.server is not None
        assert self.thread is not None
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def asgi(settings: Any) -> Iterator[AsgiServer]:
    tag = uuid.uuid4().hex[:12]
    settings.ASSAY_LIVE_PREFIX = f"test-live:{tag}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": settings.REDIS_URL, "socket_timeout": 30}], "prefix": f"test-ch:{tag}"},
        }
    }
    from config.asgi import application

    server = AsgiServer(application)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def asgi_server(asgi: AsgiServer) -> str:
    return asgi.url


def in_thread(fn: Any, **kwargs: Any) -> None:
    """Call a service off this thread: Playwright runs an event loop here, and the service's
    after-commit publish (async_to_sync) refuses to run in a thread with a running loop."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()  # give this thread's connection back to the pool

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=30)
    if errors:
        raise errors[0]


def signed_in(browser: Browser, base: str, username: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    return page


def test_a_reply_appears_on_the_other_users_page_and_the_mention_raises_their_count(
    browser: Browser,
    asgi_server: str,
    owner: User,
    member: User,
    v2: ModelVersion,  # noqa: F811
) -> None:
    rr, _ = review_services.review_request_open(
        user=member,
        project=v2.repository.project,
        model="fraud",
        version=v2.number,
        alias="production",
        title="Ship v2",
    )
    review_services.comment_create(user=owner, review_request=rr, body="Why is **recall** lower?")
    url = f"{asgi_server}/acme/proj/reviews/{rr.number}/"
    owner_page = signed_in(browser, asgi_server, "owner")
    member_page = signed_in(browser, asgi_server, "member")
    owner_page.goto(url)
    member_page.goto(url)
    expect(owner_page.locator("html")).to_have_attribute("data-live", "live")
    count_before = owner_page.get_by_test_id("unread-count").count()

    # the member replies through the page's own form, mentioning the owner
    member_page.get_by_placeholder("Reply…").fill("@owner it is within <script>alert(1)</script> the gate")
    member_page.get_by_role("button", name="Reply").click()

    # without a reload, the owner's page shows the reply (as text: the script is not a script)
    thread = owner_page.get_by_test_id("thread").first
    expect(thread.get_by_test_id("comment")).to_have_count(2)
    reply = thread.get_by_test_id("comment").nth(1)
    expect(reply).to_contain_text("member")
    expect(reply).to_contain_text("it is within")
    assert reply.locator("script").count() == 0
    # and the mention raised the notification count, with a toast
    expect(owner_page.get_by_test_id("unread-count")).to_contain_text("1" if count_before == 0 else "")
    expect(owner_page.get_by_test_id("live-toast")).to_contain_text("member mentioned you")
    owner_page.screenshot(path="/tmp/h9-live-review.png", full_page=True)
    owner_page.context.close()
    member_page.context.close()


def test_the_run_page_extends_its_chart_and_status_while_the_run_logs(
    browser: Browser, asgi_server: str, owner: User, run: Run
) -> None:
    experiment_services.run_log(
        run=run, batch_id=None, metric_rows=[{"key": "loss", "step": s, "value": 1.0 / (s + 1)} for s in range(2)]
    )
    page = signed_in(browser, asgi_server, "owner")
    page.goto(f"{asgi_server}/acme/proj/runs/{run.id}/")
    chart = page.get_by_test_id("metric-chart").first
    expect(chart).to_have_attribute("data-rendered", "true")
    expect(page.locator("html")).to_have_attribute("data-live", "live")
    # "running for …" counts while the run runs (issue 16, bug 3)
    duration = page.get_by_test_id("run-duration")
    expect(duration).to_contain_text("running for")
    first = duration.inner_text()
    expect(duration).not_to_have_text(first, timeout=3000)

    for step in range(2, 6):
        in_thread(
            experiment_services.run_log,
            run=run,
            batch_id=None,
            metric_rows=[{"key": "loss", "step": step, "value": 1.0 / (step + 1)}],
        )
    expect(chart).to_have_attribute("data-live-points", "6")
    expect(chart.locator("[data-chart-note]")).to_contain_text("live")
    loss = page.locator("tr[data-summary-key='loss']")  # the summary table follows, as the server writes it
    expect(loss.locator("[data-stat=last]")).to_have_text("0.16667")
    expect(loss.locator("[data-stat=count]")).to_have_text("6")

    # a key logged for the first time gets its own chart, drawn from its history
    page.evaluate("window.__sameDocument = true")
    in_thread(
        experiment_services.run_log,
        run=run,
        batch_id=None,
        metric_rows=[{"key": "val/acc", "step": s, "value": 0.5 + s / 10} for s in range(3)],
    )
    charts = page.get_by_test_id("metric-chart")
    expect(charts).to_have_count(2)
    expect(page.locator("[data-metric-chart][data-key='val/acc']")).to_have_attribute("data-rendered", "true")
    expect(page.locator("tr[data-summary-key='val/acc'] [data-stat=last]")).to_have_text("0.7")
    assert page.evaluate("window.__sameDocument") is True

    # a key logged once is a value (issue 16, bug 7); logged again, it becomes a chart
    in_thread(
        experiment_services.run_log, run=run, batch_id=None, metric_rows=[{"key": "test/acc", "step": 0, "value": 0.5}]
    )
    value = page.locator("[data-metric-value][data-key='test/acc']")
    expect(value).to_contain_text("0.5")
    expect(page.get_by_test_id("metric-chart")).to_have_count(2)
    in_thread(
        experiment_services.run_log, run=run, batch_id=None, metric_rows=[{"key": "test/acc", "step": 1, "value": 0.6}]
    )
    expect(page.locator("[data-metric-chart][data-key='test/acc']")).to_have_attribute("data-rendered", "true")
    expect(value).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True

    in_thread(experiment_services.run_update, run=run, status="finished")
    expect(page.locator("[data-run-header] .status-badge")).to_have_text("finished")
    expect(page.get_by_test_id("run-meta")).to_contain_text("took")  # the meta line, re-rendered
    took = duration.inner_text()
    page.wait_for_timeout(2200)
    assert duration.inner_text() == took  # and stops counting when the run ends
    assert page.evaluate("window.__sameDocument") is True
    page.screenshot(path="/tmp/h9-live-run.png", full_page=True)
    page.context.close()


def same_document(page: Page) -> None:
    """Mark the page's document: the mark survives only if the page is never reloaded."""
    page.evaluate("window.__sameDocument = true")


def never_reloaded(page: Page) -> None:
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"


def test_a_review_and_a_new_thread_reach_the_other_page_which_can_reply_from_it(
    browser: Browser,
    asgi_server: str,
    owner: User,
    member: User,
    maintainer: User,  # noqa: F811
    v2: ModelVersion,  # noqa: F811
) -> None:
    rr, _ = review_services.review_request_open(
        user=member, project=v2.repository.project, model="fraud", version=v2.number, alias="production", title="v2"
    )
    url = f"{asgi_server}/acme/proj/reviews/{rr.number}/"
    maint_page = signed_in(browser, asgi_server, "maint")
    member_page = signed_in(browser, asgi_server, "member")
    notifications = member_page.context.new_page()  # the member's notifications page, open too
    notifications.goto(f"{asgi_server}/notifications/")
    for page in (maint_page, member_page):
        page.goto(url)
    for page in (maint_page, member_page, notifications):
        expect(page.locator("html")).to_have_attribute("data-live", "live")
        same_document(page)
    expect(member_page.get_by_test_id("review")).to_have_count(0)
    expect(notifications.get_by_test_id("notification")).to_have_count(0)

    # a maintainer approves through the page's form, mentioning the member
    maint_page.locator("#review-body").fill("Looks good, @member. <img src=x onerror=alert(1)>")
    maint_page.get_by_role("button", name="Approve").click()

    # the member's page: the review card, the approvals count, the timeline line, no reload
    review = member_page.get_by_test_id("review")
    expect(review).to_have_count(1)
    expect(review).to_have_attribute("data-verdict", "approve")
    expect(review).to_contain_text("maint")
    expect(review).to_contain_text("Looks good")
    assert review.locator("img[onerror]").count() == 0
    expect(member_page.locator(".meta-line")).to_contain_text("1/")
    expect(member_page.get_by_test_id("timeline").locator("li").last).to_contain_text("maint approved v2")
    # the mention: count, toast, and the notifications page's list
    expect(member_page.get_by_test_id("live-toast")).to_contain_text("maint mentioned you")
    unread = Notification.objects.filter(user=member, read_at__isnull=True).count()
    assert unread >= 1
    expect(member_page.get_by_test_id("unread-count")).to_have_text(f"{unread} unread")
    expect(notifications.get_by_test_id("notification")).to_have_count(unread)
    member_page.screenshot(path="/tmp/h9-live-review-approved.png", full_page=True)
    expect(maint_page.get_by_test_id("review")).to_have_count(1)  # the maintainer's page, after its POST
    expect(maint_page.locator("html")).to_have_attribute("data-live", "live")
    same_document(maint_page)

    # the owner opens a thread (through the API's service); it reaches the member's page with
    # a working reply form, and the member's reply reaches the maintainer's page
    in_thread(review_services.comment_create, user=owner, review_request=rr, body="Is **recall** fine?")
    thread = member_page.get_by_test_id("thread").last
    expect(thread).to_contain_text("Is recall fine?")
    expect(member_page.get_by_test_id("tab-conversation")).to_contain_text("1")
    expect(maint_page.get_by_test_id("thread")).to_have_count(1)
    never_reloaded(member_page)
    thread.get_by_placeholder("Reply…").fill("Yes: it is in the gate.")
    thread.get_by_role("button", name="Reply").click()
    maint_thread = maint_page.get_by_test_id("thread").last
    expect(maint_thread.get_by_test_id("comment")).to_have_count(2)
    expect(maint_thread.get_by_test_id("comment").nth(1)).to_contain_text("Yes: it is in the gate.")
    expect(maint_page.get_by_test_id("timeline").locator("li").last).to_contain_text("member replied")
    maint_page.screenshot(path="/tmp/h9-live-review-thread.png", full_page=True)
    never_reloaded(maint_page)
    never_reloaded(notifications)
    for page in (maint_page, member_page):
        page.context.close()


def test_check_results_replace_the_statuses_on_the_checks_tab(
    browser: Browser,
    asgi_server: str,
    owner: User,
    member: User,
    v2: ModelVersion,  # noqa: F811
) -> None:
    from config.celery import app as celery_app

    # opened while no worker runs: the checks wait, queued
    rr, _ = review_services.review_request_open(
        user=member, project=v2.repository.project, model="fraud", version=v2.number, alias="production", title="v2"
    )
    url = f"{asgi_server}/acme/proj/reviews/{rr.number}/?tab=checks"
    owner_page = signed_in(browser, asgi_server, "owner")
    member_page = signed_in(browser, asgi_server, "member")
    owner_page.goto(url)
    member_page.goto(url)
    rows = member_page.get_by_test_id("check-row")
    assert rows.count() >= 1
    names = [rows.nth(i).get_attribute("data-name") for i in range(rows.count())]
    for i in range(rows.count()):
        expect(rows.nth(i)).to_have_attribute("data-status", "queued")
    expect(member_page.locator("html")).to_have_attribute("data-live", "live")
    same_document(member_page)

    # the owner re-runs them; a worker (in-process here) runs them right after the commit
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        owner_page.get_by_role("button", name="Re-run checks").click()
        for name in names:
            row = member_page.locator(f"tr[data-testid=check-row][data-name='{name}']")
            expect(row).not_to_have_attribute("data-status", "queued")
            expect(row).not_to_have_attribute("data-status", "running")
            expect(row.locator("[data-check-status] .badge")).to_have_text(re.compile(r"^[✓✗!] (passed|failed|error)$"))
            expect(row.locator("td.small")).not_to_be_empty()  # the summary, from the server's rendering
    finally:
        celery_app.conf.task_always_eager = previous
    member_page.screenshot(path="/tmp/h9-live-checks.png", full_page=True)
    never_reloaded(member_page)
    owner_page.context.close()
    member_page.context.close()


def test_the_project_page_shows_new_runs_and_their_statuses_and_keeps_the_selection(
    browser: Browser, asgi_server: str, owner: User, member: User, project: Any
) -> None:
    page = signed_in(browser, asgi_server, "member")
    page.goto(f"{asgi_server}/acme/proj/")
    expect(page.get_by_test_id("empty-project")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("data-live", "live")
    same_document(page)

    # a training script (the SDK's service call) starts the project's first run
    first: list[Run] = []
    in_thread(lambda: first.append(experiment_services.run_create(user=owner, project_path="acme/proj", name="r-1")))
    expect(page.locator(f"tr[data-run-id='{first[0].id}']")).to_be_visible()
    expect(page.get_by_test_id("empty-project")).to_have_count(0)
    page.locator(f"tr[data-run-id='{first[0].id}'] input[type=checkbox]").check()

    # another run starts: a new row; the selection stays, and the compare button follows it
    second: list[Run] = []
    in_thread(lambda: second.append(experiment_services.run_create(user=owner, project_path="acme/proj", name="r-2")))
    row = page.locator(f"tr[data-run-id='{second[0].id}']")
    expect(row).to_be_visible()
    expect(page.get_by_test_id("runs-count")).to_contain_text("of 2")
    expect(page.locator(f"tr[data-run-id='{first[0].id}'] input[type=checkbox]")).to_be_checked()
    row.locator("input[type=checkbox]").check()
    expect(page.get_by_test_id("compare-selected")).to_have_text("Compare 2 runs")

    # it finishes: its status badge changes in place
    in_thread(experiment_services.run_update, run=second[0], status="finished")
    expect(row.locator(".status-badge")).to_have_text("finished")
    page.screenshot(path="/tmp/h9-live-project.png", full_page=True)
    never_reloaded(page)
    page.context.close()


def test_a_page_that_lost_its_socket_catches_up_with_exactly_what_it_missed(
    browser: Browser,
    asgi: AsgiServer,
    owner: User,
    member: User,
    v2: ModelVersion,  # noqa: F811
) -> None:
    rr, _ = review_services.review_request_open(
        user=member, project=v2.repository.project, model="fraud", version=v2.number, alias="production", title="v2"
    )
    review_services.comment_create(user=owner, review_request=rr, body="before")
    page = signed_in(browser, asgi.url, "member")
    page.goto(f"{asgi.url}/acme/proj/reviews/{rr.number}/")
    expect(page.locator("html")).to_have_attribute("data-live", "live")
    same_document(page)
    expect(page.get_by_test_id("thread")).to_have_count(1)

    asgi.stop()  # the server goes away: the page says so and retries with backoff
    expect(page.get_by_test_id("live-status")).to_have_text("Reconnecting…")
    for n in range(3):
        in_thread(review_services.comment_create, user=owner, review_request=rr, body=f"missed {n}")
    asgi.start()

    # the next attempt of the backoff (1, 2, 4, 8 s … ±30 %) finds it back
    expect(page.locator("html")).to_have_attribute("data-live", "live", timeout=30_000)
    expect(page.get_by_test_id("thread")).to_have_count(4)
    assert sum("missed" in t for t in page.get_by_test_id("thread").all_inner_texts()) == 3  # each once
    for n in range(3):
        expect(page.get_by_test_id("thread").nth(n + 1)).to_contain_text(f"missed {n}")
    expect(page.get_by_test_id("live-status")).to_be_hidden()
    page.screenshot(path="/tmp/h9-live-reconnected.png", full_page=True)
    never_reloaded(page)
    page.context.close()


def test_an_artifact_processed_meanwhile_updates_the_run_pages_artifact_list(
    browser: Browser,
    asgi_server: str,
    owner: User,
    run: Run,
    make_artifact: Any,  # noqa: F811
) -> None:
    from artifacts.processing import artifact_fail

    artifact = make_artifact(run, path="weights/model.pkl", content=b"not really weights")
    page = signed_in(browser, asgi_server, "owner")
    page.goto(f"{asgi_server}/acme/proj/runs/{run.id}/")
    expect(page.locator("html")).to_have_attribute("data-live", "live")
    status = page.get_by_test_id("artifacts").locator(".artifact-status")
    expect(status).not_to_have_attribute("data-status", "failed")
    same_document(page)

    # the worker gives up on it (artifact.processed): the list is re-rendered in place
    in_thread(artifact_fail, artifact_id=artifact.id, reason="Processing kept failing: <b>disk full</b>")
    expect(status).to_have_attribute("data-status", "failed")
    expect(page.get_by_test_id("artifact-reason")).to_have_text("Processing kept failing: <b>disk full</b>")
    page.screenshot(path="/tmp/h9-live-artifacts.png", full_page=True)
    never_reloaded(page)
    page.context.close()
