"""Parquet for the bulk history export, streamed with bounded memory. Pure, no Django.

The columns are the CSV export's (``run_id``, ``run_name``, ``key``, ``step``, ``value``,
``timestamp`` in ms since the epoch), typed (int64, float64; NaN and infinities stay
floats). Points are buffered up to ``ROW_GROUP_POINTS`` and written as one row group,
whose bytes leave at once: the server never holds more than one row group, whatever the
size of the export. Parquet's footer is written last, so a reader needs the whole file.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from experiments.metrics import History

ROW_GROUP_POINTS = 100_000
CONTENT_TYPE = "application/vnd.apache.parquet"

SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("run_name", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("timestamp", pa.int64(), nullable=False),
    ]
)


class _Sink(io.RawIOBase):
    """A write-only stream whose written bytes are taken out by ``drain``."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def _table(pending: list[tuple[str, str, str, History]]) -> pa.Table:
    sizes = [len(h) for _, _, _, h in pending]

    def repeated(index: int) -> pa.Array:
        # Dictionary-encoded: one string per series, not per point.
        labels = [item[index] for item in pending]
        codes = np.repeat(np.arange(len(labels), dtype=np.int32), sizes)
        return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(labels, pa.string())).cast(pa.string())

    return pa.Table.from_arrays(
        [
            repeated(0),
            repeated(1),
            repeated(2),
            pa.array(np.concatenate([h.steps for *_, h in pending]), pa.int64()),
            pa.array(np.concatenate([h.values for *_, h in pending]), pa.float64()),
            pa.array(np.concatenate([h.timestamps for *_, h in pending]), pa.int64()),
        ],
        schema=SCHEMA,
    )


def histories_to_parquet(
    series: Iterable[tuple[str, str, str, History]], *, row_group_points: int = ROW_GROUP_POINTS
) -> Iterator[bytes]:
    """``(run_id, run_name, key, history)`` items → the bytes of one Parquet file (zstd),
    yielded a row group at a time."""
    sink = _Sink()
    writer = pq.ParquetWriter(sink, SCHEMA, compression="zstd")
    pending: list[tuple[str, str, str, History]] = []
    points = 0
    try:
        for item in series:
            if not len(item[3]):
                continue
            pending.append(item)
            points += len(item[3])
            if points >= row_group_points:
                writer.write_table(_table(pending), row_group_size=points)
                pending, points = [], 0
                if chunk := sink.drain():
                    yield chunk
        if pending:
            writer.write_table(_table(pending), row_group_size=points)
    finally:
        writer.close()
    if chunk := sink.drain():
        yield chunk
