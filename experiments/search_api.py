"""Search and compare endpoints (issue 6): project keys for completion, compare data (many
runs' downsampled histories in one request), bulk export of raw histories, global search.

Thin like experiments/api.py: validate, ask the policy (experiments.access), read through
the selectors, present.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import access_project
from accounts.names import parse_project_path
from core import paging
from core.errors import Invalid
from core.openapi import (
    METRIC_KEYS_PATTERN,
    NOT_BLANK,
    PROJECT_PATH_PATTERN,
    RUN_IDS_PATTERN,
    int_query,
    or_empty,
    string_query,
)
from experiments import metrics, parquet_export, search_selectors, selectors
from experiments.access import MAX_RUNS_AT_ONCE, access_run_ids, access_runs
from experiments.api import filter_error
from experiments.csv_export import rows_to_csv
from experiments.models import Run
from experiments.presenters import run_url
from experiments.query.parser import FilterError

MAX_COMPARE_KEYS = 20
DEFAULT_COMPARE_POINTS = 500
MAX_COMPARE_POINTS = 2000
MAX_EXPORT_RUNS = 1000
EXPORT_FORMATS = ("csv", "parquet")


def _list_param(request: Request, name: str, *, limit: int) -> list[str]:
    """A comma-separated and/or repeated query parameter, de-duplicated, bounded."""
    items: list[str] = []
    for raw in request.query_params.getlist(name):
        items += [part.strip() for part in raw.split(",") if part.strip()]
    items = list(dict.fromkeys(items))
    if len(items) > limit:
        raise Invalid(f"{name} takes at most {limit} values.", field=name)
    return items


def _keys_param(request: Request, name: str = "keys") -> list[str]:
    keys = _list_param(request, name, limit=MAX_COMPARE_KEYS)
    for key in keys:
        try:
            metrics.check_key(key, name)
        except metrics.PointError as exc:
            raise Invalid(str(exc), field=name) from None
    return keys


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    return paging.int_param(request.query_params, name, default=default, lo=lo, hi=hi)


class ProjectKeysView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Only keys containing this text (case-insensitive)"),
            int_query("limit", lo=1, hi=500, default=50, description="Per kind"),
        ],
        responses=inline_serializer(
            "ProjectKeys",
            {
                "metrics": serializers.ListField(child=serializers.CharField()),
                "params": serializers.ListField(child=serializers.CharField()),
                "config": serializers.ListField(
                    child=serializers.CharField(), help_text="The runs' config keys, nested keys joined with dots"
                ),
                "tags": serializers.ListField(child=serializers.CharField()),
                "attributes": serializers.ListField(child=serializers.CharField()),
                "truncated": serializers.BooleanField(),
            },
        ),
        summary="The metric, param, config and tag keys logged in a project (for completion and columns)",
    )
    def get(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project)
        text = request.query_params.get("q", "")
        if len(text) > 250:
            raise Invalid("q is at most 250 characters.", field="q")
        limit = _int(request, "limit", 50, 1, 500)
        return Response(search_selectors.project_keys(proj, contains=text, limit=limit))


class CompareView(APIView):
    @extend_schema(
        parameters=[
            string_query(
                "runs",
                pattern=RUN_IDS_PATTERN,
                required=True,
                description=f"Run ids, comma-separated (at most {MAX_RUNS_AT_ONCE})",
            ),
            string_query(
                "keys",
                pattern=or_empty(METRIC_KEYS_PATTERN),
                description=f"Metric keys (at most {MAX_COMPARE_KEYS}); default: the runs' keys",
            ),
            int_query("max_points", lo=2, hi=MAX_COMPARE_POINTS, description="Per series (MinMaxLTTB)"),
            OpenApiParameter(
                "only",
                str,
                enum=list(search_selectors.COMPARE_PARTS),
                description="Only that part of the answer: `runs` (each run's params, config and summaries, "
                "and `all_keys`; no history is read) or `series` (the downsampled histories of `keys`); "
                "default both",
            ),
        ],
        responses=OpenApiTypes.OBJECT,
        summary="Compare runs: summaries, params and downsampled histories of many runs in one request",
    )
    def get(self, request: Request) -> Response:
        ids = _list_param(request, "runs", limit=MAX_RUNS_AT_ONCE)
        if not ids:
            raise Invalid("runs names the run ids to compare.", field="runs")
        only = request.query_params.get("only")
        if only == "series":
            # One panel of the compare page: the histories alone, the runs not even loaded.
            run_ids = access_run_ids(request.user, ids)
            keys = _keys_param(request)
            max_points = _int(request, "max_points", DEFAULT_COMPARE_POINTS, 2, MAX_COMPARE_POINTS)
            return Response(search_selectors.compare_series(run_ids, keys=keys or None, max_points=max_points))
        runs = access_runs(request.user, ids)
        keys = _keys_param(request)
        max_points = _int(request, "max_points", DEFAULT_COMPARE_POINTS, 2, MAX_COMPARE_POINTS)
        if only is not None and only not in search_selectors.COMPARE_PARTS:
            raise Invalid(f"only is one of: {', '.join(search_selectors.COMPARE_PARTS)}.", field="only")
        if only == "runs":
            return Response(search_selectors.compare_runs(runs, url=run_url))
        return Response(search_selectors.compare_data(runs, keys=keys or None, max_points=max_points, url=run_url))


class _FormatIsOurs(DefaultContentNegotiation):
    """``format`` names the export's file format here, not DRF's renderer override (which
    would answer 404 for ``format=parquet``); the answers that are not files are JSON."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class HistoryExportView(APIView):
    content_negotiation_class = _FormatIsOurs

    @extend_schema(
        parameters=[
            string_query(
                "runs", pattern=RUN_IDS_PATTERN, description=f"Run ids, comma-separated (at most {MAX_RUNS_AT_ONCE})"
            ),
            string_query("project", pattern=PROJECT_PATH_PATTERN, description='Or: "team/project" with a filter'),
            OpenApiParameter(
                "filter", str, description=f"With project: the runs to export (at most {MAX_EXPORT_RUNS})"
            ),
            string_query(
                "keys", pattern=or_empty(METRIC_KEYS_PATTERN), description="Metric keys, comma-separated; default all"
            ),
            OpenApiParameter(
                "format", str, enum=list(EXPORT_FORMATS), description="csv (default) or parquet (zstd, typed columns)"
            ),
        ],
        responses={(200, "text/csv"): OpenApiTypes.STR, (200, parquet_export.CONTENT_TYPE): OpenApiTypes.BINARY},
        summary="Raw metric histories of many runs, streamed as CSV or Parquet "
        "(run_id, run_name, key, step, value, timestamp)",
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        keys = _keys_param(request)
        fmt = request.query_params.get("format", "csv")
        if fmt not in EXPORT_FORMATS:
            raise Invalid(f"format is one of: {', '.join(EXPORT_FORMATS)}.", field="format")
        if request.query_params.get("project"):
            team, name = parse_project_path(request.query_params["project"])
            project = access_project(request.user, team, name)
            try:
                qs, _, _ = selectors.runs_search(project, filter_text=request.query_params.get("filter", ""))
            except FilterError as exc:
                raise filter_error(exc, exc.source) from None
            runs: list[Run] = list(qs[: MAX_EXPORT_RUNS + 1])
            if len(runs) > MAX_EXPORT_RUNS:
                raise Invalid(f"The filter matches more than {MAX_EXPORT_RUNS} runs; narrow it.", field="filter")
        else:
            ids = _list_param(request, "runs", limit=MAX_RUNS_AT_ONCE)
            if not ids:
                raise Invalid("Pass runs (ids) or project with a filter.", field="runs")
            runs = access_runs(request.user, ids)

        if fmt == "parquet":
            body = parquet_export.histories_to_parquet(search_selectors.history_series(runs, keys or None))
            response = StreamingHttpResponse(body, content_type=parquet_export.CONTENT_TYPE)
            response["Content-Disposition"] = 'attachment; filename="histories.parquet"'
            response["X-Content-Type-Options"] = "nosniff"
            return response

        def rows() -> Iterator[list[Any]]:
            yield ["run_id", "run_name", "key", "step", "value", "timestamp"]
            yield from search_selectors.history_rows(runs, keys or None)

        response = StreamingHttpResponse(rows_to_csv(rows()), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="histories.csv"'
        response["X-Content-Type-Options"] = "nosniff"
        return response


class GlobalSearchView(APIView):
    @extend_schema(
        parameters=[
            string_query(
                "q", pattern=NOT_BLANK, required=True, description="Text to find in names (and run tag values)"
            ),
            int_query("limit", lo=1, hi=50, default=10, description="Per kind"),
        ],
        responses=OpenApiTypes.OBJECT,
        summary="Find projects, experiments, runs and models by name or tag, across everything you may see",
    )
    def get(self, request: Request) -> Response:
        text = request.query_params.get("q", "").strip()
        if not text:
            raise Invalid("q is the text to search for.", field="q")
        if len(text) > 200:
            raise Invalid("q is at most 200 characters.", field="q")
        limit = _int(request, "limit", 10, 1, 50)
        return Response(search_selectors.global_search(request.user, text, limit=limit, url=run_url))
