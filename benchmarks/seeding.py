"""Seeding a benchmark's database with PostgreSQL COPY, for the benchmarks that need more runs
than the API could write in time (search, runs_table, tried): the bench project that
``benchlib.prepare`` made, and runs written straight into ``experiments_run``.

The run columns are listed here once: a migration that adds a NOT NULL column to runs is
then one change here, not one per benchmark.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import psycopg

from benchmarks import benchlib

RUN_COLUMNS = [
    "id",
    "project_id",
    "experiment_id",
    "name",
    "author_id",
    "status",
    "start_time",
    "end_time",
    "notes",
    "config",
    "info",
    "created_at",
    "updated_at",
    "config_fingerprint",
    "config_canonical",
    "source",
    "source_id",
    "source_author",
]
FIRST_START = datetime(2026, 1, 1, tzinfo=UTC)  # the first run's start time (copy_runs)
_STATUSES = ["finished"] * 8 + ["failed", "running"]


class BenchProject(NamedTuple):
    project_id: int
    experiment_id: int
    author_id: int


def copy_rows(conn: psycopg.Connection[Any], table: str, columns: list[str], rows: Any) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def bench_project(conn: psycopg.Connection[Any]) -> BenchProject:
    """The project, its experiment and the bench user, made before by ``benchlib.prepare``."""
    row = conn.execute(
        "SELECT p.id, e.id, u.id FROM experiments_project p JOIN experiments_experiment e ON e.project_id = p.id "
        "JOIN accounts_user u ON u.username = %s LIMIT 1",
        [benchlib.USERNAME],
    ).fetchone()
    if row is None:
        raise RuntimeError("the project, its experiment and the bench user must exist first")
    return BenchProject(*row)


def run_row(
    bench: BenchProject,
    run_id: str,
    *,
    name: str,
    status: str,
    start: datetime,
    end: datetime | None,
    config: str = "{}",
    config_fingerprint: str = "",
    config_canonical: str = "{}",
) -> tuple[Any, ...]:
    """One row of ``RUN_COLUMNS``: no notes, info nor import source; created and updated at start."""
    return (
        run_id,
        bench.project_id,
        bench.experiment_id,
        name,
        bench.author_id,
        status,
        start,
        end,
        "",
        config,
        "{}",
        start,
        start,
        config_fingerprint,
        config_canonical,
        "",
        "",
        "",
    )


def copy_runs(conn: psycopg.Connection[Any], bench: BenchProject, runs: int) -> list[str]:
    """``runs`` runs named ``run-000000``…, started 30 s apart from FIRST_START; of every ten,
    eight finished, one failed and one still running. Returns their ids, oldest first."""
    run_ids = [uuid.uuid4().hex for _ in range(runs)]

    def rows() -> Any:
        for index, run_id in enumerate(run_ids):
            start = FIRST_START + timedelta(seconds=index * 30)
            status = _STATUSES[index % len(_STATUSES)]
            end = None if status == "running" else start + timedelta(seconds=600 + index % 3600)
            yield run_row(bench, run_id, name=f"run-{index:06d}", status=status, start=start, end=end)

    copy_rows(conn, "experiments_run", RUN_COLUMNS, rows())
    return run_ids
