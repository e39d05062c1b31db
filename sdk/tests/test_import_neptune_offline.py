"""``assay import neptune --offline``: a run written by the real neptune 1.x client in offline mode
(its own interpreter, ``.venv-neptune``: its pins would change the main venv's validators), read
back and compared with what was logged: parameters, sys/* fields, tags added and removed, float
series with fractional and automatic steps, a cleared series, string series, files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from assay.errors import UsageError
from assay.importers import neptune as reader

NEPTUNE_PYTHON = REPO / ".venv-neptune" / "bin" / "python"

WRITER = textwrap.dedent(
    """
    import datetime, json, sys
    import neptune
    from neptune.types import File

    run = neptune.init_run(
        mode="offline", project="acme/seg", name="unet-sweep", description="first U-Net",
        tags=["unet", "draft"], capture_hardware_metrics=False, capture_stdout=False,
        capture_stderr=False, capture_traceback=False, source_files=[], git_ref=False,
    )
    run["parameters"] = {"lr": 0.0003, "epochs": 40, "augment": True, "arch": "unet",
                         "started": datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)}
    for i in range(600):
        run["train/loss"].append(1.0 / (i + 1), step=i * 0.25)
    for i in range(50):
        run["eval/iou"].append(i / 100)  # automatic steps 0, 1, 2…
    run["old/metric"].append(5.0, step=1)
    del run["old/metric"]
    run["old/metric"].append(7.0, step=3)
    run["logs/text"].append("epoch 0 done", step=0)
    run["logs/text"].append("epoch 1 done", step=1)
    run["data/config"].upload(sys.argv[2])
    run["data/blob"].upload(File.from_content(b"\\x00\\x01binary", extension="bin"))
    run["sys/tags"].add("final")
    run["sys/tags"].remove("draft")
    run.stop()
    """
)


def write_offline_run(tmp_path: Path) -> Path:
    if not NEPTUNE_PYTHON.exists():
        pytest.fail(f"{NEPTUNE_PYTHON} is missing: run `make .venv-neptune/.installed`")
    script = tmp_path / "train.py"
    script.write_text(WRITER)
    config = tmp_path / "config.yaml"
    config.write_bytes(b"lr: 0.0003\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("NEPTUNE_", "PYTHON"))}
    subprocess.run(
        [str(NEPTUNE_PYTHON), str(script), "-", str(config)],
        env={**env, "NEPTUNE_MODE": "offline"},
        cwd=tmp_path,
        check=True,
        timeout=180,
        capture_output=True,
    )
    return tmp_path


def open_offline(path: Path) -> Any:
    return reader.open_source(argparse.Namespace(parquet=None, offline=str(path), files=None, run=[]))


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_offline_run(tmp_path_factory.mktemp("neptune"))


def test_offline_run_reads_back(project_dir):
    # given the folder the client wrote (.neptune/offline/run__…)
    source = open_offline(project_dir)
    assert source.count_runs() == 1
    [run] = list(source.runs())

    # then the run record is the client's
    assert run.source == "neptune"
    assert run.source_id.startswith("offline/")
    assert (run.experiment, run.status, run.notes) == ("unet-sweep", "finished", "first U-Net")
    assert {tag for tag, value in run.tags.items() if value == ""} == {"unet", "final"}
    assert run.tags["neptune.step_multiplier"] == "100"
    assert run.config["parameters/lr"] == 0.0003
    assert run.config["parameters/epochs"] == 40
    assert run.config["parameters/augment"] is True
    assert run.config["parameters/arch"] == "unet"
    assert run.config["parameters/started"] == "2025-03-01T12:00:00+00:00"
    assert run.started_at is not None
    assert run.ended_at is not None
    assert run.started_at <= run.ended_at

    # and every float point, fractional steps scaled by 100, automatic steps counted, the deleted
    # series only with what came after its deletion
    points = [point for batch in run.points for point in batch]
    by_key: dict[str, list[tuple[int, float]]] = {}
    for point in points:
        by_key.setdefault(point.key, []).append((point.step, point.value))
    assert by_key["train/loss"] == [(i * 25, 1.0 / (i + 1)) for i in range(600)]
    assert by_key["eval/iou"] == [(i * 100, i / 100) for i in range(50)]
    assert by_key["old/metric"] == [(300, 7.0)]
    assert set(by_key) == {"train/loss", "eval/iou", "old/metric"}

    # and the files byte for byte, the string series as JSON lines
    files = {file.path: file.local for file in run.files}
    assert files["data/config.yaml"].read_bytes() == b"lr: 0.0003\n"
    assert files["data/blob.bin"].read_bytes() == b"\x00\x01binary"
    lines = [json.loads(line) for line in files["neptune-series/logs/text.jsonl"].read_text().splitlines()]
    assert [(line["step"], line["value"]) for line in lines] == [(0, "epoch 0 done"), (1, "epoch 1 done")]
    assert any("multiplied by 100" in remark for remark in run.remarks)


def test_cut_log_is_said(project_dir, tmp_path):
    # given a copy of the run whose log ends in the middle of a line (a killed process)
    [folder] = list((project_dir / ".neptune" / "offline").iterdir())
    copy = tmp_path / ".neptune" / "offline" / folder.name
    copy.mkdir(parents=True)
    (copy / "metadata.json").write_bytes((folder / "metadata.json").read_bytes())
    data = (folder / "data-1.log").read_text()
    (copy / "data-1.log").write_text(data[: len(data) // 2])
    # when it is read, then what was cut is said
    source = open_offline(tmp_path)
    [run] = list(source.runs())
    assert any("cut short" in remark for remark in run.remarks)
    assert [p for batch in run.points for p in batch]


def test_no_offline_run_here(tmp_path):
    with pytest.raises(UsageError, match="no Neptune offline run here"):
        open_offline(tmp_path)
    with pytest.raises(UsageError, match="no such file or directory"):
        open_offline(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="not both"):
        reader.open_source(argparse.Namespace(parquet="x", offline="y", files=None, run=[]))
