"""The runs table's columns, shared by the project page and its CSV export: which param,
config, tag and summary-metric columns a query string asks for, and the default sort."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from django.http import HttpRequest

from accounts.models import Project
from experiments import search_selectors

DEFAULT_METRIC_COLUMNS = 5
DEFAULT_PARAM_COLUMNS = 5
DEFAULT_CONFIG_COLUMNS = 5
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


def chosen_columns(
    request: HttpRequest, project: Project, keys: dict[str, list[str]], problems: list[str]
) -> list[Column]:
    """``?columns=metrics.loss,params.lr,config.optimizer.lr,tags.team`` (or repeated
    ``columns=``); by default the first few metric, config and param keys of the project. Unknown names are reported and
    skipped. ``keys`` holds the project's keys per kind (the key registry)."""
    if "columns" not in request.GET:
        return (
            [Column("metric", k) for k in keys["metric"][:DEFAULT_METRIC_COLUMNS]]
            + [Column("config", k) for k in keys.get("config", [])[:DEFAULT_CONFIG_COLUMNS]]
            + [Column("param", k) for k in keys["param"][:DEFAULT_PARAM_COLUMNS]]
        )
    chosen: list[Column] = []
    wanted: list[tuple[str, ColumnKind, str]] = []
    for raw in request.GET.getlist("columns"):
        for name in (part.strip() for part in raw.split(",")):
            if not name:
                continue
            kind = next((k for prefix, k in COLUMN_PREFIXES.items() if name.startswith(prefix)), None)
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
