"""Issue 16, bug 11: the pages Django answers by itself (404, 403, 500) are Assay's pages, with
the navigation, and a refusal is one log line, not a traceback. The API keeps its JSON shape."""

from __future__ import annotations

import logging

import pytest
from django.templatetags.static import static
from django.test import Client

from accounts.models import Project, User

pytestmark = pytest.mark.django_db


def _client(user: User | None = None) -> Client:
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


def test_an_unknown_page_is_a_styled_404_with_the_navigation(owner: User, project: Project) -> None:
    response = _client(owner).get("/acme/no-such-project/")

    assert response.status_code == 404
    page = response.content.decode()
    assert static("dist/app.css") in page  # the site's stylesheet (hashed), not Django's bare page
    assert 'data-testid="user-menu"' in page  # the navigation, signed in
    assert "Page not found" in page
    assert 'href="/"' in page
    assert "<h1>Not Found</h1>" not in page


def test_a_refused_page_is_a_styled_403_logged_without_a_traceback(
    viewer: User, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = _client(viewer).get(f"/{project.path}/audit/")

    assert response.status_code == 403
    page = response.content.decode()
    assert static("dist/app.css") in page
    assert 'data-testid="user-menu"' in page
    assert "You may not do this" in page
    refusals = [r for r in caplog.records if r.name == "django.request"]
    assert refusals, "the refusal is still logged, as one line"
    assert all(r.exc_info is None and not r.exc_text for r in refusals)
    assert "Traceback" not in caplog.text


def test_the_500_page_extends_the_layout(owner: User) -> None:
    from django.template import loader

    page = loader.get_template("500.html").render()  # as Django renders it: no request, no database
    assert static("dist/app.css") in page
    assert "Something went wrong" in page
    assert 'href="/"' in page


def test_an_unknown_api_route_answers_the_json_error_shape(owner: User) -> None:
    response = _client(owner).get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"
