"""The registry's REST API: the flows, the policy (owner, maintainer, member, viewer,
outsider) and bad input (4xx naming the field, nothing written)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from registry.models import Alias, AliasMove, ModelRepository, ModelVersion
from tests.conftest import ClientFor
from tests.helpers import assert_error, patch_json, post_json
from tests.registry.conftest import MakeArtifact, MakeRun

pytestmark = pytest.mark.django_db

BASE = "/api/v1/projects/acme/proj/models/"


def put_json(client: APIClient, path: str, body: Any) -> Any:
    import orjson

    return client.put(path, data=orjson.dumps(body), content_type="application/json")


@pytest.fixture
def two_versions(
    owner_client: APIClient, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> list[dict[str, Any]]:
    first_run = make_run(metrics={"acc": 0.9, "loss": 0.3})
    make_artifact(first_run, content=b"v1-bytes")
    second_run = make_run(params={"seed": "2"}, metrics={"acc": 0.93, "loss": 0.25})
    make_artifact(second_run, content=b"v2-bytes")
    answers = []
    for run, extra in ((first_run, {"aliases": ["staging"]}), (second_run, {"parents": ["v1"]})):
        response = post_json(owner_client, BASE + "fraud/versions/", {"run": run.id, "artifact": "model.pkl", **extra})
        assert response.status_code == 201, response.content
        answers.append(response.json())
    return answers


def test_a_maintainer_creates_a_model_with_production_protected(client_for: ClientFor, maintainer: User) -> None:
    response = post_json(
        client_for(maintainer), BASE, {"name": "Churn", "description": "# Churn\\nmodel", "tags": {"team": "risk"}}
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "churn"
    assert body["protected_aliases"] == ["production"]
    assert body["url"].endswith("/acme/proj/models/churn/")


def test_registering_answers_number_content_hash_and_url(two_versions: list[dict[str, Any]]) -> None:
    first, second = two_versions

    assert (first["number"], second["number"]) == (1, 2)
    assert len(first["content_hash"]) == 64
    assert second["url"].endswith("/acme/proj/models/fraud/v2/")
    assert first["aliases"] == ["staging"]
    assert second["parents"] == [{"model": "fraud", "number": 1, "content_hash": first["content_hash"]}]


@pytest.mark.parametrize("ref", ["2", "v2", "latest"])
def test_a_version_is_found_by_number_or_latest(
    owner_client: APIClient, two_versions: list[dict[str, Any]], ref: str
) -> None:
    assert owner_client.get(BASE + f"fraud/versions/{ref}/").json()["number"] == 2


def test_a_version_is_found_by_alias_and_by_hash_prefix(
    owner_client: APIClient, two_versions: list[dict[str, Any]]
) -> None:
    prefix = two_versions[1]["content_hash"][:7]

    assert owner_client.get(BASE + "fraud/versions/staging/").json()["number"] == 1
    assert owner_client.get(BASE + f"fraud/versions/{prefix}/").json()["number"] == 2


def test_the_diff_reports_params_metrics_and_binary(
    owner_client: APIClient, two_versions: list[dict[str, Any]]
) -> None:
    response = owner_client.get(BASE + "fraud/diff/", {"a": "staging", "b": "v2"})

    assert response.status_code == 200, response.content
    diff = response.json()
    assert diff["a"]["number"] == 1
    assert diff["b"]["number"] == 2
    assert diff["params"]["changed"] == {"seed": {"from": "1", "to": "2"}}
    acc = next(row for row in diff["metrics"] if row["key"] == "acc")
    assert acc["delta"] == pytest.approx(0.03)
    assert diff["binary"]["changed"] is True


def test_the_diff_defaults_to_latest_against_its_parent(
    owner_client: APIClient, two_versions: list[dict[str, Any]]
) -> None:
    diff = owner_client.get(BASE + "fraud/diff/").json()

    assert (diff["a"]["number"], diff["b"]["number"]) == (1, 2)


def test_moving_an_unprotected_alias_is_logged(owner_client: APIClient, two_versions: list[dict[str, Any]]) -> None:
    response = put_json(owner_client, BASE + "fraud/aliases/staging/", {"version": 2, "reason": "better acc"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["version"]["number"] == 2
    assert [(m["from"], m["to"], m["by"], m["reason"]) for m in body["log"]] == [
        (1, 2, "owner", "better acc"),
        (None, 1, "owner", "registered v1"),
    ]
    assert owner_client.get(BASE + "fraud/aliases/staging/").json()["log"] == body["log"]


def test_a_direct_move_of_a_protected_alias_is_refused_naming_the_rule(
    owner_client: APIClient, two_versions: list[dict[str, Any]]
) -> None:
    error = assert_error(
        put_json(owner_client, BASE + "fraud/aliases/production/", {"version": 2}),
        409,
        code="protected_alias",
        field="alias",
    )

    assert "protected" in error["message"]
    assert "review request" in error["message"]
    assert not Alias.objects.filter(name="production").exists()


def test_registering_with_a_protected_alias_is_refused_and_writes_nothing(
    owner_client: APIClient, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    run = make_run()
    make_artifact(run)

    response = post_json(
        owner_client, BASE + "fraud/versions/", {"run": run.id, "artifact": "model.pkl", "aliases": ["production"]}
    )

    assert_error(response, 409, code="protected_alias", field="aliases.0")
    assert not ModelVersion.objects.exists()


def test_metadata_edits_change_description_and_tags_only(
    owner_client: APIClient, two_versions: list[dict[str, Any]]
) -> None:
    response = patch_json(owner_client, BASE + "fraud/versions/1/", {"description": "first", "tags": {"k": "v"}})

    assert response.status_code == 200
    assert response.json()["content_hash"] == two_versions[0]["content_hash"]
    assert_error(
        patch_json(owner_client, BASE + "fraud/versions/1/", {"content_hash": "0" * 64}), 400, field="content_hash"
    )
    assert_error(patch_json(owner_client, BASE + "fraud/versions/1/", {"params": {"seed": "9"}}), 400, field="params")


def test_search_finds_versions_by_metric_and_models_by_alias(
    owner_client: APIClient, two_versions: list[dict[str, Any]]
) -> None:
    hits = owner_client.get(BASE + "fraud/versions/", {"filter": "metrics.acc > 0.92"}).json()
    by_alias = owner_client.get(BASE, {"alias": "staging"}).json()
    none = owner_client.get(BASE, {"filter": "attributes.name = 'other'"}).json()

    assert [v["number"] for v in hits] == [2]
    assert [m["name"] for m in by_alias] == ["fraud"]
    assert none == []


def test_version_search_knows_config_keys(
    owner_client: APIClient, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    for lr in (0.01, 0.1):
        run = make_run(config={"optimizer": {"name": "adam", "lr": lr}})
        make_artifact(run, content=f"bytes-{lr}".encode())
        assert (
            post_json(owner_client, BASE + "fraud/versions/", {"run": run.id, "artifact": "model.pkl"}).status_code
            == 201
        )

    response = owner_client.get(
        BASE + "fraud/versions/", {"filter": "config.optimizer.lr > 0.05 and config.optimizer.name = 'adam'"}
    )

    assert response.status_code == 200, response.content
    assert [v["number"] for v in response.json()] == [2]


def test_the_global_search_finds_models_by_name_and_by_tags_of_models_and_versions(
    owner_client: APIClient, outsider_client: APIClient, two_versions: list[dict[str, Any]]
) -> None:
    patch_json(owner_client, BASE + "fraud/", {"tags": {"domain": "payments"}})
    patch_json(owner_client, BASE + "fraud/versions/2/", {"tags": {"stage": "shadow-eval"}})
    post_json(owner_client, BASE, {"name": "churn"})

    def found(client: APIClient, text: str) -> list[str]:
        response = client.get("/api/v1/search/", {"q": text})
        assert response.status_code == 200
        return [f"{m['project']}/{m['name']}" for m in response.json()["models"]]

    assert found(owner_client, "FRAU") == ["acme/proj/fraud"]
    assert found(owner_client, "payments") == ["acme/proj/fraud"]
    assert found(owner_client, "shadow") == ["acme/proj/fraud"]
    assert found(owner_client, "churn") == ["acme/proj/churn"]
    assert found(owner_client, "nothing-like-it") == []
    assert found(outsider_client, "fraud") == []
    first = owner_client.get("/api/v1/search/", {"q": "fraud"}).json()["models"][0]
    assert (first["url"], first["versions"]) == ("/acme/proj/models/fraud/", 2)


def test_a_bad_filter_is_400_with_its_position(owner_client: APIClient, model: ModelRepository) -> None:
    response = owner_client.get(BASE + "fraud/versions/", {"filter": "metrics.acc >"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_filter"


def test_the_reproduce_manifest_says_plainly_what_cannot_be_reproduced(
    owner_client: APIClient, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    run = make_run(info={"code": {"command": ["python", "train.py"]}, "datasets": {"raw": {"uri": "s3://x"}}})
    make_artifact(run)
    assert (
        post_json(owner_client, BASE + "fraud/versions/", {"run": run.id, "artifact": "model.pkl"}).status_code == 201
    )

    manifest = owner_client.get(BASE + "fraud/versions/1/reproduce/").json()

    assert manifest["reproducible"] is False
    assert any("No git commit" in p for p in manifest["problems"])
    assert any("'raw' has no digest" in w for w in manifest["warnings"])


# --- the policy ----------------------------------------------------------------------------------


def test_a_team_member_may_read_but_not_register(
    member_client: APIClient, two_versions: list[dict[str, Any]], make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    run = make_run()
    make_artifact(run, content=b"other")

    assert member_client.get(BASE + "fraud/versions/").status_code == 200
    assert_error(
        post_json(member_client, BASE + "fraud/versions/", {"run": run.id, "artifact": "model.pkl"}),
        403,
        code="permission_denied",
    )
    assert_error(
        put_json(member_client, BASE + "fraud/aliases/staging/", {"version": 2}), 403, code="permission_denied"
    )
    assert ModelVersion.objects.count() == 2


def test_a_maintainer_moves_staging_but_cannot_unprotect_production(
    client_for: ClientFor, maintainer: User, two_versions: list[dict[str, Any]]
) -> None:
    client = client_for(maintainer)

    assert put_json(client, BASE + "fraud/aliases/staging/", {"version": "v2"}).status_code == 200
    assert_error(patch_json(client, BASE + "fraud/", {"protected_aliases": []}), 403, code="permission_denied")
    assert ModelRepository.objects.get(name="fraud").protected_aliases == ["production"]


def test_an_admin_may_unprotect_production_and_then_move_it(
    owner_client: APIClient, two_versions: list[dict[str, Any]]
) -> None:
    assert patch_json(owner_client, BASE + "fraud/", {"protected_aliases": ["gold"]}).json()["protected_aliases"] == [
        "gold"
    ]

    assert put_json(owner_client, BASE + "fraud/aliases/production/", {"version": 1}).status_code == 200


def test_a_viewer_reads_everything_and_writes_nothing(
    viewer_client: APIClient, two_versions: list[dict[str, Any]]
) -> None:
    assert viewer_client.get(BASE + "fraud/diff/").status_code == 200
    assert viewer_client.get(BASE + "fraud/versions/1/reproduce/").status_code == 200
    assert_error(patch_json(viewer_client, BASE + "fraud/versions/1/", {"description": "x"}), 403)
    assert_error(post_json(viewer_client, BASE, {"name": "mine"}), 403)


def test_an_outsider_gets_not_found_everywhere(outsider_client: APIClient, two_versions: list[dict[str, Any]]) -> None:
    for path in (
        BASE,
        BASE + "fraud/",
        BASE + "fraud/versions/1/",
        BASE + "fraud/diff/",
        BASE + "fraud/aliases/staging/",
    ):
        assert_error(outsider_client.get(path), 404, code="not_found")


def test_a_run_the_caller_cannot_see_is_not_found(
    owner_client: APIClient,
    client_for: ClientFor,
    maintainer: User,
    model: ModelRepository,
    make_run: MakeRun,
    make_artifact: MakeArtifact,
) -> None:
    from tests.factories import ProjectFactory, TeamFactory

    hidden_project = ProjectFactory.create(team=TeamFactory.create(name="hidden"), name="secret")
    hidden_run = make_run(in_project=hidden_project)
    make_artifact(hidden_run)

    response = post_json(
        client_for(maintainer), BASE + "fraud/versions/", {"run": hidden_run.id, "artifact": "model.pkl"}
    )

    assert_error(response, 404, code="not_found", field="run")


# --- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"artifact": "model.pkl"}, 400, "run"),
        ({"run": "RUN", "artifact": "model.pkl", "extra": 1}, 400, "extra"),
        ({"run": "RUN"}, 400, "artifact"),
        ({"run": "RUN", "artifact": "missing.pkl"}, 404, "artifact"),
        ({"run": "RUN", "artifact": "../etc/passwd"}, 400, "artifact"),
        ({"run": "RUN", "artifact": "model.pkl", "parents": ["v9"]}, 404, "parents.0"),
        ({"run": "RUN", "artifact": "model.pkl", "parents": "v1"}, 400, "parents"),
        ({"run": "RUN", "artifact": "model.pkl", "aliases": ["latest"]}, 400, "aliases.0"),
        ({"run": "RUN", "artifact": "model.pkl", "tags": {"k": 1}}, 400, "tags.k"),
        ({"run": "RUN", "artifact": "model.pkl", "description": 5}, 400, "description"),
    ],
)
def test_bad_registrations_are_refused_naming_the_field(
    owner_client: APIClient,
    model: ModelRepository,
    make_run: MakeRun,
    make_artifact: MakeArtifact,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    run = make_run()
    make_artifact(run)
    body = {k: (run.id if v == "RUN" else v) for k, v in body.items()}

    assert_error(post_json(owner_client, BASE + "fraud/versions/", body), status, field=field)
    assert not ModelVersion.objects.exists()
    assert not AliasMove.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"name": "ok", "tags": []}, "tags"),
        ({"name": "ok", "protected_aliases": ["v1"]}, "protected_aliases.0"),
        ([1], None),
    ],
)
def test_bad_model_creations_are_refused(owner_client: APIClient, project: Any, body: Any, field: str | None) -> None:
    assert_error(post_json(owner_client, BASE, body), 400, field=field)
    assert not ModelRepository.objects.exists()


@pytest.mark.parametrize(
    ("alias", "body", "status", "field"),
    [
        ("staging", {"version": 99}, 404, "version"),
        ("staging", {"version": "staging"}, 400, "version"),
        ("staging", {"version": True}, 400, "version"),
        ("latest", {"version": 1}, 400, "alias"),
        ("v3", {"version": 1}, 400, "alias"),
        ("staging", {"version": 1, "reason": "x" * 3000}, 400, "reason"),
    ],
)
def test_bad_alias_moves_are_refused(
    owner_client: APIClient,
    two_versions: list[dict[str, Any]],
    alias: str,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    moves = AliasMove.objects.count()

    assert_error(put_json(owner_client, BASE + f"fraud/aliases/{alias}/", body), status, field=field)
    assert AliasMove.objects.count() == moves


def test_a_diff_of_an_unknown_ref_names_the_parameter(
    owner_client: APIClient, two_versions: list[dict[str, Any]]
) -> None:
    assert_error(owner_client.get(BASE + "fraud/diff/", {"a": "v1", "b": "nosuchalias"}), 404, field="b")
    assert_error(owner_client.get(BASE + "fraud/diff/", {"a": "v0"}), 400, field="a")
