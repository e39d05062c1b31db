"""Tokens are shown once: no page, API answer or error ever echoes one back."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import token_create, token_revoke
from experiments.models import Run
from tests.factories import PASSWORD
from tests.helpers import assert_error, log_path, post_json, run_path

pytestmark = pytest.mark.django_db


def test_api_answers_never_contain_the_token(owner: User, run: Run) -> None:
    raw = token_create(user=owner, name="ci").raw
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + raw)

    answers = [
        client.get(run_path(run)),
        client.get("/api/v1/runs/", {"project": "acme/proj"}),
        client.get("/api/v1/projects/"),
        client.get("/api/v1/me/"),
        post_json(client, log_path(run), {"metrics": [{"key": "loss", "step": -1, "value": 1}]}),
        post_json(client, "/api/v1/runs/", {"project": "acme/proj", "tags": {"token": "x"}}),
        client.get(run_path("0" * 32)),
    ]

    for response in answers:
        assert response.status_code < 500
        assert raw.encode() not in response.content
        assert raw[4:20].encode() not in response.content
        assert all(raw not in value for value in response.headers.values())


@pytest.mark.parametrize("kind", ["unknown", "revoked"])
def test_refused_tokens_are_not_echoed(owner: User, kind: str) -> None:
    issued = token_create(user=owner, name="ci")
    raw = issued.raw if kind == "revoked" else "asy_" + "Z" * 43
    if kind == "revoked":
        token_revoke(token=issued.token)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + raw)

    response = client.get("/api/v1/projects/")

    assert_error(response, 401)
    assert raw.encode() not in response.content
    assert raw[4:].encode() not in response.content


def test_the_login_page_never_shows_a_token(owner: User) -> None:
    raw = token_create(user=owner, name="ci").raw
    browser = Client()

    anonymous = browser.get("/login/")
    browser.post("/login/", {"login": "owner", "password": PASSWORD})
    home = browser.get("/")

    assert anonymous.status_code == 200
    for response in (anonymous, home):
        assert raw.encode() not in response.content
        assert b"asy_" not in response.content


def test_a_failed_login_does_not_echo_the_password(owner: User) -> None:
    response = Client().post("/login/", {"login": "owner", "password": "wrong-secret-pw-123"})

    assert response.status_code == 200
    assert b"wrong-secret-pw-123" not in response.content
