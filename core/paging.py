"""The paging parameters of every list (``offset``/``limit``, ``page_size``, other bounded
integers of a query string): one parser with bounds, refusing a value out of range with
Invalid naming the parameter (400), never clamping it silently and never passing it on to
the database, where an offset beyond 64 bits was a 500 (issue 17).

Pure: it reads any mapping of query parameters (Django's QueryDict, DRF's
``request.query_params``, a plain dict), so API views and pages share it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.errors import Invalid

# The largest offset of any list: exact in JavaScript, and far inside PostgreSQL's bigint
# even with a limit added.
MAX_OFFSET = 2**53 - 1

_INTEGER = re.compile(r"-?[0-9]{1,20}")  # ASCII digits only: no "1_000", " 5", "٣", "+5"


def int_param(query: Mapping[str, Any], name: str, *, default: int, lo: int, hi: int) -> int:
    """The integer query parameter ``name`` in ``[lo, hi]`` (``default`` when absent)."""
    raw = query.get(name)
    if raw is None:
        return default
    if not isinstance(raw, str) or not _INTEGER.fullmatch(raw):
        raise Invalid(f"{name} must be an integer from {lo} to {hi}.", field=name)
    value = int(raw)
    if not lo <= value <= hi:
        raise Invalid(f"{name} must be an integer from {lo} to {hi}.", field=name)
    return value


def offset_limit(
    query: Mapping[str, Any], *, default_limit: int, max_limit: int, max_offset: int = MAX_OFFSET
) -> tuple[int, int]:
    """``offset`` (0..``max_offset``, default 0) and ``limit`` (1..``max_limit``)."""
    limit = int_param(query, "limit", default=default_limit, lo=1, hi=max_limit)
    offset = int_param(query, "offset", default=0, lo=0, hi=max_offset)
    return offset, limit


def page_size(query: Mapping[str, Any], *, default: int, maximum: int, names: tuple[str, ...] = ("page_size",)) -> int:
    """The page size (1..``maximum``) from the first of ``names`` that is present."""
    for name in names:
        if query.get(name) is not None:
            return int_param(query, name, default=default, lo=1, hi=maximum)
    return default
