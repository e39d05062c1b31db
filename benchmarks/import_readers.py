"""The W&B and Neptune readers of ``assay import`` alone (no server): points/s and peak memory.

- W&B: one offline run written by the real wandb client (``--wandb-steps`` rows × 10 keys), read
  through wandb-core's reader (both passes), every batch consumed.
- Neptune: neptune-exporter Parquet (its SCHEMA), ``--neptune-runs`` runs × 10 float series ×
  ``--neptune-steps`` steps, fractional steps, read back in batches.

Each read runs in a fresh process; its peak RSS is that process's (VmHWM) and, for W&B, the
largest child's (wandb-core). The
readers keep one batch at a time, so the peak should not grow with the history size: run with
two sizes to see it.

    .venv/bin/python benchmarks/import_readers.py [--wandb-steps 20000] [--neptune-steps 100000]
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk" / "src"))

# (by name: mypy resolves `assay` to the SDK installed in .venv, which may predate the readers)
neptune = importlib.import_module("assay.importers.neptune")
wandb = importlib.import_module("assay.importers.wandb")

KEYS = 10


def rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak RSS in MB. For this process, VmHWM: ``ru_maxrss`` of a process started by a large
    parent carries the parent's peak across fork and exec (Linux keeps the larger)."""
    if who == resource.RUSAGE_SELF:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(who).ru_maxrss / 1024


def bench_wandb(steps: int, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    script = root / "log.py"
    script.write_text(
        "import wandb\n"
        "run = wandb.init(project='bench', config={'lr': 0.1})\n"
        f"for step in range({steps}):\n"
        f"    run.log({{f'm{{k}}': step * 0.001 + k for k in range({KEYS})}}, step=step)\n"
        "run.finish()\n"
    )
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(root)}
    started = time.perf_counter()
    subprocess.run([sys.executable, str(script)], env=env, check=True, cwd=root)
    written = time.perf_counter() - started
    print(f"W&B: {steps:,} rows x {KEYS} keys written by the wandb client in {written:.1f} s")
    read_in_child("wandb", root / "wandb", steps * KEYS)


def read_in_child(kind: str, path: Path, expected: int) -> None:
    """The read in a fresh process, so that its peak RSS is the reader's alone."""
    subprocess.run([sys.executable, __file__, "--read", kind, str(path), "--expect", str(expected)], check=True)


def read(kind: str, path: Path, expected: int) -> None:
    if kind == "wandb":
        source = wandb.open_source(argparse.Namespace(dir=str(path), entity=None, wandb_project=None, run=[]))
    else:
        source = neptune.open_source(argparse.Namespace(parquet=str(path), offline=None, files=None, run=[]))
    started = time.perf_counter()
    count = 0
    for run in source.runs():
        for batch in run.points:
            count += sum(1 for point in batch if not point.key.startswith("system/"))
    elapsed = time.perf_counter() - started
    assert count == expected, (count, expected)
    print(
        f"  read {count:,} points in {elapsed:.2f} s = {count / elapsed:,.0f} points/s;"
        f" peak RSS {rss_mb():.0f} MB (reader), {rss_mb(resource.RUSAGE_CHILDREN):.0f} MB (largest child: wandb-core)"
    )


def bench_neptune(runs: int, steps: int, root: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
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
                pa.struct(
                    [("type", pa.string()), ("edges", pa.list_(pa.float64())), ("values", pa.list_(pa.float64()))]
                ),
            ),
        ]
    )
    folder = root / "data" / "proj"
    folder.mkdir(parents=True)
    started = time.perf_counter()
    for run in range(runs):
        n = steps * KEYS
        columns = {
            "project_id": pa.array(["ws/proj"] * n),
            "run_id": pa.array([f"RUN-{run}"] * n),
            "attribute_path": pa.array([f"metrics/m{k}" for k in range(KEYS) for _ in range(steps)]),
            "attribute_type": pa.array(["float_series"] * n),
            "step": pa.array([Decimal(i) / 2 for _ in range(KEYS) for i in range(steps)], pa.decimal128(18, 6)),
            "timestamp": pa.array([1_700_000_000_000 + i for _ in range(KEYS) for i in range(steps)]).cast(
                pa.timestamp("ms", tz="UTC")
            ),
            "float_value": pa.array([math.sin(i) for _ in range(KEYS) for i in range(steps)]),
        }
        table = pa.table(
            {name: columns.get(name, pa.nulls(n, schema.field(name).type)) for name in schema.names}, schema=schema
        )
        # row groups as the exporter writes them (one per batch it saves), not one of a million rows
        pq.write_table(table, folder / f"RUN-{run}_part_0.parquet", row_group_size=50_000)
        del table, columns
    written = time.perf_counter() - started
    print(f"Neptune: {runs} runs x {KEYS} series x {steps:,} fractional steps, Parquet written in {written:.1f} s")
    read_in_child("neptune", root / "data", runs * steps * KEYS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wandb-steps", type=int, default=20_000)
    parser.add_argument("--neptune-runs", type=int, default=5)
    parser.add_argument("--neptune-steps", type=int, default=100_000)
    parser.add_argument("--only", choices=["wandb", "neptune"])
    parser.add_argument("--read", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read:
        read(args.read[0], Path(args.read[1]), args.expect)
        return
    with tempfile.TemporaryDirectory(prefix="assay-bench-import-") as temp:
        if args.only != "neptune":
            bench_wandb(args.wandb_steps, Path(temp) / "w")
        if args.only != "wandb":
            bench_neptune(args.neptune_runs, args.neptune_steps, Path(temp) / "n")


if __name__ == "__main__":
    main()
