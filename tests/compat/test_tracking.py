"""MLflow tracking through the real ``mlflow`` client (3.17.2, its own interpreter) against
Assay's ASGI server: what the client logs lands in Assay's models (and so in its API,
dashboard and search), and what the SDK logs reads back through the client."""

from __future__ import annotations

import pytest

from experiments.models import Experiment, ExperimentTag, MetricSummary, Param, Run, Tag
from tests.compat.conftest import MlflowServer, mlflow_client

# django_db: the test database must exist (the module fixture commits its people there).
# One xdist worker runs the whole module: one server, and the tests in file order.
pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.xdist_group("mlflow-tracking")]


def test_client_round_trip_of_experiments_runs_params_metrics_and_tags(mlflow_server: MlflowServer) -> None:
    # given a fresh project, when the client creates, logs, searches and reads back
    out = mlflow_client(
        mlflow_server,
        """
        import math, time
        from mlflow.entities import Metric, Param, RunTag, ViewType

        with mlflow.start_run(run_name="fluent") as fluent:  # no experiment set: MLflow's "0"
            mlflow.log_param("p", "v")
            mlflow.log_metrics({"m": 1.5, "n": 2.0}, step=4)
            mlflow.set_tags({"kind": "fluent"})
        out["default_experiment"] = mlflow.get_experiment("0").name
        frame = mlflow.search_runs(experiment_ids=["0"])
        out["fluent_frame"] = frame[["tags.mlflow.runName", "params.p", "metrics.m", "status"]].values.tolist()
        out["fluent_run"] = mlflow.get_run(fluent.info.run_id).info.experiment_id

        exp_id = client.create_experiment("fraud", tags={"team": "risk"})
        out["exp_id"] = exp_id
        out["duplicate"] = error_of(client.create_experiment, "fraud")
        exp = client.get_experiment(exp_id)
        out["exp"] = {"name": exp.name, "tags": exp.tags, "stage": exp.lifecycle_stage}
        out["by_name"] = client.get_experiment_by_name("fraud").experiment_id
        out["missing_by_name"] = client.get_experiment_by_name("nope") is None

        client.set_experiment_tag(exp_id, "owner", "ann")
        client.rename_experiment(exp_id, "fraud-v2")
        out["renamed"] = client.get_experiment(exp_id).name

        run = client.create_run(exp_id, run_name="first", tags={"stage": "dev"})
        rid = run.info.run_id
        out["run_id"] = rid
        client.log_param(rid, "lr", 0.01)
        client.log_metric(rid, "loss", 0.5, step=0, timestamp=1764150000000)
        client.log_metric(rid, "loss", 0.25, step=1, timestamp=1764150001000)
        client.log_metric(rid, "weird", float("nan"), step=0)
        client.log_metric(rid, "big", float("inf"), step=0)
        client.set_tag(rid, "team", "risk")
        client.set_tag(rid, "temp", "x")
        client.delete_tag(rid, "temp")
        client.log_batch(
            rid,
            metrics=[Metric("acc", 0.5 + i / 100, 1764150000000 + i, i) for i in range(30)],
            params=[Param("optimizer", "adam"), Param("lr", "0.01")],
            tags=[RunTag("mlflow.note.content", "first try")],
        )
        out["param_change"] = error_of(client.log_param, rid, "lr", "0.5")
        client.set_terminated(rid, "FINISHED")

        got = client.get_run(rid)
        out["run"] = {
            "name": got.info.run_name,
            "status": got.info.status,
            "end_time": got.info.end_time is not None,
            "params": got.data.params,
            "metrics": {k: (str(v) if isinstance(v, float) and (math.isnan(v) or math.isinf(v)) else v)
                        for k, v in got.data.metrics.items()},
            "tags": {k: v for k, v in got.data.tags.items() if k in ("team", "temp", "stage", "mlflow.runName", "mlflow.note.content")},
            "user": got.info.user_id,
            "experiment_id": got.info.experiment_id,
        }
        history = client.get_metric_history(rid, "loss")
        out["history"] = [(m.step, m.value, m.timestamp) for m in history]

        other = client.create_run(exp_id, run_name="second")
        client.log_metric(other.info.run_id, "acc", 0.9)
        client.log_param(other.info.run_id, "optimizer", "sgd")
        client.set_terminated(other.info.run_id, "FAILED")
        third = client.create_run(exp_id, run_name="third")
        client.log_metric(third.info.run_id, "acc", 0.7)

        found = client.search_runs([exp_id], "metrics.acc > 0.6 and params.optimizer = 'sgd'")
        out["search_filter"] = [r.info.run_name for r in found]
        ordered = client.search_runs([exp_id], "", order_by=["metrics.acc DESC"])
        out["search_order"] = [r.info.run_name for r in ordered]
        by_tag = client.search_runs([exp_id], "tags.mlflow.runName = 'third'", order_by=["tags.`mlflow.runName` DESC"])
        out["search_run_name_tag"] = [r.info.run_name for r in by_tag]
        by_status = client.search_runs([exp_id], "attributes.status = 'FAILED'")
        out["search_status"] = [r.info.run_name for r in by_status]
        page1 = client.search_runs([exp_id], "", max_results=2, order_by=["attributes.run_name ASC"])
        page2 = client.search_runs([exp_id], "", max_results=2, order_by=["attributes.run_name ASC"], page_token=page1.token)
        out["pages"] = [[r.info.run_name for r in page1], [r.info.run_name for r in page2], page2.token]
        out["bad_filter"] = error_of(client.search_runs, [exp_id], "metrics.acc >>> 1")

        client.delete_run(third.info.run_id)
        out["after_delete"] = sorted(r.info.run_name for r in client.search_runs([exp_id]))
        out["deleted_only"] = [r.info.run_name for r in client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)]
        client.restore_run(third.info.run_id)
        out["after_restore"] = len(client.search_runs([exp_id]))

        exps = client.search_experiments(filter_string="name LIKE 'fraud%' AND tags.team = 'risk'")
        out["search_experiments"] = [e.name for e in exps]
        client.delete_experiment(exp_id)
        out["exp_deleted"] = client.get_experiment(exp_id).lifecycle_stage
        out["active_names"] = [e.name for e in client.search_experiments()]
        out["deleted_names"] = [e.name for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)]
        client.restore_experiment(exp_id)
        out["exp_restored"] = client.get_experiment(exp_id).lifecycle_stage
        out["missing_run"] = error_of(client.get_run, "0" * 32)
        """,
    )

    # then the client saw MLflow's answers ...
    assert out["default_experiment"] == "Default"
    assert out["fluent_frame"] == [["fluent", "v", 1.5, "FINISHED"]]
    assert Experiment.objects.get(pk=out["fluent_run"]).name == "Default"
    assert out["duplicate"]["code"] == "RESOURCE_ALREADY_EXISTS"
    assert out["exp"] == {"name": "fraud", "tags": {"team": "risk"}, "stage": "active"}
    assert out["by_name"] == out["exp_id"]
    assert out["missing_by_name"] is True
    assert out["renamed"] == "fraud-v2"
    run = out["run"]
    assert run["name"] == "first"
    assert run["status"] == "FINISHED"
    assert run["end_time"] is True
    assert run["params"] == {"lr": "0.01", "optimizer": "adam"}
    assert run["metrics"]["loss"] == 0.25
    assert run["metrics"]["acc"] == pytest.approx(0.79)
    assert run["metrics"]["weird"] == "nan"
    assert run["metrics"]["big"] == "inf"
    assert run["tags"] == {
        "team": "risk",
        "stage": "dev",
        "mlflow.runName": "first",
        "mlflow.note.content": "first try",
    }
    assert run["user"] == "owner"
    assert run["experiment_id"] == out["exp_id"]
    assert out["param_change"]["code"] == "INVALID_PARAMETER_VALUE"
    assert out["history"] == [[0, 0.5, 1764150000000], [1, 0.25, 1764150001000]]
    assert out["search_filter"] == ["second"]
    assert out["search_order"] == ["second", "first", "third"]
    assert out["search_status"] == ["second"]
    assert out["search_run_name_tag"] == ["third"]
    assert out["pages"][0] == ["first", "second"]
    assert out["pages"][1] == ["third"]
    assert out["pages"][2] is None
    assert out["bad_filter"]["code"] == "INVALID_PARAMETER_VALUE"
    assert out["after_delete"] == ["first", "second"]
    assert out["deleted_only"] == ["third"]
    assert out["after_restore"] == 3
    assert out["search_experiments"] == ["fraud-v2"]
    assert out["exp_deleted"] == "deleted"
    assert "fraud-v2" not in out["active_names"]
    assert out["deleted_names"] == ["fraud-v2"]
    assert out["exp_restored"] == "active"
    assert out["missing_run"]["code"] == "RESOURCE_DOES_NOT_EXIST"

    # ... and Assay holds the same data in its own models
    experiment = Experiment.objects.get(pk=out["exp_id"])
    assert experiment.name == "fraud-v2"
    assert experiment.project.path == "acme/proj"
    assert dict(ExperimentTag.objects.filter(experiment=experiment).values_list("key", "value")) == {
        "team": "risk",
        "owner": "ann",
    }
    stored = Run.objects.select_related("author").get(pk=out["run_id"])
    assert (stored.name, stored.status, stored.notes, stored.author and stored.author.username) == (
        "first",
        "finished",
        "first try",
        "owner",
    )
    assert dict(Param.objects.filter(run=stored).values_list("key", "value")) == {"lr": "0.01", "optimizer": "adam"}
    assert dict(Tag.objects.filter(run=stored).values_list("key", "value")) == {"team": "risk", "stage": "dev"}
    assert MetricSummary.objects.get(run=stored, key="acc").count == 30


def test_a_viewer_reads_but_may_not_write_and_an_outsider_sees_nothing(mlflow_server: MlflowServer) -> None:
    # given an experiment and a run of the owner
    owner = mlflow_client(
        mlflow_server,
        """
        exp_id = client.create_experiment("guarded")
        run = client.create_run(exp_id, run_name="guarded-run")
        client.log_metric(run.info.run_id, "acc", 0.5)
        out["exp_id"], out["run_id"] = exp_id, run.info.run_id
        """,
    )
    exp_id, run_id = owner["exp_id"], owner["run_id"]
    script = f"""
        out["read"] = error_of(client.get_run, "{run_id}")
        out["search"] = error_of(client.search_runs, ["{exp_id}"])
        out["log"] = error_of(client.log_metric, "{run_id}", "acc", 0.9)
        out["param"] = error_of(client.log_param, "{run_id}", "x", "1")
        out["tag"] = error_of(client.set_tag, "{run_id}", "x", "1")
        out["create_run"] = error_of(client.create_run, "{exp_id}")
        out["create_experiment"] = error_of(client.create_experiment, "viewer-made")
        out["delete_run"] = error_of(client.delete_run, "{run_id}")
        out["terminate"] = error_of(client.set_terminated, "{run_id}", "FINISHED")
        """

    # when a viewer and an outsider try
    viewer = mlflow_client(mlflow_server, script, who="viewer")
    outsider = mlflow_client(mlflow_server, script, who="outsider")

    # then the viewer reads and is refused every write with PERMISSION_DENIED ...
    assert viewer["read"] is None
    assert viewer["search"] is None
    for call in ("log", "param", "tag", "create_run", "create_experiment", "delete_run", "terminate"):
        assert viewer[call]["code"] == "PERMISSION_DENIED", call
    # ... and the outsider learns nothing: the project does not exist for them
    for call, error in outsider.items():
        assert error["code"] == "RESOURCE_DOES_NOT_EXIST", call
    # and nothing was written
    run = Run.objects.get(pk=run_id)
    assert run.status == "running"
    assert MetricSummary.objects.get(run=run, key="acc").count == 1
    assert not Param.objects.filter(run=run).exists()
    assert not Experiment.objects.filter(name="viewer-made").exists()


def test_a_run_with_an_earlier_runs_configuration_carries_its_id(mlflow_server: MlflowServer) -> None:
    """Issue 22 through the MLflow client: the same params in other spellings (``0.01`` and
    ``1e-2``) are the same configuration; the later run names the earlier one in the tag
    ``assay.same_config_as``, in get_run and search_runs; another configuration gets none."""
    out = mlflow_client(
        mlflow_server,
        """
import time
from mlflow.entities import Param
exp = client.create_experiment("tried-through-mlflow")
def run_with(lr, seed):
    run_id = client.create_run(exp).info.run_id
    client.log_batch(run_id, params=[Param("h18_lr", lr), Param("h18_depth", "3"), Param("seed", seed)])
    time.sleep(0.05)
    return run_id
first = run_with("0.01", "1")
second = run_with("1e-2", "2")       # same configuration (the seed is excluded by default)
other = run_with("0.02", "3")
third = run_with("0.010", "4")       # same again: names the most recent earlier one
client.set_tag(other, "assay.same_config_as", "forged")  # Assay's to say, not the client's
out["ids"] = [first, second, other, third]
out["got"] = [client.get_run(r).data.tags.get("assay.same_config_as") for r in out["ids"]]
found = client.search_runs([exp])
out["searched"] = {r.info.run_id: r.data.tags.get("assay.same_config_as") for r in found}
""",
    )

    first, second, other, third = out["ids"]
    assert out["got"] == [None, first, None, second]
    assert out["searched"] == {first: None, second: first, other: None, third: second}
