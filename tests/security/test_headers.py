"""Response headers and deployment settings: CSP without inline scripts, nosniff, no
framing, DEBUG off, and no stack trace in an error answer."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from experiments.models import Run
from tests.helpers import run_path

pytestmark = pytest.mark.django_db


def csp_directives(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


@pytest.mark.parametrize("path", ["/login/", "/healthz"])
def test_pages_carry_a_csp_without_inline_scripts(path: str) -> None:
    response = Client().get(path)

    assert response.status_code == 200
    directives = csp_directives(response["Content-Security-Policy"])
    script_src = directives.get("script-src", directives.get("default-src"))
    assert script_src is not None
    assert "'unsafe-inline'" not in script_src
    assert "'unsafe-eval'" not in script_src
    assert "*" not in script_src
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]


def test_pages_are_not_sniffed_or_framed() -> None:
    response = Client().get("/login/")

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_api_answers_carry_the_same_headers(owner_client: APIClient, run: Run) -> None:
    response = owner_client.get(run_path(run))

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert "'unsafe-inline'" not in csp_directives(response["Content-Security-Policy"])["script-src"]
    assert response["Content-Type"] == "application/json"


def test_the_api_docs_page_loads_no_script_from_a_cdn() -> None:
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "cdn.jsdelivr" not in page
    assert "unpkg.com" not in page


def test_debug_is_off() -> None:
    assert settings.DEBUG is False


def test_session_and_csrf_cookies_are_not_readable_cross_site() -> None:
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"
    assert settings.CSRF_COOKIE_SAMESITE == "Lax"


def test_no_wildcard_hosts_or_origins() -> None:
    assert "*" not in settings.ALLOWED_HOSTS
    assert not any("*" in origin for origin in settings.CSRF_TRUSTED_ORIGINS)
    assert not getattr(settings, "CORS_ALLOW_ALL_ORIGINS", False)


def test_a_missing_page_shows_no_debug_information() -> None:
    response = Client().get("/no/such/page/")

    assert response.status_code == 404
    body = response.content.decode()
    assert "Traceback" not in body
    assert "URLconf" not in body
    assert "settings.py" not in body


def test_an_unknown_api_path_is_a_plain_404(owner_client: APIClient) -> None:
    response = owner_client.get("/api/v1/nothing-here/")

    assert response.status_code == 404
    assert b"URLconf" not in response.content
