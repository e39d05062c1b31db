"""``assay import wandb`` and ``assay import neptune`` end to end: the command a user runs, against
a live server (PostgreSQL, the real upload path). A W&B offline run written by the wandb client
and a neptune-exporter export written in its schema are imported, read back through Assay's API
(runs, every point, files byte for byte) and imported again: nothing added.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import Server, subprocess_env
from test_import_neptune import PROJECT as NEPTUNE_PROJECT
from test_import_neptune import T0, Export, attr, series
from test_import_neptune_offline import write_offline_run as write_neptune_offline_run
from test_import_wandb import STEPS, write_offline_run

import assay
from assay.importers.wandb import OTHER_FILE

pytest.importorskip("wandb")
pytest.importorskip("pyarrow")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("import-end-to-end")]


def assay_import(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assay.cli", "import", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def make_project(server: Server, project: str) -> None:
    team, name = project.split("/")
    with server.http() as http:
        http.post("/projects/", json={"team": team, "name": name}).raise_for_status()


def imported_runs(project: str) -> list[assay.api.RunRecord]:
    with assay.Api() as api:
        return [api.run(run.id) for run in api.runs(project)]


def files_of(run_id: str) -> dict[str, tuple[int, str]]:
    """Every file of a run as the server lists it: size and sha256 (the content the upload
    declared and the server checks; reading it back needs the scanning worker, which the
    artifact tests run)."""
    with assay.Api() as api:
        return {
            str(item["path"]): (int(item["size"]), str(item["sha256"])) for item in api.client.list_artifacts(run_id)
        }


def digest(content: bytes) -> tuple[int, str]:
    return len(content), hashlib.sha256(content).hexdigest()


def test_a_wandb_offline_run_is_imported_once(running_server, assay_env, project, tmp_path):
    # given an offline run written by the wandb client, and a project
    logged = write_offline_run(tmp_path / "w")
    make_project(running_server, project)
    env = subprocess_env(assay_env)

    # when it is imported
    first = assay_import(env, "wandb", "--dir", str(Path(logged["dir"]).parent), "--project", project)

    # then one run holds every numeric history value at its step, the summary, tags and files
    assert first.returncode == 0, first.stderr
    [run] = imported_runs(project)
    assert (run.name, run.status, run.experiment) == ("resnet-a", "finished", "vision")
    assert run.config["optimizer"] == {"name": "adam", "beta": 0.9}
    assert run.tags["baseline"] == ""
    assert run.info["imported"]["summary"]["best_acc"] == 0.97
    with assay.Api() as api:
        loss = api.history(run.id, "loss")
        flags = api.history(run.id, "ok")
    assert [(p.step, p.value) for p in loss] == [(step, 1.0 / (step + 1)) for step in range(STEPS)]
    assert [(p.step, p.value) for p in flags] == [(step, float(step % 100 == 0)) for step in range(0, STEPS, 50)]
    assert "not numbers" in first.stdout
    files = files_of(run.id)
    assert files["notes.txt"] == digest(bytes(range(256)))
    assert OTHER_FILE in files
    assert "requirements.txt" in files

    # when it is imported again, then nothing is added
    again = assay_import(env, "wandb", "--dir", str(Path(logged["dir"]).parent), "--project", project)
    assert again.returncode == 0, again.stderr
    assert "already imported, nothing added" in again.stdout
    [same] = imported_runs(project)
    assert same.id == run.id
    with assay.Api() as api:
        assert len(api.history(run.id, "loss")) == STEPS


def neptune_export(root: Path) -> Export:
    export = Export(root)
    export.write_run(
        "SEG-1",
        [
            attr("sys/name", "string", string_value="unet-sweep"),
            attr("sys/creation_time", "datetime", datetime_value=T0),
            attr("sys/tags", "string_set", string_set_value=["unet"]),
            attr("parameters/lr", "float", float_value=0.0003),
            *series("train/loss", [Decimal(i) / 2 for i in range(1500)], lambda s: float(s)),
            attr("source/config", "file", file_value={"path": "SEG-1/config.yaml"}),
        ],
        parts=2,
    )
    export.write_file("SEG-1/config.yaml", b"lr: 0.0003\n")
    return export


def test_a_neptune_export_is_imported_once(running_server, assay_env, project, tmp_path):
    # given a neptune-exporter export with fractional steps, and a project
    export = neptune_export(tmp_path)
    make_project(running_server, project)
    env = subprocess_env(assay_env)
    args = ("neptune", "--parquet", str(export.data), "--files", str(export.files), "--project", project)

    # when it is imported
    first = assay_import(env, *args)

    # then the float series is there with its steps scaled by 10, the file byte for byte
    assert first.returncode == 0, first.stderr
    [run] = imported_runs(project)
    assert (run.experiment, run.name) == ("unet-sweep", "SEG-1")
    assert run.config == {"parameters/lr": 0.0003}
    assert run.tags["neptune.step_multiplier"] == "10"
    with assay.Api() as api:
        loss = api.history(run.id, "train/loss")
    assert [(p.step, p.value) for p in loss] == [(i * 5, i / 2) for i in range(1500)]
    assert files_of(run.id)["source/config/config.yaml"] == digest(b"lr: 0.0003\n")
    assert "multiplied by 10" in first.stdout
    assert f"{NEPTUNE_PROJECT}/SEG-1" in first.stdout

    # when it is imported again, then nothing is added
    again = assay_import(env, *args)
    assert again.returncode == 0, again.stderr
    assert "already imported, nothing added" in again.stdout
    assert [r.id for r in imported_runs(project)] == [run.id]


def test_a_corrupt_log_is_one_line_and_writes_nothing(running_server, assay_env, project, tmp_path):
    folder = tmp_path / "wandb" / "offline-run-20260101_000000-abcd1234"
    folder.mkdir(parents=True)
    (folder / "run-abcd1234.wandb").write_bytes(b"\x00garbage" * 100)
    make_project(running_server, project)

    result = assay_import(subprocess_env(assay_env), "wandb", "--dir", str(tmp_path / "wandb"), "--project", project)

    assert result.returncode != 0
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith(("import:", "assay import:"))
    ]
    assert len(lines) == 1, result.stderr
    assert "run-abcd1234.wandb: not a readable W&B transaction log" in lines[0]
    assert imported_runs(project) == []


def test_a_neptune_offline_run_is_imported_once(running_server, assay_env, project, tmp_path):
    # given a run the neptune 1.x client kept offline (.venv-neptune), and a project
    folder = write_neptune_offline_run(tmp_path)
    make_project(running_server, project)
    env = subprocess_env(assay_env)

    # when it is imported, twice
    first = assay_import(env, "neptune", "--offline", str(folder), "--project", project)
    again = assay_import(env, "neptune", "--offline", str(folder), "--project", project)

    # then its fractional steps are scaled, its automatic steps counted, and nothing is added the second time
    assert first.returncode == 0, first.stderr
    [run] = imported_runs(project)
    assert (run.experiment, run.notes) == ("unet-sweep", "first U-Net")
    with assay.Api() as api:
        assert [(p.step, p.value) for p in api.history(run.id, "train/loss")] == [
            (i * 25, 1.0 / (i + 1)) for i in range(600)
        ]
        assert [p.step for p in api.history(run.id, "eval/iou")] == [i * 100 for i in range(50)]
    assert files_of(run.id)["data/config.yaml"] == digest(b"lr: 0.0003\n")
    assert again.returncode == 0, again.stderr
    assert "already imported, nothing added" in again.stdout
    assert [r.id for r in imported_runs(project)] == [run.id]


def test_a_neptune_import_killed_mid_way_resumes_to_exact_totals(running_server, assay_env, project, tmp_path):
    # given an export of 12 runs of 20,000 points with fractional steps, and a project
    export = Export(tmp_path)
    for number in range(12):
        steps = [Decimal(i) / 4 for i in range(20_000)]
        export.write_run(f"SEG-{number}", [*series("train/loss", steps, lambda s: float(s))])
    make_project(running_server, project)
    env = subprocess_env(assay_env)
    command = [sys.executable, "-m", "assay.cli", "import", "neptune", "--parquet", str(export.data), "-p", project]

    # when the import is killed once some runs are in, and run again
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(imported_runs(project)) < 3:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    halfway = len(imported_runs(project))
    again = assay_import(env, "neptune", "--parquet", str(export.data), "-p", project)

    # then every run is there once, with exactly its points
    assert again.returncode == 0, again.stderr + again.stdout
    assert 3 <= halfway < 12  # killed mid-way
    runs = imported_runs(project)
    assert sorted(run.name for run in runs) == sorted(f"SEG-{number}" for number in range(12))
    with assay.Api() as api:
        for run in runs:
            assert api.metrics(run.id)["train/loss"]["count"] == 20_000, run.name
            steps = [p.step for p in api.history(run.id, "train/loss")]
            assert steps == [i * 25 for i in range(20_000)], run.name
