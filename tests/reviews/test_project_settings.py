"""The project-level review policy: the default of every model of the project, overridden
by a model's own settings (reviews.selectors.settings_for)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from registry.models import Alias, ModelVersion
from reviews.models import Check, ProjectReviewSettings, ReviewSettings
from tests.conftest import ClientFor
from tests.helpers import assert_error, patch_json, post_json
from tests.reviews.test_api import BASE, open_request
from tests.reviews.test_api import opened as opened

pytestmark = pytest.mark.django_db

PROJECT_URL = "/api/v1/projects/acme/proj/review-settings/"
MODEL_URL = "/api/v1/projects/acme/proj/models/fraud/review-settings/"


def _approve(client: APIClient, version_hash: str) -> None:
    response = post_json(client, BASE + "1/reviews/", {"verdict": "approve", "version_hash": version_hash})
    assert response.status_code == 201, response.content


def test_the_project_policy_applies_to_a_model_without_its_own(
    opened: dict[str, Any], owner_client: APIClient, client_for: ClientFor, maintainer: User, maint2: User
) -> None:
    response = patch_json(owner_client, PROJECT_URL, {"required_approvals": 2})
    assert response.status_code == 200, response.content
    assert response.json()["source"] == "project"
    assert owner_client.get(MODEL_URL).json()["required_approvals"] == 2
    assert owner_client.get(MODEL_URL).json()["source"] == "project"
    _approve(client_for(maintainer), opened["version_hash"])

    assert_error(post_json(client_for(maintainer), BASE + "1/merge/", {}), 409, code="approvals_missing")

    _approve(client_for(maint2), opened["version_hash"])
    assert post_json(client_for(maintainer), BASE + "1/merge/", {}).status_code == 200
    assert Alias.objects.get(name="production").version.number == 2


def test_a_models_own_settings_override_the_project_and_deleting_them_restores_it(
    v1: ModelVersion, owner_client: APIClient
) -> None:
    patch_json(owner_client, PROJECT_URL, {"required_approvals": 3, "approver_role": "writer"})
    # a model's first change starts from the policy that applies to it (the project's)
    own = patch_json(owner_client, MODEL_URL, {"required_approvals": 1})
    assert own.status_code == 200, own.content
    assert (own.json()["source"], own.json()["approver_role"]) == ("repository", "writer")
    assert ProjectReviewSettings.objects.get().required_approvals == 3

    back = owner_client.delete(MODEL_URL)

    assert back.status_code == 200
    assert (back.json()["source"], back.json()["required_approvals"]) == ("project", 3)
    assert not ReviewSettings.objects.exists()
    assert AuditEvent.objects.filter(action="review.settings.delete").count() == 1


def test_an_override_lets_a_merge_through_that_the_project_blocks(
    opened: dict[str, Any], owner_client: APIClient, client_for: ClientFor, maintainer: User
) -> None:
    patch_json(owner_client, PROJECT_URL, {"required_approvals": 2})
    _approve(client_for(maintainer), opened["version_hash"])
    assert_error(post_json(client_for(maintainer), BASE + "1/merge/", {}), 409, code="approvals_missing")

    assert patch_json(owner_client, MODEL_URL, {"required_approvals": 1}).status_code == 200

    merged = post_json(client_for(maintainer), BASE + "1/merge/", {})
    assert merged.status_code == 200, merged.content
    assert Alias.objects.get(name="production").version.number == 2


def test_project_gates_run_on_models_without_their_own(
    member_client: APIClient,
    owner_client: APIClient,
    register: Any,
    v1: ModelVersion,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    gate = {"name": "acc", "expression": "candidate.metrics.acc >= current.metrics.acc - 0.005"}
    body = {"gates": [gate], "required_checks": ["artifact-integrity", "gate:acc"]}
    response = patch_json(owner_client, PROJECT_URL, body)
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == ["artifact-integrity", "lineage", "gate:acc"]
    register(metrics={"acc": 0.85})
    with django_capture_on_commit_callbacks(execute=True):
        open_request(member_client)

    check = Check.objects.get(name="gate:acc")
    listed = {c["name"]: c for c in member_client.get(BASE + "1/checks/").json()}

    assert check.status == "failed"
    assert listed["gate:acc"]["required"] is True


def test_the_project_policy_is_for_project_admins_only(
    owner_client: APIClient,
    member_client: APIClient,
    viewer_client: APIClient,
    outsider_client: APIClient,
    client_for: ClientFor,
    maintainer: User,
    v1: ModelVersion,
) -> None:
    body = {"required_approvals": 4}
    assert viewer_client.get(PROJECT_URL).json()["source"] == "default"
    assert_error(patch_json(member_client, PROJECT_URL, body), 403, code="permission_denied")
    assert_error(patch_json(client_for(maintainer), PROJECT_URL, body), 403, code="permission_denied")
    assert_error(patch_json(viewer_client, PROJECT_URL, body), 403, code="permission_denied")
    assert_error(patch_json(outsider_client, PROJECT_URL, body), 404, code="not_found")
    assert_error(outsider_client.get(PROJECT_URL), 404, code="not_found")
    assert_error(client_for(maintainer).delete(MODEL_URL), 403, code="permission_denied")
    assert not ProjectReviewSettings.objects.exists()

    response = patch_json(owner_client, PROJECT_URL, body)

    assert response.json()["required_approvals"] == 4
    event = AuditEvent.objects.get(action="review.project_settings")
    assert event.data["before"]["required_approvals"] == 1
    assert event.data["after"]["required_approvals"] == 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"required_approvals": 7}, "required_approvals"),
        ({"required_approvals": True}, "required_approvals"),
        ({"approver_role": "admin"}, "approver_role"),
        ({"gates": {"name": "g"}}, "gates"),
        ({"required_checks": ["nope"]}, "required_checks.0"),
        ({"project": "other"}, "project"),
    ],
)
def test_bad_project_policy_input_is_400_naming_the_field(
    owner_client: APIClient, v1: ModelVersion, body: dict[str, Any], field: str
) -> None:
    assert_error(patch_json(owner_client, PROJECT_URL, body), 400, field=field)
    assert not ProjectReviewSettings.objects.exists()


def test_a_bad_project_gate_names_the_field_and_the_position(owner_client: APIClient, v1: ModelVersion) -> None:
    response = patch_json(
        owner_client, PROJECT_URL, {"gates": [{"name": "g", "expression": "candidate.metrics.acc >"}]}
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"], error["position"]) == ("invalid_gate", "gates.0.expression", 22)


def test_r10_a_review_request_cannot_change_the_project_policy(
    opened: dict[str, Any], member_client: APIClient, owner_client: APIClient
) -> None:
    patch_json(owner_client, PROJECT_URL, {"required_approvals": 2})

    response = patch_json(member_client, BASE + "1/", {"required_approvals": 1})

    assert_error(response, 400, field="required_approvals")
    assert ProjectReviewSettings.objects.get().required_approvals == 2
