"""Logging through a real server: exactly-once delivery, config forms, resume, read-back."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import textwrap

import pytest
from conftest import subprocess_env
from sdk_helpers import assert_exactly

import assay


def test_100000_points_from_a_script_arrive_exactly_once(assay_env, project):
    # given a script that logs 10,000 steps of ten metrics
    script = textwrap.dedent(
        f"""
        import assay
        run = assay.init(project={project!r}, config={{"lr": 0.01}})
        for step in range(10_000):
            run.log({{f"m{{i}}": step * 0.5 + i for i in range(10)}})
        run.finish()
        print(run.id)
        """
    )
    # when it runs to the end
    done = subprocess.run(
        [sys.executable, "-c", script], env=subprocess_env(assay_env), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]
    # then every point is on the server once
    assert_exactly(run_id, [f"m{i}" for i in range(10)], range(10_000))
    with assay.Api() as api:
        record = api.run(run_id)
        assert record.status == "finished"
        assert record.metrics["m3"]["last"] == 9_999 * 0.5 + 3
        assert record.info["system"]["duration_seconds"] >= 0


def test_log_params_tags_summary_and_confusion_matrix(assay_env, project):
    with assay.init(project=project, experiment="baseline", tags={"owner": "ana"}, notes="hello") as run:
        run.log({"loss": 0.5, "acc": 0.8}, step=10)
        run.log({"loss": 0.4, "nested": {"a": 1, "b": {"c": 2}}})
        run.log_params({"batch_size": 64, "optim": {"name": "sgd"}})
        run.set_tags({"stage": "tuning"})
        run.summary["test_acc"] = 0.93
        matrix = run.log_confusion_matrix(["cat", "dog", "dog"], ["cat", "cat", "dog"], labels=["cat", "dog"])
        assert matrix == [[1, 0], [1, 1]]
    with assay.Api() as api:
        record = api.run(run.id)
        figures = api.figures(run.id)
    assert record.status == "finished"
    assert record.experiment == "baseline"
    assert record.notes == "hello"
    assert record.params == {"batch_size": "64", "optim.name": "sgd"}
    assert record.tags == {"owner": "ana", "stage": "tuning"}
    assert record.metrics["loss"]["last_step"] == 11  # auto step continues after an explicit one
    assert record.summary["test_acc"] == 0.93
    assert record.metrics["test_acc"]["last_step"] == 11
    assert record.summary["nested/b/c"] == 2
    assert figures[0]["data"] == {"labels": ["cat", "dog"], "matrix": [[1, 0], [1, 1]]}
    assert run.url
    assert run.id in run.url


def test_non_finite_and_bad_values_do_not_sink_a_batch(assay_env, project):
    with assay.init(project=project) as run:
        run.log({"x": float("nan"), "y": float("inf"), "bad key!": 1.0, "s": "text", "ok": True})
        run.log({"x": 1.0})
    with assay.Api() as api:
        points = api.history(run.id, "x")
        metrics = api.metrics(run.id)
    assert [p.step for p in points] == [0, 1]
    assert metrics["y"]["last"] == "Infinity"
    assert set(metrics) == {"x", "y", "ok"}


def test_context_manager_marks_a_failing_run_failed_with_the_error(assay_env, project):
    with pytest.raises(ZeroDivisionError), assay.init(project=project) as run:
        run.log({"loss": 1.0})
        1 / 0  # noqa: B018
    with assay.Api() as api:
        record = api.run(run.id)
    assert record.status == "failed"
    assert record.info["error"]["type"] == "ZeroDivisionError"
    assert record.info["error"]["message"] == "division by zero"
    assert "1 / 0" in record.info["error"]["traceback"]
    assert record.end_time is not None


@dataclasses.dataclass
class TrainConfig:
    lr: float = 0.01
    layers: tuple[int, ...] = (64, 32)
    name: str = "mlp"


@pytest.mark.parametrize(
    "config",
    [
        argparse.Namespace(lr=0.01, layers=(64, 32), name="mlp"),
        TrainConfig(),
        {"lr": 0.01, "layers": [64, 32], "name": "mlp"},
    ],
    ids=["namespace", "dataclass", "dict"],
)
def test_config_from_namespace_dataclass_or_dict(assay_env, project, config):
    with assay.init(project=project, config=config) as run:
        assert run.config == {"lr": 0.01, "layers": [64, 32], "name": "mlp"}
    with assay.Api() as api:
        assert api.run(run.id).config == {"lr": 0.01, "layers": [64, 32], "name": "mlp"}


def test_resume_continues_the_run_after_its_last_step(assay_env, project):
    with assay.init(project=project, config={"a": 1}) as first:
        for _ in range(5):
            first.log({"loss": 1.0})
    resumed = assay.init(resume=first.id, config={"b": 2})
    assert resumed.id == first.id
    assert resumed.step == 5
    resumed.log({"loss": 0.5})
    with assay.Api() as api:
        assert api.run(first.id).status == "running"
    resumed.finish()
    with assay.Api() as api:
        record = api.run(first.id)
    assert record.status == "finished"
    assert record.config == {"a": 1, "b": 2}
    assert_exactly(first.id, ["loss"], range(6))


def test_resume_of_an_unknown_run_says_so(assay_env):
    with pytest.raises(assay.NotFoundError, match="Run 'nope' not found"):
        assay.init(resume="nope")


def test_api_lists_runs_of_a_project_and_reads_history(assay_env, project):
    ids = []
    for index in range(3):
        with assay.init(project=project, name=f"run-{index}") as run:
            run.log({"acc": index / 10}, step=0)
            ids.append(run.id)
    with assay.Api() as api:
        runs = api.runs(project)
        best = api.runs(project, sort="-metrics.acc", limit=1)
        history = api.history(ids[2], "acc")
        me = api.me()
    assert {r.id for r in runs} == set(ids)
    assert best[0].name == "run-2"
    assert history == [assay.MetricPoint(0, 0.2, history[0].timestamp)]
    assert me["username"] == "ana"


def test_params_are_immutable_locally_too(assay_env, project, capsys):
    with assay.init(project=project) as run:
        run.log_params({"lr": 0.1})
        run.log_params({"lr": 0.2})
    assert "immutable" in capsys.readouterr().err
    with assay.Api() as api:
        assert api.run(run.id).params == {"lr": "0.1"}


def test_log_before_init_is_a_clear_error():
    with pytest.raises(assay.UsageError, match=r"call assay\.init\(\)"):
        assay.log({"loss": 1.0})


def test_logging_after_finish_is_refused(assay_env, project):
    run = assay.init(project=project)
    run.finish()
    with pytest.raises(assay.UsageError, match="finished"):
        run.log({"x": 1})


def test_disabled_mode_does_nothing(assay_env, project):
    run = assay.init(project=project, mode="disabled")
    run.log({"x": 1})
    run.finish()
    assert run.url is None
