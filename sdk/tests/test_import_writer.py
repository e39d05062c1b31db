"""The import writer's pure parts: batches cut the same whatever the reader's batching (what
makes a resumed import send only what the server lacks), wire values, model names, the
project argument."""

from __future__ import annotations

import argparse
import math

import pytest

from assay.errors import UsageError
from assay.importers.model import Point
from assay.importers.writer import _chunks, _series, _value, model_name, project_path


def points(n: int, key: str = "loss") -> list[Point]:
    return [Point(key, step, float(step), 1_000 + step) for step in range(n)]


def test_batches_are_the_same_whatever_the_readers_batching() -> None:
    stream = points(25)

    one_by_one = list(_chunks(([p] for p in stream), 10))
    in_sevens = list(_chunks((stream[i : i + 7] for i in range(0, 25, 7)), 10))

    assert one_by_one == in_sevens
    assert [len(b) for b in one_by_one] == [10, 10, 5]


def test_series_are_columns_per_key_with_nan_and_infinity_as_strings() -> None:
    batch = [Point("a", 0, 1.0, 5), Point("b", 0, math.nan, 6), Point("a", 1, math.inf, 7), Point("b", 1, -math.inf, 8)]

    assert _series(batch) == [
        {"key": "a", "steps": [0, 1], "values": [1.0, "Infinity"], "timestamps": [5, 7]},
        {"key": "b", "steps": [0, 1], "values": ["NaN", "-Infinity"], "timestamps": [6, 8]},
    ]
    assert _value(2.5) == 2.5


@pytest.mark.parametrize(
    ("source", "assay"),
    [("Fraud", "fraud"), ("Fraud Detector v2", "fraud-detector-v2"), ("é!!", "model"), ("x" * 80, "x" * 64)],
)
def test_model_names_become_assays(source: str, assay: str) -> None:
    assert model_name(source) == assay


@pytest.mark.parametrize("project", [None, "solo", "a/b/c", "a/ b"])
def test_a_missing_or_malformed_project_is_one_line(project: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSAY_PROJECT", raising=False)

    with pytest.raises(UsageError, match="project"):
        project_path(argparse.Namespace(project=project))
