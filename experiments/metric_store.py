"""Metric storage: every SQL statement that writes or reads metric chunks.

Points are stored as *chunks*: one row per (run, key, logged batch) holding the batch's
steps, values and timestamps as packed little-endian arrays (experiments/metrics.py, the
codec). A 10,000-point batch is one INSERT of a few rows, and a 1,000,000-point history
is read as ~100 rows decoded with NumPy. The per-key summary (last, min, max, last step,
count) is merged in the same statement or transaction; search and sort read it.

Writes (for ``services.run_log``): :func:`batch_log_points` (PostgreSQL, a batch of points
only, one statement), else :func:`batch_begin` then :func:`points_add` inside the caller's
transaction. Reads: :func:`history` (one run and key) and :func:`histories` (many runs and
keys), with PostgreSQL's binary result format.

The hot path is hand-written SQL built once per database vendor from the models'
metadata: the ORM's query compilation cost more CPU than the database did.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.utils import timezone
from psycopg import pq

from core.querycache import prepared_cursor
from experiments import metrics
from experiments.models import LogBatch, MetricChunk, MetricSummary, ProjectKey, Run

# --- writes -----------------------------------------------------------------------------------


class _LogSql:
    """The statements of the logging hot path, built once per database vendor from the
    models' metadata (so table and column names follow the models). Plain SQL that both
    PostgreSQL and SQLite (≥ 3.24, for ON CONFLICT) accept.

    # SECURITY: only quoted identifiers from model metadata are formatted into the SQL;
    # every value is a bound parameter (hence the S608 waivers below).
    """

    def __init__(self) -> None:
        qn = connection.ops.quote_name

        def table(model: Any) -> str:
            return qn(model._meta.db_table)

        def col(model: Any, name: str) -> str:
            return qn(model._meta.get_field(name).column)

        run_pk = col(Run, "id")
        for_update = " FOR UPDATE" if connection.features.has_select_for_update else ""
        self.lock_run = f"SELECT {run_pk} FROM {table(Run)} WHERE {run_pk} = %s{for_update}"  # noqa: S608
        self.insert_batch = (
            f"INSERT INTO {table(LogBatch)} ({col(LogBatch, 'run')}, {col(LogBatch, 'batch_id')}, "  # noqa: S608
            f"{col(LogBatch, 'points')}, {col(LogBatch, 'created_at')}) VALUES (%s, %s, %s, %s) "
            f"ON CONFLICT ({col(LogBatch, 'run')}, {col(LogBatch, 'batch_id')}) DO NOTHING"
        )
        chunk_fields = ["run", "key", "count", "min_step", "max_step", "steps", "values", "timestamps"]
        self.insert_chunks = (
            f"INSERT INTO {table(MetricChunk)} ({', '.join(col(MetricChunk, f) for f in chunk_fields)}) VALUES "  # noqa: S608
        )
        self.chunk_row = "(" + ", ".join(["%s"] * len(chunk_fields)) + ")"
        summary_fields = ["key", "last", "min", "max", "last_step", "last_timestamp", "count"]
        summary_insert = ["run", *summary_fields]
        self.upsert_summaries = f"INSERT INTO {table(MetricSummary)} AS s ({', '.join(col(MetricSummary, f) for f in summary_insert)}) VALUES "  # noqa: S608
        self.summary_row = "(" + ", ".join(["%s"] * len(summary_insert)) + ")"
        # The merge of metrics.merge_summary, done by the upsert itself (no SELECT first):
        # the batch's last point wins when its (step, timestamp) is not older; min and max
        # skip NULL (a key whose points were all NaN); counts add up. RETURNING gives the
        # merged rows: a count equal to the batch's means the row is new.
        c = {f: col(MetricSummary, f) for f in summary_fields}
        newer = f"(EXCLUDED.{c['last_step']}, EXCLUDED.{c['last_timestamp']}) >= (s.{c['last_step']}, s.{c['last_timestamp']})"
        # PostgreSQL: LEAST/GREATEST ignore NULLs; SQLite's scalar MIN/MAX return NULL if
        # any argument is, hence the COALESCEs (same result either way).
        least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")

        def pick(fn: str, f: str) -> str:
            return f"{fn}(COALESCE(s.{c[f]}, EXCLUDED.{c[f]}), COALESCE(EXCLUDED.{c[f]}, s.{c[f]}))"

        updates = [
            *(
                f"{c[f]} = CASE WHEN {newer} THEN EXCLUDED.{c[f]} ELSE s.{c[f]} END"
                for f in ("last", "last_step", "last_timestamp")
            ),
            f"{c['min']} = {pick(least, 'min')}",
            f"{c['max']} = {pick(greatest, 'max')}",
            f"{c['count']} = s.{c['count']} + EXCLUDED.{c['count']}",
        ]
        self.upsert_conflict = (
            f" ON CONFLICT ({col(MetricSummary, 'run')}, {c['key']}) DO UPDATE SET {', '.join(updates)}"
            f" RETURNING {', '.join(c[f] for f in summary_fields)}"
        )
        self._one_statement: dict[tuple[int, bool], str] = {}
        if connection.vendor == "postgresql":
            self._one_statement_parts = self._one_statement_sql(table, col, updates, summary_fields)
        self._created_at = LogBatch._meta.get_field("created_at")
        self._binary = MetricChunk._meta.get_field("steps")

    @staticmethod
    def _one_statement_sql(table: Any, col: Any, updates: list[str], summary_fields: list[str]) -> dict[str, str]:
        """PostgreSQL: the parts of one statement that does what the transaction of
        ``run_log`` does for a batch of points only (lock the run, record the batch id, store
        the chunks, merge the summaries, register new keys), gated on the batch being new.
        Values in a VALUES list get no type from a target column, so each is cast to its
        column's type."""

        def cast(model: Any, name: str) -> str:
            return f"CAST(%s AS {model._meta.get_field(name).db_type(connection)})"

        run_pk = col(Run, "id")
        chunk_fields = ["key", "count", "min_step", "max_step", "steps", "values", "timestamps"]
        chunk_cols = ", ".join(col(MetricChunk, f) for f in chunk_fields)
        summary_cols = ", ".join(col(MetricSummary, f) for f in summary_fields)
        return {
            "run": f"WITH run_row AS (SELECT {run_pk} AS id FROM {table(Run)} WHERE {run_pk} = %s FOR UPDATE), ",  # noqa: S608
            "batch": (
                f"new_batch AS (INSERT INTO {table(LogBatch)} ({col(LogBatch, 'run')}, {col(LogBatch, 'batch_id')}, "  # noqa: S608
                f"{col(LogBatch, 'points')}, {col(LogBatch, 'created_at')}) "
                f"SELECT id, {cast(LogBatch, 'batch_id')}, {cast(LogBatch, 'points')}, {cast(LogBatch, 'created_at')} "
                f"FROM run_row ON CONFLICT ({col(LogBatch, 'run')}, {col(LogBatch, 'batch_id')}) DO NOTHING "
                f"RETURNING {col(LogBatch, 'run')} AS id), "
            ),
            "no_batch": "new_batch AS (SELECT id FROM run_row), ",
            "chunks": (
                f"new_chunks AS (INSERT INTO {table(MetricChunk)} ({col(MetricChunk, 'run')}, {chunk_cols}) "  # noqa: S608
                "SELECT new_batch.id, v.* FROM new_batch, (VALUES {rows}) AS v), "
            ),
            "chunk_row": "(" + ", ".join(cast(MetricChunk, f) for f in chunk_fields) + ")",
            "vals": f"vals ({summary_cols}) AS (VALUES {{rows}}), ",
            "summary_row": "(" + ", ".join(cast(MetricSummary, f) for f in summary_fields) + ")",
            "merged": (
                f"merged AS (INSERT INTO {table(MetricSummary)} AS s ({col(MetricSummary, 'run')}, {summary_cols}) "  # noqa: S608
                f"SELECT new_batch.id, vals.* FROM new_batch, vals ON CONFLICT ({col(MetricSummary, 'run')}, "
                f"{col(MetricSummary, 'key')}) DO UPDATE SET {', '.join(updates)} RETURNING {summary_cols}), "
            ),
            "keys": (
                f"new_keys AS (INSERT INTO {table(ProjectKey)} ({col(ProjectKey, 'project')}, {col(ProjectKey, 'kind')}, "  # noqa: S608
                f"{col(ProjectKey, 'key')}) SELECT {cast(ProjectKey, 'project')}, {cast(ProjectKey, 'kind')}, merged.key "
                f"FROM merged JOIN vals ON vals.key = merged.key WHERE merged.count = vals.count ON CONFLICT DO NOTHING) "
            ),
            "result": (
                "SELECT (SELECT count(*) FROM run_row), (SELECT count(*) FROM new_batch), merged.* "
                "FROM (SELECT 1) AS one LEFT JOIN merged ON true"
            ),
        }

    def one_statement(self, keys: int, with_batch_id: bool) -> str:
        """The statement for ``keys`` series, with or without a batch id (PostgreSQL)."""
        sql = self._one_statement.get((keys, with_batch_id))
        if sql is None:
            p = self._one_statement_parts
            sql = (
                p["run"]
                + (p["batch"] if with_batch_id else p["no_batch"])
                + p["chunks"].replace("{rows}", ", ".join([p["chunk_row"]] * keys))
                + p["vals"].replace("{rows}", ", ".join([p["summary_row"]] * keys))
                + p["merged"]
                + p["keys"]
                + p["result"]
            )
            self._one_statement[(keys, with_batch_id)] = sql
        return sql

    def now(self) -> Any:
        return self._created_at.get_db_prep_value(timezone.now(), connection)

    def binary(self, raw: bytes) -> Any:
        return self._binary.get_db_prep_value(raw, connection)


_LOG_SQL: dict[str, _LogSql] = {}


def _log_sql() -> _LogSql:
    sql = _LOG_SQL.get(connection.vendor)
    if sql is None:
        sql = _LOG_SQL[connection.vendor] = _LogSql()
    return sql


def batch_log_points(
    *, run: Run, batch_id: str | None, series: dict[str, metrics.Series], points: int
) -> dict[str, metrics.Summary] | None:
    """``run_log`` for a batch of points only, on PostgreSQL: the same effects as its
    transaction (:func:`batch_begin`, :func:`points_add`, the key registry), in one statement
    (``_LogSql.one_statement``). Within an outer transaction it joins it; otherwise the
    statement is its own transaction. Returns the keys' merged summaries, or None when the
    run has seen ``batch_id`` before (nothing was written); raises ``Run.DoesNotExist``."""
    sql = _log_sql()
    params: list[Any] = [run.pk]
    if batch_id is not None:
        params += [batch_id, points, sql.now()]
    for s in series.values():
        params += _chunk_values(sql, s)
    for key, s in series.items():
        new = metrics.summarize(s)
        params += [key, new.last, new.min, new.max, new.last_step, new.last_timestamp, new.count]
    params += [run.project_id, ProjectKey.Kind.METRIC.value]
    with prepared_cursor(connection) as cursor:
        cursor.execute(sql.one_statement(len(series), batch_id is not None), params)
        rows = cursor.fetchall()
    found, logged = rows[0][0], rows[0][1]
    if not found:
        raise Run.DoesNotExist("Run matching query does not exist.")
    if not logged:
        return None
    return {row[2]: _summary_of_row(*row[3:]) for row in rows}


def batch_begin(*, run: Run, batch_id: str | None, points: int) -> bool:
    """Inside the caller's transaction: lock the run (one writer per run at a time makes the
    batch-id check and the summary merge exact) and record ``batch_id``. False when the run
    has seen that batch before; raises ``Run.DoesNotExist``."""
    sql = _log_sql()
    with prepared_cursor(connection) as cursor:
        cursor.execute(sql.lock_run, [run.pk])
        if cursor.fetchone() is None:
            raise Run.DoesNotExist("Run matching query does not exist.")
        if batch_id is not None:
            # The unique (run, batch_id) constraint decides: no row inserted = seen before.
            cursor.execute(sql.insert_batch, [run.pk, batch_id, points, sql.now()])
            if cursor.rowcount == 0:
                return False
    return True


def points_add(
    *, run: Run, series: dict[str, metrics.Series], summaries_out: dict[str, metrics.Summary] | None = None
) -> list[str]:
    """Store each key's points as one chunk row and merge the batch into the key's summary;
    return the keys the run had no summary for (and the merged summaries in ``summaries_out``)."""
    sql = _log_sql()
    chunk_params: list[Any] = []
    for s in series.values():
        chunk_params += [run.pk, *_chunk_values(sql, s)]
    keys = list(series)
    with prepared_cursor(connection) as cursor:
        cursor.execute(sql.insert_chunks + ", ".join([sql.chunk_row] * len(series)), chunk_params)
        summary_params: list[Any] = []
        batch: dict[str, metrics.Summary] = {}
        for key, s in series.items():
            new = batch[key] = metrics.summarize(s)
            summary_params += [run.pk, key, new.last, new.min, new.max, new.last_step, new.last_timestamp, new.count]
        cursor.execute(
            sql.upsert_summaries + ", ".join([sql.summary_row] * len(series)) + sql.upsert_conflict, summary_params
        )
        created: set[str] = set()
        for key, last, lo, hi, last_step, last_timestamp, count in cursor.fetchall():
            if summaries_out is not None:
                summaries_out[key] = _summary_of_row(last, lo, hi, last_step, last_timestamp, count)
            if count == batch[key].count:
                created.add(key)
    return [key for key in keys if key in created]


def _chunk_values(sql: _LogSql, s: metrics.Series) -> list[Any]:
    """One key's points as the values of a chunk row (after the run): key, count, step
    range, packed steps, values and timestamps."""
    return [
        s.key,
        len(s),
        int(s.steps.min()),
        int(s.steps.max()),
        sql.binary(metrics.encode(s.steps)),
        sql.binary(metrics.encode(s.values)),
        sql.binary(metrics.encode(s.timestamps)),
    ]


def _summary_of_row(
    last: float | None, lo: float | None, hi: float | None, last_step: int, last_timestamp: int, count: int
) -> metrics.Summary:
    # NaN is stored as NULL where the database has no NaN (SQLite).
    return metrics.Summary(last if last is not None else float("nan"), lo, hi, last_step, last_timestamp, count)


# --- reads ------------------------------------------------------------------------------------


def history(run: Run, key: str) -> metrics.History:
    """Every point of ``key`` in ``run``, in step order (chunks read in insertion order)."""
    if connection.vendor == "postgresql":
        return metrics.assemble(_history_binary(run, key))
    rows = MetricChunk.objects.filter(run=run, key=key).order_by("pk").values_list("steps", "values", "timestamps")
    return metrics.assemble([(bytes(s), bytes(v), bytes(t)) for s, v, t in rows])


def _history_binary(run: Run, key: str) -> list[tuple[bytes, bytes, bytes]]:
    meta = MetricChunk._meta

    def col(name: str) -> str:
        return connection.ops.quote_name(str(getattr(meta.get_field(name), "column", name)))

    sql = (
        f"SELECT {col('steps')}, {col('values')}, {col('timestamps')} "  # noqa: S608 - quoted identifiers from model metadata
        f"FROM {connection.ops.quote_name(meta.db_table)} WHERE {col('run')} = %s AND {col('key')} = %s ORDER BY {col('id')}"
    )
    return _fetch_binary(sql, [run.pk, key])


def histories(runs: list[Run], keys: list[str] | None) -> dict[str, dict[str, metrics.History]]:
    """Run id → key → every point, for many runs and keys (all keys when ``keys`` is None)
    in one query."""
    return histories_of([r.pk for r in runs], keys)


def histories_of(run_ids: list[str], keys: list[str] | None) -> dict[str, dict[str, metrics.History]]:
    """:func:`histories` by run id (the caller checked access to each)."""
    grouped: dict[tuple[str, str], list[tuple[bytes, bytes, bytes]]] = {}
    for run_id, key, steps, values, timestamps in _chunk_rows(run_ids, keys):
        grouped.setdefault((run_id, key), []).append((bytes(steps), bytes(values), bytes(timestamps)))
    out: dict[str, dict[str, metrics.History]] = {}
    for (run_id, key), chunks in grouped.items():
        out.setdefault(run_id, {})[key] = metrics.assemble(chunks)
    return out


def _chunk_rows(run_ids: list[str], keys: list[str] | None) -> list[tuple[str, str, bytes, bytes, bytes]]:
    """Chunks of many runs and keys in one query, in insertion order per (run, key)."""
    if not run_ids or keys == []:  # nothing to fetch; Django cannot write SQL for "IN ()"
        return []
    qs = MetricChunk.objects.filter(run_id__in=run_ids)
    if keys is not None:
        qs = qs.filter(key__in=keys)
    rows = qs.order_by("pk").values_list("run_id", "key", "steps", "values", "timestamps")
    if connection.vendor != "postgresql":
        return [(r, k, bytes(s), bytes(v), bytes(t)) for r, k, s, v, t in rows]
    sql, params = rows.query.sql_with_params()
    return _fetch_binary(sql, list(params))


def _fetch_binary(sql: str, params: list[Any]) -> list[Any]:
    """Rows of ``sql`` in PostgreSQL's binary result format: Django's client-side cursors
    fetch bytea as hex text, which for a 1,000,000-point series is ~50 MB to send and
    decode (≈ 3x slower than the 24 MB of raw bytes)."""
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    raw.format = pq.Format.BINARY
    # Django's wrappers, so the query is seen by execute_wrappers and, when DEBUG, connection.queries.
    wrapper = CursorDebugWrapper if connection.queries_logged else CursorWrapper
    with wrapper(raw, connection) as cursor:
        cursor.execute(sql, params)
        rows: list[Any] = cursor.fetchall()  # bytea in binary format: bytes
    return rows
