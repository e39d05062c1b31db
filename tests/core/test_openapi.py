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


def _request_bodies() -> list[tuple[str, str, dict[str, object]]]:
    schema = api_schema()
    components = schema["components"]["schemas"]
    bodies = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content:
                ref = content["schema"]["$ref"].rsplit("/", 1)[-1]
                bodies.append((method, path, components[ref]))
    return bodies


def test_every_request_body_refuses_unknown_fields_in_the_schema() -> None:
    bodies = _request_bodies()
    assert len(bodies) > 30
    for method, path, body in bodies:
        assert body.get("additionalProperties") is False, (method, path)


@pytest.mark.parametrize(
    ("url", "body"),
    [
        # answered 404 (the team lookup) before ProjectIn refused unknown keys
        ("/api/v1/projects/", {"team": "nope", "name": "p", "colour": "red"}),
        ("/api/v1/runs/", {"project": "acme/proj", "colour": "red"}),
        ("/api/v1/projects/acme/proj/experiments/", {"name": "e", "colour": "red"}),
    ],
)
def test_an_unknown_body_field_is_a_400_naming_it(
    owner_client: APIClient, project: Project, url: str, body: dict[str, str]
) -> None:
    response = post_json(owner_client, url, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == "colour"


def test_path_and_paging_parameters_carry_the_bounds_the_server_enforces() -> None:
    paths = api_schema()["paths"]
    parameters = {p["name"]: p["schema"] for p in paths["/api/v1/runs/{run_id}/metrics/{key}/"]["get"]["parameters"]}
    assert parameters["run_id"]["pattern"] == "^[0-9a-f]{32}$"
    assert (parameters["limit"]["minimum"], parameters["offset"]["minimum"], parameters["max_points"]["minimum"]) == (
        1,
        0,
        2,
    )
    page = {p["name"]: p["schema"] for p in paths["/api/v1/projects/"]["get"]["parameters"]}
    assert (page["page_size"]["minimum"], page["page_size"]["maximum"]) == (1, 1000)
    number = {
        p["name"]: p["schema"]
        for p in paths["/api/v1/projects/{team}/{project}/review-requests/{number}/"]["get"]["parameters"]
    }
    assert number["number"]["minimum"] == 1
    assert number["team"]["pattern"].startswith("^[A-Za-z0-9]")


def _links(path: str, method: str, status: str) -> dict[str, dict[str, str]]:
    """The links of one answer, keyed by the operation they lead to ("get /api/v1/runs/{run_id}/")."""
    links = api_schema()["paths"][path][method]["responses"][status].get("links", {})
    out = {}
    for link in links.values():
        target = link["operationRef"].removeprefix("#/paths/").replace("~1", "/").replace("~0", "~")
        where, verb = target.rsplit("/", 1)
        out[f"{verb} {where}"] = link["parameters"]
    return out


def test_created_objects_link_to_the_operations_on_them() -> None:
    created = _links("/api/v1/runs/", "post", "201")
    assert created["get /api/v1/runs/{run_id}/"] == {"run_id": "$response.body#/id"}
    assert {"post /api/v1/runs/{run_id}/log/", "get /api/v1/runs/{run_id}/metrics/"} <= set(created)
    listed = _links("/api/v1/runs/", "get", "200")
    assert listed["get /api/v1/runs/{run_id}/"] == {"run_id": "$response.body#/results/0/id"}
    review = _links("/api/v1/projects/{team}/{project}/review-requests/", "post", "201")
    assert review["post /api/v1/projects/{team}/{project}/review-requests/{number}/comments/"] == {
        "number": "$response.body#/number",
        "team": "$request.path.team",
        "project": "$request.path.project",
    }
    versions = _links("/api/v1/projects/{team}/{project}/models/{model}/versions/", "get", "200")
    assert versions["get /api/v1/projects/{team}/{project}/models/{model}/versions/{version}/"]["version"] == (
        "$response.body#/0/number"
    )
    project = _links("/api/v1/projects/", "post", "201")
    assert project["get /api/v1/projects/{team}/{project}/"] == {
        "team": "$response.body#/team",
        "project": "$response.body#/name",
    }
    # a list never links to a DELETE (the first token listed may be the caller's own)
    assert _links("/api/v1/tokens/", "get", "200") == {}
