"""Issue 16: the reviews of a project are one click away from the project, model and
version pages and the navigation, with the number of open requests, counted once per page
through ``reviews.selectors.open_request_count``; whoever may not see the project sees
neither the link nor the number (its pages are 404)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from registry import services as registry_services
from registry.models import ModelVersion
from reviews import selectors
from reviews.models import ReviewRequest
from tests.helpers import signed_in
from tests.reviews.test_api import opened as opened

pytestmark = pytest.mark.django_db

REVIEWS = 'href="/acme/proj/reviews/"'
PAGES = ("/acme/proj/", "/acme/proj/models/", "/acme/proj/models/fraud/", "/acme/proj/models/fraud/v2/")


def _open_count_queries(queries: list[dict[str, Any]]) -> list[str]:
    table = ReviewRequest._meta.db_table
    return [q["sql"] for q in queries if "COUNT(" in q["sql"] and f'FROM "{table}"' in q["sql"]]


@pytest.mark.parametrize("path", PAGES)
def test_each_page_links_to_the_reviews_with_the_open_count(path: str, opened: dict[str, Any], viewer: User) -> None:
    # given one open request on fraud, seen by a viewer
    # when
    with CaptureQueriesContext(connection) as ctx:
        response = signed_in(viewer).get(path)
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert REVIEWS in html
    assert 'data-testid="nav-reviews"' in html
    assert response.context["open_reviews"] == 1
    assert len(_open_count_queries(ctx.captured_queries)) == 1  # one COUNT, shared by links and navbar


def test_the_model_count_is_the_models_own(opened: dict[str, Any], owner: User) -> None:
    # given a second model without requests
    registry_services.model_create(user=owner, project=ReviewRequest.objects.get().project, name="other")
    # then its page counts none, the project's page counts the one on fraud
    web = signed_in(owner)
    assert web.get("/acme/proj/models/other/").context["open_reviews"] == 0
    assert web.get("/acme/proj/").context["open_reviews"] == 1


def test_closed_and_merged_requests_are_not_counted(opened: dict[str, Any], owner: User) -> None:
    ReviewRequest.objects.update(state=ReviewRequest.State.CLOSED)
    response = signed_in(owner).get("/acme/proj/models/fraud/")
    assert response.context["open_reviews"] == 0
    assert REVIEWS in response.content.decode()


def test_an_outsider_gets_neither_link_nor_count(opened: dict[str, Any], outsider: User, v2: ModelVersion) -> None:
    web = signed_in(outsider)
    for path in PAGES:
        assert web.get(path).status_code == 404
    assert selectors.open_request_count(outsider, v2.repository.project) is None
    assert selectors.open_request_count(None, v2.repository.project) is None
    home = web.get("/").content.decode()
    assert "/acme/proj/reviews/" not in home


def test_the_project_and_model_pages_link_to_the_review_policy(v2: ModelVersion, viewer: User) -> None:
    web = signed_in(viewer)
    assert 'href="/acme/proj/review-settings/"' in web.get("/acme/proj/").content.decode()
    assert 'href="/acme/proj/models/fraud/review-settings/"' in web.get("/acme/proj/models/fraud/").content.decode()
