"""CSV for downloads, streamed, with spreadsheet formulas neutralised. Pure, no Django.

# SECURITY: a cell starting with = + - @ tab or CR is run as a formula by spreadsheets
# (CSV injection); such text cells get a leading apostrophe. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def rows_to_csv(rows: Iterable[list[Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([cell(v) for v in row])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
