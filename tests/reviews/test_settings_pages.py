"""Issue 16: the review policy (project and model) and the e-mail preferences have pages.
They call the same services as the API, so they refuse whom and what the API refuses:
below admin a 403 on a change (the policy is shown read-only), an outsider a 404, and an
invalid value a 400 whose message names the field, with nothing saved."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts.models import AuditEvent, ProjectRole, User
from core.errors import Invalid
from frontend.review_settings_views import parse_gate_lines
from registry.models import ModelRepository, ModelVersion
from reviews import selectors
from reviews.models import NotificationPreference, ProjectReviewSettings, ReviewSettings
from tests.helpers import signed_in
from tests.reviews.test_api import opened as opened

pytestmark = pytest.mark.django_db

PROJECT_PAGE = "/acme/proj/review-settings/"
MODEL_PAGE = "/acme/proj/models/fraud/review-settings/"
PREFS_PAGE = "/settings/notifications/"
VALID = {
    "required_approvals": "2",
    "approver_role": "writer",
    "gates": "accuracy: candidate.metrics.acc >= 0.8\n",
    "required_checks": ["artifact-integrity", "gate:accuracy"],
    "block_unscanned": "on",
}


def _errors(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- the project's policy ---------------------------------------------------------------------


def test_an_admin_changes_the_project_policy(owner: User, model: ModelRepository) -> None:
    web = signed_in(owner)
    page = web.get(PROJECT_PAGE)
    assert page.status_code == 200
    assert 'data-testid="policy-save"' in page.content.decode()
    assert 'data-testid="policy-source">applies now: the defaults' in page.content.decode()

    response = web.post(PROJECT_PAGE, VALID)

    assert response.status_code == 302
    saved = ProjectReviewSettings.objects.get()
    assert saved.required_approvals == 2
    assert saved.approver_role == ProjectRole.WRITER
    assert saved.gates == [{"name": "accuracy", "expression": "candidate.metrics.acc >= 0.8"}]
    assert saved.required_checks == ["artifact-integrity", "gate:accuracy"]
    assert saved.block_unscanned is True
    assert selectors.settings_for(model).required_approvals == 2  # the model follows it
    assert AuditEvent.objects.filter(action="review.project_settings").count() == 1
    shown = web.get(PROJECT_PAGE).content.decode()
    assert "accuracy: candidate.metrics.acc &gt;= 0.8" in shown
    assert 'value="gate:accuracy" id="check-3" checked' in shown


@pytest.mark.parametrize("who", ["viewer", "member", "maintainer"])
def test_below_admin_the_policy_is_read_only_and_a_change_is_refused(
    who: str, request: pytest.FixtureRequest, model: ModelRepository
) -> None:
    user: User = request.getfixturevalue(who)
    web = signed_in(user)
    page = web.get(PROJECT_PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="read-only"' in html
    assert 'data-testid="policy-save"' not in html
    assert web.post(PROJECT_PAGE, VALID).status_code == 403
    assert web.post(MODEL_PAGE, VALID).status_code == 403
    assert web.post(MODEL_PAGE + "reset/").status_code == 403
    assert not ProjectReviewSettings.objects.exists()
    assert not ReviewSettings.objects.exists()


def test_an_outsider_gets_404_for_every_policy_page(outsider: User, model: ModelRepository) -> None:
    web = signed_in(outsider)
    for path in (PROJECT_PAGE, MODEL_PAGE):
        assert web.get(path).status_code == 404
        assert web.post(path, VALID).status_code == 404
    assert web.post(MODEL_PAGE + "reset/").status_code == 404
    assert not ProjectReviewSettings.objects.exists()
    assert not ReviewSettings.objects.exists()


def test_signed_out_is_sent_to_sign_in(model: ModelRepository) -> None:
    response = Client().get(PROJECT_PAGE)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"required_approvals": "9"}, "required_approvals"),
        ({"required_approvals": "two"}, "required_approvals"),
        ({"required_approvals": "0"}, "required_approvals"),
        ({"approver_role": "owner"}, "approver_role"),
        ({"gates": "accuracy candidate.metrics.acc >= 0.8"}, "gates"),
        ({"gates": "Bad Name: candidate.metrics.acc >= 0.8"}, "gates.0.name"),
        ({"gates": "accuracy: candidate.metrics.acc >>= 0.8", "required_checks": []}, "gates.0.expression"),
        (
            {"gates": "a: candidate.metrics.acc > 1\na: candidate.metrics.acc > 2", "required_checks": []},
            "gates.1.name",
        ),
        ({"required_checks": ["gate:nonesuch"]}, "required_checks"),
    ],
)
@pytest.mark.parametrize("page", [PROJECT_PAGE, MODEL_PAGE])
def test_an_invalid_value_is_refused_naming_the_field_and_nothing_is_saved(
    page: str, change: dict[str, Any], field: str, owner: User, model: ModelRepository
) -> None:
    # when
    response = signed_in(owner).post(page, {**VALID, **change})
    # then
    assert response.status_code == 400
    errors = _errors(response)
    assert len(errors) == 1, errors
    assert errors[0].startswith("Review policy not saved: ")
    assert field in errors[0]
    assert not ProjectReviewSettings.objects.exists()
    assert not ReviewSettings.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="review.").exists()
    html = response.content.decode()
    assert field in html  # the message is on the page that answers the form
    # the form keeps what was sent
    for name in ("required_approvals", "approver_role"):
        if name in change and change[name] not in ("owner",):
            assert f'value="{change[name]}"' in html


# --- a model's own policy ---------------------------------------------------------------------


def test_an_admin_gives_a_model_its_own_policy_and_drops_it_again(owner: User, model: ModelRepository) -> None:
    web = signed_in(owner)
    assert "applies now: the defaults" in web.get(MODEL_PAGE).content.decode()

    assert web.post(MODEL_PAGE, {**VALID, "required_approvals": "3"}).status_code == 302

    own = ReviewSettings.objects.get(repository=model)
    assert own.required_approvals == 3
    assert not ProjectReviewSettings.objects.exists()
    page = web.get(MODEL_PAGE).content.decode()
    assert "applies now: this model&#x27;s own policy" in page
    assert 'data-testid="policy-reset"' in page

    assert web.post(MODEL_PAGE + "reset/").status_code == 302

    assert not ReviewSettings.objects.exists()
    assert AuditEvent.objects.filter(action="review.settings.delete").count() == 1


def test_a_model_page_shows_the_project_policy_it_follows(owner: User, model: ModelRepository) -> None:
    web = signed_in(owner)
    web.post(PROJECT_PAGE, {**VALID, "required_approvals": "4"})
    page = web.get(MODEL_PAGE).content.decode()
    assert "applies now: the project&#x27;s policy" in page
    assert 'name="required_approvals" type="number" min="1" max="6" value="4"' in page
    assert 'data-testid="policy-reset"' not in page


def test_gate_lines_are_parsed_for_the_service() -> None:
    assert parse_gate_lines("a: metrics.x > 1\n\n b : params.lr = 'x:y'\n") == [
        {"name": "a", "expression": "metrics.x > 1"},
        {"name": "b", "expression": "params.lr = 'x:y'"},
    ]
    with pytest.raises(Invalid) as exc:
        parse_gate_lines("ok: metrics.x > 1\nno colon")
    assert exc.value.field == "gates"
    assert "line 2" in exc.value.message


# --- e-mail preferences -----------------------------------------------------------------------


def test_every_signed_in_user_chooses_which_notifications_are_emailed(outsider: User) -> None:
    web = signed_in(outsider)
    page = web.get(PREFS_PAGE)
    assert page.status_code == 200
    assert (
        page.content.decode().count('name="email"') == 9
    )  # one per notification kind (report_comment: issue 22; metric_alert: automations)
    assert page.content.decode().count(" checked>") == 9  # all kinds by default

    assert web.post(PREFS_PAGE, {"email": ["mention", "merged"]}).status_code == 302

    assert selectors.email_kinds(outsider) == ["mention", "merged"]
    assert web.get(PREFS_PAGE).content.decode().count(" checked>") == 2
    assert web.post(PREFS_PAGE, {}).status_code == 302  # nothing ticked: no e-mails
    assert selectors.email_kinds(outsider) == []


def test_an_unknown_kind_is_refused_naming_the_field_and_nothing_is_saved(outsider: User) -> None:
    response = signed_in(outsider).post(PREFS_PAGE, {"email": ["mention", "everything"]})
    assert response.status_code == 400
    errors = _errors(response)
    assert len(errors) == 1
    assert errors[0].startswith("E-mail preferences not saved: email ")
    assert not NotificationPreference.objects.exists()


def test_the_preferences_need_a_sign_in() -> None:
    response = Client().get(PREFS_PAGE)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_settings_pages_and_the_notification_centre_link_to_the_preferences(outsider: User) -> None:
    web = signed_in(outsider)
    for path in ("/settings/", "/settings/tokens/", "/notifications/", PREFS_PAGE):
        assert f'href="{PREFS_PAGE}"' in web.get(path).content.decode(), path


def test_a_notification_email_points_to_the_preferences_page(opened: dict[str, Any], mailoutbox: list[Any]) -> None:
    assert mailoutbox
    assert all(f"{PREFS_PAGE}" in mail.body for mail in mailoutbox)


def test_the_policy_page_shows_the_models_open_requests(opened: dict[str, Any], v2: ModelVersion, owner: User) -> None:
    page = signed_in(owner).get(MODEL_PAGE)
    assert page.context["open_reviews"] == 1
    assert 'href="/acme/proj/reviews/"' in page.content.decode()
