"""Plain unit tests of experiments/metrics.py: no database, no Django request."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from experiments import metrics
from experiments.metrics import (
    MAX_POINTS_PER_BATCH,
    MAX_STEP,
    History,
    PointError,
    Series,
    Summary,
    assemble,
    downsample,
    encode,
    merge_summary,
    parse_columns,
    parse_rows,
    points_json,
    summarize,
)

NOW = 1_764_150_000_000


def point(**overrides: Any) -> dict[str, Any]:
    return {"key": "loss", "step": 0, "value": 0.5, "timestamp": NOW - 1000, **overrides}


def field_of(call: Any) -> str:
    with pytest.raises(PointError) as info:
        call()
    return info.value.field


def series(steps: list[int], values: list[float], timestamps: list[int] | None = None) -> Series:
    return Series(
        key="loss",
        steps=np.asarray(steps, dtype=np.int64),
        values=np.asarray(values, dtype=np.float64),
        timestamps=np.asarray(timestamps if timestamps is not None else [NOW] * len(steps), dtype=np.int64),
    )


def history(steps: Any, values: Any) -> History:
    steps = np.asarray(steps, dtype=np.int64)
    return History(steps, np.asarray(values, dtype=np.float64), np.full(steps.shape, NOW, dtype=np.int64))


# --- parse_rows ---------------------------------------------------------------------------


def test_rows_are_grouped_by_key_in_the_order_sent() -> None:
    parsed = parse_rows(
        [
            point(key="loss", step=2, value=0.2),
            point(key="acc", step=0, value=0.9),
            point(key="loss", step=1, value=0.4, timestamp=7),
        ],
        now_ms=NOW,
    )

    assert list(parsed) == ["loss", "acc"]
    assert parsed["loss"].steps.tolist() == [2, 1]
    assert parsed["loss"].values.tolist() == [0.2, 0.4]
    assert parsed["loss"].timestamps.tolist() == [NOW - 1000, 7]
    assert parsed["acc"].values.dtype == np.float64
    assert parsed["acc"].steps.dtype == np.int64


def test_missing_timestamp_defaults_to_now() -> None:
    parsed = parse_rows([{"key": "loss", "step": 3, "value": 1}], now_ms=NOW)

    assert parsed["loss"].timestamps.tolist() == [NOW]
    assert parsed["loss"].values.tolist() == [1.0]


def test_integral_float_step_is_accepted_as_an_integer() -> None:
    parsed = parse_rows([point(step=4.0)], now_ms=NOW)

    assert parsed["loss"].steps.tolist() == [4]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_strings_are_accepted_as_values(value: str) -> None:
    parsed = parse_rows([point(value=value)], now_ms=NOW)

    assert metrics.json_value(float(parsed["loss"].values[0])) == value


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"step": -1}, "metrics.0.step"),
        ({"step": 1.5}, "metrics.0.step"),
        ({"step": True}, "metrics.0.step"),
        ({"step": "3"}, "metrics.0.step"),
        ({"step": None}, "metrics.0.step"),
        ({"step": MAX_STEP + 1}, "metrics.0.step"),
        ({"value": True}, "metrics.0.value"),
        ({"value": False}, "metrics.0.value"),
        ({"value": "abc"}, "metrics.0.value"),
        ({"value": "nan"}, "metrics.0.value"),
        ({"value": None}, "metrics.0.value"),
        ({"value": [1.0]}, "metrics.0.value"),
        ({"value": 10**400}, "metrics.0.value"),
        ({"timestamp": -5}, "metrics.0.timestamp"),
        ({"timestamp": 1.5}, "metrics.0.timestamp"),
        ({"timestamp": True}, "metrics.0.timestamp"),
        ({"key": "a/../b"}, "metrics.0.key"),
        ({"key": ".."}, "metrics.0.key"),
        ({"key": "/abs"}, "metrics.0.key"),
        ({"key": ""}, "metrics.0.key"),
        ({"key": "x" * 251}, "metrics.0.key"),
        ({"key": "bad$char"}, "metrics.0.key"),
        ({"key": "new\nline"}, "metrics.0.key"),
        ({"key": 5}, "metrics.0.key"),
        ({"key": ["loss"]}, "metrics.0.key"),
        ({"key": {"k": 1}}, "metrics.0.key"),
        ({"extra": 1}, "metrics.0"),
    ],
)
def test_invalid_point_names_the_offending_field(bad: dict[str, Any], field: str) -> None:
    assert field_of(lambda: parse_rows([point(**bad)], now_ms=NOW)) == field


def test_missing_key_is_refused() -> None:
    assert field_of(lambda: parse_rows([{"step": 0, "value": 1.0}], now_ms=NOW)) == "metrics.0.key"


def test_the_error_points_at_the_first_bad_row() -> None:
    rows = [point(step=0), point(step=1), point(step=2, value="abc"), point(step=-1)]

    assert field_of(lambda: parse_rows(rows, now_ms=NOW)) == "metrics.2.value"


def test_a_key_accepted_once_is_still_checked_for_type_later() -> None:
    rows = [point(key="loss"), point(key=["loss"])]

    assert field_of(lambda: parse_rows(rows, now_ms=NOW)) == "metrics.1.key"


@pytest.mark.parametrize("rows", [{"key": "loss"}, "loss", 3, None])
def test_rows_must_be_a_list(rows: Any) -> None:
    assert field_of(lambda: parse_rows(rows, now_ms=NOW)) == "metrics"


@pytest.mark.parametrize("row", [["loss", 0, 1.0], "loss", None])
def test_each_row_must_be_an_object(row: Any) -> None:
    assert field_of(lambda: parse_rows([point(), row], now_ms=NOW)) == "metrics.1"


def test_longest_allowed_key_and_allowed_characters_pass() -> None:
    long_key = "k" * 250
    keys = [long_key, "system/gpu.0:util", "val loss", "a..b", "train/a-b_c"]

    parsed = parse_rows([point(key=k) for k in keys], now_ms=NOW)

    assert list(parsed) == keys


def test_more_than_the_batch_limit_is_refused() -> None:
    one = point()
    assert len(parse_rows([one] * MAX_POINTS_PER_BATCH, now_ms=NOW)["loss"]) == MAX_POINTS_PER_BATCH

    assert field_of(lambda: parse_rows([one] * (MAX_POINTS_PER_BATCH + 1), now_ms=NOW)) == "metrics"


def test_largest_finite_integer_value_is_accepted() -> None:
    parsed = parse_rows([point(value=2**1023)], now_ms=NOW)

    assert parsed["loss"].values[0] == float(2**1023)


# --- parse_columns --------------------------------------------------------------------------


def test_columns_parse_with_and_without_timestamps() -> None:
    parsed = parse_columns(
        [
            {"key": "loss", "steps": [0, 1, 2], "values": [0.3, 0.2, "NaN"], "timestamps": [1, 2, 3]},
            {"key": "acc", "steps": [5], "values": [1]},
        ],
        now_ms=NOW,
        budget=MAX_POINTS_PER_BATCH,
    )

    assert parsed["loss"].steps.tolist() == [0, 1, 2]
    assert parsed["loss"].values[:2].tolist() == [0.3, 0.2]
    assert math.isnan(parsed["loss"].values[2])
    assert parsed["loss"].timestamps.tolist() == [1, 2, 3]
    assert parsed["acc"].timestamps.tolist() == [NOW]
    assert parsed["acc"].values.tolist() == [1.0]


def test_the_same_key_twice_in_columns_is_concatenated() -> None:
    parsed = parse_columns(
        [{"key": "loss", "steps": [0], "values": [1.0]}, {"key": "loss", "steps": [1], "values": [2.0]}],
        now_ms=NOW,
        budget=10,
    )

    assert parsed["loss"].steps.tolist() == [0, 1]
    assert parsed["loss"].values.tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"key": "loss", "steps": [0, 1], "values": [1.0]}, "series.0"),
        ({"key": "loss", "steps": "0", "values": [1.0]}, "series.0"),
        ({"key": "loss", "steps": [0], "values": [1.0], "extra": []}, "series.0"),
        ({"key": "a/../b", "steps": [0], "values": [1.0]}, "series.0.key"),
        ({"key": "loss", "steps": [0, -1], "values": [1.0, 2.0]}, "series.0.steps.1"),
        ({"key": "loss", "steps": [0, True], "values": [1.0, 2.0]}, "series.0.steps.1"),
        ({"key": "loss", "steps": [0, 1.5], "values": [1.0, 2.0]}, "series.0.steps.1"),
        ({"key": "loss", "steps": [0, 2**70], "values": [1.0, 2.0]}, "series.0.steps"),
        ({"key": "loss", "steps": [0, 1], "values": [1.0, False]}, "series.0.values.1"),
        ({"key": "loss", "steps": [0, 1], "values": [1.0, "abc"]}, "series.0.values.1"),
        ({"key": "loss", "steps": [0, 1], "values": [10**400, 1.0]}, "series.0.values.0"),
        ({"key": "loss", "steps": [0, 1], "values": [1.0, 2.0], "timestamps": [1]}, "series.0.timestamps"),
        ({"key": "loss", "steps": [0, 1], "values": [1.0, 2.0], "timestamps": [1, -1]}, "series.0.timestamps.1"),
        ({"key": "loss", "steps": [], "values": []}, "series.0.steps"),
        ({"key": "loss", "steps": [], "values": [], "timestamps": []}, "series.0.steps"),
    ],
)
def test_invalid_column_names_the_offending_field(item: dict[str, Any], field: str) -> None:
    assert field_of(lambda: parse_columns([item], now_ms=NOW, budget=MAX_POINTS_PER_BATCH)) == field


@pytest.mark.parametrize("columns", [{"key": "loss"}, "x", None])
def test_columns_must_be_a_list(columns: Any) -> None:
    assert field_of(lambda: parse_columns(columns, now_ms=NOW, budget=10)) == "series"


def test_columns_beyond_the_budget_are_refused() -> None:
    item = {"key": "loss", "steps": list(range(6)), "values": [0.0] * 6}

    assert len(parse_columns([item], now_ms=NOW, budget=6)["loss"]) == 6
    assert field_of(lambda: parse_columns([item], now_ms=NOW, budget=5)) == "series"


# --- summaries ------------------------------------------------------------------------------


def test_summary_last_is_the_value_at_the_greatest_step_whatever_the_order() -> None:
    summary = summarize(series([3, 9, 1], [0.3, 0.9, 0.1]))

    assert summary == Summary(last=0.9, min=0.1, max=0.9, last_step=9, last_timestamp=NOW, count=3)


def test_summary_ties_on_step_go_to_the_later_timestamp_then_the_later_point() -> None:
    by_time = summarize(series([5, 5], [1.0, 2.0], [20, 10]))
    by_position = summarize(series([5, 5], [1.0, 2.0], [10, 10]))

    assert by_time.last == 1.0
    assert by_time.last_timestamp == 20
    assert by_position.last == 2.0


def test_summary_skips_nan_in_min_and_max_but_keeps_infinity() -> None:
    summary = summarize(series([0, 1, 2], [math.nan, 2.0, math.inf]))

    assert summary.min == 2.0
    assert summary.max == math.inf
    assert summary.last == math.inf
    assert summary.count == 3


def test_summary_of_only_nan_has_no_min_or_max() -> None:
    summary = summarize(series([0, 1], [math.nan, math.nan]))

    assert summary.min is None
    assert summary.max is None
    assert math.isnan(summary.last)
    assert summary.last_step == 1


def test_merge_with_nothing_is_the_new_summary() -> None:
    new = summarize(series([0], [1.0]))

    assert merge_summary(None, new) is new


def test_merge_keeps_the_later_step_as_last_and_combines_the_rest() -> None:
    old = summarize(series([10, 11], [0.5, 0.4]))
    late_arrival = summarize(series([2, 3], [0.9, 0.1]))

    merged = merge_summary(old, late_arrival)

    assert merged == Summary(last=0.4, min=0.1, max=0.9, last_step=11, last_timestamp=NOW, count=4)


def test_merge_takes_a_newer_batch_as_last() -> None:
    old = summarize(series([0, 1], [0.9, 0.8]))
    newer = summarize(series([2], [0.7]))

    merged = merge_summary(old, newer)

    assert (merged.last, merged.last_step, merged.min, merged.max, merged.count) == (0.7, 2, 0.7, 0.9, 3)


def test_merge_at_the_same_step_and_time_prefers_the_new_batch() -> None:
    merged = merge_summary(summarize(series([4], [1.0])), summarize(series([4], [2.0])))

    assert merged.last == 2.0


def test_merge_handles_missing_min_and_max() -> None:
    only_nan = summarize(series([0], [math.nan]))
    finite = summarize(series([1], [3.0]))

    assert merge_summary(only_nan, finite).min == 3.0
    assert merge_summary(finite, only_nan).max == 3.0
    assert merge_summary(only_nan, only_nan).min is None


# --- the codec and assemble -------------------------------------------------------------------


def chunk(steps: list[int], values: list[float]) -> tuple[bytes, bytes, bytes]:
    s = np.asarray(steps, dtype=np.int64)
    return encode(s), encode(np.asarray(values, dtype=np.float64)), encode(s * 10)


def test_codec_round_trips_little_endian_arrays_including_non_finite() -> None:
    values = np.asarray([0.5, math.nan, math.inf, -math.inf, -0.0], dtype=np.float64)
    steps = np.asarray([0, 1, 2**53 - 1], dtype=np.int64)

    assert encode(steps)[:8] == (0).to_bytes(8, "little")
    assert metrics.decode_int(encode(steps)).tolist() == steps.tolist()
    decoded = metrics.decode_float(encode(values))
    assert decoded[0] == 0.5
    assert math.isnan(decoded[1])
    assert decoded[2:].tolist() == [math.inf, -math.inf, -0.0]


def test_assemble_of_nothing_is_empty() -> None:
    assembled = assemble([])

    assert len(assembled) == 0
    assert assembled.values.dtype == np.float64


def test_assemble_sorts_by_step_keeping_insertion_order_among_equal_steps() -> None:
    assembled = assemble([chunk([5, 6], [0.5, 0.6]), chunk([0, 5], [0.0, 0.55]), chunk([1], [0.1])])

    assert assembled.steps.tolist() == [0, 1, 5, 5, 6]
    assert assembled.values.tolist() == [0.0, 0.1, 0.5, 0.55, 0.6]
    assert assembled.timestamps.tolist() == [0, 10, 50, 50, 60]


def test_assemble_of_ordered_chunks_keeps_them_as_sent() -> None:
    assembled = assemble([chunk([0, 1], [1.0, 2.0]), chunk([2, 3], [3.0, 4.0])])

    assert assembled.steps.tolist() == [0, 1, 2, 3]
    assert assembled.values.tolist() == [1.0, 2.0, 3.0, 4.0]


# --- downsampling ----------------------------------------------------------------------------


def test_short_history_is_not_downsampled() -> None:
    full = history(range(10), range(10))

    assert downsample(full, 10) is full


@pytest.mark.parametrize("max_points", [2, 3, 7, 500, 4096])
def test_downsample_keeps_the_bound_and_both_ends(max_points: int) -> None:
    steps = np.arange(20_000)
    full = history(steps, np.sin(steps / 50.0) + steps / 10_000.0)

    shown = downsample(full, max_points)

    assert len(shown) <= max_points
    assert len(shown) >= min(max_points, 2)
    assert shown.steps[0] == 0
    assert shown.steps[-1] == 19_999
    assert bool(np.all(np.diff(shown.steps) > 0))


def test_downsample_keeps_a_spike() -> None:
    values = np.zeros(10_000)
    values[4321] = 100.0
    shown = downsample(history(np.arange(10_000), values), 100)

    assert 4321 in shown.steps.tolist()


def test_downsample_keeps_some_non_finite_points_within_the_bound() -> None:
    values = np.sin(np.arange(5_000) / 20.0)
    values[1::9] = math.nan
    shown = downsample(history(np.arange(5_000), values), 200)

    assert len(shown) <= 200
    assert int(np.isnan(shown.values).sum()) > 0
    assert shown.steps[-1] == 4_999


def test_downsample_of_only_nan_keeps_the_bound() -> None:
    shown = downsample(history(np.arange(1_000), np.full(1_000, math.nan)), 50)

    assert len(shown) == 50


def test_points_json_writes_non_finite_values_as_strings() -> None:
    out = points_json(history([0, 1, 2, 3], [0.5, math.nan, math.inf, -math.inf]))

    assert out == [
        {"step": 0, "value": 0.5, "timestamp": NOW},
        {"step": 1, "value": "NaN", "timestamp": NOW},
        {"step": 2, "value": "Infinity", "timestamp": NOW},
        {"step": 3, "value": "-Infinity", "timestamp": NOW},
    ]
