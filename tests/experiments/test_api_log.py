"""POST /api/v1/runs/<id>/log/: params, tags and metric points, all or nothing, idempotent."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from experiments.metrics import MAX_POINTS_PER_BATCH
from experiments.models import LogBatch, MetricChunk, MetricSummary, Param, Run, Tag
from tests.helpers import assert_error, history_path, log_path, post_json, rows

pytestmark = pytest.mark.django_db

ISSUE_BODY: dict[str, Any] = {
    "params": {"lr": "0.01"},
    "tags": {"k": "v"},
    "metrics": [{"key": "loss", "step": 0, "value": 0.5, "timestamp": 1764150000000}],
}


def issue_body(**overrides: Any) -> dict[str, Any]:
    return {"batch_id": str(uuid.uuid4()), **ISSUE_BODY, **overrides}


def total_points(client: APIClient, run: Run, key: str) -> int:
    response = client.get(history_path(run, key), {"limit": 1})
    assert response.status_code == 200, response.content
    return int(response.json()["total"])


def nothing_written(run: Run) -> bool:
    return not (
        MetricChunk.objects.filter(run=run).exists()
        or MetricSummary.objects.filter(run=run).exists()
        or Param.objects.filter(run=run).exists()
        or Tag.objects.filter(run=run).exists()
        or LogBatch.objects.filter(run=run).exists()
    )


def test_the_issue_body_logs_a_param_a_tag_and_a_point(owner_client: APIClient, run: Run) -> None:
    body = issue_body()

    response = post_json(owner_client, log_path(run), body)

    assert response.status_code == 200, response.content
    assert response.json() == {"batch_id": body["batch_id"], "duplicate": False, "points": 1}
    assert dict(Param.objects.filter(run=run).values_list("key", "value")) == {"lr": "0.01"}
    assert dict(Tag.objects.filter(run=run).values_list("key", "value")) == {"k": "v"}
    history = owner_client.get(history_path(run, "loss")).json()
    assert history["points"] == [{"step": 0, "value": 0.5, "timestamp": 1764150000000}]


def test_retried_batch_adds_nothing(owner_client: APIClient, run: Run) -> None:
    body = issue_body(metrics=rows("loss", range(50)))
    first = post_json(owner_client, log_path(run), body)

    retry = post_json(owner_client, log_path(run), body)

    assert first.json() == {"batch_id": body["batch_id"], "duplicate": False, "points": 50}
    assert retry.status_code == 200
    assert retry.json() == {"batch_id": body["batch_id"], "duplicate": True, "points": 0}
    assert total_points(owner_client, run, "loss") == 50
    assert MetricSummary.objects.get(run=run, key="loss").count == 50
    assert LogBatch.objects.filter(run=run).count() == 1


def test_the_same_batch_id_on_another_run_is_a_new_batch(owner_client: APIClient, run: Run) -> None:
    other = post_json(owner_client, "/api/v1/runs/", {"project": "acme/proj"}).json()
    body = issue_body()

    post_json(owner_client, log_path(run), body)
    response = post_json(owner_client, log_path(other["id"]), body)

    assert response.json()["duplicate"] is False
    assert total_points(owner_client, run, "loss") == 1


def test_batches_without_an_id_are_all_added(owner_client: APIClient, run: Run) -> None:
    body = {"metrics": rows("loss", range(3))}

    post_json(owner_client, log_path(run), body)
    post_json(owner_client, log_path(run), body)

    assert total_points(owner_client, run, "loss") == 6


def test_setting_a_param_again_to_the_same_value_is_accepted(owner_client: APIClient, run: Run) -> None:
    post_json(owner_client, log_path(run), issue_body())

    response = post_json(owner_client, log_path(run), issue_body(params={"lr": "0.01", "epochs": 3}))

    assert response.status_code == 200
    assert dict(Param.objects.filter(run=run).values_list("key", "value")) == {"lr": "0.01", "epochs": "3"}


def test_changing_a_param_is_a_conflict_and_writes_nothing_of_the_batch(owner_client: APIClient, run: Run) -> None:
    # given lr is set and one point is logged
    post_json(owner_client, log_path(run), issue_body())
    conflicting = issue_body(
        params={"lr": "0.1", "momentum": "0.9"},
        tags={"k": "changed", "new": "tag"},
        metrics=rows("loss", range(1, 11)) + rows("acc", range(5)),
    )

    # when a batch tries to change lr
    response = post_json(owner_client, log_path(run), conflicting)

    # then it is refused whole
    assert_error(response, 409, code="param_conflict", field="params.lr")
    assert dict(Param.objects.filter(run=run).values_list("key", "value")) == {"lr": "0.01"}
    assert dict(Tag.objects.filter(run=run).values_list("key", "value")) == {"k": "v"}
    assert total_points(owner_client, run, "loss") == 1
    assert MetricSummary.objects.get(run=run, key="loss").count == 1
    assert not MetricSummary.objects.filter(run=run, key="acc").exists()
    assert not LogBatch.objects.filter(run=run, batch_id=conflicting["batch_id"]).exists()

    # and the batch id is not consumed: the corrected retry is stored
    corrected = {**conflicting, "params": {"lr": "0.01", "momentum": "0.9"}}
    retry = post_json(owner_client, log_path(run), corrected)
    assert retry.json() == {"batch_id": conflicting["batch_id"], "duplicate": False, "points": 15}
    assert total_points(owner_client, run, "loss") == 11
    assert dict(Tag.objects.filter(run=run).values_list("key", "value")) == {"k": "changed", "new": "tag"}


def test_tags_may_be_overwritten(owner_client: APIClient, run: Run) -> None:
    post_json(owner_client, log_path(run), {"tags": {"stage": "a"}})
    post_json(owner_client, log_path(run), {"tags": {"stage": "b"}})

    assert Tag.objects.get(run=run, key="stage").value == "b"


BAD_BODIES: list[tuple[str, Any, str | None]] = [
    ("negative-step", {"metrics": [{"key": "loss", "step": -1, "value": 0.5}]}, "metrics.0.step"),
    ("float-step", {"metrics": [{"key": "loss", "step": 1.5, "value": 0.5}]}, "metrics.0.step"),
    ("bool-step", {"metrics": [{"key": "loss", "step": True, "value": 0.5}]}, "metrics.0.step"),
    ("bool-value", {"metrics": [{"key": "loss", "step": 0, "value": True}]}, "metrics.0.value"),
    ("string-value", {"metrics": [{"key": "loss", "step": 0, "value": "abc"}]}, "metrics.0.value"),
    ("null-value", {"metrics": [{"key": "loss", "step": 0, "value": None}]}, "metrics.0.value"),
    ("dotdot-key", {"metrics": [{"key": "train/../x", "step": 0, "value": 1.0}]}, "metrics.0.key"),
    ("long-key", {"metrics": [{"key": "k" * 251, "step": 0, "value": 1.0}]}, "metrics.0.key"),
    ("list-key", {"metrics": [{"key": ["loss"], "step": 0, "value": 1.0}]}, "metrics.0.key"),
    ("unknown-point-field", {"metrics": [{"key": "loss", "step": 0, "value": 1.0, "epoch": 1}]}, "metrics.0"),
    (
        "negative-timestamp",
        {"metrics": [{"key": "loss", "step": 0, "value": 1.0, "timestamp": -1}]},
        "metrics.0.timestamp",
    ),
    (
        "second-point-bad",
        {"metrics": [*rows("loss", [0]), {"key": "loss", "step": 1, "value": "x"}]},
        "metrics.1.value",
    ),
    ("metrics-not-list", {"metrics": {"loss": 1.0}}, "metrics"),
    ("unknown-top-level-field", {"metrics": [], "metric": []}, "metric"),
    ("bad-batch-id", {"batch_id": "no spaces allowed", "metrics": []}, "batch_id"),
    ("long-batch-id", {"batch_id": "b" * 65, "metrics": []}, "batch_id"),
    ("param-not-string", {"params": {"lr": [1]}}, "params.lr"),
    ("param-bad-key", {"params": {"a/../b": "1"}}, "params.a/../b"),
    ("param-too-long", {"params": {"notes": "x" * 6001}}, "params.notes"),
    ("params-not-object", {"params": ["lr"]}, "params"),
    ("tag-with-nul", {"tags": {"k": "a\x00b"}}, "tags.k"),
    ("tags-not-object", {"tags": "k=v"}, "tags"),
    ("series-bad-value", {"series": [{"key": "loss", "steps": [0, 1], "values": [1.0, True]}]}, "series.0.values.1"),
    ("series-length-mismatch", {"series": [{"key": "loss", "steps": [0, 1], "values": [1.0]}]}, "series.0"),
    # issue 17 bug 3: an empty series was a 500 (zero-size array) that lost the batch's good points
    ("series-empty", {"series": [{"key": "loss", "steps": [], "values": []}]}, "series.0.steps"),
    (
        "series-empty-after-a-good-one",
        {"series": [{"key": "acc", "steps": [0], "values": [0.5]}, {"key": "acc", "steps": [], "values": []}]},
        "series.1.steps",
    ),
    ("non-object-body", [{"key": "loss", "step": 0, "value": 1.0}], None),
    ("string-body", "loss", None),
]


@pytest.mark.parametrize(("body", "field"), [(b, f) for _, b, f in BAD_BODIES], ids=[i for i, _, _ in BAD_BODIES])
def test_bad_input_is_refused_with_its_field_and_writes_nothing(
    owner_client: APIClient, run: Run, body: Any, field: str | None
) -> None:
    if isinstance(body, dict):
        # the valid parts of a rejected batch must not be written either
        body = {"batch_id": "b-" + uuid.uuid4().hex, "params": {"seed": "1"}, "tags": {"t": "1"}, **body}
        body.setdefault("metrics", rows("good", range(3)))
        if "batch_id" in body and not isinstance(body["batch_id"], str):
            body.pop("batch_id")

    response = post_json(owner_client, log_path(run), body)

    assert_error(response, 400, field=field)
    assert nothing_written(run)


def test_a_huge_integer_value_is_refused_and_writes_nothing(owner_client: APIClient, run: Run) -> None:
    raw = '{"metrics": [{"key": "loss", "step": 0, "value": 1' + "0" * 400 + "}]}"

    response = post_json(owner_client, log_path(run), raw)

    # orjson refuses a number beyond a double while parsing, so the whole body is refused
    # (field null); the validator's own check is covered in test_metrics.py.
    error = assert_error(response, 400, code="parse_error", field=None)
    assert "infinity" in error["message"].lower()
    assert nothing_written(run)


def test_invalid_json_is_refused(owner_client: APIClient, run: Run) -> None:
    response = post_json(owner_client, log_path(run), '{"metrics": [')

    assert_error(response, 400, code="parse_error", field=None)
    assert nothing_written(run)


@pytest.mark.parametrize("raw", [b"", b"{}"], ids=["no-bytes", "empty-object"])
def test_an_empty_body_is_refused(owner_client: APIClient, run: Run, raw: bytes) -> None:
    response = owner_client.post(log_path(run), data=raw, content_type="application/json")

    assert_error(response, 400, field=None)
    assert nothing_written(run)


def test_a_nan_literal_is_refused_but_the_nan_string_is_stored_and_returned(owner_client: APIClient, run: Run) -> None:
    literal = post_json(owner_client, log_path(run), '{"metrics": [{"key": "loss", "step": 0, "value": NaN}]}')
    assert_error(literal, 400, code="parse_error")

    response = post_json(
        owner_client,
        log_path(run),
        {"metrics": [{"key": "loss", "step": 0, "value": "NaN"}, {"key": "loss", "step": 1, "value": "Infinity"}]},
    )

    assert response.status_code == 200
    points = owner_client.get(history_path(run, "loss")).json()["points"]
    assert [p["value"] for p in points] == ["NaN", "Infinity"]
    summary = owner_client.get(f"/api/v1/runs/{run.id}/metrics/").json()[0]
    assert summary["last"] == "Infinity"
    assert summary["max"] == "Infinity"
    assert summary["min"] == "Infinity"


def test_more_than_the_batch_limit_is_refused_whole(owner_client: APIClient, run: Run) -> None:
    n = MAX_POINTS_PER_BATCH + 1
    body = {"series": [{"key": "loss", "steps": list(range(n)), "values": [0.5] * n}]}

    assert_error(post_json(owner_client, log_path(run), body), 400, field="series")
    assert nothing_written(run)


def test_the_limit_counts_rows_and_series_together(owner_client: APIClient, run: Run) -> None:
    n = MAX_POINTS_PER_BATCH
    body = {"metrics": rows("acc", [0]), "series": [{"key": "loss", "steps": list(range(n)), "values": [0.5] * n}]}

    assert_error(post_json(owner_client, log_path(run), body), 400, field="series")
    assert nothing_written(run)


def test_exactly_the_batch_limit_is_accepted(owner_client: APIClient, run: Run) -> None:
    n = MAX_POINTS_PER_BATCH
    body = {"series": [{"key": "loss", "steps": list(range(n)), "values": [0.25] * n}]}

    response = post_json(owner_client, log_path(run), body)

    assert response.json()["points"] == n
    assert total_points(owner_client, run, "loss") == n


def test_the_columnar_series_form_is_stored(owner_client: APIClient, run: Run) -> None:
    body = {
        "series": [
            {"key": "loss", "steps": [0, 1, 2], "values": [0.9, 0.5, 0.1], "timestamps": [10, 20, 30]},
            {"key": "system/cpu", "steps": [0], "values": [42]},
        ],
        "metrics": rows("loss", [3], value=0.05, timestamp=40),
    }

    response = post_json(owner_client, log_path(run), body)

    assert response.json()["points"] == 5
    points = owner_client.get(history_path(run, "loss")).json()["points"]
    assert points == [
        {"step": 0, "value": 0.9, "timestamp": 10},
        {"step": 1, "value": 0.5, "timestamp": 20},
        {"step": 2, "value": 0.1, "timestamp": 30},
        {"step": 3, "value": 0.05, "timestamp": 40},
    ]
    assert MetricSummary.objects.get(run=run, key="system/cpu").last == 42.0


def test_summaries_stay_correct_across_batches_with_out_of_order_steps(owner_client: APIClient, run: Run) -> None:
    def log(steps_values: list[tuple[int, float]]) -> None:
        points = [{"key": "loss", "step": s, "value": v, "timestamp": 1000 + s} for s, v in steps_values]
        assert post_json(owner_client, log_path(run), {"metrics": points}).status_code == 200

    log([(10, 0.5), (11, 0.45)])
    log([(0, 2.0), (1, 1.5)])  # an earlier part of the curve arrives late
    log([(13, 0.3), (12, 0.35)])  # out of order inside a batch
    log([(5, 0.1)])

    summary = MetricSummary.objects.get(run=run, key="loss")
    assert (summary.last, summary.min, summary.max, summary.last_step, summary.count) == (0.3, 0.1, 2.0, 13, 7)
    assert summary.last_timestamp == 1013
    out = owner_client.get(f"/api/v1/runs/{run.id}/metrics/").json()
    assert out == [
        {"key": "loss", "last": 0.3, "min": 0.1, "max": 2.0, "last_step": 13, "last_timestamp": 1013, "count": 7}
    ]
    steps = [p["step"] for p in owner_client.get(history_path(run, "loss")).json()["points"]]
    assert steps == [0, 1, 5, 10, 11, 12, 13]


def test_missing_timestamps_are_filled_with_the_server_time(owner_client: APIClient, run: Run) -> None:
    import time

    before = int(time.time() * 1000)
    post_json(owner_client, log_path(run), {"metrics": [{"key": "loss", "step": 0, "value": 1}]})
    after = int(time.time() * 1000)

    (point,) = owner_client.get(history_path(run, "loss")).json()["points"]
    assert before <= point["timestamp"] <= after
    assert point["value"] == 1.0


def test_a_writer_may_log_to_a_teammates_run(member_client: APIClient, run: Run) -> None:
    response = post_json(member_client, log_path(run), issue_body())

    assert response.status_code == 200
    assert response.json()["points"] == 1


def test_a_viewer_may_not_log(viewer_client: APIClient, run: Run) -> None:
    response = post_json(viewer_client, log_path(run), issue_body())

    assert_error(response, 403, code="permission_denied")
    assert nothing_written(run)


def test_an_outsider_gets_not_found(outsider_client: APIClient, run: Run) -> None:
    response = post_json(outsider_client, log_path(run), issue_body())

    assert_error(response, 404, code="not_found")
    assert nothing_written(run)
