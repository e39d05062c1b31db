"""Answers of the registry and review APIs match the OpenAPI schema (arrays, unwrapped
manifests, DELETEs that answer 200 with a body)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from registry.models import ModelVersion
from tests.conftest import ClientFor
from tests.helpers import patch_json, post_json
from tests.openapi import assert_conforms

pytestmark = pytest.mark.django_db

PROJECT = "/api/v1/projects/acme/proj/"
REQUEST = PROJECT + "review-requests/1/"


@pytest.fixture
def opened(member_client: APIClient, v2: ModelVersion, maintainer: User, eager: None) -> dict[str, Any]:
    body = {"model": "fraud", "version": 2, "alias": "production", "title": "Ship v2", "reviewers": ["maint"]}
    response = post_json(member_client, PROJECT + "review-requests/", body)
    assert response.status_code == 201, response.content
    result: dict[str, Any] = response.json()
    return result


def check(client: APIClient, method: str, url: str, body: Any = None) -> Any:
    if method == "GET":
        response = client.get(url)
    elif method == "DELETE":
        response = client.delete(url)
    elif method == "PATCH":
        response = patch_json(client, url, body)
    else:
        response = post_json(client, url, body)
    assert response.status_code < 300, (method, url, response.content)
    assert_conforms(method, url, response)
    return response


def test_list_answers_are_arrays_as_documented(
    opened: dict[str, Any], member_client: APIClient, client_for: ClientFor, maintainer: User
) -> None:
    reviewer = client_for(maintainer)
    check(reviewer, "POST", REQUEST + "comments/", {"body": "why?"})
    check(reviewer, "POST", REQUEST + "reviews/", {"verdict": "comment", "body": "ok"})
    for url in [
        PROJECT + "models/",
        PROJECT + "models/fraud/versions/",
        REQUEST + "checks/",
        REQUEST + "comments/",
        REQUEST + "reviews/",
        REQUEST + "timeline/",
        PROJECT + "mentionables/?q=m",
    ]:
        assert isinstance(check(member_client, "GET", url).json(), list), url
    check(member_client, "GET", PROJECT + "models/fraud/versions/2/reproduce/")


def test_deletes_that_answer_the_object_are_documented_so(
    opened: dict[str, Any], owner_client: APIClient, client_for: ClientFor, maintainer: User
) -> None:
    reviewer = client_for(maintainer)
    comment = check(reviewer, "POST", REQUEST + "comments/", {"body": "why?"}).json()
    assert check(reviewer, "DELETE", REQUEST + f"comments/{comment['id']}/").status_code == 200
    settings = PROJECT + "models/fraud/review-settings/"
    check(owner_client, "PATCH", settings, {"required_approvals": 2})
    assert check(owner_client, "DELETE", settings).status_code == 200
