"""``assay import mlflow`` end to end: MLflow stores written by MLflow's own client in the test
(a SQLite database and a ``mlruns/`` folder: runs with params, tags, 1,000-step histories,
artifacts, a dataset input, a registered model with two versions, an alias and a stage),
imported by the real CLI in ``.venv-mlflow`` (where mlflow is installed, as on a user's
machine) into a real server, then compared object by object through MLflow's client pointed
at Assay's MLflow-compatible API. Imported twice: nothing added. Killed mid-way and re-run:
exact totals. Bad input: a one-line error naming the problem, nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from artifacts.models import Artifact
from experiments.models import LogBatch, MetricSummary, Run
from registry.models import AliasMove, ModelRepository, ModelVersion
from tests.celery_worker import Worker, celery_worker
from tests.compat.conftest import MLFLOW_PYTHON, REPO, MlflowServer, mlflow_client

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

STEPS = 1_000

# Written by MLflow's client into the store named by STORE (a tracking URI).
WRITE_STORE = """
import hashlib, os, tempfile
import numpy as np
from mlflow.entities import Metric

store = os.environ["STORE"]
STEPS = int(os.environ["STEPS"])
prefix = os.environ.get("PREFIX", "")
mlflow.set_tracking_uri(store)
client = MlflowClient(tracking_uri=store, registry_uri=store)
mlflow.set_experiment(prefix + "training")
t0 = 1_600_000_000_000
runs = []
for i in range(3):
    with mlflow.start_run(run_name=f"{prefix}run-{i}") as run:
        rid = run.info.run_id
        mlflow.log_params({"lr": 0.01 * (i + 1), "epochs": 3, "optimizer": "adam"})
        mlflow.set_tags({"team": "risk", "index": str(i)})
        mlflow.set_tag("mlflow.note.content", f"notes of run {i}")
        for start in range(0, STEPS, 500):
            batch = []
            for s in range(start, start + 500):
                batch.append(Metric("loss", 1.0 / (s + 1 + i), t0 + s * 10, s))
                batch.append(Metric("val/acc", (s % 97) / 97.0, t0 + s * 10 + 1, s))
            client.log_batch(rid, metrics=batch)
        client.log_metric(rid, "nan_metric", float("nan"), timestamp=t0, step=0)
        folder = tempfile.mkdtemp()
        os.makedirs(os.path.join(folder, "model"))
        os.makedirs(os.path.join(folder, "plots", "deep"))
        payload = np.random.RandomState(i).bytes(300_000 + i)
        open(os.path.join(folder, "model", "model.bin"), "wb").write(payload)
        open(os.path.join(folder, "model", "MLmodel"), "w").write("flavors: {}\\n")
        open(os.path.join(folder, "plots", "deep", "curve.csv"), "w").write("step,loss\\n0,1\\n")
        open(os.path.join(folder, "readme.txt"), "w").write(f"run {i}\\n")
        mlflow.log_artifacts(folder)
        dataset = mlflow.data.from_numpy(np.arange(12.0).reshape(4, 3), source="s3://bucket/train.npy", name="train")
        mlflow.log_input(dataset, context="training")
        if i == 2:
            mlflow.end_run(status="FAILED")
    runs.append(rid)
model = prefix + "Fraud"
client.create_registered_model(model, tags={"owner": "risk"}, description="Catches fraud.")
for n, rid in enumerate(runs[:2]):
    client.create_model_version(model, source=f"runs:/{rid}/model", run_id=rid, tags={"n": str(n)},
                                description=f"version from run {n}")
client.set_registered_model_alias(model, "champion", "2")
import warnings
warnings.simplefilter("ignore")
client.transition_model_version_stage(model, "1", "Archived")
out["runs"] = runs
out["model"] = model
"""

# Reads every object of the store and of Assay (through the MLflow-compatible API) the same way.
DESCRIBE = """
import hashlib, os, tempfile
from mlflow.entities import ViewType

def describe(client, run_ids, model):
    runs = {}
    for rid in run_ids:
        r = client.get_run(rid)
        files = {}
        def walk(path):
            for item in client.list_artifacts(rid, path):
                if item.is_dir:
                    walk(item.path)
                else:
                    local = client.download_artifacts(rid, item.path, tempfile.mkdtemp())
                    files[item.path] = hashlib.sha256(open(local, "rb").read()).hexdigest()
        walk(None)
        runs[rid] = {
            "name": r.info.run_name,
            "status": r.info.status,
            "start_time": r.info.start_time,
            "end_time": r.info.end_time,
            "user_id": r.info.user_id,
            "experiment": client.get_experiment(r.info.experiment_id).name,
            "params": r.data.params,
            # assay.same_config_as is Assay's own, computed on read (issue 22): not imported data.
            "tags": {k: v for k, v in r.data.tags.items() if k != "assay.same_config_as"},
            "metrics": {k: repr(v) for k, v in r.data.metrics.items()},
            "histories": {
                k: sorted((m.step, repr(m.value), m.timestamp) for m in client.get_metric_history(rid, k))
                for k in r.data.metrics
            },
            "files": files,
            "datasets": sorted(
                (d.dataset.name, d.dataset.digest, d.dataset.source_type, d.dataset.source,
                 sorted((t.key, t.value) for t in d.tags))
                for d in r.inputs.dataset_inputs
            ),
        }
    m = client.get_registered_model(model)
    versions = {}
    for n in ("1", "2"):
        v = client.get_model_version(model, n)
        versions[n] = {
            "run_id": v.run_id, "description": v.description, "tags": v.tags,
            "creation_timestamp": v.creation_timestamp, "user_id": v.user_id,
        }
    return {
        "runs": runs,
        "model": {
            "description": m.description, "tags": m.tags,
            "aliases": {k: str(v) for k, v in m.aliases.items()}, "versions": versions,
        },
    }
"""


@pytest.fixture(scope="module", autouse=True)
def worker_queue() -> Iterator[str]:
    """The queue of the module's worker, named before the server starts (it reads the name
    from the environment)."""
    queue = f"test-import-{uuid.uuid4().hex[:12]}"
    os.environ["ASSAY_CELERY_QUEUE"] = queue
    try:
        yield queue
    finally:
        os.environ.pop("ASSAY_CELERY_QUEUE", None)


@pytest.fixture(scope="module", autouse=True)
def worker(
    worker_queue: str, mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """A Celery worker for the server's tasks, on its files: uploads are verified and then
    download through the MLflow client, as in a deployment."""
    env = {"ASSAY_VAR_DIR": str(mlflow_server.var_dir)}
    with celery_worker(tmp_path_factory.mktemp("worker"), queue=worker_queue, env=env) as running:
        yield running


def wait_for_processing(timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while Artifact.objects.exclude(status__in=["ready", "failed"]).exists():
        assert time.monotonic() < deadline, list(Artifact.objects.values_list("path", "status", "reason"))
        time.sleep(0.2)


def write_store(server: MlflowServer, store: str, *, prefix: str = "") -> dict[str, Any]:
    env = {"STORE": store, "PREFIX": prefix, "STEPS": str(STEPS), "MLFLOW_ALLOW_FILE_STORE": "true"}
    return mlflow_client(server, WRITE_STORE, env=env)


def describe(server: MlflowServer, run_ids: list[str], model: str, *, store: str | None = None) -> dict[str, Any]:
    script = (
        DESCRIBE
        + f"""
store = {store!r}
if store:
    client = MlflowClient(tracking_uri=store, registry_uri=store)
out.update(describe(client, {run_ids!r}, {model!r}))
"""
    )
    return mlflow_client(server, script, env={"MLFLOW_ALLOW_FILE_STORE": "true"})


def assay_import(server: MlflowServer, *args: str, who: str = "owner", wait: bool = True, timeout: float = 300) -> Any:
    """Run ``assay import mlflow …`` with mlflow's interpreter, as a user's machine would."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(server.var_dir),
        "PYTHONPATH": str(REPO / "sdk" / "src"),
        "ASSAY_URL": server.url,
        "ASSAY_TOKEN": server.tokens[who],
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "GIT_PYTHON_REFRESH": "quiet",
        "PYTHONUNBUFFERED": "1",
    }
    command = [str(MLFLOW_PYTHON), "-m", "assay.cli", "import", "mlflow", *args]
    cwd = server.var_dir / "import-cwd"  # where MLflow would make ./mlflow.db by mistake
    cwd.mkdir(exist_ok=True)
    if not wait:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def sqlite_store(mlflow_server: MlflowServer) -> dict[str, Any]:
    path = mlflow_server.var_dir / "sqlite-store"
    path.mkdir()
    uri = f"sqlite:///{path / 'mlflow.db'}"
    # The artifacts of a sqlite store go to ./mlartifacts (the script's cwd) by default; keep
    # them beside the database.
    written = mlflow_client(
        mlflow_server,
        f"import os\nos.chdir({str(path)!r})\n" + WRITE_STORE,
        env={"STORE": uri, "PREFIX": "", "STEPS": str(STEPS)},
    )
    return {"uri": uri, **written}


@pytest.fixture(scope="module")
def imported_sqlite(
    mlflow_server: MlflowServer, sqlite_store: dict[str, Any], django_db_blocker: Any
) -> dict[str, Any]:
    first = assay_import(mlflow_server, "--tracking-uri", sqlite_store["uri"], "-p", "acme/proj")
    assert first.returncode == 0, first.stderr + first.stdout
    with django_db_blocker.unblock():
        wait_for_processing()
    return {"first": first}


def test_a_sqlite_store_is_imported_object_by_object(
    mlflow_server: MlflowServer, sqlite_store: dict[str, Any], imported_sqlite: dict[str, Any]
) -> None:
    # given the store and what Assay serves, both read through MLflow's client
    source = describe(mlflow_server, sqlite_store["runs"], "Fraud", store=sqlite_store["uri"])
    assay = describe(mlflow_server, sqlite_store["runs"], "fraud")

    # then every run is the same run, under the same id
    for run_id in sqlite_store["runs"]:
        src, dst = source["runs"][run_id], assay["runs"][run_id]
        for key in ("name", "status", "start_time", "end_time", "user_id", "experiment", "params", "tags"):
            assert dst[key] == src[key], (run_id, key)
        assert dst["metrics"] == src["metrics"]
        assert dst["histories"] == src["histories"]
        assert len(dst["histories"]["loss"]) == STEPS
        assert dst["files"] == src["files"]
        assert len(dst["files"]) == 4
        assert dst["datasets"] == src["datasets"]
    assert source["runs"][sqlite_store["runs"][2]]["status"] == "FAILED"
    # and the registered model, its versions (numbers, runs, times, authors) and its alias
    src_model, dst_model = source["model"], assay["model"]
    assert dst_model["description"] == src_model["description"]
    assert dst_model["tags"] == src_model["tags"]
    assert dst_model["aliases"] == src_model["aliases"] == {"champion": "2"}
    for n in ("1", "2"):
        src_v, dst_v = src_model["versions"][n], dst_model["versions"][n]
        assert dst_v["run_id"] == src_v["run_id"]
        assert dst_v["description"] == src_v["description"]
        assert dst_v["creation_timestamp"] == src_v["creation_timestamp"]
        assert (dst_v["user_id"] or None) == (src_v["user_id"] or None)
    assert dst_model["versions"]["1"]["tags"] == {**src_model["versions"]["1"]["tags"], "mlflow.stage": "Archived"}
    assert dst_model["versions"]["2"]["tags"] == src_model["versions"]["2"]["tags"]
    # and the alias move is in the log as imported
    moves = AliasMove.objects.filter(repository__name="fraud")
    assert [(m.alias, m.imported, m.reason) for m in moves] == [("champion", True, "imported from mlflow")]
    # and the report says what was done
    report = imported_sqlite["first"].stdout
    assert "runs imported: 3" in report
    assert f"points: {3 * (2 * STEPS + 1):,}" in report
    assert "files: 12" in report
    assert "versions imported: 2" in report
    assert "aliases set: 1" in report
    assert "stage 'Archived' kept as the tag mlflow.stage" in report
    assert "assay import: runs: 3/3" in imported_sqlite["first"].stderr


def test_importing_the_same_store_again_adds_nothing(
    mlflow_server: MlflowServer, sqlite_store: dict[str, Any], imported_sqlite: dict[str, Any]
) -> None:
    before = counts()

    again = assay_import(mlflow_server, "--tracking-uri", sqlite_store["uri"], "-p", "acme/proj")

    assert again.returncode == 0, again.stderr
    assert counts() == before
    assert "already imported, nothing added" in again.stdout
    assert "runs already imported: 3" in again.stdout
    assert "versions already imported: 2" in again.stdout


def test_a_dry_run_counts_and_writes_nothing(mlflow_server: MlflowServer, sqlite_store: dict[str, Any]) -> None:
    before = counts()

    dry = assay_import(mlflow_server, "--tracking-uri", sqlite_store["uri"], "-p", "acme/proj", "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert counts() == before
    assert "nothing was written" in dry.stdout
    assert f"points: {3 * (2 * STEPS + 1):,}" in dry.stdout
    assert "runs: 3" in dry.stdout
    assert "versions: 2" in dry.stdout


def test_an_mlruns_folder_is_imported(mlflow_server: MlflowServer) -> None:
    folder = mlflow_server.var_dir / "files-store" / "mlruns"
    written = write_store(mlflow_server, str(folder), prefix="f-")

    done = assay_import(mlflow_server, "--tracking-uri", str(folder), "-p", "acme/proj")

    assert done.returncode == 0, done.stderr + done.stdout
    wait_for_processing()
    source = describe(mlflow_server, written["runs"], "f-Fraud", store=str(folder))
    assay = describe(mlflow_server, written["runs"], "f-fraud")
    for run_id in written["runs"]:
        src, dst = source["runs"][run_id], assay["runs"][run_id]
        for key in ("name", "status", "start_time", "end_time", "params", "tags", "metrics", "histories", "files"):
            assert dst[key] == src[key], (run_id, key)
    assert assay["model"]["aliases"] == {"champion": "2"}
    assert list((mlflow_server.var_dir / "import-cwd").iterdir()) == []  # reading made no store
    assert [assay["model"]["versions"][n]["run_id"] for n in ("1", "2")] == written["runs"][:2]


def counts() -> dict[str, int]:
    return {
        "runs": Run.objects.count(),
        "batches": LogBatch.objects.count(),
        "summaries": MetricSummary.objects.count(),
        "models": ModelRepository.objects.count(),
        "versions": ModelVersion.objects.count(),
        "moves": AliasMove.objects.count(),
    }


# --- killed mid-way ------------------------------------------------------------------------------------

MANY_RUNS = """
import os
from mlflow.entities import Metric
store = os.environ["STORE"]
client = MlflowClient(tracking_uri=store)
experiment = client.create_experiment("many")
out["runs"] = []
for i in range(int(os.environ["RUNS"])):
    run = client.create_run(experiment, run_name=f"many-{i}")
    rid = run.info.run_id
    for start in range(0, 3000, 1000):
        client.log_batch(rid, metrics=[Metric(f"m{k}", float(s * k), 1_600_000_000_000 + s, s)
                                       for s in range(start, start + 1000) for k in range(1)])
    client.set_terminated(rid)
    out["runs"].append(rid)
"""


def test_an_import_killed_mid_way_resumes_to_exact_totals(mlflow_server: MlflowServer) -> None:
    # given a store of 60 runs of 3,000 points, and a project to import it into
    store = f"sqlite:///{mlflow_server.var_dir / 'many.db'}"
    written = mlflow_client(mlflow_server, MANY_RUNS, env={"STORE": store, "RUNS": "60"})
    # (through the server: a row made in this test's transaction would be invisible to it)
    with mlflow_server.http() as http:
        made = http.post(mlflow_server.url + "/api/v1/projects/", json={"team": "acme", "name": "resume"})
        assert made.status_code == 201, made.text

    # when an import is killed once some runs are in, and run again
    process = assay_import(mlflow_server, "--tracking-uri", store, "-p", "acme/resume", "--workers", "2", wait=False)
    deadline = time.monotonic() + 120
    while Run.objects.filter(project__name="resume", imported_at__isnull=False).count() < 5:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    halfway = Run.objects.filter(project__name="resume").count()
    finished_then = Run.objects.filter(project__name="resume", imported_at__isnull=False).count()
    again = assay_import(mlflow_server, "--tracking-uri", store, "-p", "acme/resume")

    # then every run is there once, with exactly its points
    assert again.returncode == 0, again.stderr + again.stdout
    assert 5 <= finished_then < 60  # killed mid-way
    assert halfway <= 60
    runs = Run.objects.filter(project__name="resume")
    assert runs.count() == 60
    assert sorted(runs.values_list("pk", flat=True)) == sorted(written["runs"])
    assert all(r.imported_at is not None for r in runs)
    summaries = MetricSummary.objects.filter(run__project__name="resume")
    assert summaries.count() == 60
    assert set(summaries.values_list("count", flat=True)) == {3000}
    assert f"runs already imported: {finished_then}" in again.stdout
    resumed = "runs resumed" in again.stdout
    assert resumed or halfway == finished_then


# --- bad input ------------------------------------------------------------------------------------------


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("assay: error: ")
    return lines[0]


def test_bad_input_is_one_line_naming_the_problem_and_writes_nothing(
    mlflow_server: MlflowServer, sqlite_store: dict[str, Any], tmp_path: Path
) -> None:
    before = counts()
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    plain_db = tmp_path / "plain.db"
    import sqlite3

    with sqlite3.connect(plain_db) as db:
        db.execute("create table t (x int)")
    wandb_dir = tmp_path / "wandb"
    (wandb_dir / "offline-run-1").mkdir(parents=True)
    cases = {
        "no such file": assay_import(
            mlflow_server, "--tracking-uri", f"sqlite:///{tmp_path}/missing.db", "-p", "acme/proj"
        ),
        "no such folder": assay_import(mlflow_server, "--tracking-uri", str(tmp_path / "nope"), "-p", "acme/proj"),
        "is a file, not an MLflow store": assay_import(mlflow_server, "--tracking-uri", str(text), "-p", "acme/proj"),
        "is a SQLite file: pass sqlite:///": assay_import(
            mlflow_server, "--tracking-uri", str(plain_db), "-p", "acme/proj"
        ),
        "but not an MLflow store": assay_import(
            mlflow_server, "--tracking-uri", f"sqlite:///{plain_db}", "-p", "acme/proj"
        ),
        "not an MLflow mlruns/ folder": assay_import(
            mlflow_server, "--tracking-uri", str(wandb_dir), "-p", "acme/proj"
        ),
        "needs the writer role": assay_import(
            mlflow_server, "--tracking-uri", sqlite_store["uri"], "-p", "acme/proj", who="viewer"
        ),
        "may not write to acme/proj": assay_import(
            mlflow_server, "--tracking-uri", sqlite_store["uri"], "-p", "acme/proj", who="owner_read"
        ),
        "no project acme/proj": assay_import(
            mlflow_server, "--tracking-uri", sqlite_store["uri"], "-p", "acme/proj", who="outsider"
        ),
        "no project acme/nothing": assay_import(
            mlflow_server, "--tracking-uri", sqlite_store["uri"], "-p", "acme/nothing"
        ),
        "--project must be team/project": assay_import(mlflow_server, "--tracking-uri", sqlite_store["uri"], "-p", "x"),
    }

    for expected, result in cases.items():
        assert expected in _one_line_error(result), (expected, result.stderr)
    assert counts() == before
    assert not (tmp_path / "missing.db").exists()  # MLflow would have created an empty store
    assert json.dumps(before)
