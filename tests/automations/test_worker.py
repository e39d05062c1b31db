"""Deliveries sent by a real Celery worker process to a real receiver on loopback
(allow-listed through ASSAY_WEBHOOK_ALLOW, which the worker reads from its environment)."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from automations.models import Delivery
from registry.models import ModelVersion
from tests.automations.conftest import BASE, SECRET
from tests.automations.receiver import Receiver, receiver
from tests.celery_worker import celery_worker
from tests.conftest import ClientFor
from tests.helpers import post_json

pytestmark = pytest.mark.django_db(transaction=True)

REVIEWS = "/api/v1/projects/acme/proj/review-requests/"


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def allow_loopback(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.setenv("ASSAY_WEBHOOK_ALLOW", "127.0.0.1/32")
    monkeypatch.setenv("ASSAY_WEBHOOK_RETRY_BASE_MS", "200")
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]


def hook(client: APIClient, rx: Receiver, **extra: Any) -> dict[str, Any]:
    response = post_json(client, BASE, {"url": rx.url, "events": ["alias.moved"], "secret": SECRET, **extra})
    assert response.status_code == 201, response.content
    body: dict[str, Any] = response.json()
    return body


def test_a_merged_review_delivers_one_signed_alias_moved_and_a_disabled_webhook_nothing(
    allow_loopback: None,
    owner_client: APIClient,
    member_client: APIClient,
    client_for: ClientFor,
    maintainer: User,
    v2: ModelVersion,
    tmp_path: Path,
) -> None:
    with receiver() as rx, receiver() as off, celery_worker(tmp_path) as worker:
        hook(owner_client, rx, format="json")
        hook(owner_client, off, enabled=False)
        opened = post_json(
            member_client, REVIEWS, {"model": "fraud", "version": 2, "alias": "production", "title": "Ship"}
        )
        assert opened.status_code == 201, opened.content
        reviewer = client_for(maintainer)

        def checks_done() -> bool:
            checks = reviewer.get(f"{REVIEWS}1/checks/").json()
            return all(c["status"] == "passed" for c in checks)

        wait_for(checks_done, what="the review checks")
        approve = {"verdict": "approve", "version_hash": opened.json()["version_hash"]}
        assert post_json(reviewer, f"{REVIEWS}1/reviews/", approve).status_code == 201
        merged = post_json(reviewer, f"{REVIEWS}1/merge/", {})
        assert merged.status_code == 200, merged.content

        wait_for(lambda: rx.requests, what=f"a delivery; worker log:\n{worker.output()[-3000:]}")
        time.sleep(1.0)  # room for a duplicate to show up
        assert len(rx.requests) == 1
        assert off.requests == []
    got = rx.requests[0]
    mac = hmac.new(SECRET.encode(), got.headers["x-assay-timestamp"].encode() + b"." + got.body, hashlib.sha256)
    assert got.headers["x-assay-signature"] == "sha256=" + mac.hexdigest()
    assert abs(int(got.headers["x-assay-timestamp"]) - time.time()) < 60
    payload = json.loads(got.body)
    assert payload["event"] == "alias.moved"
    data = payload["data"]
    assert (data["alias"], data["from"]["number"], data["to"]["number"]) == ("production", 1, 2)
    assert data["version_hash"] == v2.content_hash
    review = data["review_request"]
    assert (review["number"], review["author"], review["approved_by"]) == (1, "member", ["maint"])
    assert payload["links"]["review_request"].endswith("/acme/proj/reviews/1/")
    # the disabled webhook: no delivery at all
    assert Delivery.objects.filter(webhook__url=off.url).count() == 0


def test_a_receiver_failing_twice_gets_the_same_delivery_three_times_and_the_log_shows_them(
    allow_loopback: None, owner_client: APIClient, project: Any, tmp_path: Path
) -> None:
    with receiver([(500, {}), (500, {}), (200, {})]) as rx, celery_worker(tmp_path):
        created = hook(owner_client, rx)
        assert post_json(owner_client, f"{BASE}{created['id']}/test/", {}).status_code == 202

        def delivered() -> Any:
            listed = owner_client.get(f"{BASE}{created['id']}/deliveries/").json()
            return listed if listed and listed[0]["state"] == "delivered" else None

        deliveries = wait_for(delivered, what="the third attempt")
    ids = {r.headers["x-assay-delivery"] for r in rx.requests}
    assert len(rx.requests) == 3
    assert ids == {deliveries[0]["id"]}
    assert [(a["number"], a["status"], a["ok"]) for a in deliveries[0]["attempts"]] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert all(a["latency_ms"] >= 0 and a["response_excerpt"] == "ok" for a in deliveries[0]["attempts"])


def test_a_worker_killed_mid_delivery_leaves_it_to_another_that_delivers_it_once(
    allow_loopback: None, monkeypatch: pytest.MonkeyPatch, owner_client: APIClient, project: Any, tmp_path: Path
) -> None:
    # given a receiver slow to answer its first request, and a short broker visibility
    # timeout and delivery lease (the workers read them from their environment), so the
    # killed worker's message and claim run out within seconds rather than an hour
    monkeypatch.setenv("ASSAY_CELERY_VISIBILITY_TIMEOUT", "3")
    monkeypatch.setenv("ASSAY_WEBHOOK_LEASE_SECONDS", "5")
    with receiver(slow_first=30.0) as rx:
        created = hook(owner_client, rx)
        with celery_worker(tmp_path) as first:
            assert post_json(owner_client, f"{BASE}{created['id']}/test/", {}).status_code == 202
            wait_for(lambda: rx.requests, what=f"the first attempt; worker log:\n{first.output()[-3000:]}")
            # when the worker is killed while it waits for the answer
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(timeout=10)
            queue = first.queue
        delivery = Delivery.objects.get()
        assert delivery.state == "pending"
        assert delivery.attempts == 1  # claimed, never logged: the worker died in the middle
        # then another worker on the same queue gets the unacknowledged message back
        with celery_worker(tmp_path, queue=queue) as second:
            wait_for(
                lambda: Delivery.objects.filter(pk=delivery.pk, state="delivered").exists(),
                timeout=60,
                what=f"the delivery after the kill; worker log:\n{second.output()[-3000:]}",
            )
            time.sleep(4.0)  # a further visibility timeout: room for a duplicate to show up
    # and it is delivered once: one delivery id, one successful attempt logged, the message
    # sent at most once more than the attempt that died (at-least-once, deduped by the id)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("delivered", 2)
    assert {r.headers["x-assay-delivery"] for r in rx.requests} == {delivery.id}
    assert len(rx.requests) == 2
    assert [(a.number, a.ok, a.status_code) for a in delivery.attempt_log.all()] == [(2, True, 200)]
    assert Delivery.objects.count() == 1
