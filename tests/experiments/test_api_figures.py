"""Confusion matrices on a run: POST/GET /api/v1/runs/<id>/figures/."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from experiments.models import Figure, Run
from tests.helpers import assert_error, post_json, run_path

pytestmark = pytest.mark.django_db

MATRIX = {"name": "val", "labels": ["cat", "dog"], "matrix": [[5, 1], [2, 7]], "step": 3}


def figures_path(run: Run) -> str:
    return run_path(run) + "figures/"


def test_a_confusion_matrix_is_stored_and_listed(owner_client: APIClient, run: Run) -> None:
    created = post_json(owner_client, figures_path(run), MATRIX)

    assert created.status_code == 201, created.content
    listed = owner_client.get(figures_path(run)).json()
    assert len(listed) == 1
    assert listed[0]["kind"] == "confusion_matrix"
    assert listed[0]["name"] == "val"
    assert listed[0]["step"] == 3
    assert listed[0]["data"] == {"labels": ["cat", "dog"], "matrix": [[5, 1], [2, 7]]}


def test_the_same_name_and_step_replaces_the_matrix(owner_client: APIClient, run: Run) -> None:
    post_json(owner_client, figures_path(run), MATRIX)
    post_json(owner_client, figures_path(run), {**MATRIX, "matrix": [[6, 0], [0, 9]]})
    post_json(owner_client, figures_path(run), {**MATRIX, "step": 4})

    stored = {(f.step, str(f.data["matrix"])) for f in Figure.objects.filter(run=run)}
    assert stored == {(3, "[[6, 0], [0, 9]]"), (4, "[[5, 1], [2, 7]]")}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"matrix": [[5, 1]]}, "matrix"),
        ({"matrix": [[5, 1], [2]]}, "matrix.1"),
        ({"matrix": [[5, 1], [2, -7]]}, "matrix.1.1"),
        ({"labels": []}, "labels"),
        ({"labels": ["cat", ""]}, "labels.1"),
        ({"name": ""}, "name"),
        ({"step": -1}, "step"),
    ],
)
def test_an_invalid_matrix_is_refused_with_its_field(
    owner_client: APIClient, run: Run, change: dict[str, Any], field: str
) -> None:
    assert_error(post_json(owner_client, figures_path(run), {**MATRIX, **change}), 400, field=field)
    assert not Figure.objects.filter(run=run).exists()


def test_a_viewer_may_list_but_not_add_figures(viewer_client: APIClient, run: Run) -> None:
    assert viewer_client.get(figures_path(run)).json() == []
    assert_error(post_json(viewer_client, figures_path(run), MATRIX), 403, code="permission_denied")
    assert not Figure.objects.filter(run=run).exists()
