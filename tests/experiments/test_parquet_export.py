"""The Parquet writer of the bulk history export (experiments/parquet_export.py): typed
columns read back equal to what went in, one row group per bound, bytes leave per group."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from experiments.metrics import History
from experiments.parquet_export import SCHEMA, histories_to_parquet


def _history(n: int, start: int = 0) -> History:
    steps = np.arange(start, start + n, dtype=np.int64)
    return History(steps, steps.astype(np.float64) / 10, steps * 1000 + 1764150000000)


def test_the_file_reads_back_with_every_point_and_its_types() -> None:
    odd = History(
        np.array([0, 1, 2], dtype=np.int64),
        np.array([math.nan, math.inf, -1.5]),
        np.array([1, 2, 3], dtype=np.int64),
    )
    series = [("r1", "first", "acc", _history(5)), ("r1", "first", "odd", odd), ("r2", "=cmd", "acc", _history(2))]
    data = b"".join(histories_to_parquet(iter(series)))
    table = pq.read_table(pa.BufferReader(data))
    assert table.schema.equals(SCHEMA)
    assert table.num_rows == 10
    rows = table.to_pylist()
    assert rows[0] == {"run_id": "r1", "run_name": "first", "key": "acc", "step": 0, "value": 0.0,
                       "timestamp": 1764150000000}  # fmt: skip
    assert [r["key"] for r in rows] == ["acc"] * 5 + ["odd"] * 3 + ["acc"] * 2
    odd_values = [r["value"] for r in rows if r["key"] == "odd"]
    assert math.isnan(odd_values[0])
    assert odd_values[1:] == [math.inf, -1.5]
    assert rows[-1]["run_name"] == "=cmd"  # typed cells: no spreadsheet escaping needed


def test_row_groups_are_bounded_and_leave_one_by_one() -> None:
    series = (("r", "run", f"k{i}", _history(40, i)) for i in range(10))  # 400 points
    chunks = list(histories_to_parquet(series, row_group_points=100))
    assert len(chunks) >= 4  # each full row group is yielded before the next is built
    meta = pq.ParquetFile(pa.BufferReader(b"".join(chunks))).metadata
    assert meta.num_rows == 400
    assert meta.num_row_groups == 4
    assert all(meta.row_group(i).num_rows <= 120 for i in range(meta.num_row_groups))


def test_nothing_to_export_is_still_a_valid_empty_file() -> None:
    data = b"".join(histories_to_parquet(iter([("r", "run", "acc", _history(0))])))
    table = pq.read_table(pa.BufferReader(data))
    assert table.num_rows == 0
    assert table.schema.equals(SCHEMA)
