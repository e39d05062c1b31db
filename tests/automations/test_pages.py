"""Project settings → Webhooks pages: admins only (403 for a maintainer or writer, 404 for an
outsider, nothing written), a bad value is a 400 naming the field with the form kept and
nothing saved, the secret never appears on a page, and test / redeliver queue deliveries
that the page then lists with their attempts."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from automations.models import Delivery, Webhook
from tests.automations.conftest import SECRET
from tests.automations.receiver import receiver
from tests.helpers import flashed, signed_in

pytestmark = pytest.mark.django_db

PAGE = "/acme/proj/settings/webhooks/"


def _valid(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "name": "deploy", "secret": SECRET, "events": ["alias.moved"], "format": "slack", **extra}


def test_only_admins_see_or_change_webhooks(
    owner: User, member: User, maintainer: User, outsider: User, project: Any, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]
    hook = Webhook.objects.create(project=project, name="h", url="http://127.0.0.1:9/", secret=SECRET, events=[])
    for user, status in ((member, 403), (maintainer, 403), (outsider, 404)):
        web = signed_in(user)
        assert web.get(PAGE).status_code == status
        assert web.post(PAGE, _valid("http://127.0.0.1:9/x")).status_code == status
        assert web.get(f"{PAGE}{hook.id}/").status_code == status
        assert web.post(f"{PAGE}{hook.id}/test/").status_code == status
        assert web.post(f"{PAGE}{hook.id}/delete/").status_code == status
    assert list(Webhook.objects.values_list("name", flat=True)) == ["h"]
    assert not Delivery.objects.exists()
    # the project page links the settings for admins only
    assert 'data-testid="project-webhooks-link"' in signed_in(owner).get("/acme/proj/").content.decode()
    assert 'data-testid="project-webhooks-link"' not in signed_in(member).get("/acme/proj/").content.decode()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "url"),
        ({"url": "http://localhost:9/"}, "url"),
        ({"url": "gopher://example.com/"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["alias.moved", "nope"]}, "events.1"),
        ({"format": "xml"}, "format"),
        ({"format": "mlflow", "events": ["run.finished"]}, "format"),  # MLflow names no run event
        ({"secret": "short"}, "secret"),
        ({"model": "no-such-model"}, "model"),
    ],
)
def test_a_bad_value_is_refused_naming_the_field_and_nothing_is_saved(
    owner: User, project: Any, change: dict[str, Any], field: str, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW = []
    response = signed_in(owner).post(PAGE, {**_valid("https://93.184.215.14/hook"), **change})
    assert response.status_code == 400 if field != "model" else 404
    if field != "model":
        (message,) = flashed(response)
        assert message.startswith("Webhook not created")
        assert field.split(".")[0] in message or "url" in message.lower()
        assert 'value="deploy"' in response.content.decode()  # the form is kept
    assert not Webhook.objects.exists()


def test_an_admin_creates_edits_tests_and_redelivers(
    owner: User, project: Any, settings: Any, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]
    web = signed_in(owner)
    with receiver() as rx:
        created = web.post(PAGE, _valid(rx.url))
        assert created.status_code == 302, created.content[:500]
        hook = Webhook.objects.get()
        assert created["Location"] == f"{PAGE}{hook.id}/"
        assert (hook.name, hook.format, hook.events, hook.secret) == ("deploy", "slack", ["alias.moved"], SECRET)
        page = web.get(created["Location"]).content.decode()
        assert SECRET not in page
        # a blank secret keeps the current one; unticking "enabled" disables
        saved = web.post(f"{PAGE}{hook.id}/", {**_valid(rx.url), "secret": "", "name": "renamed"})
        assert saved.status_code == 302
        hook.refresh_from_db()
        assert (hook.name, hook.secret, hook.enabled) == ("renamed", SECRET, False)
        with django_capture_on_commit_callbacks(execute=True):
            assert web.post(f"{PAGE}{hook.id}/test/").status_code == 302
        delivery = Delivery.objects.get()
        with django_capture_on_commit_callbacks(execute=True):
            assert web.post(f"{PAGE}{hook.id}/deliveries/{delivery.id}/redeliver/").status_code == 302
        assert len(rx.requests) == 2
    page = web.get(f"{PAGE}{hook.id}/").content.decode()
    assert page.count('data-testid="delivery-row"') == 2
    assert page.count("HTTP 200") == 2
    assert web.post(f"{PAGE}{hook.id}/deliveries/{'0' * 32}/redeliver/").status_code == 404
    assert web.post(f"{PAGE}{hook.id}/delete/").status_code == 302
    assert not Webhook.objects.exists()


def test_a_generated_secret_is_shown_once(owner: User, project: Any, settings: Any) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]
    web = signed_in(owner)
    created = web.post(PAGE, _valid("http://127.0.0.1:9/", secret=""), follow=True)
    secret = Webhook.objects.get().secret
    assert len(secret) >= 32
    assert f"shown this once: {secret}" in created.content.decode()
    assert secret not in web.get(f"{PAGE}{Webhook.objects.get().id}/").content.decode()


def test_the_form_offers_mlflows_format_and_saves_it(owner: User, project: Any, settings: Any) -> None:
    settings.WEBHOOK_ALLOW = []
    page = signed_in(owner).get(PAGE).content.decode()
    assert '<option value="mlflow">MLflow (its body and X-MLflow-Signature)</option>' in page
    response = signed_in(owner).post(PAGE, _valid("https://93.184.215.14/hook", format="mlflow"))
    assert response.status_code == 302
    assert Webhook.objects.get().format == "mlflow"
