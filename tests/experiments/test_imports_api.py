"""The run import API (``assay import``): a run created as its source had it, once; the
source's id kept; the author kept as a name when no Assay user of the project has it; bad
input refused naming the field with nothing written; roles (owner, member, viewer, outsider)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Project, User
from experiments.models import LogBatch, Param, Run, Tag
from tests.factories import UserFactory
from tests.helpers import assert_error, post_json

pytestmark = pytest.mark.django_db

BASE = "/api/v1/projects/acme/proj/imports/runs/"
MLFLOW_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _project(project: Project) -> Project:
    return project


def body(**changes: Any) -> dict[str, Any]:
    return {
        "source": "mlflow",
        "source_id": MLFLOW_ID,
        "run_id": MLFLOW_ID,
        "experiment": "training",
        "name": "lr-sweep-3",
        "status": "failed",
        "start_time": "2023-03-01T10:00:00Z",
        "end_time": "2023-03-01T11:30:00Z",
        "author": "ana",
        "params": {"lr": "0.01", "epochs": "3"},
        "tags": {"mlflow.user": "ana", "team": "risk"},
        **changes,
    }


def test_an_imported_run_keeps_its_id_times_status_and_author_name(owner_client: APIClient, project: Project) -> None:
    response = post_json(owner_client, BASE, body())

    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer == {"id": MLFLOW_ID, "created": True, "complete": False, "id_kept": True, "batches": []}
    run = Run.objects.get(pk=MLFLOW_ID)
    assert (run.source, run.source_id, run.status, run.name) == ("mlflow", MLFLOW_ID, "failed", "lr-sweep-3")
    assert run.start_time.isoformat() == "2023-03-01T10:00:00+00:00"
    assert run.duration_seconds == 5400
    assert run.author is not None
    assert run.author.username == "owner"
    assert run.source_author == "ana"
    assert dict(Param.objects.filter(run=run).values_list("key", "value")) == {"lr": "0.01", "epochs": "3"}
    assert Tag.objects.filter(run=run).count() == 2


def test_an_author_who_holds_a_role_on_the_project_is_the_runs_author(
    owner_client: APIClient, member: User, project: Project
) -> None:
    response = post_json(owner_client, BASE, body(author="member"))

    run = Run.objects.get(pk=response.json()["id"])
    assert run.author == member
    assert run.source_author == ""


def test_a_user_of_that_name_outside_the_project_is_not_made_the_author(owner_client: APIClient) -> None:
    UserFactory.create(username="ana")

    response = post_json(owner_client, BASE, body())

    run = Run.objects.get(pk=response.json()["id"])
    assert run.author is not None
    assert run.author.username == "owner"
    assert run.source_author == "ana"


def test_importing_the_same_source_run_again_adds_nothing(owner_client: APIClient) -> None:
    first = post_json(owner_client, BASE, body())
    LogBatch.objects.create(run_id=first.json()["id"], batch_id="imp-000000", points=10)

    again = post_json(owner_client, BASE, body(name="renamed", params={"lr": "9"}))

    assert again.status_code == 200, again.content
    assert again.json() == {
        "id": MLFLOW_ID,
        "created": False,
        "complete": False,
        "id_kept": True,
        "batches": ["imp-000000"],
    }
    assert Run.objects.count() == 1
    assert Run.objects.get().name == "lr-sweep-3"


def test_a_completed_import_answers_complete_and_lists_no_batch(owner_client: APIClient) -> None:
    post_json(owner_client, BASE, body())
    done = post_json(owner_client, f"{BASE}{MLFLOW_ID}/complete/", {})

    again = post_json(owner_client, BASE, body())

    assert done.status_code == 200, done.content
    assert again.json()["complete"] is True
    assert again.json()["batches"] == []
    assert Run.objects.get().imported_at is not None


def test_a_run_id_another_run_holds_gets_a_new_id(owner_client: APIClient, run: Run) -> None:
    response = post_json(owner_client, BASE, body(run_id=run.id, source_id="other"))

    assert response.status_code == 201
    assert response.json()["id_kept"] is False
    assert response.json()["id"] != run.id


def test_lookup_tells_which_source_runs_are_imported(owner_client: APIClient) -> None:
    post_json(owner_client, BASE, body())

    response = post_json(owner_client, BASE + "lookup/", {"source": "mlflow", "source_ids": [MLFLOW_ID, "nope"]})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "found": {MLFLOW_ID: {"id": MLFLOW_ID, "complete": False}},
        "may": {"runs": True, "models": True, "protected_aliases": True},
    }


def test_lookup_tells_a_viewer_they_may_import_nothing(viewer_client: APIClient) -> None:
    response = post_json(viewer_client, BASE + "lookup/", {"source": "mlflow", "source_ids": ["x"]})

    assert response.json()["may"] == {"runs": False, "models": False, "protected_aliases": False}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source": "comet"}, "source"),
        ({"source_id": ""}, "source_id"),
        ({"source_id": 12}, "source_id"),
        ({"run_id": "XYZ"}, "run_id"),
        ({"status": "done"}, "status"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"end_time": "2020-01-01T00:00:00Z"}, "end_time"),
        ({"start_time": "2999-01-01T00:00:00Z", "end_time": None}, "start_time"),
        ({"status": "running"}, "end_time"),
        ({"params": {"lr": [1]}}, "params.lr"),
        ({"params": {"bad key!": "1"}}, "params.bad key!"),
        ({"tags": "x"}, "tags"),
        ({"info": {"nope": {}}}, "info"),
        ({"owner": "me"}, "owner"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    owner_client: APIClient, change: dict[str, Any], field: str
) -> None:
    response = post_json(owner_client, BASE, body(**change))

    assert_error(response, 400, field=field)
    assert Run.objects.count() == 0


def test_roles_owner_and_member_import_viewer_is_forbidden_outsider_sees_nothing(
    owner_client: APIClient, member_client: APIClient, viewer_client: APIClient, outsider_client: APIClient
) -> None:
    assert post_json(member_client, BASE, body()).status_code == 201
    assert_error(post_json(viewer_client, BASE, body(source_id="2")), 403)
    missing = post_json(outsider_client, BASE, body(source_id="3"))
    assert_error(missing, 404)
    assert post_json(outsider_client, "/api/v1/projects/acme/nope/imports/runs/", body()).json() == missing.json()
    assert_error(post_json(viewer_client, f"{BASE}{MLFLOW_ID}/complete/", {}), 403)
    assert_error(post_json(outsider_client, f"{BASE}{MLFLOW_ID}/complete/", {}), 404)
    assert Run.objects.count() == 1


def test_completing_a_run_that_was_not_imported_is_refused(owner_client: APIClient, run: Run) -> None:
    assert_error(post_json(owner_client, f"{BASE}{run.id}/complete/", {}), 400, code="not_imported")
