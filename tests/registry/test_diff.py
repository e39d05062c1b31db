from __future__ import annotations

import math
from typing import Any

from experiments.config_values import flatten
from registry.diff import diff_packages, diff_versions, effective_params


def doc(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "config": {"epochs": 3, "optimizer": {"lr": 0.01, "name": "adam"}},
        "params": {"seed": "1"},
        "metrics": {"acc": 0.9, "loss": 0.3},
        "environment": {"python": "3.11.9", "os": "Linux", "accelerator": None, "packages": {"numpy": "1.26.4"}},
        "code": {"commit": "a" * 40, "remote": "r", "diff_sha256": None, "entry_point": "train.py", "command": ["p"]},
        "datasets": [{"name": "train", "uri": "s3://d/train", "digest": "sha256:" + "1" * 64, "size": 10, "rows": 5}],
        "binary": {"sha256": "b" * 64, "size": 100},
    }
    base.update(overrides)
    return base


def test_identical_versions_have_an_empty_diff() -> None:
    result = diff_versions(doc(), doc())

    assert all(count == 0 for count in result["summary"].values())
    assert result["binary"]["changed"] is False


def test_config_is_flattened_and_logged_params_win() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": {}}) == {"a.b": 1, "a.c.d": 2, "e": {}}
    assert effective_params({"config": {"lr": 0.1}, "params": {"lr": "0.2"}}) == {"lr": "0.2"}


def test_params_added_removed_and_changed() -> None:
    b = doc(config={"epochs": 5, "optimizer": {"lr": 0.01}}, params={"seed": "1", "dropout": "0.1"})

    params = diff_versions(doc(), b)["params"]

    assert params["added"] == {"dropout": "0.1"}
    assert params["removed"] == {"optimizer.name": "adam"}
    assert params["changed"] == {"epochs": {"from": "3", "to": "5"}}


def test_metric_deltas_are_b_minus_a_with_relative_change() -> None:
    b = doc(metrics={"acc": 0.95, "loss": "NaN", "f1": 0.7})

    rows = {row["key"]: row for row in diff_versions(doc(), b)["metrics"]}

    assert math.isclose(rows["acc"]["delta"], 0.05)
    assert math.isclose(rows["acc"]["relative"], 0.05 / 0.9)
    assert rows["loss"]["delta"] is None
    assert rows["loss"]["status"] == "changed"
    assert rows["f1"]["status"] == "added"
    assert rows["f1"]["delta"] is None


def test_packages_are_compared_by_version_order_and_normalised_names() -> None:
    a = {"numpy": "1.26.4", "Scikit_Learn": "1.4.0", "torch": "2.1.0", "old": "1", "weird": "abc"}
    b = {"numpy": "2.0.0", "scikit-learn": "1.3.2", "torch": "2.1.0", "new": "0.1", "weird": "xyz"}

    result = diff_packages(a, b)

    assert result["upgraded"] == {"numpy": {"from": "1.26.4", "to": "2.0.0"}}
    assert result["downgraded"] == {"scikit-learn": {"from": "1.4.0", "to": "1.3.2"}}
    assert result["added"] == {"new": "0.1"}
    assert result["removed"] == {"old": "1"}
    assert result["changed"] == {"weird": {"from": "abc", "to": "xyz"}}


def test_version_order_is_semantic_not_textual() -> None:
    assert diff_packages({"x": "1.9"}, {"x": "1.10"})["upgraded"] == {"x": {"from": "1.9", "to": "1.10"}}


def test_code_commit_and_diff_changes_are_reported() -> None:
    b = doc(
        code={"commit": "c" * 40, "remote": "r", "diff_sha256": "d" * 64, "entry_point": "train.py", "command": ["p"]}
    )

    code = diff_versions(doc(), b)["code"]

    assert code["commit"] == {"from": "a" * 40, "to": "c" * 40}
    assert code["diff"] == {"from": None, "to": "d" * 64}
    assert code["remote"] is None
    assert code["command"] is None


def test_datasets_added_removed_and_changed_by_name() -> None:
    b = doc(
        datasets=[
            {"name": "train", "uri": "s3://d/train", "digest": "sha256:" + "2" * 64, "size": 10, "rows": 6},
            {"name": "valid", "uri": None, "digest": None, "size": None, "rows": None},
        ]
    )

    datasets = diff_versions(doc(), b)["datasets"]

    assert [d["name"] for d in datasets["added"]] == ["valid"]
    assert datasets["removed"] == []
    assert datasets["changed"] == [
        {
            "name": "train",
            "fields": {
                "digest": {"from": "sha256:" + "1" * 64, "to": "sha256:" + "2" * 64},
                "rows": {"from": 5, "to": 6},
            },
        }
    ]


def test_binary_change_is_reported_with_both_digests() -> None:
    binary = diff_versions(doc(), doc(binary={"sha256": "c" * 64, "size": 200}))["binary"]

    assert binary == {"changed": True, "from": "b" * 64, "to": "c" * 64, "size_from": 100, "size_to": 200}


def test_environment_python_change_is_reported() -> None:
    b = doc(environment={"python": "3.12.1", "os": "Linux", "accelerator": "A100", "packages": {"numpy": "1.26.4"}})

    env = diff_versions(doc(), b)["environment"]

    assert env["python"] == {"from": "3.11.9", "to": "3.12.1"}
    assert env["accelerator"] == {"from": None, "to": "A100"}
    assert env["os"] is None
