"""Issue 16, bug 15: a user is told where to get an API token as a user (the tokens page,
``assay login``), not to run ``manage.py create_token`` on the server."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_the_empty_home_page_points_to_the_tokens_page_and_assay_login(owner: User) -> None:
    web = Client()
    web.force_login(owner)
    page = web.get("/").content.decode()

    assert 'data-testid="empty-home"' in page
    assert 'href="/settings/tokens/"' in page
    assert "assay login" in page
    assert "create_token" not in page


def test_the_api_docs_point_to_the_tokens_page(owner: User) -> None:
    web = Client()
    web.force_login(owner)
    schema = web.get("/api/schema/?format=json").json()
    text = schema["info"]["description"] + schema["components"]["securitySchemes"]["bearerAuth"]["description"]

    assert "/settings/tokens/" in text
    assert "assay login" in text
    assert "create_token" not in text
