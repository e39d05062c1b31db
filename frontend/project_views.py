"""The home page (projects by team) and the project page (experiments and the runs table):
server-rendered, read-only, every lookup through the permission policy.

Views stay thin: the policy (``experiments.access``) loads and checks each object, the
selectors (``experiments.selectors``) read lists already narrowed to what the user may
see, and this module only shapes what the templates show.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
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
from experiments import search_selectors, selectors
from experiments.models import Experiment, Run
from experiments.query.parser import FilterError
from frontend.errors import policy_errors
from frontend.runs_table import COLUMN_PREFIXES, DEFAULT_SORT, KEY_LIST_LIMIT, KIND_PREFIXES, Column, chosen_columns
from live.eventlog import current_seq
from live.topics import project_topic
from reviews import selectors as review_selectors

RUNS_PER_PAGE = 50


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


def _experiment_with_counts(project: Project) -> list[Experiment]:
    return list(selectors.experiments_of(project).annotate(run_count=Count("runs")))


@dataclass
class GroupRow:
    value: str | None
    label: str
    count: int
    cells: list[tuple[str, dict[str, float | None] | None]]
    filter_url: str


# Grouping by the configuration fingerprint puts runs of the same configuration together
# (issue 22: "the runs table can group duplicates"); the largest groups come first.
SAME_CONFIG_GROUP = Column("attribute", "fingerprint")


def _group_by(request: HttpRequest, problems: list[str]) -> Column | None:
    raw = request.GET.get("group_by", "").strip()
    if not raw:
        return None
    if raw == SAME_CONFIG_GROUP.name:
        return SAME_CONFIG_GROUP
    for prefix, kind in COLUMN_PREFIXES.items():
        if raw.startswith(prefix) and kind != "metric" and len(raw) > len(prefix) and len(raw) <= 260:
            return Column(kind, raw[len(prefix) :])
    problems.append(
        f"Cannot group by {raw!r}: group by params.<key>, config.<key>, tags.<key> or {SAME_CONFIG_GROUP.name}."
    )
    return None


def _quote_filter_value(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _field_text(column: Column) -> str:
    key = column.key
    prefix = KIND_PREFIXES[column.kind]
    if all(c.isalnum() or c in "_./:-" for c in key):
        return f"{prefix}.{key}"
    return f"{prefix}.`{key}`"


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
    key_lists = {"metric": keys["metrics"], "param": keys["params"], "config": keys["config"], "tag": keys["tags"]}
    columns = chosen_columns(request, proj, key_lists, problems)

    page = Paginator(runs_qs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    runs: list[Run] = list(page.object_list)
    # Only the runs of this page: three queries whatever the size of the project.
    metric_columns = [c.key for c in columns if c.kind == "metric"]
    param_columns = [c.key for c in columns if c.kind == "param"]
    tag_columns = [c.key for c in columns if c.kind == "tag"]
    config_columns = [c.key for c in columns if c.kind == "config"]
    summaries = selectors.summaries_of(runs, metric_columns) if metric_columns and runs else {}
    params = selectors.params_of(runs, param_columns) if param_columns and runs else {}
    tags = search_selectors.tags_of(runs, tag_columns) if tag_columns and runs else {}
    config = search_selectors.config_of(runs, config_columns) if config_columns and runs else {}

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
            elif column.kind == "config":
                row.cells.append((column, config.get(run.id, {}).get(column.key)))
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
                    label=g.label,
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
        "same_config_group": SAME_CONFIG_GROUP.name,
        "group_choices": [f"config.{k}" for k in keys["config"]]
        + [f"params.{k}" for k in keys["params"]]
        + [f"tags.{k}" for k in keys["tags"]],
        "keys_truncated": keys["truncated"],
        "available_metrics": [(f"metrics.{k}", k, f"metrics.{k}" in chosen_names) for k in keys["metrics"]],
        "available_params": [(f"params.{k}", k, f"params.{k}" in chosen_names) for k in keys["params"]],
        "available_config": [(f"config.{k}", k, f"config.{k}" in chosen_names) for k in keys["config"]],
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
        "open_reviews": review_selectors.open_request_count(request.user, proj),
        "can_invite": access.can(request.user, "project.invite", proj, annotated=proj),
        "can_manage_webhooks": access.can(request.user, "webhook.manage", proj, annotated=proj),
    }
    return render(request, "frontend/project.html", context)
