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
from django.db.models import Count, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import access_project
from accounts.models import Project
from accounts.selectors import projects_visible_to
from experiments import search_selectors, selectors, table_services
from experiments.access import access_run
from experiments.models import Experiment, Run
from experiments.query.parser import FilterError, parse_order_by
from frontend.common import request_user
from frontend.errors import form_errors, policy_errors
from frontend.runs_table import (
    COLUMN_PREFIXES,
    DEFAULT_SORT,
    KEY_LIST_LIMIT,
    KIND_PREFIXES,
    Cell,
    Column,
    cells_html,
    chosen_columns,
    metric_cell,
    pinned_columns,
    text_cell,
)
from frontend.search_views import MAX_COMPARE_RUNS
from live.eventlog import current_seq
from live.topics import project_topic
from reviews import selectors as review_selectors

RUNS_PER_PAGE = 50
# Keys of each kind listed in the column menu, most used first; the menu's search finds the rest.
POPULAR_LISTED = 30


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
    pinned: bool = False


@dataclass
class Row:
    run: Run
    duration: float | None
    running: bool
    pinned: bool = False
    cells: list[Cell] = field(default_factory=list)

    @property
    def cells_html(self) -> SafeString:
        return cells_html(self.cells)


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
    request: HttpRequest,
    label: str,
    sort: str,
    current: str,
    *,
    numeric: bool = False,
    group: str = "",
    pinned: bool = False,
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
        pinned=pinned,
    )


def _experiment_with_counts(project: Project) -> list[Experiment]:
    """The project's experiments, each with ``run_count``: its runs not deleted, counted by an
    index-only scan of ``run_project_live`` per experiment, not a join over every run row."""
    live = (
        Run.objects.filter(project=OuterRef("project"), experiment=OuterRef("pk"), deleted_at__isnull=True)
        .order_by()
        .values("experiment")
        .annotate(n=Count("*"))
        .values("n")
    )
    return list(selectors.experiments_of(project).annotate(run_count=Coalesce(Subquery(live), 0)))


# A sort by one metric reads its first pages from the summary index (top_run_ids_by_metric).
FAST_SORT_PAGES = 20


def _page_sorted_by_metric(
    proj: Project, sort: str, experiment: Experiment | None, pinned_ids: list[str], page: Any
) -> list[Run] | None:
    """The runs of an unfiltered page sorted by one metric, without joining the metric to every
    run of the project; None when the page is not one of the first, the sort is not by one
    metric, or the page reaches runs that did not log it (then the full query answers)."""
    if page.number > FAST_SORT_PAGES:
        return None
    try:
        term = parse_order_by(sort)
    except FilterError:
        return None
    if term.field.entity != "metric":
        return None
    offset = (page.number - 1) * page.paginator.per_page
    top = offset + page.paginator.per_page
    ids = search_selectors.top_run_ids_by_metric(
        proj, key=term.field.key, descending=term.descending, limit=top, experiment=experiment, exclude=pinned_ids
    )
    if len(ids) < top:
        return None
    wanted = ids[offset:]
    by_id = {r.pk: r for r in selectors.runs_of(proj).filter(pk__in=wanted)}
    return [by_id[i] for i in wanted if i in by_id]


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
    layout = search_selectors.table_layout_of(request.user, proj)
    popular = search_selectors.popular_keys(proj, limit=POPULAR_LISTED)
    columns = chosen_columns(request, proj, problems, saved=layout.columns if layout else None, popular=popular)
    pinned = pinned_columns(request, columns, layout.pinned_columns if layout else [])
    # Pinned columns come first, right after the run's name (and stay there when scrolling).
    columns = pinned + [c for c in columns if c not in pinned]

    # Runs pinned to the top: on every page, whatever the filter, and not again below.
    pinned_ids = list(layout.pinned_runs) if layout else []
    pinned_runs: list[Run] = []
    matching_pinned = 0
    if pinned_ids:
        by_id = {r.pk: r for r in selectors.runs_of(proj).filter(pk__in=pinned_ids)}
        pinned_runs = [by_id[i] for i in pinned_ids if i in by_id]
        matching_pinned = runs_qs.filter(pk__in=pinned_ids).count() if filter_error is None else 0
        runs_qs = runs_qs.exclude(pk__in=pinned_ids)

    paginator = Paginator(runs_qs, RUNS_PER_PAGE)
    if not filter_text and filter_error is None:
        # Unfiltered, the count is known already (the experiments' counts): no second scan.
        known = experiment.run_count if experiment is not None else sum(e.run_count for e in experiments)  # type: ignore[attr-defined]
        paginator.count = known - matching_pinned
    page = paginator.get_page(request.GET.get("page"))
    page_runs = _page_sorted_by_metric(proj, sort, experiment, pinned_ids, page) if not filter_text else None
    if page_runs is None:
        page_runs = list(page.object_list)
    runs = pinned_runs + page_runs
    # Only the runs shown: four queries whatever the size of the project.
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
    pinned_set = {r.pk for r in pinned_runs}
    for run in runs:
        running = run.end_time is None
        row = Row(
            run=run,
            duration=(now - run.start_time).total_seconds() if running else run.duration_seconds,
            running=running,
            pinned=run.pk in pinned_set,
        )
        for column in columns:
            stick = column in pinned
            if column.kind == "metric":
                summary = summaries.get(run.id, {}).get(column.key)
                row.cells.append(metric_cell(column, summary.last if summary is not None else None, pinned=stick))
            elif column.kind == "param":
                row.cells.append(text_cell(column, params.get(run.id, {}).get(column.key), pinned=stick))
            elif column.kind == "config":
                row.cells.append(text_cell(column, config.get(run.id, {}).get(column.key), pinned=stick))
            else:
                row.cells.append(text_cell(column, tags.get(run.id, {}).get(column.key), pinned=stick))
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
    pinned_names = {c.name for c in pinned}
    column_headers = [
        _header(request, c.key, c.name, sort, numeric=c.kind == "metric", group=c.kind, pinned=c.name in pinned_names)
        for c in columns
    ]
    chosen_names = {c.name for c in columns}
    current_query = request.GET.copy()
    current_query.pop("page", None)
    # A saved view keeps the columns shown, wherever they came from (address, layout, defaults).
    view_query = current_query.copy()
    view_query["columns"] = ",".join(c.name for c in columns)
    view_query["pin"] = ",".join(c.name for c in pinned)
    if not view_query["pin"]:
        view_query.pop("pin")
    # Where the column and pin forms send the user back: this view, minus what they change.
    back_query = current_query.copy()
    for name in ("columns", "pin"):
        back_query.pop(name, None)
    counts = search_selectors.key_counts(proj)
    more_columns = [
        (
            legend,
            kind,
            [(f"{KIND_PREFIXES[kind]}.{k}", k) for k in listed if f"{KIND_PREFIXES[kind]}.{k}" not in chosen_names],
        )
        for legend, kind, listed in (
            ("Summary metrics (last value), most logged", "metric", popular["metric"]),
            ("Config, most logged", "config", popular["config"]),
            ("Params, most logged", "param", popular["param"]),
            ("Tags", "tag", keys["tags"][:POPULAR_LISTED]),
        )
    ]
    # "Compare all matching": the compare page reads the same filter (experiment included).
    compare_filter = filter_text
    if experiment is not None:
        clause = f"attributes.experiment = {_quote_filter_value(experiment.name)}"
        compare_filter = f"({filter_text}) and {clause}" if filter_text else clause
    compare_all_url = (
        reverse("project-compare", args=[proj.team.name, proj.name])
        + "?"
        + QueryDict.fromkeys(["filter"], value=compare_filter).urlencode()
    )
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
            for name in ("experiment", "sort", "filter", "columns", "pin")
            for value in request.GET.getlist(name)
            if value
        ],
        "group_column": group_column,
        "group_rows": group_rows,
        "groups_truncated": groups_truncated,
        "group_metric_columns": metric_columns,
        "same_config_group": SAME_CONFIG_GROUP.name,
        "group_choices": [
            (choice, group_column is not None and group_column.name == choice)
            for choice in [f"config.{k}" for k in keys["config"]]
            + [f"params.{k}" for k in keys["params"]]
            + [f"tags.{k}" for k in keys["tags"]]
        ],
        # Row links are built from these, not reversed ~100 times per page.
        "runs_base": reverse("project", args=[proj.team.name, proj.name]) + "runs/",
        "shown_columns": [(c, c.name in pinned_names) for c in columns],
        "more_columns": [group for group in more_columns if group[2]],
        "key_count": sum(counts.values()),
        "chosen_columns": ",".join(c.name for c in columns) if "columns" in request.GET else "",
        "chosen_pins": ",".join(c.name for c in pinned) if "pin" in request.GET else "",
        "back_query": back_query.urlencode(),
        "layout_saved": layout is not None and layout.columns is not None,
        "pinned_count": len(pinned_runs),
        "compare_all_url": compare_all_url,
        "matching_count": page.paginator.count + matching_pinned if filter_error is None else 0,
        "max_compare": MAX_COMPARE_RUNS,
        "all_runs_url": _query(request.GET, experiment=None, page=None),
        "experiment_links": [
            (e, _query(request.GET, experiment=e.name, page=None), experiment is not None and e.pk == experiment.pk)
            for e in experiments
        ],
        "colspan": 3 + len(headers) + len(column_headers),
        "current_query": current_query.urlencode(),
        "view_query": view_query.urlencode(),
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


# --- the runs table's layout: columns chosen and pinned, runs pinned (issue 20) ---------------

# What the column and pin forms may carry back to the page (anything else is dropped).
BACK_PARAMETERS = ("experiment", "filter", "sort", "order_by", "group_by", "page")


def _back(request: HttpRequest, proj: Project) -> HttpResponseRedirect:
    back = QueryDict(request.POST.get("back", "")[:8000])
    query = QueryDict(mutable=True)
    for name in BACK_PARAMETERS:
        values = back.getlist(name)
        if values:
            query.setlist(name, values)
    encoded = query.urlencode()
    return HttpResponseRedirect(
        reverse("project", args=[proj.team.name, proj.name]) + (f"?{encoded}" if encoded else "")
    )


@login_required
@require_POST
def table_columns(request: HttpRequest, team: str, project: str) -> HttpResponse:
    """The column menu's form: keep the ticked columns (in the form's order) and pins as the
    user's own table of this project, or ``reset`` to the project's defaults."""
    with policy_errors():
        proj = access_project(request.user, team, project)
    with form_errors(request, "The columns were not saved"):
        if request.POST.get("reset"):
            table_services.table_columns_reset(user=request_user(request), project=proj)
        else:
            table_services.table_columns_set(
                user=request_user(request),
                project=proj,
                columns=request.POST.getlist("columns"),
                pinned=request.POST.getlist("pinned"),
            )
    return _back(request, proj)


@login_required
@require_POST
def run_pin(request: HttpRequest, team: str, project: str, run_id: str) -> HttpResponse:
    """Pin a run to the top of the user's runs table (``pinned=1``) or unpin it (``pinned=0``)."""
    with policy_errors():
        run = access_run(request.user, run_id)
    # The URL names the run's project; a run reached through another project's URL is not there.
    if run.project.team.name.lower() != team.lower() or run.project.name.lower() != project.lower():
        raise Http404("Not found.")
    wanted = request.POST.get("pinned", "")
    with form_errors(request, "The run was not pinned"):
        table_services.table_run_pin(
            user=request_user(request), project=run.project, run=run, pinned={"1": True, "0": False}.get(wanted, wanted)
        )
    return _back(request, run.project)
