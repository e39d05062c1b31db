"""Runs: create (with project and experiment auto-creation), read, update, and the paged,
sorted runs list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Project, ProjectRole, User
from experiments.models import Experiment, Run, RunStatus, Tag
from tests.factories import ProjectFactory, ProjectGrantFactory, RunFactory, UserFactory
from tests.helpers import assert_error, log_path, patch_json, post_json, run_path

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs/"


def create_run(client: APIClient, **body: Any) -> Any:
    return post_json(client, RUNS, {"project": "acme/proj", **body})


# --- create ------------------------------------------------------------------------------------


def test_create_auto_creates_project_and_experiment_in_the_personal_team(owner: User) -> None:
    from accounts.services import token_create

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + token_create(user=owner, name="t").raw)

    response = post_json(
        client,
        RUNS,
        {"project": "owner/proj", "experiment": "baseline", "name": "r1", "config": {"lr": 0.01}, "tags": {"a": "b"}},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    project = Project.objects.get(team__name="owner", name="proj")
    assert project.team == owner.personal_team
    assert project.created_by == owner
    assert Experiment.objects.filter(project=project, name="baseline").count() == 1
    assert body["project"] == "owner/proj"
    assert body["experiment"] == "baseline"
    assert body["name"] == "r1"
    assert body["author"] == "owner"
    assert body["status"] == "running"
    assert body["end_time"] is None
    assert body["config"] == {"lr": 0.01}
    assert body["tags"] == {"a": "b"}
    assert body["params"] == {}
    assert body["metrics"] == {}
    assert body["url"].endswith(f"/owner/proj/runs/{body['id']}/")
    assert len(body["id"]) == 32


def test_a_second_run_reuses_project_and_experiment(owner_client: APIClient, run: Run) -> None:
    response = create_run(owner_client, experiment="DEFAULT")

    assert response.status_code == 201
    assert Project.objects.count() == 1
    assert Experiment.objects.count() == 1
    assert Run.objects.filter(project=run.project).count() == 2


def test_a_team_member_may_create_runs_and_projects_in_the_team(member_client: APIClient, project: Project) -> None:
    assert create_run(member_client).status_code == 201
    assert create_run(member_client, project="acme/newproj").status_code == 201
    assert Project.objects.filter(team=project.team, name="newproj").exists()


def test_project_path_is_case_insensitive(owner_client: APIClient, project: Project) -> None:
    response = create_run(owner_client, project="ACME/Proj")

    assert response.status_code == 201
    assert response.json()["project"] == "acme/proj"


def test_create_in_a_team_the_caller_cannot_see_is_not_found(outsider_client: APIClient, project: Project) -> None:
    existing = create_run(outsider_client, project="acme/proj")
    new_project = create_run(outsider_client, project="acme/other")
    no_team = create_run(outsider_client, project="nosuchteam/proj")

    for response in (existing, new_project, no_team):
        assert_error(response, 404, code="not_found", field="project")
    assert list(Project.objects.values_list("name", flat=True)) == ["proj"]
    assert Run.objects.count() == 0


def test_create_in_a_visible_team_the_caller_is_not_member_of_is_forbidden(
    viewer_client: APIClient, project: Project
) -> None:
    # the viewer sees team acme through a grant, so 404 would hide nothing
    new_project = create_run(viewer_client, project="acme/other")
    granted_project = create_run(viewer_client, project="acme/proj")

    assert_error(new_project, 403, code="permission_denied", field="project")
    assert_error(granted_project, 403, code="permission_denied")
    assert not Project.objects.filter(name="other").exists()
    assert Run.objects.count() == 0


def test_a_writer_grant_allows_runs_in_that_project_only(client_for: Any, project: Project) -> None:
    writer = UserFactory.create(username="writer")
    ProjectGrantFactory.create(project=project, user=writer, role=ProjectRole.WRITER)
    client = client_for(writer)

    assert create_run(client).status_code == 201
    assert_error(create_run(client, project="acme/another"), 403)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"project": "acme"}, "project"),
        ({"project": "acme/proj/x"}, "project"),
        ({"project": "acme/Bad Name"}, "project"),
        ({"project": "acme/-proj"}, "project"),
        ({"project": None}, "project"),
        ({"name": ""}, "name"),
        ({"name": "n" * 129}, "name"),
        ({"experiment": ""}, "experiment"),
        ({"experiment": "e" * 129}, "experiment"),
        ({"config": [1, 2]}, "config"),
        ({"config": "lr=1"}, "config"),
        ({"config": {"blob": "x" * (256 * 1024)}}, "config"),
        ({"tags": {"a/../b": "x"}}, "tags.a/../b"),
        ({"tags": {"k": ["v"]}}, "tags.k"),
        ({"tags": ["k"]}, "tags"),
        ({"info": {"secrets": {}}}, "info"),
        ({"info": {"code": "abc123"}}, "info.code"),
        ({"info": ["code"]}, "info"),
        ({"start_time": "yesterday"}, "start_time"),
    ],
)
def test_invalid_run_input_is_refused_with_its_field_and_creates_nothing(
    owner_client: APIClient, project: Project, body: dict[str, Any], field: str
) -> None:
    response = post_json(owner_client, RUNS, {"project": "acme/fresh", **body})

    assert_error(response, 400, field=field)
    assert Run.objects.count() == 0
    assert not Project.objects.filter(name="fresh").exists()


def test_missing_project_is_refused(owner_client: APIClient) -> None:
    assert_error(post_json(owner_client, RUNS, {"name": "r"}), 400, field="project")


def test_info_sections_are_stored(owner_client: APIClient, project: Project) -> None:
    info = {"code": {"commit": "abc123", "dirty": False}, "environment": {"python": "3.11"}}

    body = create_run(owner_client, info=info).json()

    assert body["info"] == info
    assert Run.objects.get(pk=body["id"]).info == info


def test_create_refuses_server_owned_fields(owner_client: APIClient, outsider: User, project: Project) -> None:
    # Unknown keys are refused naming the first, not ignored (issue 17: the schema says
    # additionalProperties: false); a forged id, author or status writes nothing.
    forged = {
        "id": "a" * 32,
        "author": outsider.username,
        "author_id": outsider.pk,
        "status": "finished",
        "end_time": "2020-01-01T00:00:00Z",
        "created_at": "2000-01-01T00:00:00Z",
        "project_id": "b" * 32,
    }

    response = create_run(owner_client, **forged)

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "author"
    assert not Run.objects.exists()


# --- read and update -------------------------------------------------------------------------


def test_get_run_returns_its_one_shape(owner_client: APIClient, run: Run) -> None:
    post_json(
        owner_client, log_path(run), {"params": {"lr": "0.1"}, "metrics": [{"key": "loss", "step": 3, "value": 1}]}
    )

    body = owner_client.get(run_path(run)).json()

    assert body["id"] == run.id
    assert body["project"] == "acme/proj"
    assert body["params"] == {"lr": "0.1"}
    assert body["metrics"]["loss"]["last"] == 1.0
    assert body["metrics"]["loss"]["last_step"] == 3
    assert set(body) == {
        "id",
        "project",
        "experiment",
        "name",
        "author",
        "status",
        "start_time",
        "end_time",
        "duration",
        "notes",
        "config",
        "info",
        "params",
        "tags",
        "metrics",
        "url",
    }


def test_an_unknown_run_is_not_found(owner_client: APIClient) -> None:
    assert_error(owner_client.get(run_path("0" * 32)), 404, code="not_found")
    assert_error(owner_client.get(run_path("x" * 40)), 404, code="not_found")


def test_finishing_a_run_sets_end_time_and_resuming_clears_it(owner_client: APIClient, run: Run) -> None:
    finished = patch_json(owner_client, run_path(run), {"status": "finished"})

    assert finished.status_code == 200, finished.content
    assert finished.json()["status"] == "finished"
    assert finished.json()["end_time"] is not None
    assert finished.json()["duration"] >= 0
    run.refresh_from_db()
    assert run.end_time is not None

    resumed = patch_json(owner_client, run_path(run), {"status": "running"})

    assert resumed.json()["status"] == "running"
    assert resumed.json()["end_time"] is None
    assert resumed.json()["duration"] is None
    run.refresh_from_db()
    assert run.end_time is None


@pytest.mark.parametrize("terminal", ["failed", "killed"])
def test_every_terminal_status_sets_end_time(owner_client: APIClient, run: Run, terminal: str) -> None:
    body = patch_json(owner_client, run_path(run), {"status": terminal}).json()

    assert body["status"] == terminal
    assert body["end_time"] is not None


def test_an_explicit_end_time_is_kept(owner_client: APIClient, run: Run) -> None:
    end = (run.start_time + timedelta(hours=2)).isoformat()

    body = patch_json(owner_client, run_path(run), {"status": "finished", "end_time": end}).json()

    assert body["duration"] == pytest.approx(7200, abs=1)


def test_end_time_before_start_time_is_refused(owner_client: APIClient, run: Run) -> None:
    end = (run.start_time - timedelta(hours=1)).isoformat()

    assert_error(
        patch_json(owner_client, run_path(run), {"status": "finished", "end_time": end}), 400, field="end_time"
    )
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_an_unknown_status_is_refused(owner_client: APIClient, run: Run) -> None:
    assert_error(patch_json(owner_client, run_path(run), {"status": "paused"}), 400, field="status")


def test_patch_renames_annotates_and_merges_config_and_info(owner_client: APIClient, run: Run) -> None:
    patch_json(owner_client, run_path(run), {"config": {"lr": 1, "bs": 32}, "info": {"code": {"commit": "a"}}})

    body = patch_json(
        owner_client,
        run_path(run),
        {"name": "renamed", "notes": "good one", "config": {"lr": 2}, "info": {"code": {"branch": "main"}}},
    ).json()

    assert body["name"] == "renamed"
    assert body["notes"] == "good one"
    assert body["config"] == {"lr": 2, "bs": 32}
    assert body["info"] == {"code": {"commit": "a", "branch": "main"}}


def test_patch_with_a_bad_info_section_is_refused(owner_client: APIClient, run: Run) -> None:
    assert_error(patch_json(owner_client, run_path(run), {"info": {"weird": {}}}), 400, field="info")


def test_patch_refuses_server_owned_fields(owner_client: APIClient, outsider: User, run: Run) -> None:
    other_project = ProjectFactory.create(team=outsider.personal_team, name="theirs")
    before = Run.objects.get(pk=run.pk)

    response = patch_json(
        owner_client,
        run_path(run),
        {
            "id": "c" * 32,
            "author": outsider.username,
            "author_id": outsider.pk,
            "project": other_project.path,
            "project_id": other_project.pk,
            "experiment_id": "d" * 32,
            "created_at": "2000-01-01T00:00:00Z",
            "start_time": "2000-01-01T00:00:00Z",
            "notes": "not even this changes",
        },
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "author"
    after = Run.objects.get(pk=run.pk)
    assert not Run.objects.filter(pk="c" * 32).exists()
    assert (after.author, after.project, after.notes) == (before.author, before.project, before.notes)


def test_a_teammate_may_update_a_run(member_client: APIClient, run: Run) -> None:
    assert patch_json(member_client, run_path(run), {"notes": "from member"}).json()["notes"] == "from member"


def test_a_viewer_may_read_but_not_update(viewer_client: APIClient, run: Run) -> None:
    assert viewer_client.get(run_path(run)).status_code == 200

    assert_error(patch_json(viewer_client, run_path(run), {"status": "killed"}), 403, code="permission_denied")
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


# --- the runs list ---------------------------------------------------------------------------


@pytest.fixture
def three_runs(owner_client: APIClient, project: Project) -> dict[str, Run]:
    """Runs b, a, c started in that order, with loss 0.3, none, 0.1 and lr "0.2", "0.1", none."""
    now = timezone.now()
    runs: dict[str, Run] = {}
    for offset, name in enumerate(["b", "a", "c"]):
        start = now - timedelta(hours=1) + timedelta(minutes=offset)
        response = create_run(owner_client, name=name, start_time=start.isoformat())
        runs[name] = Run.objects.get(pk=response.json()["id"])
    post_json(
        owner_client,
        log_path(runs["b"]),
        {"params": {"lr": "0.2"}, "metrics": [{"key": "loss", "step": 0, "value": 0.3}]},
    )
    post_json(owner_client, log_path(runs["a"]), {"params": {"lr": "0.1"}})
    post_json(owner_client, log_path(runs["c"]), {"metrics": [{"key": "loss", "step": 0, "value": 0.1}]})
    return runs


def names(client: APIClient, **params: Any) -> list[str]:
    response = client.get(RUNS, {"project": "acme/proj", **params})
    assert response.status_code == 200, response.content
    return [r["name"] for r in response.json()["results"]]


def test_runs_list_requires_a_project(owner_client: APIClient) -> None:
    assert_error(owner_client.get(RUNS), 400, field="project")
    assert_error(owner_client.get(RUNS, {"project": "nope"}), 400, field="project")


def test_runs_list_defaults_to_newest_first(owner_client: APIClient, three_runs: dict[str, Run]) -> None:
    assert names(owner_client) == ["c", "a", "b"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("start_time", ["b", "a", "c"]),
        ("name", ["a", "b", "c"]),
        ("-name", ["c", "b", "a"]),
        ("metrics.loss", ["c", "b", "a"]),
        ("-metrics.loss", ["b", "c", "a"]),
        ("params.lr", ["a", "b", "c"]),
        ("-params.lr", ["b", "a", "c"]),
    ],
)
def test_runs_list_sorts_by_attributes_metrics_and_params(
    owner_client: APIClient, three_runs: dict[str, Run], sort: str, expected: list[str]
) -> None:
    assert names(owner_client, sort=sort) == expected


def test_runs_list_sorts_by_author_name(
    owner_client: APIClient, member_client: APIClient, three_runs: dict[str, Run]
) -> None:
    create_run(member_client, name="m")

    assert names(owner_client, sort="author")[0] == "m"
    assert names(owner_client, sort="-author")[-1] == "m"


def test_runs_list_sorts_by_duration_with_unfinished_runs_last(
    owner_client: APIClient, three_runs: dict[str, Run]
) -> None:
    for name, minutes in (("a", 30), ("c", 5)):
        run = three_runs[name]
        end = (run.start_time + timedelta(minutes=minutes)).isoformat()
        patch_json(owner_client, run_path(run), {"status": "finished", "end_time": end})

    assert names(owner_client, sort="duration") == ["c", "a", "b"]
    assert names(owner_client, sort="-duration") == ["a", "c", "b"]


@pytest.mark.parametrize(
    "sort",
    [
        "password",
        "author__password",
        "-author__password",
        "metrics.",
        "params.",
        "metrics.a/../b",
        "--name",
        "pk",
        "id",
    ],
)
def test_runs_list_refuses_an_unknown_sort(owner_client: APIClient, three_runs: dict[str, Run], sort: str) -> None:
    assert_error(owner_client.get(RUNS, {"project": "acme/proj", "sort": sort}), 400, field="sort")


def test_runs_list_filters_by_status(owner_client: APIClient, three_runs: dict[str, Run]) -> None:
    patch_json(owner_client, run_path(three_runs["a"]), {"status": "failed"})

    assert names(owner_client, status="failed") == ["a"]
    assert names(owner_client, status="running", sort="name") == ["b", "c"]
    assert names(owner_client, status="finished") == []
    assert_error(owner_client.get(RUNS, {"project": "acme/proj", "status": "deleted"}), 400, field="status")


def test_runs_list_filters_by_experiment(owner_client: APIClient, three_runs: dict[str, Run]) -> None:
    create_run(owner_client, experiment="ablation", name="z")

    assert names(owner_client, experiment="ablation") == ["z"]
    assert_error(owner_client.get(RUNS, {"project": "acme/proj", "experiment": "nope"}), 404, field="experiment")


def test_runs_list_holds_only_the_projects_runs(
    owner_client: APIClient, three_runs: dict[str, Run], owner: User
) -> None:
    RunFactory.create(
        project=ProjectFactory.create(team=three_runs["a"].project.team, name="sibling"), name="elsewhere"
    )
    RunFactory.create(name="foreign")

    response = owner_client.get(RUNS, {"project": "acme/proj"}).json()

    assert response["next"] is None
    assert sorted(r["name"] for r in response["results"]) == ["a", "b", "c"]
    b = next(r for r in response["results"] if r["name"] == "b")
    assert b["params"] == {"lr": "0.2"}
    assert b["metrics"]["loss"]["last"] == 0.3


def test_runs_list_pages_by_page_size(owner_client: APIClient, three_runs: dict[str, Run]) -> None:
    query: dict[str, Any] = {"project": "acme/proj", "sort": "name", "page_size": 2}
    first = owner_client.get(RUNS, query).json()

    assert [r["name"] for r in first["results"]] == ["a", "b"]
    assert "cursor=" in first["next"]
    second = owner_client.get(first["next"]).json()
    assert [r["name"] for r in second["results"]] == ["c"]
    assert second["next"] is None


@pytest.mark.parametrize("raw", ["5000", "0", "-3", "abc", "", str(10**9), "1_000"])
@pytest.mark.parametrize("name", ["page_size", "max_results"])
def test_runs_list_page_size_is_bounded(
    owner_client: APIClient, three_runs: dict[str, Run], name: str, raw: str
) -> None:
    # Issue 17: out of 1..1000 the page size is refused naming it (it was clamped silently).
    response = owner_client.get(RUNS, {"project": "acme/proj", name: raw})

    assert_error(response, 400, field=name)


def test_runs_list_takes_the_largest_page_size(owner_client: APIClient, three_runs: dict[str, Run]) -> None:
    assert len(names(owner_client, page_size=1000)) == 3


def test_runs_list_of_an_invisible_project_is_not_found(outsider_client: APIClient, three_runs: dict[str, Run]) -> None:
    assert_error(outsider_client.get(RUNS, {"project": "acme/proj"}), 404, code="not_found")
    assert_error(outsider_client.get(RUNS, {"project": "acme/nosuch"}), 404, code="not_found")


def test_tags_are_listed_with_the_run(owner_client: APIClient, run: Run) -> None:
    Tag.objects.create(run=run, key="stage", value="dev")

    assert owner_client.get(run_path(run)).json()["tags"] == {"stage": "dev"}


@pytest.mark.django_db
def test_repeated_client_id_returns_the_same_run(client_for, owner) -> None:
    # given a run created with a client id
    client = client_for(owner)
    body = {"project": "owner/idem", "client_id": "3f0c2a9e6d0b4b5c8f1e2d3c4b5a6978"}
    first = post_json(client, "/api/v1/runs/", body)
    assert first.status_code == 201
    # when the same create is sent again (a retry, or an offline run synced twice)
    second = post_json(client, "/api/v1/runs/", body)
    # then it answers with the first run and creates nothing
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert Run.objects.filter(project__name="idem").count() == 1


@pytest.mark.django_db
def test_client_id_is_scoped_to_its_author(client_for, owner, member) -> None:
    body = {"client_id": "same-id"}
    a = post_json(client_for(owner), "/api/v1/runs/", {**body, "project": "owner/p"})
    b = post_json(client_for(member), "/api/v1/runs/", {**body, "project": "member/p"})
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.django_db
def test_client_id_reused_for_another_project_is_a_conflict(client_for, owner) -> None:
    client = client_for(owner)
    assert post_json(client, "/api/v1/runs/", {"project": "owner/a", "client_id": "x1"}).status_code == 201
    response = post_json(client, "/api/v1/runs/", {"project": "owner/b", "client_id": "x1"})
    assert_error(response, 409, field="client_id")
    assert not Run.objects.filter(project__name="b").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("client_id", ["", "a/b", "x" * 65, "a b", ["x"]])
def test_malformed_client_id_is_refused(client_for, owner, client_id) -> None:
    response = post_json(client_for(owner), "/api/v1/runs/", {"project": "owner/p", "client_id": client_id})
    assert_error(response, 400, field="client_id")
    assert not Run.objects.exists()
