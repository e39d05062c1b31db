"""Dashboard pages for search and compare (issue 6): the compare page, the runs table as
CSV, saved views, and the global search page. Thin, as frontend/project_views.py: the policy
loads and checks, the selectors read, this module shapes."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.access import access_project
from accounts.models import Project
from experiments import search_selectors, selectors, services
from experiments.access import access_runs, access_saved_view
from experiments.csv_export import rows_to_csv
from experiments.models import Figure, MetricSummary, Run
from experiments.query.parser import FilterError
from frontend.common import request_user
from frontend.errors import form_errors, policy_errors
from frontend.runs_table import DEFAULT_COLUMNS_PER_KIND, DEFAULT_SORT, chosen_columns

# The compare API's limit (experiments.access.MAX_RUNS_AT_ONCE); more runs are compared by
# grouping them (the charts' "Group runs by").
MAX_COMPARE_RUNS = 100
COMPARE_BY_FILTER = 100
# Points per history: at most CHART_POINTS, fewer when many runs × keys share one answer
# (at most CHART_POINT_BUDGET points in all, never fewer than CHART_MIN_POINTS per history):
# a hundred overlaid lines need no more (100 runs × 10 keys: 100 points per line, one every
# 6 px of a 1,400 px window's half-width panel), and the browser draws them ~3x faster.
CHART_POINTS = 500
CHART_MIN_POINTS = 100
CHART_POINT_BUDGET = 100_000
EXPORT_MAX_ROWS = 100_000
# Metric names whose best value is the smallest; any other metric's best is the largest.
LOWER_IS_BETTER = re.compile(r"(loss|err|error|mse|mae|rmse|perplexity|latency|time|wer|cer)", re.IGNORECASE)


def _section_rank(key: str) -> tuple[int, str]:
    """The order of panels on the page (panels.js): keys without a prefix, the prefixes
    alphabetically, system/ last."""
    slash = key.find("/")
    prefix = key[:slash] if slash > 0 else ""
    return (0 if not prefix else 2 if prefix == "system" else 1, prefix)


PRELOADED_PANELS = 3


def _first_panel_urls(data_url: str, keys: list[str]) -> list[str]:
    """The per-key URLs compare.js fetches first (the same string: ``keys`` set in place,
    ``only=series`` added, as URLSearchParams.set does), for <link rel=preload> so that the
    first panels' data loads with the page's code."""
    if not keys:
        return []
    base, _, query = data_url.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    first = sorted(keys, key=lambda k: (_section_rank(k), keys.index(k)))[:PRELOADED_PANELS]
    return [
        base + "?" + urlencode([*((n, key if n == "keys" else v) for n, v in pairs), ("only", "series")])
        for key in first
    ]


def chart_points(runs: int, keys: int) -> int:
    """Points per history the compare charts ask for: 500 for a few runs, 100 for 100 runs × 10 keys."""
    return max(CHART_MIN_POINTS, min(CHART_POINTS, CHART_POINT_BUDGET // max(1, runs * keys)))


def _ids(query: QueryDict, name: str = "runs") -> list[str]:
    ids: list[str] = []
    for raw in query.getlist(name):
        ids += [part.strip() for part in raw.split(",") if part.strip()]
    return list(dict.fromkeys(ids))


# --- compare ------------------------------------------------------------------------------------


@dataclass
class ParamRow:
    """A row of "params that differ": a param, or a config key (``source`` says which; a key
    in both is two rows, see experiments/config_values.py)."""

    key: str
    values: list[str | None]
    differs: bool
    source: str = "param"  # "param" or "config"

    @property
    def name(self) -> str:
        return f"{'config' if self.source == 'config' else 'params'}.{self.key}"


@dataclass
class MetricRow:
    key: str
    cells: list[tuple[float | None, bool]]  # (last value, is the best)
    direction: str


@dataclass
class FigureGroup:
    name: str
    cells: list[tuple[Run, dict[str, Any], str]]  # run, figure data, json_script id: runs that logged it
    missing: list[Run]  # the compared runs that did not log this figure, named in one line


def _best(values: list[float | None], lower: bool) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if len(finite) < 2:
        return None
    return min(finite) if lower else max(finite)


@login_required
@require_GET
def compare_page(request: HttpRequest, team: str, project: str) -> HttpResponse:
    with policy_errors():
        proj = access_project(request.user, team, project)
    problems: list[str] = []
    ids = _ids(request.GET)
    filter_text = request.GET.get("filter", "").strip()
    # ``?filter=`` (the runs table's "Compare all matching"; empty: every run of the project).
    if not ids and "filter" in request.GET:
        try:
            qs, _, _ = selectors.runs_search(
                proj, filter_text=filter_text, order_by=request.GET.getlist("order_by") or ["start_time DESC"]
            )
            ids = list(qs.values_list("pk", flat=True)[:COMPARE_BY_FILTER])
            if len(ids) == COMPARE_BY_FILTER and (matching := qs.count()) > COMPARE_BY_FILTER:
                problems.append(
                    f"Comparing the newest {COMPARE_BY_FILTER} of the {matching:,} runs matching the filter."
                )
        except FilterError as exc:
            problems.append(f"Invalid filter at position {exc.position}: {exc.message}")
    if len(ids) > MAX_COMPARE_RUNS:
        problems.append(f"Comparing the first {MAX_COMPARE_RUNS} of {len(ids)} runs.")
        ids = ids[:MAX_COMPARE_RUNS]
    runs: list[Run] = []
    if ids:
        with policy_errors():
            runs = access_runs(request.user, ids)
        # SECURITY: the URL names the project; runs of another project are not in it.
        if any(run.project_id != proj.pk for run in runs):
            raise Http404("Not found.")

    show_all_params = request.GET.get("params") == "all"
    param_rows = []
    same_params = 0
    # Config first (what assay.init(config=…) logged), then logged params; each labelled.
    for source, values_by_run in (
        ("config", search_selectors.config_of(runs) if runs else {}),
        ("param", selectors.params_of(runs) if runs else {}),
    ):
        for key in sorted({k for by_key in values_by_run.values() for k in by_key}):
            texts = [values_by_run.get(r.pk, {}).get(key) for r in runs]
            differs = len(set(texts)) > 1
            same_params += not differs
            if differs or show_all_params:
                param_rows.append(ParamRow(key=key, values=texts, differs=differs, source=source))

    summaries: dict[str, dict[str, MetricSummary]] = selectors.summaries_of(runs) if runs else {}
    metric_keys = sorted({k for by_key in summaries.values() for k in by_key})
    metric_rows = []
    for key in metric_keys:
        values = [(s.last if (s := summaries.get(r.pk, {}).get(key)) is not None else None) for r in runs]
        lower = bool(LOWER_IS_BETTER.search(key))
        best = _best(values, lower)
        metric_rows.append(
            MetricRow(
                key=key,
                cells=[(v, best is not None and v == best) for v in values],
                direction="lower is better" if lower else "higher is better",
            )
        )

    figures: dict[str, dict[str, Figure]] = {}
    for figure in Figure.objects.filter(run__in=runs, kind=Figure.Kind.CONFUSION_MATRIX).order_by("name", "step"):
        figures.setdefault(figure.name, {})[figure.run_id] = figure  # the latest step wins
    figure_groups = []
    for index, (name, by_run) in enumerate(sorted(figures.items())):
        cells = [
            (run, by_run[run.pk].data, f"cm-{index}-{position}")
            for position, run in enumerate(runs)
            if run.pk in by_run
        ]
        missing = [run for run in runs if run.pk not in by_run]
        figure_groups.append(FigureGroup(name=name, cells=cells, missing=missing))

    # A metric every run logged at most once is a row of values, not a chart (issue 16, bug 7).
    single_keys = {
        key for key in metric_keys if all(s.count <= 1 for by_key in summaries.values() if (s := by_key.get(key)))
    }
    single_rows = [row for row in metric_rows if row.key in single_keys]
    picker = _chart_keys(request.GET, [k for k in metric_keys if k not in single_keys], problems)
    chart_keys = picker.chosen
    data_url = (
        reverse("api-compare")
        + "?"
        + urlencode(
            {
                "runs": ",".join(r.pk for r in runs),
                "max_points": chart_points(len(runs), len(chart_keys)),
                "keys": ",".join(chart_keys),
            }
        )
    )
    config = {
        "dataUrl": data_url,
        "keys": chart_keys,
        # What the charts' lines and legend need; the rest of each run comes from the API (only=runs).
        "runs": [{"id": r.pk, "name": r.name, "start_time": r.start_time.isoformat()} for r in runs],
        "parallel": {
            "params": [{"source": row.source, "key": row.key} for row in param_rows if row.differs][:12],
            "metrics": metric_keys[:8],
        },
    }
    context = {
        "project": proj,
        "runs": runs,
        "problems": problems,
        "filter_text": filter_text,
        "param_rows": param_rows,
        "same_params": same_params,
        "show_all_params": show_all_params,
        "metric_rows": metric_rows,
        "figure_groups": figure_groups,
        "compare_config": config,
        "preload_urls": _first_panel_urls(data_url, chart_keys),
        "picker": picker,
        "single_rows": single_rows,
        "picker_hidden": [
            (name, value) for name in ("runs", "filter", "order_by", "params") for value in request.GET.getlist(name)
        ],
        "max_runs": MAX_COMPARE_RUNS,
        "export_url": reverse("api-export-histories") + "?runs=" + ",".join(r.pk for r in runs) if runs else "",
        "all_params_url": "?" + _with(request.GET, params="all"),
        "diff_params_url": "?" + _with(request.GET, params=None),
    }
    return render(request, "frontend/compare.html", context)


# Charts drawn at once: each draws every run's history (one request brings them all; the
# compare API takes at most this many keys).
MAX_CHART_KEYS = search_selectors.MAX_DEFAULT_KEYS


@dataclass
class KeyPicker:
    """Which metric keys the compare page charts, of which, and why (said on the page)."""

    chosen: list[str]
    available: list[str]
    explicit: bool  # the user picked them (``?keys=``), rather than the default

    max: int = MAX_CHART_KEYS

    @property
    def reason(self) -> str:
        shown, total = len(self.chosen), len(self.available)
        if self.explicit:
            return f"Charting the {shown} chosen of {total} metric key{'s' if total != 1 else ''}."
        if shown == total:
            return "Charting the only metric key." if total == 1 else f"Charting all {total} metric keys."
        return (
            f"Charting {shown} of {total} metric keys: the first {shown} alphabetically, as at most "
            f"{MAX_CHART_KEYS} charts are drawn at once (each draws every run's history). Choose others below."
        )


def _chart_keys(query: QueryDict, available: list[str], problems: list[str]) -> KeyPicker:
    """``?keys=a,b`` (or repeated ``keys=``; an empty value chooses none): the chosen keys among
    ``available``, in its order; by default its first MAX_CHART_KEYS."""
    if "keys" not in query:
        return KeyPicker(chosen=available[:MAX_CHART_KEYS], available=available, explicit=False)
    wanted = _ids(query, "keys")
    known = set(wanted) & set(available)
    unknown = [key for key in wanted if key not in known]
    if unknown:
        listed = ", ".join(repr(key[:100]) for key in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        problems.append(f"No run here logged {listed}: not charted.")
    chosen = [key for key in available if key in known]
    if len(chosen) > MAX_CHART_KEYS:
        problems.append(f"Charting the first {MAX_CHART_KEYS} of the {len(chosen)} chosen metric keys.")
        chosen = chosen[:MAX_CHART_KEYS]
    return KeyPicker(chosen=chosen, available=available, explicit=True)


def _with(query: QueryDict, **changes: str | None) -> str:
    copy = query.copy()
    for name, value in changes.items():
        copy.pop(name, None)
        if value is not None:
            copy[name] = value
    return copy.urlencode()


# --- CSV export of the current runs-table view ------------------------------------------------------


@login_required
@require_GET
def project_export(request: HttpRequest, team: str, project: str) -> StreamingHttpResponse:
    """The runs of the current view (filter, sort, columns), every page, as CSV."""
    with policy_errors():
        proj = access_project(request.user, team, project)
    sort = (request.GET.get("sort") or request.GET.get("order_by") or DEFAULT_SORT).strip()
    experiment = None
    if request.GET.get("experiment"):
        experiment = selectors.experiments_of(proj).filter(name__iexact=request.GET["experiment"]).first()
        if experiment is None:
            raise Http404("No such experiment in this project.")
    try:
        qs, _, _ = selectors.runs_search(
            proj, filter_text=request.GET.get("filter", ""), order_by=[sort], experiment=experiment
        )
    except FilterError as exc:
        return HttpResponse(
            f"Invalid {exc.source} at position {exc.position}: {exc.message}", status=400, content_type="text/plain"
        )  # type: ignore[return-value]
    # The columns of the page the export was asked from: the address's, the user's or the defaults.
    layout = search_selectors.table_layout_of(request.user, proj)
    columns = chosen_columns(
        request,
        proj,
        [],
        saved=layout.columns if layout else None,
        popular=search_selectors.popular_keys(proj, limit=DEFAULT_COLUMNS_PER_KIND),
    )

    def rows() -> Iterator[list[Any]]:
        yield ["id", "name", "status", "experiment", "author", "start_time", "end_time", "duration_s"] + [
            c.name for c in columns
        ]
        batch = 1000
        runs_qs = qs.select_related("author", "experiment")
        offset = 0
        while offset < EXPORT_MAX_ROWS:
            runs = list(runs_qs[offset : offset + batch])
            if not runs:
                return
            summaries = selectors.summaries_of(runs, [c.key for c in columns if c.kind == "metric"])
            params = selectors.params_of(runs, [c.key for c in columns if c.kind == "param"])
            tags = search_selectors.tags_of(runs, [c.key for c in columns if c.kind == "tag"])
            config = search_selectors.config_of(runs, [c.key for c in columns if c.kind == "config"])
            for run in runs:
                cells: list[Any] = []
                for c in columns:
                    if c.kind == "metric":
                        s = summaries.get(run.pk, {}).get(c.key)
                        cells.append(s.last if s is not None else None)
                    elif c.kind == "param":
                        cells.append(params.get(run.pk, {}).get(c.key))
                    elif c.kind == "config":
                        cells.append(config.get(run.pk, {}).get(c.key))
                    else:
                        cells.append(tags.get(run.pk, {}).get(c.key))
                yield [
                    run.pk,
                    run.name,
                    run.status,
                    run.experiment.name,
                    run.author.get_username() if run.author else None,
                    run.start_time.isoformat(),
                    run.end_time.isoformat() if run.end_time else None,
                    run.duration_seconds,
                    *cells,
                ]
            offset += batch

    response = StreamingHttpResponse(rows_to_csv(rows()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{proj.team.name}-{proj.name}-runs.csv"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- saved views -----------------------------------------------------------------------------------


@login_required
@require_POST
def saved_view_create(request: HttpRequest, team: str, project: str) -> HttpResponse:
    with policy_errors():
        proj = access_project(request.user, team, project)
    with form_errors(request, "The view was not saved"):
        view = services.saved_view_save(
            user=request_user(request),
            project=proj,
            name=request.POST.get("name", ""),
            query=request.POST.get("query", ""),
        )
        messages.success(request, f"Saved the view “{view.name}”.")
        return HttpResponseRedirect(_project_url(proj) + "?" + view.query)
    return HttpResponseRedirect(_project_url(proj) + "?" + services.saved_view_query(request.POST.get("query", "")))


@login_required
@require_GET
def saved_view_open(request: HttpRequest, team: str, project: str, view_id: str) -> HttpResponse:
    with policy_errors():
        view = access_saved_view(request.user, view_id)
    if view.project.team.name.lower() != team.lower() or view.project.name.lower() != project.lower():
        raise Http404("Not found.")
    return HttpResponseRedirect(_project_url(view.project) + "?" + view.query)


@login_required
@require_POST
def saved_view_delete(request: HttpRequest, team: str, project: str, view_id: str) -> HttpResponse:
    with policy_errors():
        view = access_saved_view(request.user, view_id)
    if view.project.team.name.lower() != team.lower() or view.project.name.lower() != project.lower():
        raise Http404("Not found.")
    proj = view.project
    services.saved_view_delete(view=view)
    messages.success(request, f"Deleted the view “{view.name}”.")
    return HttpResponseRedirect(_project_url(proj))


def _project_url(project: Project) -> str:
    return reverse("project", args=[project.team.name, project.name])


# --- global search -----------------------------------------------------------------------------------


@login_required
@require_GET
def search_page(request: HttpRequest) -> HttpResponse:
    text = request.GET.get("q", "").strip()[:200]
    found = (
        search_selectors.global_search(
            request.user, text, limit=25, url=lambda r: reverse("run", args=[r.project.team.name, r.project.name, r.pk])
        )
        if text
        else None
    )
    return render(request, "frontend/search.html", {"q": text, "found": found})
