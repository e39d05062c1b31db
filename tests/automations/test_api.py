"""The webhooks API: admins only (404 for outsiders, 403 for lower roles), strict input
naming the field, nothing written on a refusal, the secret shown once; SSRF refusals at
creation with the allow-list off; and, in-process (eager), what is sent: the signature, a
redirect not followed, a target refused at send time, a chat line, auto-disabling."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import User
from automations import payloads, services
from automations.models import Attempt, Delivery, Webhook
from registry import services as registry_services
from registry.models import ModelRepository, ModelVersion
from tests.automations.conftest import BASE, SECRET
from tests.automations.receiver import receiver
from tests.helpers import assert_error, patch_json, post_json

pytestmark = pytest.mark.django_db


def create(client: APIClient, url: str, **extra: Any) -> Any:
    return post_json(client, BASE, {"url": url, "events": ["alias.moved"], "secret": SECRET, **extra})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://[::1]:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://localhost:9/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/",
    ],
)
def test_non_public_targets_are_refused_at_creation_without_the_allow_list(
    owner_client: APIClient, project: Any, url: str, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW = []
    assert_error(create(owner_client, url), 400, field="url")
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/", "events": ["alias.moved"]}, "url"),
        ({"url": "http://user:pw@example.com/", "events": ["alias.moved"]}, "url"),
        ({"url": 5, "events": ["alias.moved"]}, "url"),
        ({"url": "https://example.com/", "events": ["nope"]}, "events.0"),
        ({"url": "https://example.com/", "events": []}, "events"),
        ({"url": "https://example.com/", "events": "alias.moved"}, "events"),
        ({"url": "https://example.com/", "events": ["alias.moved"], "format": "xml"}, "format"),
        ({"url": "https://example.com/", "events": ["alias.moved"], "secret": "short"}, "secret"),
        ({"url": "https://example.com/", "events": ["alias.moved"], "enabled": "yes"}, "enabled"),
        ({"url": "https://example.com/", "events": ["alias.moved"], "model": "missing"}, "model"),
        ({"url": "https://example.com/", "events": ["alias.moved"], "owner": "x"}, "owner"),
        ({"url": "https://example.com/", "events": ["alias.moved"], "secret": None}, "secret"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    owner_client: APIClient, project: Any, body: dict[str, Any], field: str, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW = ["example.com"]  # the URL's shape is what is tested, not DNS
    assert_error(post_json(owner_client, BASE, body), 400 if field != "model" else 404, field=field)
    assert not Webhook.objects.exists()


def test_only_admins_manage_webhooks(
    owner_client: APIClient, member_client: APIClient, outsider_client: APIClient, project: Any, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]
    created = create(owner_client, "http://127.0.0.1:9/hook")
    assert created.status_code == 201, created.content
    hook = created.json()
    assert hook["secret"] == SECRET
    assert "secret" not in owner_client.get(f"{BASE}{hook['id']}/").json()
    # a writer of the project: 403; someone who cannot see it: 404; both write nothing
    assert_error(member_client.get(BASE), 403)
    assert_error(create(member_client, "http://127.0.0.1:9/other"), 403)
    assert_error(patch_json(member_client, f"{BASE}{hook['id']}/", {"enabled": False}), 403)
    assert_error(outsider_client.get(BASE), 404)
    assert_error(outsider_client.delete(f"{BASE}{hook['id']}/"), 404)
    assert_error(post_json(outsider_client, f"{BASE}{hook['id']}/test/", {}), 404)
    assert Webhook.objects.get().enabled
    # an unknown id is 404; the admin edits and deletes
    assert_error(owner_client.get(f"{BASE}nope/"), 404)
    edited = patch_json(owner_client, f"{BASE}{hook['id']}/", {"format": "slack", "enabled": False})
    assert edited.json()["format"] == "slack"
    assert edited.json()["enabled"] is False
    assert_error(patch_json(owner_client, f"{BASE}{hook['id']}/", {"url": "http://10.0.0.1/"}), 400, field="url")
    assert owner_client.delete(f"{BASE}{hook['id']}/").status_code == 204
    assert not Webhook.objects.exists()


def _verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = hmac.new(secret.encode(), headers["x-assay-timestamp"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(headers["x-assay-signature"], "sha256=" + expected.hexdigest())


def test_an_alias_move_is_delivered_signed_with_links(
    owner_client: APIClient,
    owner: User,
    v2: ModelVersion,
    settings: Any,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]
    with receiver() as rx:
        assert create(owner_client, rx.url, events=["alias.moved", "version.created"]).status_code == 201
        with django_capture_on_commit_callbacks(execute=True):
            registry_services.alias_move(alias="staging", version=v2, user=owner)
        assert len(rx.requests) == 1
        got = rx.requests[0]
    assert _verify(SECRET, got.headers, got.body)
    assert not _verify("another-secret-of-length", got.headers, got.body)
    payload = json.loads(got.body)
    assert got.headers["x-assay-event"] == payload["event"] == "alias.moved"
    assert payload["schema"] == "assay.webhook/v1"
    assert payload["data"]["alias"] == "staging"
    assert payload["data"]["from"] is None
    assert payload["data"]["to"]["number"] == 2
    assert payload["data"]["version_hash"] == v2.content_hash
    assert payload["links"]["version"].endswith("/acme/proj/models/fraud/v2/")
    delivery = Delivery.objects.get()
    assert got.headers["x-assay-delivery"] == delivery.id
    assert delivery.state == "delivered"
    assert Attempt.objects.get().status_code == 200


def test_a_target_forbidden_at_send_time_gets_nothing_and_the_attempt_says_why(
    owner_client: APIClient, v2: ModelVersion, settings: Any, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]
    with receiver() as rx:
        hook = create(owner_client, rx.url).json()
        settings.WEBHOOK_ALLOW = []  # e.g. the name now resolves elsewhere, or the administrator changed it
        with django_capture_on_commit_callbacks(execute=True):
            assert post_json(owner_client, f"{BASE}{hook['id']}/test/", {}).status_code == 202
        assert rx.requests == []
    attempt = Attempt.objects.get()
    assert attempt.error.startswith("refused: 127.0.0.1 is a loopback")
    assert Delivery.objects.get().state == "failed"  # refused: not retried


def test_a_redirect_is_not_followed(
    owner_client: APIClient, v2: ModelVersion, settings: Any, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    with receiver() as inner, receiver() as outer:
        outer.answers = [(302, {"Location": f"http://localhost:{inner.port}/hook"})]
        hook = create(owner_client, outer.url).json()
        with django_capture_on_commit_callbacks(execute=True):
            post_json(owner_client, f"{BASE}{hook['id']}/test/", {})
        assert len(outer.requests) == 1
        assert inner.requests == []
    attempt = Attempt.objects.get()
    assert attempt.status_code == 302
    assert not attempt.ok
    assert "not followed" in attempt.error
    assert Delivery.objects.get().state == "failed"


def test_a_webhook_failing_five_deliveries_in_a_row_is_disabled_and_admins_are_told(
    owner_client: APIClient,
    owner: User,
    model: ModelRepository,
    v1: ModelVersion,
    v2: ModelVersion,
    settings: Any,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    settings.WEBHOOK_RETRY_BASE_MS = 1
    with receiver([(500, {})]) as rx:
        hook = create(owner_client, rx.url).json()
        for i in range(6):
            with django_capture_on_commit_callbacks(execute=True):
                registry_services.alias_move(alias="staging", version=v2 if i % 2 == 0 else v1, user=owner)
        # five deliveries of two attempts each; the sixth event finds the webhook disabled
        assert len(rx.requests) == 10
    webhook = Webhook.objects.get(pk=hook["id"])
    assert webhook.enabled is False
    assert "5 failed deliveries" in webhook.disabled_reason
    assert Delivery.objects.count() == 5
    assert [m.to for m in mail.outbox if "disabled" in m.subject] == [[owner.email]]


def test_the_chat_line_names_version_model_alias_review_author_and_approvers() -> None:
    payload = {
        "event": "alias.moved",
        "actor": "bob",
        "project": {"path": "acme/proj"},
        "links": {"project": "http://x/acme/proj/", "version": "http://x/acme/proj/models/fraud-detector/v7/"},
        "data": {
            "model": "fraud-detector",
            "alias": "production",
            "to": {"number": 7},
            "review_request": {"number": 12, "author": "ana", "approved_by": ["bob"]},
        },
    }
    assert payloads.text(payload) == "v7 of fraud-detector is now production (review #12 by ana, approved by bob)"
    assert payloads.body(payload, "slack") == {
        "text": "v7 of fraud-detector is now production (review #12 by ana, approved by bob)\n"
        "http://x/acme/proj/models/fraud-detector/v7/"
    }
    assert payloads.body(payload, "json") is payload


def test_backoff_doubles_and_is_bounded(settings: Any) -> None:
    settings.WEBHOOK_RETRY_BASE_MS = 30_000
    assert [services.backoff_seconds(n) for n in (1, 2, 3)] == [30.0, 60.0, 120.0]
    assert services.backoff_seconds(20) == 3600.0


def test_finished_deliveries_past_the_retention_are_pruned_pending_and_recent_ones_kept(
    project: Any, settings: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from automations.tasks import deliveries_prune_task

    # given deliveries old and new, finished and pending, with attempts and a redelivery
    settings.WEBHOOK_RETENTION_DAYS = 30
    hook = Webhook.objects.create(project=project, name="h", url="https://93.184.215.14/", secret=SECRET, events=[])
    old = timezone.now() - timedelta(days=31)

    def make(state: str, created: Any) -> Delivery:
        delivery = Delivery.objects.create(webhook=hook, event="alias.moved", payload={}, state=state)
        Delivery.objects.filter(pk=delivery.pk).update(created_at=created)
        Attempt.objects.create(delivery=delivery, number=1, started_at=created, status_code=200, ok=True)
        return delivery

    old_done, old_failed, old_pending = make("delivered", old), make("failed", old), make("pending", old)
    recent = make("delivered", timezone.now() - timedelta(days=29))
    again = Delivery.objects.create(webhook=hook, event="alias.moved", payload={}, redelivery_of=old_failed)
    # when the daily task runs
    assert deliveries_prune_task.apply().get() == 2
    # then only the old finished ones are gone, with their attempts
    assert set(Delivery.objects.values_list("pk", flat=True)) == {old_pending.pk, recent.pk, again.pk}
    assert Attempt.objects.filter(delivery_id__in=[old_done.pk, old_failed.pk]).count() == 0
    assert Delivery.objects.get(pk=again.pk).redelivery_of_id is None
    assert deliveries_prune_task.apply().get() == 0
