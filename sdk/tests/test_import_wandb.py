"""``assay import wandb`` at the source level: offline runs written by the real wandb client in
the test (WANDB_MODE=offline), read back through the importer and compared with what was logged:
config, summary, every history row, tags, notes, files; and bad input (a missing folder, a
corrupt or truncated ``.wandb`` log) giving one line that names the problem, never a silent drop.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from assay.errors import UsageError
from assay.importers import wandb as reader

pytest.importorskip("wandb")

STEPS = 300

# Logged by the real client; dumps what it logged (the expected values) next to the run.
WRITER = textwrap.dedent(
    """
    import json, math, os, sys
    import wandb

    out = sys.argv[1]
    run = wandb.init(
        project="vision", entity="acme", name="resnet-a", notes="first try\\nwith two lines, naïve café",
        tags=["baseline", "gpu"], group="sweep-1", job_type="train",
        config={"lr": 0.001, "layers": [64, 128], "optimizer": {"name": "adam", "beta": 0.9}},
    )
    run.config.update({"batch_size": 32})
    rows = []
    for step in range(%(steps)d):
        row = {"loss": 1.0 / (step + 1), "acc": step / %(steps)d, "epoch": step // 100}
        if step %% 10 == 0:
            row["phase"] = "warmup" if step < 50 else "main"
        if step %% 50 == 0:
            row["grad"] = {"norm": step * 0.5, "max": step}
            row["ok"] = step %% 100 == 0
        if step == 7:
            row["spike"] = float("nan")
        if step == 120:
            row["weights"] = wandb.Histogram(np_histogram=([1, 2, 3], [0.0, 0.5, 1.0, 1.5]))
        run.log(row, step=step)
        rows.append({k: (v if not isinstance(v, wandb.Histogram) else "histogram") for k, v in row.items()} | {"_step": step})
    with open(os.path.join(run.dir, "notes.txt"), "wb") as handle:
        handle.write(bytes(range(256)))
    run.summary["best_acc"] = 0.97
    expected = {"id": run.id, "dir": os.path.dirname(run.dir), "rows": rows}
    run.finish()
    with open(out, "w") as handle:
        json.dump(expected, handle, allow_nan=True)
    """
)


def write_offline_run(tmp_path: Path, steps: int = STEPS) -> dict[str, Any]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(tmp_path),
        "WANDB_CONFIG_DIR": str(tmp_path / "config"),
        "WANDB_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_DATA_DIR": str(tmp_path / "data"),
        "WANDB_ERROR_REPORTING": "false",
    }
    script = tmp_path / "train.py"
    script.write_text(WRITER % {"steps": steps})
    expected = tmp_path / "expected.json"
    subprocess.run([sys.executable, str(script), str(expected)], env=env, check=True, cwd=tmp_path, timeout=120)
    return dict(json.loads(expected.read_text()))


def open_dir(path: Path, *runs: str) -> Any:
    return reader.open_source(argparse.Namespace(dir=str(path), entity=None, wandb_project=None, run=list(runs)))


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return write_offline_run(tmp_path_factory.mktemp("wandb"))


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_offline_run_reads_back_exactly(logged):
    # given an offline run written by the wandb client
    source = open_dir(Path(logged["dir"]).parent)
    assert source.count_runs() == 1

    # when it is read
    [run] = list(source.runs())
    batches = list(run.points)
    points = [point for batch in batches for point in batch]

    # then the run record is W&B's
    assert run.source == "wandb"
    assert run.source_id == f"acme/vision/{logged['id']}"
    assert (run.experiment, run.name, run.status) == ("vision", "resnet-a", "finished")
    assert run.notes == "first try\nwith two lines, naïve café"
    assert run.config == {
        "lr": 0.001,
        "layers": [64, 128],
        "optimizer": {"name": "adam", "beta": 0.9},
        "batch_size": 32,
    }
    assert {key: value for key, value in run.tags.items() if not key.startswith("wandb.")} == {
        "baseline": "",
        "gpu": "",
    }
    assert run.tags["wandb.group"] == "sweep-1"
    assert run.tags["wandb.job_type"] == "train"
    assert run.started_at is not None
    assert run.ended_at is not None
    assert run.started_at <= run.ended_at

    # and every numeric value of every history row is a point at its step
    rows = logged["rows"]
    expected = {}
    for row in rows:
        for key, value in row.items():
            if key == "_step" or value == "histogram" or isinstance(value, str):
                continue
            if isinstance(value, dict):
                for inner, number in value.items():
                    expected[(f"{key}.{inner}", row["_step"])] = float(number)
            else:  # NaN too: json wrote it as NaN and read it back as nan
                expected[(key, row["_step"])] = float(value)
    history = {(p.key, p.step): p.value for p in points if not p.key.startswith("system/")}
    assert history.keys() == expected.keys()
    assert all(_same(history[key], expected[key]) for key in expected)
    assert math.isnan(history[("spike", 7)])
    assert history[("ok", 0)] == 1.0
    assert history[("ok", 50)] == 0.0
    assert len(points) == len({(p.key, p.step) for p in points})  # nothing twice
    # timestamps are the client's, in milliseconds, inside the run's time span
    times = [p.timestamp for p in points if not p.key.startswith("system/")]
    assert min(times) >= int(run.started_at * 1000) - 1000
    assert max(times) <= int(run.ended_at * 1000) + 1000
    # system metrics, when the client sampled any, are system/<name> points numbered by sample
    system = [p for p in points if p.key.startswith("system/")]
    assert all(p.step >= 0 for p in system)

    # and the summary is the last value of each key plus what was set on it
    assert run.summary["best_acc"] == 0.97
    assert run.summary["loss"] == 1.0 / STEPS
    assert run.summary["acc"] == (STEPS - 1) / STEPS
    assert run.summary["phase"] == "main"
    assert run.summary["weights"]["_type"] == "histogram"
    assert not [key for key in run.summary if key.startswith("_")]

    # and what is not a number is kept, step by step, in one file; the saved file byte for byte
    files = {file.path: file.local for file in run.files}
    assert files["notes.txt"].read_bytes() == bytes(range(256))
    others = [json.loads(line) for line in files[reader.OTHER_FILE].read_text().splitlines()]
    phases = {(o["step"], o["value"]) for o in others if o["key"] == "phase"}
    assert phases == {(row["_step"], row["phase"]) for row in rows if "phase" in row}
    [histogram] = [o for o in others if o["key"] == "weights"]
    assert histogram["step"] == 120
    assert histogram["value"]["_type"] == "histogram"
    assert histogram["value"]["values"] == [1, 2, 3]
    assert histogram["value"]["bins"] == [0, 0.5, 1, 1.5]
    remarks = " ".join(run.remarks)
    assert "not numbers" in remarks
    assert "phase" in remarks
    assert "1/0" in remarks


def test_points_stream_in_bounded_batches(logged, monkeypatch):
    monkeypatch.setattr(reader, "BATCH", 100)
    source = open_dir(Path(logged["dir"]))
    [run] = list(source.runs())
    sizes = [len(batch) for batch in run.points]
    assert len(sizes) > 5
    assert max(sizes) < 100 + 20  # a batch closes after the row that filled it


def test_run_filter_and_single_folder(logged):
    assert open_dir(Path(logged["dir"])).count_runs() == 1
    with pytest.raises(UsageError, match="no W&B run"):
        open_dir(Path(logged["dir"]).parent, "not-this-one")


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_missing_path_is_one_line(tmp_path):
    with pytest.raises(UsageError) as caught:
        open_dir(tmp_path / "nowhere")
    assert "nowhere: no such file or directory" in _one_line(caught.value)


def test_folder_without_runs(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(UsageError) as caught:
        open_dir(tmp_path)
    assert "no W&B run here" in _one_line(caught.value)


def test_corrupt_log_names_the_file(tmp_path):
    folder = tmp_path / "wandb" / "offline-run-20260101_000000-abcd1234"
    folder.mkdir(parents=True)
    (folder / "run-abcd1234.wandb").write_bytes(os.urandom(4096))
    source = open_dir(tmp_path / "wandb")
    with pytest.raises(UsageError) as caught:
        list(source.runs())
    text = _one_line(caught.value)
    assert "run-abcd1234.wandb: not a readable W&B transaction log" in text


def test_damaged_and_truncated_logs_are_said(logged, tmp_path):
    # given copies of the run's log: one with a damaged block, one cut short (a killed run)
    original = next(Path(logged["dir"]).glob("*.wandb"))
    data = original.read_bytes()
    damaged = tmp_path / "damaged" / original.parent.name
    damaged.mkdir(parents=True)
    spoiled = bytearray(data)
    spoiled[len(data) // 2 : len(data) // 2 + 16] = b"\xff" * 16
    (damaged / original.name).write_bytes(bytes(spoiled))
    cut = tmp_path / "cut" / original.parent.name
    cut.mkdir(parents=True)
    (cut / original.name).write_bytes(data[: len(data) // 3])

    # when they are read (each source kept: its temporary files live as long as it does)
    damaged_source, cut_source = open_dir(damaged.parent), open_dir(cut.parent)
    [from_damaged] = list(damaged_source.runs())
    [from_cut] = list(cut_source.runs())

    # then what the reader skipped is in the remarks, and the cut run is not "finished"
    assert any("corrupt" in remark for remark in from_damaged.remarks)
    assert from_cut.status == "killed"
    assert any("no exit record" in remark for remark in from_cut.remarks)
    kept = [p for batch in from_cut.points for p in batch if p.key == "loss"]
    assert 0 < len(kept) < STEPS
    assert [p.step for p in kept] == list(range(len(kept)))


def test_cli_parser_takes_the_wandb_options():
    from assay.importers import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["import", "wandb", "--dir", "./wandb", "--project", "team/p", "--dry-run"])
    assert (args.dir, args.project, args.dry_run, args.import_module) == ("./wandb", "team/p", True, reader)
    args = parser.parse_args(["import", "wandb", "--entity", "acme", "--wandb-project", "vision"])
    assert (args.entity, args.wandb_project) == ("acme", "vision")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ({"dir": None, "entity": None, "wandb_project": None}, "--dir ./wandb"),
        ({"dir": "x", "entity": "acme", "wandb_project": "p"}, "not both"),
        ({"dir": None, "entity": "acme", "wandb_project": None}, "go together"),
    ],
)
def test_option_mistakes(argv, message):
    with pytest.raises(UsageError, match=message):
        reader.open_source(argparse.Namespace(run=[], **argv))


RESUMER = textwrap.dedent(
    """
    import sys
    import wandb

    part = int(sys.argv[1])
    run = wandb.init(project="vision", entity="acme", id="resumed01", resume="allow", config={f"part{part}": part})
    for step in range(part * 10, part * 10 + 10):
        run.log({"x": step * 1.5}, step=step)
    with open(f"{run.dir}/part{part}.txt", "w") as handle:
        handle.write(str(part))
    run.finish()
    """
)


def test_resumed_run_is_one_run(tmp_path):
    # given a run resumed once: two folders, one run id (folder names carry the second)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path)}
    env.update(WANDB_CONFIG_DIR=str(tmp_path / "config"), WANDB_CACHE_DIR=str(tmp_path / "cache"))
    script = tmp_path / "resume.py"
    script.write_text(RESUMER)
    for part in (0, 1):
        if part:
            time.sleep(1.1)  # the second folder's name must sort after the first's
        subprocess.run([sys.executable, str(script), str(part)], env=env, check=True, cwd=tmp_path, timeout=120)
    assert len(list((tmp_path / "wandb").glob("offline-run-*-resumed01"))) == 2

    # when the folder is read
    source = open_dir(tmp_path / "wandb")
    [run] = list(source.runs())

    # then it is one run with both parts' history, config and files
    assert source.count_runs() == 1
    assert run.source_id == "acme/vision/resumed01"
    assert run.config == {"part0": 0, "part1": 1}
    points = [(p.key, p.step, p.value) for batch in run.points for p in batch if p.key == "x"]
    assert points == [("x", step, step * 1.5) for step in range(20)]
    assert {"part0.txt", "part1.txt"} <= {file.path for file in run.files}
    assert run.summary["x"] == 19 * 1.5


def test_too_old_wandb_is_named(logged, monkeypatch):
    monkeypatch.setattr(reader.importlib.metadata, "version", lambda name: "0.16.6")
    source = open_dir(Path(logged["dir"]))
    with pytest.raises(UsageError) as caught:
        list(source.runs())
    assert "wandb 0.16.6 is installed; reading .wandb logs needs wandb>=0.31.0" in _one_line(caught.value)


class _FakeFile:
    def __init__(self, name: str, content: bytes) -> None:
        self.name, self.content = name, content

    def download(self, root: str = ".", replace: bool = False) -> None:
        target = Path(root) / self.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.content)


class _FakeRun:
    """The attributes of wandb.apis.public.Run that the API path reads (wandb 0.31.0)."""

    def __init__(self) -> None:
        self.id, self.name, self.state, self.created_at = "r1", "api-run", "crashed", "2026-01-02T03:04:05Z"
        self.tags, self.notes, self.group, self.job_type, self.username = ["t1"], "n", "g", "", "ada"
        self.config = {"lr": 0.1, "_wandb": {"x": 1}}
        self.summary_metrics = {"loss": 0.5, "_runtime": 12.5, "img": {"_type": "image-file", "path": "media/a.png"}}

    def scan_history(self, page_size: int = 1000) -> list[dict[str, Any]]:
        return [
            {"_step": step, "_timestamp": 1_767_322_000 + step, "loss": 1 / (step + 1), "note": f"s{step}"}
            for step in range(3)
        ]

    def history(self, stream: str = "default", pandas: bool = True, samples: int = 500) -> list[dict[str, Any]]:
        assert (stream, pandas) == ("system", False)
        return [{"_timestamp": 1_767_322_000.5, "system.cpu": 12.0}]

    def files(self) -> list[_FakeFile]:
        return [_FakeFile("output.log", b"hello\n")]


class _FakeApi:
    """Stands for W&B's servers, which this machine cannot reach."""

    def __init__(self, timeout: int = 0) -> None:
        pass

    def runs(self, path: str, per_page: int = 50, lazy: bool = True) -> list[_FakeRun]:
        assert (path, lazy) == ("acme/vision", False)
        return [_FakeRun()]


def test_api_path_maps_a_run(monkeypatch):
    import wandb

    monkeypatch.setattr(wandb, "Api", _FakeApi)
    source = reader.open_source(argparse.Namespace(dir=None, entity="acme", wandb_project="vision", run=[]))
    assert source.count_runs() == 1
    [run] = list(source.runs())
    assert (run.source_id, run.experiment, run.name, run.status, run.author) == (
        "acme/vision/r1",
        "vision",
        "api-run",
        "failed",
        "ada",
    )
    assert run.started_at == 1_767_323_045.0
    assert run.ended_at == 1_767_323_045.0 + 12.5
    assert run.config == {"lr": 0.1}
    assert run.tags == {"t1": "", "wandb.group": "g"}
    assert run.summary == {"loss": 0.5, "img": {"_type": "image-file", "path": "media/a.png"}}
    points = [(p.key, p.step, p.value) for batch in run.points for p in batch]
    assert points == [("loss", 0, 1.0), ("loss", 1, 0.5), ("loss", 2, 1 / 3), ("system/cpu", 0, 12.0)]
    files = {file.path: file.local.read_bytes() for file in run.files}
    assert files["output.log"] == b"hello\n"
    notes = [json.loads(line)["value"] for line in files[reader.OTHER_FILE].decode().splitlines()]
    assert notes == ["s0", "s1", "s2"]


def test_two_reads_yield_the_same_points_in_the_same_order(logged):
    # what lets a killed import resume: the writer numbers batches in the order a reader yields
    first_source, second_source = open_dir(Path(logged["dir"])), open_dir(Path(logged["dir"]))
    [first], [second] = list(first_source.runs()), list(second_source.runs())
    as_list = lambda run: [(p.key, p.step, repr(p.value), p.timestamp) for batch in run.points for p in batch]  # noqa: E731
    assert as_list(first) == as_list(second)
