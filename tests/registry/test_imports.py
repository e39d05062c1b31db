"""Importing a registered model (``POST /api/v1/projects/{team}/{project}/imports/models/``):
versions registered from imported runs with the source's numbers, times, authors,
descriptions and tags; aliases set and logged as imported, protected ones by project admins
only; a second import adds nothing; bad input refused naming the field, nothing written."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Project, User
from experiments.models import Run
from registry.models import Alias, AliasMove, ModelRepository, ModelVersion
from tests.conftest import ClientFor
from tests.helpers import assert_error, post_json
from tests.registry.conftest import MakeArtifact, MakeRun

pytestmark = pytest.mark.django_db

BASE = "/api/v1/projects/acme/proj/imports/models/"


@pytest.fixture
def runs(make_run: MakeRun, make_artifact: MakeArtifact) -> list[Run]:
    first, second = make_run(params={"seed": "1"}), make_run(params={"seed": "2"})
    for run, content in ((first, b"weights-1"), (second, b"weights-2")):
        make_artifact(run, path="model/MLmodel", content=b"flavors: {}" + content[-1:])
        make_artifact(run, path="model/model.pkl", content=content)
    return [first, second]


def body(runs: list[Run], **changes: Any) -> dict[str, Any]:
    return {
        "source": "mlflow",
        "source_id": "Fraud",
        "name": "fraud",
        "description": "Catches fraud.",
        "tags": {"owner": "risk"},
        "created_at": "2022-01-01T00:00:00Z",
        "versions": [
            {
                "source_id": "Fraud/1",
                "version": 1,
                "run": runs[0].id,
                "artifact_path": "model",
                "description": "first",
                "tags": {"k": "v"},
                "created_at": "2022-01-02T00:00:00Z",
                "author": "ana",
                "stage": "Archived",
            },
            {"source_id": "Fraud/3", "version": 3, "run": runs[1].id, "artifact_path": "model", "stage": "None"},
        ],
        "aliases": {"champion": 3, "production": 1},
        **changes,
    }


def test_an_admin_imports_a_model_with_its_versions_and_aliases(owner_client: APIClient, runs: list[Run]) -> None:
    response = post_json(owner_client, BASE, body(runs))

    assert response.status_code == 201, response.content
    answer = response.json()
    assert [(v["version"], v["number"], v["result"]) for v in answer["versions"]] == [
        (1, 1, "created"),
        (3, 3, "created"),
    ]
    assert {a["alias"]: a["result"] for a in answer["aliases"]} == {"champion": "set", "production": "set"}
    model = ModelRepository.objects.get(name="fraud")
    assert (model.source, model.source_id, model.description, model.tags) == (
        "mlflow",
        "Fraud",
        "Catches fraud.",
        {"owner": "risk"},
    )
    assert model.created_at.year == 2022
    v1 = ModelVersion.objects.get(repository=model, number=1)
    assert (v1.source_run_id, v1.binary_path, v1.author_label, v1.description) == (
        runs[0].id,
        "model/model.pkl",
        "ana",
        "first",
    )
    assert v1.tags == {"k": "v", "mlflow.stage": "Archived"}
    assert v1.created_at.isoformat() == "2022-01-02T00:00:00+00:00"
    assert dict(Alias.objects.values_list("name", "version__number")) == {"champion": 3, "production": 1}
    moves = AliasMove.objects.filter(repository=model)
    assert all(m.imported and m.reason == "imported from mlflow" for m in moves)
    assert moves.count() == 2


def test_importing_the_model_again_adds_nothing(owner_client: APIClient, runs: list[Run]) -> None:
    post_json(owner_client, BASE, body(runs))

    again = post_json(owner_client, BASE, body(runs))

    assert again.status_code == 200, again.content
    assert [v["result"] for v in again.json()["versions"]] == ["already", "already"]
    assert [a["result"] for a in again.json()["aliases"]] == ["already", "already"]
    assert (ModelVersion.objects.count(), AliasMove.objects.count()) == (2, 2)


def test_a_maintainer_imports_but_a_protected_alias_is_skipped_with_the_reason(
    client_for: ClientFor, maintainer: User, runs: list[Run]
) -> None:
    response = post_json(client_for(maintainer), BASE, body(runs))

    assert response.status_code == 201, response.content
    aliases = {a["alias"]: a for a in response.json()["aliases"]}
    assert aliases["champion"]["result"] == "set"
    assert aliases["production"]["result"] == "skipped"
    assert "only a project admin" in aliases["production"]["reason"]
    assert not Alias.objects.filter(name="production").exists()


def test_the_same_files_registered_twice_point_at_one_version(owner_client: APIClient, runs: list[Run]) -> None:
    twice = body(runs)
    twice["versions"][1]["run"] = runs[0].id

    answer = post_json(owner_client, BASE, twice).json()

    assert [v["result"] for v in answer["versions"]] == ["created", "same_content"]
    assert dict(Alias.objects.values_list("name", "version__number")) == {"champion": 1, "production": 1}


def test_a_version_without_files_is_skipped_with_the_reason(owner_client: APIClient, runs: list[Run]) -> None:
    missing = body(runs)
    missing["versions"][1]["artifact_path"] = "elsewhere"

    answer = post_json(owner_client, BASE, missing).json()

    assert answer["versions"][1]["result"] == "skipped"
    assert "no uploaded file under 'elsewhere'" in answer["versions"][1]["reason"]
    assert {a["alias"]: a["result"] for a in answer["aliases"]}["champion"] == "skipped"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source": "comet"}, "source"),
        ({"source_id": None}, "source_id"),
        ({"name": "Bad Name!"}, "name"),
        ({"versions": "x"}, "versions"),
        ({"versions": [{"version": 0}]}, "versions.0.version"),
        ({"versions": [{"version": 1, "run": "x"}]}, "versions.0.run"),
        (
            {"versions": [{"version": 1, "run": "a" * 32, "source_id": "s", "artifact_path": "../x"}]},
            "versions.0.artifact_path",
        ),
        (
            {"versions": [{"version": 1, "run": "a" * 32, "source_id": "s", "created_at": "now"}]},
            "versions.0.created_at",
        ),
        ({"versions": [{"version": 1, "run": "a" * 32, "source_id": "s", "extra": 1}]}, "versions.0.extra"),
        ({"aliases": {"champion": "one"}}, "aliases.champion"),
        ({"aliases": {"latest": 1}}, "aliases.latest"),
        ({"created_at": 5}, "created_at"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    owner_client: APIClient, runs: list[Run], change: dict[str, Any], field: str
) -> None:
    response = post_json(owner_client, BASE, body(runs, **change))

    assert_error(response, 400, field=field)
    assert (ModelRepository.objects.count(), ModelVersion.objects.count()) == (0, 0)


def test_roles_member_and_viewer_are_forbidden_outsider_sees_nothing(
    member_client: APIClient, viewer_client: APIClient, outsider_client: APIClient, runs: list[Run], project: Project
) -> None:
    assert_error(post_json(member_client, BASE, body(runs)), 403)
    assert_error(post_json(viewer_client, BASE, body(runs)), 403)
    assert_error(post_json(outsider_client, BASE, body(runs)), 404)
    assert ModelRepository.objects.count() == 0


def test_a_run_of_another_project_is_skipped(
    owner_client: APIClient,
    runs: list[Run],
    make_run: MakeRun,
    make_artifact: MakeArtifact,
    project: Project,
    owner: User,
) -> None:
    from tests.factories import ProjectFactory

    elsewhere = make_run(in_project=ProjectFactory.create(team=project.team, name="other", created_by=owner))
    make_artifact(elsewhere, path="model/model.pkl", content=b"other")
    foreign = body(runs)
    foreign["versions"][0]["run"] = elsewhere.id

    answer = post_json(owner_client, BASE, foreign).json()

    assert answer["versions"][0] == {
        "version": 1,
        "result": "skipped",
        "reason": f"run {elsewhere.id} is not in this project",
    }


def test_only_the_model_import_service_grants_an_import_alias() -> None:
    # SECURITY: an ImportAlias lets its holder set a protected alias; the application builds
    # one in a single place, registry/imports.py, after checking alias.import_protected.
    root = Path(__file__).resolve().parents[2]
    packages = [p for p in root.iterdir() if (p / "__init__.py").exists() and p.name not in {"tests", "benchmarks"}]
    builders: set[str] = set()
    for path in (path for package in packages for path in package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name == "ImportAlias":
                    builders.add(path.relative_to(root).as_posix())

    assert builders == {"registry/imports.py"}
