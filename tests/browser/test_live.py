"""Live pages in two browser contexts (two users) against an ASGI server (uvicorn in a thread,
over the test database and the Redis channel layer): pytest-django's live_server speaks WSGI,
which has no WebSockets."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from experiments import services as experiment_services
from experiments.models import Run
from registry.models import ModelVersion
from reviews import services as review_services
from tests.browser.conftest import PASSWORD
from tests.e2e.test_embedded_smoke import free_port
from tests.registry.conftest import make_artifact, make_run, model  # noqa: F401
from tests.reviews.conftest import register, v1, v2  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def asgi_server(settings: Any) -> Iterator[str]:
    tag = uuid.uuid4().hex[:12]
    settings.ASSAY_LIVE_PREFIX = f"test-live:{tag}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": settings.REDIS_URL, "socket_timeout": 30}], "prefix": f"test-ch:{tag}"},
        }
    }
    from config.asgi import application

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def in_thread(fn: Any, **kwargs: Any) -> None:
    """Call a service off this thread: Playwright runs an event loop here, and the service's
    after-commit publish (async_to_sync) refuses to run in a thread with a running loop."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the test's thread
            errors.append(exc)

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
    experiment_services.run_log(run=run, batch_id=None, metric_rows=[{"key": "loss", "step": 0, "value": 1.0}])
    page = signed_in(browser, asgi_server, "owner")
    page.goto(f"{asgi_server}/acme/proj/runs/{run.id}/")
    chart = page.get_by_test_id("metric-chart").first
    expect(chart).to_have_attribute("data-rendered", "true")
    expect(page.locator("html")).to_have_attribute("data-live", "live")

    for step in range(1, 6):
        in_thread(
            experiment_services.run_log,
            run=run,
            batch_id=None,
            metric_rows=[{"key": "loss", "step": step, "value": 1.0 / (step + 1)}],
        )
    expect(chart).to_have_attribute("data-live-points", "6")
    expect(chart.locator("[data-chart-note]")).to_contain_text("live")

    in_thread(experiment_services.run_update, run=run, status="finished")
    expect(page.locator("[data-run-header] .status-badge")).to_have_text("finished")
    page.screenshot(path="/tmp/h9-live-run.png", full_page=True)
    page.context.close()
