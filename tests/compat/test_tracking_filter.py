"""MLflow's experiment filter and order syntax (compat/experiment_filter.py), over the ORM."""

from __future__ import annotations

import re

import pytest

from accounts.models import Project
from compat import experiment_filter
from compat.wire import MlflowError
from experiments.models import Experiment, ExperimentTag

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiments(project: Project) -> dict[str, Experiment]:
    made = {name: Experiment.objects.create(project=project, name=name) for name in ("fraud-a", "fraud-b", "churn")}
    ExperimentTag.objects.create(experiment=made["fraud-a"], key="team", value="risk")
    ExperimentTag.objects.create(experiment=made["churn"], key="team", value="growth")
    return made


def names(project: Project, text: str, order: list[str] | None = None) -> list[str]:
    qs = Experiment.objects.filter(project=project).filter(experiment_filter.parse(text))
    return list(qs.order_by(*experiment_filter.order(order or ["name"])).values_list("name", flat=True))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["churn", "fraud-a", "fraud-b"]),
        ("name = 'churn'", ["churn"]),
        ("name != 'churn'", ["fraud-a", "fraud-b"]),
        ("name LIKE 'fraud-%'", ["fraud-a", "fraud-b"]),
        ("attributes.name ILIKE 'FRAUD_a'", ["fraud-a"]),
        ("name NOT LIKE 'fraud%'", ["churn"]),
        ("tags.team = 'risk'", ["fraud-a"]),
        ("tags.`team` != 'risk'", ["churn"]),
        ("name LIKE 'fraud%' AND tags.team = 'risk'", ["fraud-a"]),
        ("creation_time > 0 and last_update_time >= 0", ["churn", "fraud-a", "fraud-b"]),
        ("name = 'it''s'", []),
    ],
)
def test_filters_select_what_mlflow_would(
    project: Project, experiments: dict[str, Experiment], text: str, expected: list[str]
) -> None:
    assert names(project, text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name", "expected an operator"),
        ("name = ", "expected a quoted string"),
        ("name = 'a' OR name = 'b'", "expected AND"),
        ("name > 'a'", "name compares with"),
        ("creation_time = 'yesterday'", "creation_time compares with"),
        ("owner = 'ann'", "unknown attribute 'owner'"),
        ("name = 'a' AND", "expected a clause after AND"),
    ],
)
def test_a_bad_filter_says_what_and_where(text: str, words: str) -> None:
    with pytest.raises(MlflowError) as caught:
        experiment_filter.parse(text)
    assert caught.value.code == "INVALID_PARAMETER_VALUE"
    assert words in caught.value.message
    assert re.search(r"at character \d+", caught.value.message)


def test_order_by_takes_mlflows_fields_and_refuses_others(project: Project, experiments: dict[str, Experiment]) -> None:
    assert names(project, "", ["name DESC"]) == ["fraud-b", "fraud-a", "churn"]
    assert experiment_filter.order([]) == ["-created_at", "pk"]
    with pytest.raises(MlflowError, match="Invalid order_by field 'id'"):
        experiment_filter.order(["id"])
    with pytest.raises(MlflowError, match="Invalid order_by clause"):
        experiment_filter.order(["name; DROP TABLE x"])
    with pytest.raises(MlflowError, match="ASC or DESC"):
        experiment_filter.order(["name sideways"])


def test_like_patterns_escape_regular_expression_characters() -> None:
    assert experiment_filter.like_regex("a.b%_") == r"^a\.b.*.$"
