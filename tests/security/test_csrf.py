"""CSRF: enforced on every cookie-authenticated unsafe API call; bearer tokens need none.

The default test client skips CSRF checks, so these tests turn them on explicitly.
"""

from __future__ import annotations

import orjson
import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Project, User
from accounts.services import token_create
from experiments.models import Run
from tests.factories import PASSWORD
from tests.helpers import assert_error, log_path, run_path

pytestmark = pytest.mark.django_db

JSON = "application/json"
LOG_BODY = {"metrics": [{"key": "loss", "step": 0, "value": 0.5}]}


@pytest.fixture
def session_client(owner: User) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    return client


@pytest.mark.parametrize(
    ("method", "path_of", "body"),
    [
        ("post", lambda run: "/api/v1/runs/", {"project": "acme/proj"}),
        ("post", log_path, LOG_BODY),
        ("patch", run_path, {"notes": "csrf"}),
        ("post", lambda run: "/api/v1/projects/", {"team": "acme", "name": "csrf"}),
        ("post", lambda run: "/api/v1/projects/acme/proj/experiments/", {"name": "csrf"}),
    ],
    ids=["create-run", "log", "patch-run", "create-project", "create-experiment"],
)
def test_session_authenticated_unsafe_calls_without_a_csrf_token_are_forbidden(
    session_client: APIClient, run: Run, method: str, path_of, body: dict[str, object]
) -> None:
    runs_before = Run.objects.count()

    response = getattr(session_client, method)(path_of(run), data=orjson.dumps(body), content_type=JSON)

    error = assert_error(response, 403, code="permission_denied")
    assert "CSRF" in error["message"]
    assert Run.objects.count() == runs_before
    assert not Project.objects.filter(name="csrf").exists()
    run.refresh_from_db()
    assert run.notes == ""


def test_session_authenticated_reads_need_no_csrf_token(session_client: APIClient, run: Run) -> None:
    assert session_client.get(run_path(run)).status_code == 200


def test_session_call_with_the_csrf_token_is_accepted(owner: User, run: Run) -> None:
    # given a real login through the login form, with CSRF checks on
    browser = Client(enforce_csrf_checks=True)
    browser.get("/login/")
    csrf = browser.cookies["csrftoken"].value
    login = browser.post("/login/", {"login": "owner", "password": PASSWORD, "csrfmiddlewaretoken": csrf})
    assert login.status_code == 302
    csrf = browser.cookies["csrftoken"].value

    without = browser.post(log_path(run), data=orjson.dumps(LOG_BODY), content_type=JSON)
    with_token = browser.post(log_path(run), data=orjson.dumps(LOG_BODY), content_type=JSON, HTTP_X_CSRFTOKEN=csrf)

    assert without.status_code == 403
    assert with_token.status_code == 200
    assert with_token.json()["points"] == 1


def test_login_form_without_csrf_token_is_refused(owner: User) -> None:
    browser = Client(enforce_csrf_checks=True)

    response = browser.post("/login/", {"login": "owner", "password": PASSWORD})

    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session


def test_login_rotates_the_session(owner: User) -> None:
    # given an anonymous session that already exists (e.g. one an attacker planted)
    browser = Client()
    session = browser.session
    session["visited"] = True
    session.save()
    planted = browser.cookies["sessionid"].value

    browser.post("/login/", {"login": "owner", "password": PASSWORD})

    assert browser.cookies["sessionid"].value != planted
    assert browser.session["_auth_user_id"] == str(owner.pk)


def test_bearer_token_calls_need_no_csrf_token(owner: User, run: Run) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION="Bearer " + token_create(user=owner, name="ci").raw)

    response = client.post(log_path(run), data=orjson.dumps(LOG_BODY), content_type=JSON)

    assert response.status_code == 200
    assert response.json()["points"] == 1


def test_bearer_token_wins_over_a_session_cookie(owner: User, outsider: User, run: Run) -> None:
    # a browser logged in as the outsider that also carries the owner's token acts as the owner
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(outsider)
    client.credentials(HTTP_AUTHORIZATION="Bearer " + token_create(user=owner, name="ci").raw)

    assert client.post(log_path(run), data=orjson.dumps(LOG_BODY), content_type=JSON).status_code == 200
