"""Dashboard pages: server-rendered, read-only, every lookup through the permission policy.

Views stay thin: the policy (``experiments.access``) loads and checks each object, the
selectors (``experiments.selectors``) read lists already narrowed to what the user may
see, and this module only shapes what the templates show.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Max
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from accounts import access
from accounts.access import access_project
from accounts.models import Project
from accounts.selectors import projects_visible_to
from core.errors import Forbidden, NotFound
from experiments import search_selectors, selectors
from experiments.access import access_run
from experiments.models import Experiment, Figure, MetricSummary, Run
from experiments.query.parser import FilterError
from live.eventlog import current_seq
from live.topics import project_topic, run_topic

RUNS_PER_PAGE = 50
DEFAULT_METRIC_COLUMNS = 5
DEFAULT_PARAM_COLUMNS = 5
MAX_COLUMNS = 40
DEFAULT_SORT = "-start_time"
# Points per chart: the API downsamples longer histories on the server (MinMaxLTTB).
CHART_MAX_POINTS = 1000
# Keys listed in the column picker and group-by menu; the query bar completes from the API.
KEY_LIST_LIMIT = 200


@contextmanager
def policy_errors() -> Iterator[None]:
    """Turn the policy's DRF exceptions into Django's.

    # SECURITY: a missing object and one the user may not see are both 404, so a page never
    # tells an outsider that a project exists; 403 only when the user can see it already.
    """
    try:
        yield
    except NotFound:
        raise Http404("Not found.") from None
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from None


# --- home -----------------------------------------------------------------------------------


@dataclass
class TeamProjects:
    team: str
    projects: list[Project]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    # Count(distinct=True): the visibility filter may join memberships and grants.
    projects = list(
        projects_visible_to(request.user).annotate(
            run_count=Count("runs", distinct=True), last_run=Max("runs__start_time")
        )
    )
    teams = [
        TeamProjects(team=team, projects=list(group))
        for team, group in itertools.groupby(projects, key=lambda p: p.team.name)
    ]
    return render(request, "frontend/home.html", {"teams": teams, "project_count": len(projects)})


# --- project page: experiments and the runs table ------------------------------------------


@dataclass(frozen=True)
class Column:
    """A chosen param, tag or summary-metric column of the runs table."""

    kind: Literal["metric", "param", "tag"]
    key: str

    @property
    def name(self) -> str:
        return f"{self.kind}s.{self.key}"


@dataclass
class Header:
    label: str
    sort: str
    url: str
    aria_sort: str | None
    numeric: bool = False
    group: str = ""


@dataclass
class Row:
    run: Run
    duration: float | None
    running: bool
    cells: list[tuple[Column, Any]] = field(default_factory=list)


def _query(base: QueryDict, **changes: str | None) -> str:
    """The current query string with some parameters changed (None removes one)."""
    query = base.copy()
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


def _header(
    request: HttpRequest, label: str, sort: str, current: str, *, numeric: bool = False, group: str = ""
) -> Header:
    # First click sorts ascending, the next one descending, and so on.
    if current == sort:
        next_sort, aria = f"-{sort}", "ascending"
    elif current == f"-{sort}":
        next_sort, aria = sort, "descending"
    else:
        next_sort, aria = sort, None
    return Header(
        label=label,
        sort=sort,
        url=_query(request.GET, sort=next_sort, page=None, order_by=None),
        aria_sort=aria,
        numeric=numeric,
        group=group,
    )


COLUMN_PREFIXES: dict[str, Literal["metric", "param", "tag"]] = {
    "metrics.": "metric",
    "params.": "param",
    "tags.": "tag",
}


def _chosen_columns(
    request: HttpRequest, project: Project, keys: dict[str, list[str]], problems: list[str]
) -> list[Column]:
    """``?columns=metrics.loss,params.lr,tags.team`` (or repeated ``columns=``); by default
    the first few metric and param keys of the project. Unknown names are reported and
    skipped. ``keys`` holds the project's keys per kind (the key registry)."""
    if "columns" not in request.GET:
        return [Column("metric", k) for k in keys["metric"][:DEFAULT_METRIC_COLUMNS]] + [
            Column("param", k) for k in keys["param"][:DEFAULT_PARAM_COLUMNS]
        ]
    chosen: list[Column] = []
    wanted: list[tuple[str, Literal["metric", "param", "tag"], str]] = []
    for raw in request.GET.getlist("columns"):
        for name in (part.strip() for part in raw.split(",")):
            if not name:
                continue
            kind = next((k for prefix, k in COLUMN_PREFIXES.items() if name.startswith(prefix)), None)
            if kind is None:
                problems.append(f"Unknown column {name!r}: columns are metrics.<key>, params.<key> or tags.<key>.")
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


def _experiment_with_counts(project: Project) -> list[Experiment]:
    return list(selectors.experiments_of(project).annotate(run_count=Count("runs")))


@dataclass
class GroupRow:
    value: str | None
    count: int
    cells: list[tuple[str, dict[str, float | None] | None]]
    filter_url: str


def _group_by(request: HttpRequest, problems: list[str]) -> Column | None:
    raw = request.GET.get("group_by", "").strip()
    if not raw:
        return None
    for prefix, kind in COLUMN_PREFIXES.items():
        if raw.startswith(prefix) and kind != "metric" and len(raw) > len(prefix) and len(raw) <= 260:
            return Column(kind, raw[len(prefix) :])
    problems.append(f"Cannot group by {raw!r}: group by params.<key> or tags.<key>.")
    return None


def _quote_filter_value(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _field_text(column: Column) -> str:
    key = column.key
    if all(c.isalnum() or c in "_./:-" for c in key):
        return f"{column.kind}s.{key}"
    return f"{column.kind}s.`{key}`"


@login_required
def project_page(request: HttpRequest, team: str, project: str) -> HttpResponse:
    with policy_errors():
        proj = access_project(request.user, team, project)
    # Before the queries: the page's live updates start after what it shows (live/eventlog.py).
    live_seq = current_seq(project_topic(proj.team.name, proj.name))
    problems: list[str] = []

    experiments = _experiment_with_counts(proj)
    experiment: Experiment | None = None
    if request.GET.get("experiment"):
        wanted = request.GET["experiment"].lower()
        experiment = next((e for e in experiments if e.name.lower() == wanted), None)
        if experiment is None:
            raise Http404("No such experiment in this project.")

    # ``sort`` (what the column headers set: ``-metrics.acc``) or ``order_by`` (``metrics.acc DESC``).
    sort = (request.GET.get("sort") or request.GET.get("order_by") or DEFAULT_SORT).strip()

    filter_text = request.GET.get("filter", "").strip()
    filter_error: FilterError | None = None
    try:
        runs_qs, _, _ = selectors.runs_search(proj, filter_text=filter_text, order_by=[sort], experiment=experiment)
    except FilterError as exc:
        if exc.source == "filter":
            filter_error = exc
        else:
            problems.append(f"Cannot sort by {sort!r}: {exc.message} Showing the newest runs first.")
            sort = DEFAULT_SORT
        runs_qs, _, _ = selectors.runs_search(
            proj, filter_text="" if exc.source == "filter" else filter_text, order_by=[sort], experiment=experiment
        )
        if filter_error is not None:
            runs_qs = runs_qs.none()

    keys = search_selectors.project_keys(proj, limit=KEY_LIST_LIMIT)
    key_lists = {"metric": keys["metrics"], "param": keys["params"], "tag": keys["tags"]}
    columns = _chosen_columns(request, proj, key_lists, problems)

    page = Paginator(runs_qs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    runs: list[Run] = list(page.object_list)
    # Only the runs of this page: three queries whatever the size of the project.
    metric_columns = [c.key for c in columns if c.kind == "metric"]
    param_columns = [c.key for c in columns if c.kind == "param"]
    tag_columns = [c.key for c in columns if c.kind == "tag"]
    summaries = selectors.summaries_of(runs, metric_columns) if metric_columns and runs else {}
    params = selectors.params_of(runs, param_columns) if param_columns and runs else {}
    tags = search_selectors.tags_of(runs, tag_columns) if tag_columns and runs else {}

    now = timezone.now()
    rows: list[Row] = []
    for run in runs:
        running = run.end_time is None
        row = Row(
            run=run,
            duration=(now - run.start_time).total_seconds() if running else run.duration_seconds,
            running=running,
        )
        for column in columns:
            if column.kind == "metric":
                summary = summaries.get(run.id, {}).get(column.key)
                row.cells.append((column, summary.last if summary is not None else None))
            elif column.kind == "param":
                row.cells.append((column, params.get(run.id, {}).get(column.key)))
            else:
                row.cells.append((column, tags.get(run.id, {}).get(column.key)))
        rows.append(row)

    group_column = _group_by(request, problems)
    group_rows: list[GroupRow] = []
    groups_truncated = False
    if group_column is not None and filter_error is None:
        groups, groups_truncated = search_selectors.grouped(
            runs_qs, entity=group_column.kind, key=group_column.key, metric_keys=metric_columns
        )
        for g in groups:
            clause = (
                f"{_field_text(group_column)} IS NULL"
                if g.value is None
                else f"{_field_text(group_column)} = {_quote_filter_value(g.value)}"
            )
            narrowed = f"({filter_text}) and {clause}" if filter_text else clause
            group_rows.append(
                GroupRow(
                    value=g.value,
                    count=g.count,
                    cells=[(k, g.metrics.get(k)) for k in metric_columns],
                    filter_url=_query(request.GET, filter=narrowed, group_by=None, page=None),
                )
            )

    headers = [
        _header(request, "Status", "status", sort),
        _header(request, "Name", "name", sort),
        _header(request, "Author", "author", sort),
        _header(request, "Started", "start_time", sort),
        _header(request, "Duration", "duration", sort, numeric=True),
    ]
    column_headers = [_header(request, c.key, c.name, sort, numeric=c.kind == "metric", group=c.kind) for c in columns]
    chosen_names = {c.name for c in columns}
    current_query = request.GET.copy()
    current_query.pop("page", None)
    context = {
        "project": proj,
        "experiments": experiments,
        "experiment": experiment,
        "total_runs": sum(getattr(e, "run_count", 0) for e in experiments),
        "page": page,
        "rows": rows,
        "headers": headers,
        "column_headers": column_headers,
        "sort": sort,
        "problems": problems,
        "filter_text": filter_text,
        "filter_error": filter_error,
        "filter_caret_pad": " " * filter_error.position if filter_error else "",
        "group_hidden": [
            (name, value)
            for name in ("experiment", "sort", "filter", "columns")
            for value in request.GET.getlist(name)
            if value
        ],
        "group_column": group_column,
        "group_rows": group_rows,
        "groups_truncated": groups_truncated,
        "group_metric_columns": metric_columns,
        "group_choices": [f"params.{k}" for k in keys["params"]] + [f"tags.{k}" for k in keys["tags"]],
        "keys_truncated": keys["truncated"],
        "available_metrics": [(f"metrics.{k}", k, f"metrics.{k}" in chosen_names) for k in keys["metrics"]],
        "available_params": [(f"params.{k}", k, f"params.{k}" in chosen_names) for k in keys["params"]],
        "available_tags": [(f"tags.{k}", k, f"tags.{k}" in chosen_names) for k in keys["tags"]],
        "chosen_columns": ",".join(c.name for c in columns),
        "all_runs_url": _query(request.GET, experiment=None, page=None),
        "experiment_links": [
            (e, _query(request.GET, experiment=e.name, page=None), experiment is not None and e.pk == experiment.pk)
            for e in experiments
        ],
        "colspan": 2 + len(headers) + len(column_headers),
        "current_query": current_query.urlencode(),
        "export_url": reverse("project-export", args=[proj.team.name, proj.name]) + "?" + current_query.urlencode(),
        "saved_views": list(search_selectors.saved_views_of(request.user, proj)),
        "keys_url": reverse("api-project-keys", args=[proj.team.name, proj.name]),
        "compare_url": reverse("project-compare", args=[proj.team.name, proj.name]),
        "live_seq": live_seq,
    }
    return render(request, "frontend/project.html", context)


# --- run page -------------------------------------------------------------------------------


@dataclass
class InfoItem:
    key: str
    value: str
    block: bool = False


@dataclass
class InfoSection:
    key: str
    title: str
    items: list[InfoItem]


INFO_SECTIONS = {"code": "Code", "environment": "Environment", "system": "System", "error": "Error"}
# Shown first, in this order, when present; anything else follows alphabetically.
INFO_FIRST = ["remote", "branch", "commit", "dirty", "command", "python", "os", "accelerator"]


def _info_value(value: Any) -> InfoItem:
    if isinstance(value, dict | list):
        return InfoItem("", json.dumps(value, indent=2, ensure_ascii=False, default=str), block=True)
    if isinstance(value, bool):
        return InfoItem("", "yes" if value else "no")
    if value is None:
        return InfoItem("", "—")
    text = str(value)
    return InfoItem("", text, block="\n" in text or len(text) > 160)


def _info_sections(info: dict[str, Any]) -> list[InfoSection]:
    """The run's structured info (code, environment, system, error, anything else) as
    key/value lists; nested values become collapsible JSON. All of it is user-written
    and reaches the template as plain strings (escaped there)."""
    sections: list[InfoSection] = []
    names = [k for k in INFO_SECTIONS if k in info] + sorted(k for k in info if k not in INFO_SECTIONS)
    for name in names:
        value = info[name]
        if value in (None, {}, [], ""):
            continue
        items: list[InfoItem] = []
        if isinstance(value, dict):
            keys = [k for k in INFO_FIRST if k in value] + sorted(str(k) for k in value if k not in INFO_FIRST)
            for key in keys:
                item = _info_value(value[key])
                item.key = key
                items.append(item)
        else:
            item = _info_value(value)
            item.key = "value"
            items.append(item)
        sections.append(InfoSection(key=name, title=INFO_SECTIONS.get(name, str(name).capitalize()), items=items))
    return sections


@dataclass
class FigureView:
    figure: Figure
    script_id: str
    size: int


@login_required
def run_page(request: HttpRequest, team: str, project: str, run_id: str) -> HttpResponse:
    with policy_errors():
        run = access_run(request.user, run_id)
    # The URL names the run's project; a run reached through another project's URL is not there.
    if run.project.team.name.lower() != team.lower() or run.project.name.lower() != project.lower():
        raise Http404("Not found.")
    live_seq = current_seq(run_topic(run.id))  # before the queries (live/eventlog.py) …
    run.refresh_from_db()  # … so the run read by the access check is read again after it
    detail = selectors.run_detail_context(run)
    summaries: list[MetricSummary] = sorted(detail["summaries"], key=lambda s: s.key)
    charts = [
        {
            "key": s.key,
            "url": reverse("api-run-metric", args=[run.id, s.key]) + f"?max_points={CHART_MAX_POINTS}",
            "dom_id": f"chart-{index}",
        }
        for index, s in enumerate(summaries)
    ]
    figures = [
        FigureView(figure=f, script_id=f"figure-data-{index}", size=len(f.data.get("labels", [])))
        for index, f in enumerate(detail["figures"])
        if f.kind == Figure.Kind.CONFUSION_MATRIX and isinstance(f.data, dict)
    ]
    duration = run.duration_seconds
    if duration is None:
        duration = (timezone.now() - run.start_time).total_seconds()
    context = {
        "project": run.project,
        "run": run,
        "duration": duration,
        "params": detail["params"],
        "tags": detail["tags"],
        "summaries": summaries,
        "charts": charts,
        "figures": figures,
        "info_sections": _info_sections(run.info if isinstance(run.info, dict) else {}),
        "info_json": json.dumps(run.info, indent=2, ensure_ascii=False, default=str) if run.info else "",
        "config_json": json.dumps(run.config, indent=2, ensure_ascii=False, default=str) if run.config else "",
        "sdk_project": run.project.path,
        # The "Register model" button (registry.views.register_form checks again on submit).
        "can_register_model": access.can(request.user, "model.register", run.project),
        "live_seq": live_seq,
    }
    from frontend.artifact_views import artifact_context  # imports this module: deferred

    context.update(artifact_context(run))
    return render(request, "frontend/run.html", context)
