"""The OpenAPI schema is valid, documents every error answer, and matches real answers."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from accounts.models import Project, User
from core.openapi import ERROR_COMPONENT
from tests.conftest import ClientFor
from tests.helpers import post_json
from tests.openapi import api_schema, assert_conforms

ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}


def test_the_schema_is_valid_openapi() -> None:
    validate(api_schema())


def test_every_operation_documents_its_errors_with_the_one_error_component() -> None:
    for path, item in api_schema()["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"401", "403"} <= set(responses), (method, path)
            if method in {"post", "put", "patch"}:
                assert {"400", "409", "413", "415"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            for code, answer in responses.items():
                if code[0] in "45":
                    assert answer["content"]["application/json"]["schema"] == ERROR_REF, (method, path, code)


@pytest.mark.django_db
def test_paged_lists_match_the_schema(owner_client: APIClient, project: Project) -> None:
    response = owner_client.get("/api/v1/projects/")
    assert response.status_code == 200
    assert response.json()["results"]
    assert_conforms("GET", "/api/v1/projects/", response)
    url = "/api/v1/audit/?project=acme/proj"
    assert_conforms("GET", url, owner_client.get(url))


@pytest.mark.django_db
def test_error_answers_match_the_schema(
    owner_client: APIClient, anon_client: APIClient, client_for: ClientFor, outsider: User, project: Project
) -> None:
    assert_conforms("GET", "/api/v1/projects/", anon_client.get("/api/v1/projects/"))  # 401
    assert_conforms("GET", "/api/v1/audit/", client_for(outsider).get("/api/v1/audit/"))  # 403
    assert_conforms("GET", "/api/v1/projects/acme/nope/", owner_client.get("/api/v1/projects/acme/nope/"))  # 404
    assert_conforms("POST", "/api/v1/projects/", post_json(owner_client, "/api/v1/projects/", {"team": "acme"}))  # 400
    assert_conforms("GET", "/api/v1/projects/?page_size=0", owner_client.get("/api/v1/projects/?page_size=0"))  # 400
