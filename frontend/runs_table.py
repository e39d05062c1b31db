"""The runs table's columns, shared by the project page and its CSV export: which param,
config, tag and summary-metric columns a query string asks for, and the default sort."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Literal

from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe

from accounts.models import Project
from experiments import search_selectors
from frontend.templatetags.assay import metric, metric_exact

DEFAULT_METRIC_COLUMNS = 5
DEFAULT_PARAM_COLUMNS = 5
DEFAULT_CONFIG_COLUMNS = 5
DEFAULT_COLUMNS_PER_KIND = max(DEFAULT_METRIC_COLUMNS, DEFAULT_PARAM_COLUMNS, DEFAULT_CONFIG_COLUMNS)
MAX_COLUMNS = 40
DEFAULT_SORT = "-start_time"
# Keys listed in the column picker and group-by menu; the query bar completes from the API.
KEY_LIST_LIMIT = 200


ColumnKind = Literal["metric", "param", "config", "tag", "attribute"]
# How a column of each kind is written (``columns=config.optimizer.lr``), as in the query language.
KIND_PREFIXES: dict[str, str] = {
    "metric": "metrics",
    "param": "params",
    "config": "config",
    "tag": "tags",
    "attribute": "attributes",
}


@dataclass(frozen=True)
class Column:
    """A chosen param, config, tag or summary-metric column of the runs table."""

    kind: ColumnKind
    key: str

    @property
    def name(self) -> str:
        return f"{KIND_PREFIXES[self.kind]}.{self.key}"


COLUMN_PREFIXES: dict[str, ColumnKind] = {
    "metrics.": "metric",
    "params.": "param",
    "config.": "config",
    "tags.": "tag",
}


def _names(request: HttpRequest, parameter: str) -> list[str]:
    return [name for raw in request.GET.getlist(parameter) for name in (p.strip() for p in raw.split(",")) if name]


def default_columns(popular: dict[str, list[str]]) -> list[Column]:
    """The columns of a table nobody chose columns for: the metric, config and param keys the
    project's newest runs log most (``search_selectors.popular_keys``)."""
    return (
        [Column("metric", k) for k in popular.get("metric", [])[:DEFAULT_METRIC_COLUMNS]]
        + [Column("config", k) for k in popular.get("config", [])[:DEFAULT_CONFIG_COLUMNS]]
        + [Column("param", k) for k in popular.get("param", [])[:DEFAULT_PARAM_COLUMNS]]
    )


def chosen_columns(
    request: HttpRequest,
    project: Project,
    problems: list[str],
    *,
    saved: list[str] | None = None,
    popular: dict[str, list[str]] | None = None,
) -> list[Column]:
    """``?columns=metrics.loss,params.lr,config.optimizer.lr,tags.team`` (or repeated
    ``columns=``: a shared link, a saved view) wins; then the user's saved columns
    (``RunsTableLayout``); then the project's defaults. Unknown names in the address are
    reported and skipped."""
    if "columns" not in request.GET:
        if saved is not None:
            return [Column(kind, name.split(".", 1)[1]) for name in saved if (kind := column_kind(name)) is not None][
                :MAX_COLUMNS
            ]
        return default_columns(popular or {})
    chosen: list[Column] = []
    wanted: list[tuple[str, ColumnKind, str]] = []
    for name in _names(request, "columns"):
        kind = column_kind(name)
        if kind is None:
            problems.append(
                f"Unknown column {name!r}: columns are metrics.<key>, params.<key>, config.<key> or tags.<key>."
            )
            continue
        wanted.append((name, kind, name.split(".", 1)[1]))
    # One query for every wanted key, however long the project's key list is.
    known = search_selectors.known_keys(project, [(kind, key) for _, kind, key in wanted])
    for name, kind, key in wanted:
        column = Column(kind, key)
        if (kind, key) not in known:
            problems.append(f"Unknown column {name!r}: no run of this project logged it.")
        elif column not in chosen and len(chosen) < MAX_COLUMNS:
            chosen.append(column)
    return chosen


def column_kind(name: str) -> ColumnKind | None:
    return next(
        (k for prefix, k in COLUMN_PREFIXES.items() if name.startswith(prefix) and len(name) > len(prefix)), None
    )


def pinned_columns(request: HttpRequest, columns: list[Column], saved: list[str]) -> list[Column]:
    """The chosen columns pinned to the left: ``?pin=`` (a shared link, a saved view), else the
    user's saved pins; in the order of the columns."""
    names = set(_names(request, "pin")) if "pin" in request.GET else set(saved)
    return [c for c in columns if c.name in names]


@dataclass(frozen=True)
class Cell:
    """A value of the runs table as shown: numbers (a metric, or a param, config value or tag
    that reads as one) in the one number format of every page (the ``metric`` filter,
    right-aligned), with the exact value on hover; text as it was logged."""

    column: Column
    text: str
    exact: str
    numeric: bool
    missing: bool = False
    pinned: bool = False

    @property
    def css(self) -> str:
        # Worked out here, not in the template: a page has ~1,000 cells.
        return " ".join(
            name
            for name, wanted in (
                ("num" if self.numeric else "mono", True),
                ("text-body-secondary", self.missing),
                ("pinned-col", self.pinned),
            )
            if wanted
        )


def metric_cell(column: Column, value: float | None, *, pinned: bool = False) -> Cell:
    return Cell(column, metric(value), metric_exact(value), numeric=True, missing=value is None, pinned=pinned)


def text_cell(column: Column, value: str | None, *, pinned: bool = False) -> Cell:
    if value is None:
        return Cell(column, "—", "", numeric=False, missing=True, pinned=pinned)
    number = _as_number(value)
    if number is None:
        return Cell(column, value, value, numeric=False, pinned=pinned)
    return Cell(column, metric(number), value, numeric=True, pinned=pinned)


def _as_number(text: str) -> float | None:
    # "0.001", "1e-3", "64": numbers; "nan", "inf", "1_000", "0x10" and booleans stay text.
    stripped = text.strip()
    if not stripped or len(stripped) > 40 or any(c not in "0123456789+-.eE" for c in stripped):
        return None
    try:
        number = float(stripped)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def cells_html(cells: list[Cell]) -> SafeString:
    """A row's value cells as HTML, built here rather than in the template: a page has ~1,000
    of them and the template engine's per-variable work was most of the page's time. Every
    value is escaped (``html.escape`` with quotes, as Django's ``escape``)."""
    parts = []
    for cell in cells:
        title = f' title="{html.escape(cell.exact, quote=True)}"' if cell.exact else ""
        sticky = " data-sticky" if cell.pinned else ""
        parts.append(f'<td class="{cell.css}"{title}{sticky}>{html.escape(cell.text, quote=True)}</td>')
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped
