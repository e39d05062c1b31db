"""The MLflow side of ``benchmarks/search.py``: the same runs in an MLflow tracking server
on the same PostgreSQL, and the same search against it.

MLflow is not a dependency of Assay: install it in a venv of its own and name its
executable (``--mlflow /tmp/mlflow-venv/bin/mlflow``, or ``ASSAY_BENCH_MLFLOW``, or an
``mlflow`` on ``PATH``); it needs ``psycopg2-binary`` next to it::

    python3 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow==3.17.2 psycopg2-binary

The server (``mlflow server``, uvicorn, the same number of workers as Assay's) creates its
own schema in a database of its own (``mlflow_bench_search``); the runs are then copied
from Assay's benchmark database with COPY, so both answer over identical data: runs (the
status upper-cased, times in ms), params, tags, and ``latest_metrics`` from Assay's
summaries. MLflow's ``metrics`` table (full histories) stays empty: its search neither
filters, orders nor answers from it (``SqlRun.to_mlflow_entity`` reads ``latest_metrics``).
The search is ``POST /api/2.0/mlflow/runs/search`` with the same filter string (MLflow
syntax is a subset of Assay's), ``order_by`` and ``max_results=50``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from benchmarks import benchlib

DBNAME = "mlflow_bench_search"


def find_mlflow(explicit: str | None) -> str | None:
    for candidate in (explicit, os.environ.get("ASSAY_BENCH_MLFLOW"), shutil.which("mlflow")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _database_url(name: str, driver: str = "postgresql") -> str:
    return benchlib.PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", f"{driver}://", 1) + f"/{name}"


class MlflowServer:
    """``mlflow server`` on a fresh database; stopped and the database dropped on exit."""

    def __init__(self, executable: str, *, workers: int, dbname: str = DBNAME, gunicorn: bool = False) -> None:
        self.executable = executable
        self.workers = workers
        # gunicorn (``--gunicorn-opts``) is MLflow's fastest serving for small calls; without
        # it MLflow 3.17 serves through uvicorn (benchmarks/README.md).
        self.gunicorn = gunicorn
        self.dbname = dbname
        self.port = benchlib.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dsn = _database_url(dbname)
        self.process: subprocess.Popen[bytes] | None = None
        self.version = ""

    def __enter__(self) -> MlflowServer:
        benchlib.recreate_database(self.dbname)
        self.version = subprocess.run(
            [self.executable, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        self.log = open(f"/tmp/{self.dbname}-server.log", "wb")  # closed in __exit__
        self.process = subprocess.Popen(
            [
                self.executable,
                "server",
                "--backend-store-uri",
                _database_url(self.dbname, "postgresql+psycopg2"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                # uvicorn kills a worker that does not answer its supervisor's ping in 5 s,
                # which a worker still importing MLflow on a busy machine does not.
                *(
                    ["--gunicorn-opts", "--log-level warning --timeout 300"]
                    if self.gunicorn
                    else ["--uvicorn-opts", "--timeout-worker-healthcheck 120"]
                ),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300  # the first start migrates the schema
        healthy = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited; see /tmp/{self.dbname}-server.log")
            try:
                ok = httpx.get(self.url + "/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                ok = False
            healthy = healthy + 1 if ok else 0
            if healthy >= 10:  # every worker up, not only the first one
                return self
            time.sleep(1)
        raise RuntimeError("mlflow server did not become healthy in 300 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        with psycopg.connect(benchlib.PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


# (SELECT over Assay's tables, MLflow's table and columns); the %s are the experiment id
# (first, when there are two) and the project id.
COPIES = [
    (
        "SELECT id, name, 'LOCAL', '', '', 'bench', upper(status), (extract(epoch FROM start_time) * 1000)::bigint, "
        "(extract(epoch FROM end_time) * 1000)::bigint, '', 'active', '', %s, NULL "
        "FROM experiments_run WHERE project_id = %s",
        "runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, "
        "end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time)",
    ),
    (
        "SELECT key, value, run_id FROM experiments_param WHERE run_id IN (SELECT id FROM experiments_run WHERE project_id = %s)",
        "params",
    ),
    (
        "SELECT key, value, run_id FROM experiments_tag WHERE run_id IN (SELECT id FROM experiments_run WHERE project_id = %s)",
        "tags",
    ),
    (
        "SELECT key, coalesce(last, 'NaN'::float8), last_timestamp, last_step, last IS NULL OR last = 'NaN', "
        "run_id FROM experiments_metricsummary WHERE run_id IN (SELECT id FROM experiments_run WHERE project_id = %s)",
        "latest_metrics (key, value, timestamp, step, is_nan, run_uuid)",
    ),
]


def _copy(src: psycopg.Connection[Any], dst: psycopg.Connection[Any], select: str, table: str, args: list[Any]) -> None:
    """``select`` (SQL of this module, ``args`` bound) into ``table`` of MLflow's database."""
    with (
        src.cursor() as out_cur,
        out_cur.copy(sql.SQL("COPY ({}) TO STDOUT").format(sql.SQL(select)), args) as out,
        dst.cursor() as in_cur,
        in_cur.copy(sql.SQL("COPY {} FROM STDIN").format(sql.SQL(table))) as into,
    ):
        for data in out:
            into.write(data)


def load(server: MlflowServer, assay_dsn: str, project: str) -> tuple[str, float]:
    """Create the experiment through the API, copy the project's runs into MLflow's tables;
    ``(experiment id, seconds)``."""
    started = time.perf_counter()
    answer = httpx.post(server.url + "/api/2.0/mlflow/experiments/create", json={"name": "bench"}, timeout=60)
    answer.raise_for_status()
    experiment_id = str(answer.json()["experiment_id"])
    team, name = project.split("/")
    with psycopg.connect(assay_dsn) as src, psycopg.connect(server.dsn) as dst:
        row = src.execute(
            "SELECT p.id FROM experiments_project p JOIN accounts_team t ON t.id = p.team_id "
            "WHERE t.name = %s AND p.name = %s",
            [team, name],
        ).fetchone()
        assert row is not None, project
        args = [int(experiment_id), str(row[0])]
        for select, table in COPIES:
            _copy(src, dst, select, table, args if select.count("%s") == 2 else args[1:])
        dst.commit()
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return experiment_id, time.perf_counter() - started


def time_search(
    server: MlflowServer, experiment_id: str, filter_text: str, order_by: str, reps: int, page: int = 50
) -> tuple[dict[str, float], list[str]]:
    """p50/p95/max of the search over ``reps`` repetitions after a warm-up; and the ids of
    the first page (to check that both systems answer the same runs)."""
    body = {"experiment_ids": [experiment_id], "filter": filter_text, "order_by": [order_by], "max_results": page}
    with httpx.Client(base_url=server.url, timeout=120) as client:
        first = client.post("/api/2.0/mlflow/runs/search", json=body)
        first.raise_for_status()
        ids = [r["info"]["run_id"] for r in first.json().get("runs", [])]
        samples = []
        for _ in range(reps):
            start = time.perf_counter()
            answer = client.post("/api/2.0/mlflow/runs/search", json=body)
            samples.append(time.perf_counter() - start)
            answer.raise_for_status()
            if len(answer.json().get("runs", [])) != len(ids):
                raise RuntimeError("MLflow's page changed size between repetitions")
    return benchlib.summary_ms(samples), ids
