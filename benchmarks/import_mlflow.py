"""``assay import mlflow`` end to end: an MLflow SQLite store of ``--runs`` runs × ``--metrics``
metrics × ``--steps`` steps (issue 19's target: 1,000 × 10 × 1,000, ≥ 100,000 points/s,
memory bounded) imported into the production profile (gunicorn, PostgreSQL, Redis), by the
real CLI in ``.venv-mlflow`` (mlflow 3.17.2, where the importer runs on a user's machine).

Measured: wall time of the whole command (reading the store through MLflow's own SQL store,
creating the runs, sending every point through the bulk log path, completing the runs),
points per second, the importer's peak RSS (``getrusage`` of the child), and a re-run of the
same command (nothing added: the "already imported" path).

The store is written once and kept (``--store``): the runs through ``MlflowClient``
(create_run, log_param, set_tag, set_terminated), the metric rows in bulk into MLflow's own
``metrics`` and ``latest_metrics`` tables (MLflow's ``log_batch`` writes the same rows, at a
few thousand points a second: 10 million would take an hour).

    .venv/bin/python benchmarks/import_mlflow.py                       # 1,000 × 10 × 1,000
    .venv/bin/python benchmarks/import_mlflow.py --runs 100            # a smaller scale
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib

DBNAME = benchlib.dbname("assay_bench_import")
MLFLOW_PYTHON = benchlib.ROOT / ".venv-mlflow" / "bin" / "python"
PROJECT = "bench/import"

WRITE_STORE = """
import sqlite3, sys, time
from mlflow import MlflowClient

uri, runs, metrics, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
client = MlflowClient(tracking_uri=uri)
experiment = client.create_experiment("bench")
ids = []
for i in range(runs):
    run = client.create_run(experiment, run_name=f"run-{i}", tags={"index": str(i)})
    client.log_param(run.info.run_id, "lr", str(0.001 * (i + 1)))
    client.set_terminated(run.info.run_id)
    ids.append(run.info.run_id)
db = sqlite3.connect(uri.removeprefix("sqlite:///"))
t0 = 1_600_000_000_000
for n, rid in enumerate(ids):
    rows = [(f"metric_{k}", float(s * (k + 1)) / steps, t0 + s, rid, s, 0)
            for k in range(metrics) for s in range(steps)]
    db.executemany("insert into metrics (key, value, timestamp, run_uuid, step, is_nan) values (?,?,?,?,?,?)", rows)
    db.executemany(
        "insert into latest_metrics (key, value, timestamp, step, is_nan, run_uuid) values (?,?,?,?,?,?)",
        [(f"metric_{k}", float((steps - 1) * (k + 1)) / steps, t0 + steps - 1, steps - 1, 0, rid) for k in range(metrics)],
    )
    if n % 100 == 99:
        db.commit()
db.commit()
print(len(ids))
"""


def write_store(path: Path, runs: int, metrics: int, steps: int) -> None:
    marker = path.with_suffix(f".{runs}x{metrics}x{steps}.done")
    if marker.exists() and path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    started = time.monotonic()
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", GIT_PYTHON_REFRESH="quiet")
    subprocess.run(
        [
            str(MLFLOW_PYTHON),
            "-c",
            textwrap.dedent(WRITE_STORE),
            f"sqlite:///{path}",
            str(runs),
            str(metrics),
            str(steps),
        ],
        check=True,
        env=env,
        cwd=path.parent,
        capture_output=True,
    )
    marker.write_text("")
    print(f"store written in {time.monotonic() - started:,.0f} s: {path}", file=sys.stderr)


def run_import(url: str, token: str, store: Path, workers: int) -> tuple[float, int, str, float]:
    """(seconds, peak RSS in KiB, stdout, CPU seconds) of one ``assay import mlflow``."""
    env = dict(
        os.environ,
        ASSAY_URL=url,
        ASSAY_TOKEN=token,
        PYTHONPATH=str(benchlib.ROOT / "sdk" / "src"),
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
    )
    command = [str(MLFLOW_PYTHON), "-m", "assay.cli", "import", "mlflow", "--tracking-uri", f"sqlite:///{store}"]
    command += ["-p", PROJECT, "--workers", str(workers)]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"the import failed ({done.returncode}):\n{done.stderr[-3000:]}\n{done.stdout[-3000:]}")
    # ru_maxrss of RUSAGE_CHILDREN is the largest of the waited-for children: the import.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    return elapsed, after.ru_maxrss, done.stdout, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=4, help="runs imported at once (the importer's --workers)")
    parser.add_argument("--server-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--store", type=Path, default=Path("/tmp/assay-bench-import/mlflow.db"))
    args = parser.parse_args()

    write_store(args.store, args.runs, args.metrics, args.steps)
    points = args.runs * args.metrics * args.steps
    env = benchlib.server_env(DBNAME)
    token = benchlib.prepare(DBNAME, env)
    with benchlib.Server("gunicorn", env, workers=args.server_workers) as server:
        with benchlib.api_client(server.url, token) as client:
            benchlib.create_run(client, PROJECT, "project-maker")  # the project must exist
        before = server.cpu_snapshot()
        seconds, rss_kib, report, client_cpu = run_import(server.url, token, args.store, args.workers)
        cpu = server.cpu_since(before)
        again, _, report_again, _ = run_import(server.url, token, args.store, args.workers)
    with psycopg.connect(env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)) as db:
        stored = db.execute(
            "select coalesce(sum(s.count), 0) from experiments_metricsummary s join experiments_run r on r.id = s.run_id "
            "where r.source = 'mlflow'"
        ).fetchone()
    stored_points = int(stored[0]) if stored else 0
    assert stored_points == points, (stored_points, points)
    assert "already imported, nothing added" in report_again, report_again
    benchlib.print_table(
        [
            "runs × metrics × steps",
            "points",
            "seconds",
            "points/s",
            "peak RSS (MiB)",
            "importer CPU s",
            "server CPU s",
            "postgres CPU s",
            "re-run s",
        ],
        [
            [
                f"{args.runs:,} × {args.metrics} × {args.steps:,}",
                f"{points:,}",
                f"{seconds:,.1f}",
                f"{points / seconds:,.0f}",
                f"{rss_kib / 1024:,.0f}",
                f"{client_cpu:,.1f}",
                f"{cpu.server:,.1f}",
                f"{cpu.postgres:,.1f}",
                f"{again:,.1f}",
            ]
        ],
    )
    print(f"every point stored once: {stored_points:,}; the re-run added nothing")
    print(report.splitlines()[0])


if __name__ == "__main__":
    main()
