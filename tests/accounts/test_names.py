"""Usernames, team and project names are URL segments; the site's own first segments are reserved."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Team, User
from accounts.names import name_problem
from accounts.services import team_create
from core.errors import DomainError
from tests.helpers import post_json


@pytest.mark.parametrize("name", ["ana", "a", "team-1", "x_y", "0day", "a" * 64])
def test_acceptable_names(name: str) -> None:
    assert name_problem(name, team=True) is None


@pytest.mark.parametrize("name", ["", "-ana", "_x", "Ana", "a.b", "a/b", "a b", "ä", "a" * 65, "../x"])
def test_malformed_names_are_refused(name: str) -> None:
    assert name_problem(name, team=True) is not None


@pytest.mark.parametrize("name", ["api", "login", "static", "healthz", "ws", "docs", "mlflow"])
def test_reserved_names_are_refused_for_teams_only(name: str) -> None:
    assert "reserved" in (name_problem(name, team=True) or "")
    assert name_problem(name, team=False) is None


@pytest.mark.django_db
def test_username_must_be_a_usable_team_name() -> None:
    # given a username that would shadow the API's URL
    user = User(username="api", email="x@example.com")
    # when / then: model validation (used by createsuperuser and forms) refuses it
    with pytest.raises(ValidationError) as excinfo:
        user.full_clean()
    assert "username" in excinfo.value.message_dict


@pytest.mark.django_db
def test_team_create_refuses_reserved_name(owner: User) -> None:
    with pytest.raises(DomainError, match="reserved"):
        team_create(name="login", owner=owner)
    assert not Team.objects.filter(name="login").exists()


@pytest.mark.django_db
def test_project_path_with_dotted_team_is_refused(client_for, owner: User) -> None:
    response = post_json(client_for(owner), "/api/v1/runs/", {"project": "owner.x/proj"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "project"


@pytest.mark.django_db
def test_run_starting_in_the_future_is_refused(client_for, owner: User) -> None:
    start = (timezone.now() + timedelta(hours=2)).isoformat()
    response = post_json(client_for(owner), "/api/v1/runs/", {"project": "owner/p", "start_time": start})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "start_time"


@pytest.mark.django_db
def test_schema_documents_bearer_tokens(client_for, owner: User) -> None:
    schema = client_for(owner).get("/api/schema/?format=json").json()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (asy_…) from the API tokens page, /settings/tokens/ (or `assay login`).",
    }
    operation_ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))
