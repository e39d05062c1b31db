"""Projects and experiments: listing what the caller may see, creating, and detail."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Project, User
from experiments.models import Experiment
from tests.factories import ExperimentFactory, ProjectFactory
from tests.helpers import assert_error, post_json

pytestmark = pytest.mark.django_db

PROJECTS = "/api/v1/projects/"


def test_projects_list_shows_only_visible_projects(
    owner_client: APIClient, viewer_client: APIClient, outsider_client: APIClient, outsider: User, project: Project
) -> None:
    ProjectFactory.create(team=project.team, name="second")
    ProjectFactory.create(team=outsider.personal_team, name="private")
    ProjectFactory.create(name="elsewhere")

    def paths(client: APIClient) -> list[str]:
        body = client.get(PROJECTS).json()
        assert body["count"] == len(body["results"])
        return [p["path"] for p in body["results"]]

    assert paths(owner_client) == ["acme/proj", "acme/second"]
    assert paths(viewer_client) == ["acme/proj"]
    assert paths(outsider_client) == ["outsider/private"]


def test_project_output_shape(owner_client: APIClient, project: Project) -> None:
    (item,) = owner_client.get(PROJECTS).json()["results"]

    assert item["id"] == project.id
    assert item["team"] == "acme"
    assert item["name"] == "proj"
    assert item["path"] == "acme/proj"
    assert set(item) == {"id", "team", "name", "path", "description", "created_at"}


def test_create_project_in_an_own_team(owner_client: APIClient, owner: User) -> None:
    response = post_json(owner_client, PROJECTS, {"team": "owner", "name": "Vision", "description": "cats"})

    assert response.status_code == 201, response.content
    assert response.json()["path"] == "owner/vision"
    project = Project.objects.get(team=owner.personal_team, name="vision")
    assert project.created_by == owner
    assert project.description == "cats"


def test_create_an_existing_project_is_a_conflict(owner_client: APIClient, project: Project) -> None:
    assert_error(
        post_json(owner_client, PROJECTS, {"team": "acme", "name": "PROJ"}), 409, code="conflict", field="name"
    )
    assert Project.objects.count() == 1


def test_create_project_in_an_invisible_team_is_not_found(outsider_client: APIClient, project: Project) -> None:
    for team in ("acme", "no-such-team"):
        response = post_json(outsider_client, PROJECTS, {"team": team, "name": "sneaky"})
        assert_error(response, 404, code="not_found", field="team")
    assert not Project.objects.filter(name="sneaky").exists()


def test_create_project_in_a_visible_team_without_membership_is_forbidden(
    viewer_client: APIClient, project: Project
) -> None:
    assert_error(post_json(viewer_client, PROJECTS, {"team": "acme", "name": "x"}), 403, field="team")
    assert not Project.objects.filter(name="x").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "team"),
        ({"team": "owner"}, "name"),
        ({"team": "owner", "name": "has space"}, "name"),
        ({"team": "owner", "name": "-dash"}, "name"),
        ({"team": "owner", "name": "n" * 65}, "name"),
    ],
)
def test_create_project_validates_its_input(owner_client: APIClient, body: dict[str, str], field: str) -> None:
    assert_error(post_json(owner_client, PROJECTS, body), 400, field=field)
    assert Project.objects.count() == 0


def test_project_detail(owner_client: APIClient, viewer_client: APIClient, project: Project) -> None:
    assert owner_client.get("/api/v1/projects/acme/proj/").json()["id"] == project.id
    assert viewer_client.get("/api/v1/projects/ACME/Proj/").json()["path"] == "acme/proj"


def test_project_detail_is_not_found_for_outsiders_and_missing_projects(
    outsider_client: APIClient, owner_client: APIClient, project: Project
) -> None:
    invisible = outsider_client.get("/api/v1/projects/acme/proj/")
    missing = owner_client.get("/api/v1/projects/acme/missing/")

    assert_error(invisible, 404, code="not_found")
    assert invisible.json() == missing.json()


def test_experiments_are_listed_and_created(owner_client: APIClient, project: Project) -> None:
    ExperimentFactory.create(project=project, name="baseline")
    path = "/api/v1/projects/acme/proj/experiments/"

    created = post_json(owner_client, path, {"name": "ablation"})
    again = post_json(owner_client, path, {"name": "Ablation"})

    assert created.status_code == 201
    assert again.json()["id"] == created.json()["id"]
    assert [e["name"] for e in owner_client.get(path).json()] == ["ablation", "baseline"]


def test_a_viewer_may_list_but_not_create_experiments(viewer_client: APIClient, project: Project) -> None:
    path = "/api/v1/projects/acme/proj/experiments/"

    assert viewer_client.get(path).json() == []
    assert_error(post_json(viewer_client, path, {"name": "mine"}), 403, code="permission_denied")
    assert not Experiment.objects.filter(name="mine").exists()


def test_experiment_name_is_validated(owner_client: APIClient, project: Project) -> None:
    path = "/api/v1/projects/acme/proj/experiments/"

    assert_error(post_json(owner_client, path, {"name": ""}), 400, field="name")
    assert_error(post_json(owner_client, path, {"name": "e" * 129}), 400, field="name")
