"""What existing training code does, unchanged: ``mlflow.sklearn.autolog()`` and the fluent
API, against Assay; and the other way round, a run logged with Assay's SDK read through the
MLflow client; and the live updates that MLflow logging causes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import assay
import pytest
import websockets

from experiments.models import MetricSummary, Param, Run
from tests.compat.conftest import MlflowServer, mlflow_client
from tests.live.conftest import in_own_loop

# django_db: the test database must exist (the module fixture commits its people there).
# One xdist worker runs the whole module: one server, and the tests in file order.
pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.xdist_group("mlflow-autolog")]


AUTOLOG = """
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

mlflow.set_experiment("iris")
mlflow.sklearn.autolog(log_models=False)
X, y = load_iris(return_X_y=True)
with mlflow.start_run(run_name="logreg") as run:
    LogisticRegression(max_iter=200, C=0.5).fit(X, y)
    mlflow.log_metric("custom_loss", 0.125, step=3)
    mlflow.log_params({"fold": 1})
    mlflow.set_tag("owner", "ann")
out["run_id"] = run.info.run_id
got = client.get_run(run.info.run_id)
out["params"] = got.data.params
out["metrics"] = got.data.metrics
out["tags"] = got.data.tags
out["status"] = got.info.status
out["inputs"] = [
    (d.dataset.name, d.dataset.digest, d.dataset.source_type, [t.value for t in d.tags])
    for d in got.inputs.dataset_inputs
]
"""


@pytest.fixture(scope="module")
def autolog_out(mlflow_server: MlflowServer) -> dict[str, Any]:
    """One training script for the module's tests (starting sklearn costs seconds)."""
    return mlflow_client(mlflow_server, AUTOLOG)


def test_sklearn_autolog_and_the_fluent_api_land_params_tags_datasets_and_metrics(
    autolog_out: dict[str, Any],
) -> None:
    out = autolog_out

    assert out["status"] == "FINISHED"
    assert out["params"]["C"] == "0.5"
    assert out["params"]["max_iter"] == "200"
    assert out["params"]["fold"] == "1"
    assert out["metrics"]["custom_loss"] == 0.125
    assert out["tags"]["estimator_name"] == "LogisticRegression"
    assert out["tags"]["mlflow.runName"] == "logreg"
    assert out["tags"]["mlflow.source.type"] == "LOCAL"
    assert out["tags"]["owner"] == "ann"
    assert len(out["inputs"]) == 1, "autolog logs the training set as a dataset input"
    name, digest, source_type, context = out["inputs"][0]
    assert (name, source_type, context) == ("dataset", "code", ["train"])
    assert digest

    # the run is an Assay run of the project, in the experiment the script set
    run = Run.objects.select_related("experiment", "project__team").get(pk=out["run_id"])
    assert (run.project.path, run.experiment.name, run.status) == ("acme/proj", "iris", "finished")
    assert Param.objects.get(run=run, key="C").value == "0.5"
    assert MetricSummary.objects.get(run=run, key="custom_loss").last_step == 3
    assert run.info["datasets"][f"dataset@{digest}"]["tags"] == {"mlflow.data.context": "train"}


# sklearn autolog flushes its training metrics only after logging its plots and estimator.html
# through the mlflow-artifacts proxy (compat/artifacts.py).
def test_sklearn_autolog_logs_training_metrics(autolog_out: dict[str, Any]) -> None:
    assert 0.9 < autolog_out["metrics"]["training_accuracy_score"] <= 1.0
    assert "training_f1_score" in autolog_out["metrics"]


def test_a_run_logged_with_the_assay_sdk_reads_back_through_the_mlflow_client(mlflow_server: MlflowServer) -> None:
    # given a run logged with Assay's own SDK (over HTTP, to the same server)
    run = assay.init(
        project="acme/proj",
        experiment="sdk-exp",
        name="sdk-run",
        tags={"source": "sdk"},
        url=mlflow_server.url,
        token=mlflow_server.tokens["owner"],
        capture_code=False,
        capture_environment=False,
        system_metrics=False,
        silent=True,
    )
    run.log_params({"lr": 0.1, "layers": 3})
    for step in range(5):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    run.log_dataset("train", uri="s3://bucket/train.csv", digest="sha256:abc", rows=10)
    run.finish()

    # when the MLflow client reads it
    out = mlflow_client(
        mlflow_server,
        f"""
        got = client.get_run("{run.id}")
        out["info"] = [got.info.run_name, got.info.status, got.info.user_id, got.info.lifecycle_stage]
        out["params"] = got.data.params
        out["metrics"] = got.data.metrics
        out["tags"] = {{k: v for k, v in got.data.tags.items() if k == "source"}}
        out["datasets"] = [(d.dataset.name, d.dataset.digest, d.dataset.source) for d in got.inputs.dataset_inputs]
        out["history"] = [(m.step, m.value) for m in client.get_metric_history("{run.id}", "loss")]
        exp = client.get_experiment_by_name("sdk-exp")
        found = client.search_runs([exp.experiment_id], "params.layers = '3' and metrics.loss < 0.5")
        out["found"] = [r.info.run_id for r in found]
        """,
    )

    # then it sees what the SDK logged
    assert out["info"] == ["sdk-run", "FINISHED", "owner", "active"]
    assert out["params"] == {"lr": "0.1", "layers": "3"}
    assert out["metrics"] == {"loss": pytest.approx(0.2)}
    assert out["tags"] == {"source": "sdk"}
    assert out["datasets"] == [["train", "sha256:abc", "s3://bucket/train.csv"]]
    assert out["history"] == [[s, pytest.approx(1.0 / (s + 1))] for s in range(5)]
    assert out["found"] == [run.id]


def test_mlflow_logging_reaches_live_subscribers_like_sdk_logging(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    go = tmp_path / "go"
    created = tmp_path / "run-id"
    script = f"""
        import time, pathlib
        run = client.create_run(client.create_experiment("live"), run_name="live-run")
        pathlib.Path({str(created)!r}).write_text(run.info.run_id)
        deadline = time.monotonic() + 30
        while not pathlib.Path({str(go)!r}).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        client.log_batch(run.info.run_id, metrics=[mlflow.entities.Metric("loss", 0.5, 1764150000000, 7)])
        client.set_terminated(run.info.run_id, "FINISHED")
        """
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        url = mlflow_server.url.replace("http://", "ws://") + "/ws/"
        headers = {"Authorization": f"Bearer {mlflow_server.tokens['viewer']}"}
        async with websockets.connect(url, additional_headers=headers) as sock:
            await sock.send(json.dumps({"type": "subscribe", "topic": "project:acme/proj"}))
            assert json.loads(await sock.recv())["type"] == "subscribed"
            client = asyncio.create_task(asyncio.to_thread(mlflow_client, mlflow_server, script))
            event = json.loads(await asyncio.wait_for(sock.recv(), timeout=60))
            received.append(event)
            await sock.send(json.dumps({"type": "subscribe", "topic": f"run:{event['data']['id']}"}))
            assert json.loads(await asyncio.wait_for(sock.recv(), timeout=10))["type"] == "subscribed"
            go.touch()
            while len(received) < 4:
                received.append(json.loads(await asyncio.wait_for(sock.recv(), timeout=30)))
            await client

    in_own_loop(scenario)()

    run_id = created.read_text()
    assert received[0]["event"] == "run.created"
    assert received[0]["data"]["id"] == run_id
    assert received[0]["data"]["name"] == "live-run"
    metrics = [e for e in received if e["event"] == "metrics"]
    assert metrics[0]["data"]["points"]["loss"] == {"steps": [7], "values": [0.5]}
    finished = [e for e in received if e["event"] == "run.updated"]
    assert finished
    assert finished[-1]["data"]["status"] == "finished"
