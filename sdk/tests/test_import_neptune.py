"""``assay import neptune`` at the source level: Parquet files in neptune-exporter's documented
layout and schema (``neptune_exporter/model.py::SCHEMA``, folders named by its
``sanitize_path_part``), written by the test, read back and compared value by value; and bad
input (a missing folder, a Parquet file of another schema, a file that is not Parquet) giving
one line that names the problem.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from assay.errors import UsageError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from assay.importers import neptune as reader  # noqa: E402 - after the skip when pyarrow is missing

# neptune-exporter's SCHEMA, as its src/neptune_exporter/model.py defines it.
SCHEMA = pa.schema(
    [
        ("project_id", pa.string()),
        ("run_id", pa.string()),
        ("attribute_path", pa.string()),
        ("attribute_type", pa.string()),
        ("step", pa.decimal128(18, 6)),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("int_value", pa.int64()),
        ("float_value", pa.float64()),
        ("string_value", pa.string()),
        ("bool_value", pa.bool_()),
        ("datetime_value", pa.timestamp("ms", tz="UTC")),
        ("string_set_value", pa.list_(pa.string())),
        ("file_value", pa.struct([("path", pa.string())])),
        (
            "histogram_value",
            pa.struct([("type", pa.string()), ("edges", pa.list_(pa.float64())), ("values", pa.list_(pa.float64()))]),
        ),
    ]
)
PROJECT = "acme/segmentation"
T0 = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def sanitize(part: str) -> str:
    """neptune_exporter.utils.sanitize_path_part, copied: the exporter's folder and file names."""
    safe = "".join(c if c.isalnum() or c in ("_", "-") else "_" for c in part)
    return safe + "-" + hashlib.blake2b(part.encode("utf-8"), digest_size=8).hexdigest()


class Export:
    """An export on disk: data/<project>/<run>_part_<n>.parquet and files/<project>/…"""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        self.files = root / "files"

    def write_run(self, run_id: str, rows: list[dict[str, Any]], parts: int = 1) -> None:
        folder = self.data / sanitize(PROJECT)
        folder.mkdir(parents=True, exist_ok=True)
        full = [{**dict.fromkeys(SCHEMA.names), "project_id": PROJECT, "run_id": run_id, **row} for row in rows]
        table = pa.Table.from_pylist(full, schema=SCHEMA)
        size = math.ceil(len(full) / parts)
        for part in range(parts):
            pq.write_table(table.slice(part * size, size), folder / f"{sanitize(run_id)}_part_{part}.parquet")

    def write_file(self, relative: str, content: bytes) -> None:
        path = self.files / sanitize(PROJECT) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def attr(path: str, kind: str, **values: Any) -> dict[str, Any]:
    return {"attribute_path": path, "attribute_type": kind, **values}


def series(path: str, steps: list[Decimal], value: Any) -> list[dict[str, Any]]:
    return [
        attr(path, "float_series", step=step, timestamp=T0 + dt.timedelta(seconds=float(step)), float_value=value(step))
        for step in steps
    ]


@pytest.fixture
def export(tmp_path: Path) -> Export:
    export = Export(tmp_path)
    fractional = [Decimal(i) / 4 for i in range(2000)]  # 0, 0.25, 0.5…: two decimal places
    export.write_run(
        "SEG-1",
        [
            attr("sys/name", "string", string_value="unet-sweep"),
            attr("sys/custom_run_id", "string", string_value="unet-a"),
            attr("sys/creation_time", "datetime", datetime_value=T0),
            attr("sys/modification_time", "datetime", datetime_value=T0 + dt.timedelta(hours=1)),
            attr("sys/owner", "string", string_value="ada"),
            attr("sys/tags", "string_set", string_set_value=["unet", "baseline"]),
            attr("sys/description", "string", string_value="the first U-Net"),
            attr("sys/failed", "bool", bool_value=False),
            attr("sys/hostname", "string", string_value="gpu-7"),
            attr("parameters/lr", "float", float_value=0.0003),
            attr("parameters/epochs", "int", int_value=40),
            attr("parameters/augment", "bool", bool_value=True),
            attr("parameters/classes", "string_set", string_set_value=["road", "car"]),
            attr("parameters/started", "datetime", datetime_value=T0),
            attr("parameters/arch", "string", string_value="unet"),
            *series("train/loss", fractional, lambda s: 1 / (float(s) + 1)),
            *series("eval/iou", fractional[::8], lambda s: float(s) / 1000),
            attr("train/loss", "float_series", step=Decimal("600"), timestamp=T0, float_value=None),
            attr("logs/stdout", "string_series", step=Decimal("0.5"), timestamp=T0, string_value="epoch 0 done"),
            attr("logs/stdout", "string_series", step=Decimal("1.5"), timestamp=T0, string_value="epoch 1 done"),
            attr(
                "weights/hist",
                "histogram_series",
                step=Decimal(3),
                timestamp=T0,
                histogram_value={"type": "COUNTING", "edges": [0.0, 1.0, 2.0], "values": [4.0, 5.0]},
            ),
            attr("source/config", "file", file_value={"path": "SEG-1/config.yaml"}),
            attr("samples", "file_series", step=Decimal(2), timestamp=T0, file_value={"path": "SEG-1/s/2.png"}),
            attr("gone", "file", file_value={"path": "SEG-1/missing.bin"}),
            attr("escape", "file", file_value={"path": "../../outside.txt"}),
        ],
        parts=3,
    )
    export.write_file("SEG-1/config.yaml", b"lr: 0.0003\n")
    export.write_file("SEG-1/s/2.png", bytes(range(256)) * 4)
    (export.files.parent / "outside.txt").write_text("not part of the export")
    export.write_run(
        "SEG-2",
        [
            attr("sys/name", "string", string_value="unet-sweep"),
            attr("sys/failed", "bool", bool_value=True),
            *series("train/loss", [Decimal(i) for i in range(100)], lambda s: float(s)),
        ],
    )
    return export


def open_export(data: Path, files: Path | None = None, *runs: str) -> Any:
    return reader.open_source(
        argparse.Namespace(parquet=str(data), files=str(files) if files else None, run=list(runs))
    )


def test_export_reads_back_exactly(export):
    # when the export is read
    source = open_export(export.data)
    assert source.count_runs() == 2
    first, second = list(source.runs())

    # then the run record comes from sys/*
    assert first.source == "neptune"
    assert first.source_id == f"{PROJECT}/SEG-1"
    assert (first.experiment, first.name, first.status, first.author) == ("unet-sweep", "unet-a", "finished", "ada")
    assert first.notes == "the first U-Net"
    assert first.started_at == T0.timestamp()
    assert first.ended_at == T0.timestamp() + 3600
    assert first.tags["unet"] == first.tags["baseline"] == ""
    assert first.tags["sys/hostname"] == "gpu-7"
    assert first.tags["neptune.step_multiplier"] == "100"
    # parameters are the config, natively typed, under their Neptune paths
    assert first.config == {
        "parameters/lr": 0.0003,
        "parameters/epochs": 40,
        "parameters/augment": True,
        "parameters/classes": ["car", "road"],
        "parameters/started": T0.isoformat(),
        "parameters/arch": "unet",
    }

    # and every float point is there, steps scaled by 100 (0.25 -> 25), timestamps kept
    points = [point for batch in first.points for point in batch]
    expected = {}
    for i in range(2000):
        step = Decimal(i) / 4
        when = round((T0 + dt.timedelta(seconds=float(step))).timestamp() * 1000)
        expected[("train/loss", i * 25)] = (1 / (float(step) + 1), when)
        if i % 8 == 0:
            expected[("eval/iou", i * 25)] = (float(step) / 1000, when)
    assert {(p.key, p.step): (p.value, p.timestamp) for p in points} == expected
    assert len(points) == len(expected)
    assert any("multiplied by 100" in remark for remark in first.remarks)
    assert any("1 float series rows without a value" in remark for remark in first.remarks)

    # and the files are byte for byte, the series as JSON lines, the missing one said
    files = {file.path: file.local for file in first.files}
    assert files["source/config/config.yaml"].read_bytes() == b"lr: 0.0003\n"
    assert files["samples/step_2/2.png"].read_bytes() == bytes(range(256)) * 4
    stdout = [json.loads(line) for line in files["neptune-series/logs/stdout.jsonl"].read_text().splitlines()]
    assert stdout == [
        {"step": 0.5, "timestamp": round(T0.timestamp() * 1000), "value": "epoch 0 done"},
        {"step": 1.5, "timestamp": round(T0.timestamp() * 1000), "value": "epoch 1 done"},
    ]
    [hist] = [json.loads(line) for line in files["neptune-series/weights/hist.jsonl"].read_text().splitlines()]
    assert hist == {
        "step": 3,
        "timestamp": round(T0.timestamp() * 1000),
        "type": "COUNTING",
        "edges": [0.0, 1.0, 2.0],
        "values": [4.0, 5.0],
    }
    assert set(files) == {
        "source/config/config.yaml",
        "samples/step_2/2.png",
        "neptune-series/logs/stdout.jsonl",
        "neptune-series/weights/hist.jsonl",
    }
    missing = " ".join(remark for remark in first.remarks if "not on disk" in remark)
    assert "gone" in missing
    assert "escape" in missing  # a path leaving the export is not followed

    # and a run with whole steps keeps them, a failed run is failed
    assert second.status == "failed"
    assert "neptune.step_multiplier" not in second.tags
    assert [p.step for batch in second.points for p in batch] == list(range(100))


def test_points_stream_in_bounded_batches(export, monkeypatch):
    monkeypatch.setattr(reader, "BATCH_ROWS", 128)
    source = open_export(export.data)
    first = next(source.runs())
    sizes = [len(batch) for batch in first.points]
    assert len(sizes) > 10
    assert max(sizes) <= 128


def test_one_project_folder_and_run_filter(export):
    source = open_export(export.data / sanitize(PROJECT), export.files, "SEG-2")
    assert source.count_runs() == 1
    assert [run.source_id for run in source.runs()] == [f"{PROJECT}/SEG-2"]


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_missing_path_is_one_line(tmp_path):
    with pytest.raises(UsageError) as caught:
        open_export(tmp_path / "nowhere")
    assert "nowhere: no such file or directory" in _one_line(caught.value)


def test_foreign_schema_is_refused_before_anything_is_read(export):
    # given a Parquet file of another tool among the exporter's
    folder = export.data / sanitize(PROJECT)
    pq.write_table(pa.table({"run": ["a"], "metric": [1.0]}), folder / "other_part_0.parquet")
    # when the source is opened, then it names the file and what it lacks
    with pytest.raises(UsageError) as caught:
        open_export(export.data)
    text = _one_line(caught.value)
    assert "other_part_0.parquet: not a neptune-exporter file" in text
    assert "project_id" in text


def test_not_parquet_is_refused(tmp_path):
    folder = tmp_path / "data" / "p"
    folder.mkdir(parents=True)
    (folder / "r_part_0.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(UsageError) as caught:
        open_export(tmp_path / "data")
    assert "r_part_0.parquet: not a readable Parquet file" in _one_line(caught.value)


def test_folder_without_runs(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "r_part_1.parquet").write_bytes(b"")  # no part_0: not a complete run
    with pytest.raises(UsageError) as caught:
        open_export(tmp_path)
    assert "no neptune-exporter run here" in _one_line(caught.value)


def test_long_names_are_cut_and_said(tmp_path):
    # given a Neptune 2.x run whose free-text sys/name (the experiment) is longer than Assay holds
    export = Export(tmp_path)
    title = "a very long description of what this run tried " * 5
    export.write_run("SEG-9", [attr("sys/name", "string", string_value=title)])
    # when it is read, then the name is cut and the full text is in the remarks
    source = open_export(export.data)
    [run] = list(source.runs())
    assert len(run.experiment) == 128
    assert title.startswith(run.experiment[:-1])
    assert any(title in remark for remark in run.remarks)


def test_model_registry_export_is_named(tmp_path):
    (tmp_path / "acme_seg-0123" / "models").mkdir(parents=True)
    (tmp_path / "acme_seg-0123" / "models" / "SEG-MOD_part_0.parquet").write_bytes(b"")
    with pytest.raises(UsageError) as caught:
        open_export(tmp_path)
    assert "a model registry export (export-models), which this importer does not read" in _one_line(caught.value)


def test_cli_parser_takes_the_neptune_options():
    from assay.importers import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["import", "neptune", "--parquet", "exports/data", "--files", "exports/files"])
    assert (args.parquet, args.files, args.import_module) == ("exports/data", "exports/files", reader)
    args = parser.parse_args(["import", "neptune", "--offline", ".neptune"])
    assert (args.offline, args.parquet) == (".neptune", None)


def test_two_reads_yield_the_same_points_in_the_same_order(export):
    # what lets a killed import resume: the writer numbers batches in the order a reader yields
    first_source, second_source = open_export(export.data), open_export(export.data)
    as_list = lambda run: [(p.key, p.step, p.value, p.timestamp) for batch in run.points for p in batch]  # noqa: E731
    assert [as_list(run) for run in first_source.runs()] == [as_list(run) for run in second_source.runs()]
