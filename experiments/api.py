"""Tracking REST API (thin: validate, ask the policy, call a service, present)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import access_project
from accounts.models import User
from accounts.names import parse_project_path
from core import paging
from core.api import StrictCharField
from core.errors import Conflict, Invalid, NotFound
from core.openapi import PROJECT_PATH_PATTERN, int_query, string_query
from core.validation import body_object, refuse_nulls, refuse_unknown_fields
from experiments import metric_store, metrics, selectors, services, tried
from experiments.access import access_run
from experiments.models import Figure, MetricSummary
from experiments.presenters import runs_out
from experiments.query.parser import FilterError
from experiments.serializers import (
    ExperimentIn,
    ExperimentOut,
    FigureIn,
    FigureOut,
    LogBatchIn,
    LogBatchOut,
    MetricHistoryOut,
    RunCreateIn,
    RunUpdateIn,
    SummaryOut,
)

if TYPE_CHECKING:
    from accounts.access import AnyUser

MAX_HISTORY_PAGE = 100_000
DEFAULT_HISTORY_PAGE = 10_000
MAX_DOWNSAMPLED_POINTS = 10_000


PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def _user(request: Request) -> User:
    assert isinstance(request.user, User)  # IsAuthenticated ran before the view
    return request.user


class ExperimentListView(APIView):
    @extend_schema(responses=ExperimentOut(many=True))
    def get(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project)
        return Response(ExperimentOut(selectors.experiments_of(proj), many=True).data)

    @extend_schema(request=ExperimentIn, responses={201: ExperimentOut})
    def post(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project, action="experiment.create")
        data = ExperimentIn(data=request.data)
        data.is_valid(raise_exception=True)
        experiment = services.experiment_get_or_create(project=proj, name=data.validated_data["name"])
        return Response(ExperimentOut(experiment).data, status=status.HTTP_201_CREATED)


RUN_OUT_SCHEMA = inline_serializer(
    "Run",
    {
        "id": serializers.CharField(),
        "project": serializers.CharField(),
        "experiment": serializers.CharField(),
        "name": serializers.CharField(),
        "author": serializers.CharField(allow_null=True),
        "status": serializers.CharField(),
        "start_time": serializers.DateTimeField(),
        "end_time": serializers.DateTimeField(allow_null=True),
        "duration": serializers.FloatField(allow_null=True),
        "notes": serializers.CharField(),
        "config": serializers.JSONField(),
        "info": serializers.JSONField(),
        "params": serializers.DictField(child=serializers.CharField()),
        "tags": serializers.DictField(child=serializers.CharField()),
        "metrics": serializers.DictField(child=SummaryOut()),
        "url": serializers.URLField(),
    },
)


def filter_error(exc: FilterError, field: str) -> Invalid:
    code = {"filter": "invalid_filter", "order_by": "invalid_order_by", "cursor": "invalid_cursor"}.get(
        field, "invalid"
    )
    return Invalid(exc.message, code=code, field=field, extra={"position": exc.position})


# selectors.parse_sort: an attribute, or metrics./params. and a metric key (experiments.metrics).
SORT_PATTERN = (
    "^-?(start_time|end_time|name|status|created_at|author|duration"
    "|(metrics|params)\\.[A-Za-z0-9_.: -][A-Za-z0-9_./: -]{0,249})$"
)


def _order_by_params(request: Request) -> list[str]:
    """``order_by`` (repeatable), or the older single ``sort`` (``-metrics.acc``)."""
    order_by = request.query_params.getlist("order_by")
    sort = request.query_params.get("sort")
    if sort is not None:
        if order_by:
            raise Invalid("Pass order_by or sort, not both.", field="sort")
        problem = selectors.parse_sort(sort)
        if problem:
            raise Invalid(problem, field="sort")
        order_by = [sort]
    return order_by


def _page_size(request: Request) -> int:
    # max_results: the name MLflow's clients use.
    names = ("page_size", "max_results")
    return paging.page_size(request.query_params, default=PAGE_SIZE, maximum=MAX_PAGE_SIZE, names=names)


def _with_query(request: Request, **changes: Any) -> str:
    query = request.query_params.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value
    return request.build_absolute_uri(request.path + "?" + query.urlencode())


class RunListView(APIView):
    @extend_schema(
        parameters=[
            string_query("project", pattern=PROJECT_PATH_PATTERN, required=True, description='"team/project"'),
            OpenApiParameter(
                "filter",
                str,
                description="A filter in the run query language (MLflow's syntax plus OR, NOT, parentheses, "
                "IN, IS NULL, time literals), e.g. `metrics.acc > 0.8 and params.optimizer = 'adam'`; "
                "see docs/query-language.md",
            ),
            OpenApiParameter(
                "order_by",
                str,
                many=True,
                description="Repeatable: `metrics.acc DESC`, `params.lr`, `attributes.start_time ASC`; "
                "nulls last; default `attributes.start_time DESC`",
            ),
            OpenApiParameter("cursor", str, description="The `next` cursor of the previous page"),
            OpenApiParameter("experiment", str, description="experiment name"),
            OpenApiParameter("status", str, enum=["running", "finished", "failed", "killed"]),
            string_query(
                "sort",
                pattern=SORT_PATTERN,
                description="Older single ordering: `-metrics.acc` (use order_by; not both)",
            ),
            int_query("page", lo=1, hi=10**9, default=1, description="Older offset paging; the cursor is faster"),
            int_query("page_size", lo=1, hi=MAX_PAGE_SIZE, default=PAGE_SIZE),
        ],
        responses=inline_serializer(
            "RunSearchPage",
            {"results": serializers.ListField(child=RUN_OUT_SCHEMA), "next": serializers.URLField(allow_null=True)},
        ),
        operation_id="v1_runs_list",
        summary="Search the runs of a project: filter, order, keyset-paged",
    )
    def get(self, request: Request) -> Response:
        path = request.query_params.get("project")
        if not path:
            raise Invalid('The project query parameter is required ("team/project").', field="project")
        team, name = parse_project_path(path)
        project = access_project(request.user, team, name)
        experiment = None
        if "experiment" in request.query_params:
            experiment = (
                selectors.experiments_of(project).filter(name__iexact=request.query_params["experiment"]).first()
            )
            if experiment is None:
                raise NotFound("No such experiment in this project.", code="not_found", field="experiment")
        filter_text = request.query_params.get("filter", "")
        run_status = request.query_params.get("status")
        if run_status is not None and run_status not in {"running", "finished", "failed", "killed"}:
            raise Invalid("status must be running, finished, failed or killed.", field="status")
        order_by = _order_by_params(request)
        try:
            qs, keys, fingerprint = selectors.runs_search(
                project, filter_text=filter_text, order_by=order_by, experiment=experiment, extra=run_status or ""
            )
        except FilterError as exc:
            field = "sort" if exc.source == "order_by" and "sort" in request.query_params else exc.source
            raise filter_error(exc, field) from None
        if run_status is not None:
            qs = qs.filter(status=run_status)
        qs = qs.select_related("project__team")
        size = _page_size(request)
        if "page" in request.query_params:
            # Offset paging, kept for older clients.
            number = paging.int_param(request.query_params, "page", default=1, lo=1, hi=10**9)
            runs = list(qs[(number - 1) * size : number * size + 1])
            next_url = _with_query(request, page=str(number + 1)) if len(runs) > size else None
            return Response({"results": runs_out(runs[:size]), "next": next_url})
        try:
            page = selectors.runs_page(qs, keys, fingerprint, cursor=request.query_params.get("cursor"), size=size)
        except FilterError as exc:
            raise filter_error(exc, exc.source) from None
        next_url = _with_query(request, cursor=page.next_cursor) if page.next_cursor else None
        return Response({"results": runs_out(page.runs), "next": next_url})

    @extend_schema(
        request=RunCreateIn,
        responses={201: RUN_OUT_SCHEMA, 200: RUN_OUT_SCHEMA},
        summary="Start a run (200 with the existing run for a repeated client_id)",
    )
    def post(self, request: Request) -> Response:
        data = RunCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        user = _user(request)
        if v["client_id"] is not None:
            existing = selectors.run_of_client(user, v["client_id"])
            if existing is not None:
                if existing.project.path != "/".join(parse_project_path(v["project"])):
                    raise Conflict(
                        "This client_id already names a run in another project.",
                        code="conflict",
                        field="client_id",
                    )
                return Response(runs_out([existing])[0], status=status.HTTP_200_OK)
        run = services.run_create(
            user=user,
            project_path=v["project"],
            experiment=v["experiment"],
            name=v["name"],
            config=v["config"],
            tags=v["tags"],
            notes=v["notes"],
            info=v["info"],
            start_time=v["start_time"],
            client_id=v["client_id"],
        )
        return Response(runs_out([run])[0], status=status.HTTP_201_CREATED)


class RunDetailView(APIView):
    @extend_schema(responses=RUN_OUT_SCHEMA)
    def get(self, request: Request, run_id: str) -> Response:
        return Response(runs_out([access_run(request.user, run_id)])[0])

    @extend_schema(request=RunUpdateIn, responses=RUN_OUT_SCHEMA, summary="Rename, annotate, finish or resume a run")
    def patch(self, request: Request, run_id: str) -> Response:
        run = access_run(request.user, run_id, action="run.update")
        data = RunUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        author = request.user if isinstance(request.user, User) else None
        run = services.run_update(run=run, **data.validated_data, author=author)
        return Response(runs_out([access_run(request.user, run.id)])[0])


class RunLogView(APIView):
    @extend_schema(
        request=LogBatchIn,
        responses=LogBatchOut,
        summary="Log a batch of params, tags and metric points",
        description=(
            f"All or nothing. At most {metrics.MAX_POINTS_PER_BATCH} points per batch, in `metrics` (rows) and/or "
            "`series` (columns). Keys: 1-250 characters of letters, digits, `_ - . / :` and space. Steps: integers "
            "0..2^53-1. Timestamps: ms since the epoch, 0..2^53-1, default now. Values: finite numbers, or the "
            'strings "NaN", "Infinity", "-Infinity". Params are immutable: a different value for a set key is 409. '
            "A batch_id seen before on this run adds nothing and answers `duplicate: true`."
        ),
    )
    def post(self, request: Request, run_id: str) -> Response:
        return Response(log_call(request.user, run_id, request.data))


def log_call(user: AnyUser | None, run_id: str, body: Any) -> dict[str, Any]:
    """``POST /api/v1/runs/{id}/log/``: the view above, and the fast path that serves the same
    call for bearer tokens without Django's request machinery (experiments/hotpath.py)."""
    run = access_run(user, run_id, action="run.log")
    # DRF never calls the parser for an empty body and hands the view {} instead; an
    # empty batch is a client bug, so it is refused like a non-object.
    if not isinstance(body, dict) or not body:
        raise Invalid("The body must be a JSON object with batch_id, params, tags, metrics and/or series.")
    refuse_unknown_fields(body, {"batch_id", "params", "tags", "metrics", "series"})
    refuse_nulls(body, {"batch_id", "params", "tags", "metrics", "series"})
    return services.run_log(
        run=run,
        batch_id=body.get("batch_id"),
        params=body.get("params"),
        tags=body.get("tags"),
        metric_rows=body.get("metrics"),
        metric_columns=body.get("series"),
    )


class RunMetricListView(APIView):
    @extend_schema(responses=SummaryOut(many=True), summary="Summary of every metric key of a run")
    def get(self, request: Request, run_id: str) -> Response:
        run = access_run(request.user, run_id)
        return Response(SummaryOut(MetricSummary.objects.filter(run=run).order_by("key"), many=True).data)


class RunMetricHistoryView(APIView):
    @extend_schema(
        parameters=[
            int_query(
                "max_points",
                lo=2,
                hi=MAX_DOWNSAMPLED_POINTS,
                description="Downsample to at most N points with MinMaxLTTB (not with `offset`)",
            ),
            int_query("offset", lo=0, hi=paging.MAX_OFFSET, default=0, description="Raw points: the first one's index"),
            int_query(
                "limit", lo=1, hi=MAX_HISTORY_PAGE, default=DEFAULT_HISTORY_PAGE, description="Raw points per page"
            ),
        ],
        responses=MetricHistoryOut,
        summary="Metric history: raw points paged in step order, or downsampled on the server",
    )
    def get(self, request: Request, run_id: str, key: str) -> Response:
        run = access_run(request.user, run_id)
        try:
            metrics.check_key(key, "key")
        except metrics.PointError as exc:
            raise Invalid(str(exc), field="key") from None
        query = request.query_params
        max_points = None
        if "max_points" in query:
            max_points = paging.int_param(query, "max_points", default=0, lo=2, hi=MAX_DOWNSAMPLED_POINTS)
        offset, limit = paging.offset_limit(query, default_limit=DEFAULT_HISTORY_PAGE, max_limit=MAX_HISTORY_PAGE)
        if max_points is not None and "offset" in request.query_params:
            raise Invalid("offset pages raw points; it cannot be combined with max_points.", field="offset")
        history = metric_store.history(run, key)
        total = len(history)
        if total == 0 and not MetricSummary.objects.filter(run=run, key=key).exists():
            raise NotFound(f"This run has no metric {key!r}.", code="not_found", field="key")
        next_url = None
        if max_points is not None:
            shown = metrics.downsample(history, max_points)
            downsampled = len(shown) < total
        else:
            shown = history.slice(offset, offset + limit)
            downsampled = False
            if offset + limit < total:
                next_url = request.build_absolute_uri(
                    request.path + "?" + urlencode({"offset": offset + limit, "limit": limit})
                )
        return Response(
            {
                "key": key,
                "total": total,
                "downsampled": downsampled,
                "method": metrics.DOWNSAMPLE_METHOD if downsampled else None,
                "points": metrics.points_json(shown),
                "next": next_url,
            }
        )


class RunFigureListView(APIView):
    @extend_schema(responses=FigureOut(many=True))
    def get(self, request: Request, run_id: str) -> Response:
        run = access_run(request.user, run_id)
        return Response(FigureOut(Figure.objects.filter(run=run), many=True).data)

    @extend_schema(request=FigureIn, responses={201: FigureOut}, summary="Add a confusion matrix to a run")
    def post(self, request: Request, run_id: str) -> Response:
        run = access_run(request.user, run_id, action="run.log")
        data = FigureIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        figure = services.figure_confusion_matrix_add(
            run=run, name=v["name"], labels=v["labels"], matrix=v["matrix"], step=v["step"]
        )
        return Response(FigureOut(figure).data, status=status.HTTP_201_CREATED)


# --- "has this been tried?" ------------------------------------------------------------------

TRIED_RUN_SCHEMA: dict[str, serializers.Field[Any, Any, Any, Any]] = {
    "id": serializers.CharField(),
    "name": serializers.CharField(),
    "experiment": serializers.CharField(),
    "author": serializers.CharField(allow_null=True),
    "status": serializers.CharField(),
    "start_time": serializers.DateTimeField(),
    "end_time": serializers.DateTimeField(allow_null=True),
    "url": serializers.URLField(),
    "metric": serializers.JSONField(allow_null=True, help_text='{"key", "value"} of the key metric, or null.'),
}


class TriedIn(serializers.Serializer[Any]):
    config = serializers.JSONField(help_text="The configuration (nested object; params may be mixed in).")
    exclude_run = serializers.RegexField(
        r"^[A-Za-z0-9_-]{1,32}$", required=False, help_text="A run id left out of the answer (your own new run)."
    )


class TriedView(APIView):
    @extend_schema(
        request=TriedIn,
        responses=inline_serializer(
            "Tried",
            {
                "fingerprint": serializers.CharField(),
                "identical_count": serializers.IntegerField(),
                "identical": inline_serializer("TriedRun", TRIED_RUN_SCHEMA, many=True),
                "near": inline_serializer(
                    "NearRun",
                    {
                        **TRIED_RUN_SCHEMA,
                        "differences": serializers.ListField(
                            child=serializers.JSONField(), help_text='[{"key", "value" (theirs), "yours"}]'
                        ),
                    },
                    many=True,
                ),
                "key_metric": serializers.CharField(allow_null=True),
                "near_window": serializers.IntegerField(),
            },
        ),
        summary="Has this configuration been tried in the project? (identical runs, else the nearest)",
    )
    def post(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project, action="run.view")
        body = body_object(request.data, {"config", "exclude_run"}, not_null={"config", "exclude_run"})
        data = TriedIn(data=body)
        data.is_valid(raise_exception=True)
        config = services.check_config(data.validated_data["config"])
        return Response(
            tried.tried_lookup(project=proj, config=config, exclude_run=data.validated_data.get("exclude_run"))
        )


class TriedSettingsIn(serializers.Serializer[Any]):
    exclude = serializers.JSONField(required=False, help_text="Key patterns (fnmatch globs) left out of fingerprints.")
    key_metric = StrictCharField(max_length=250, required=False, allow_blank=True)


TRIED_SETTINGS_OUT = inline_serializer(
    "TriedSettings",
    {"exclude": serializers.ListField(child=serializers.CharField()), "key_metric": serializers.CharField()},
)


class TriedSettingsView(APIView):
    @extend_schema(responses=TRIED_SETTINGS_OUT, summary='The project\'s "tried?" settings')
    def get(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project)
        exclude, key_metric = tried.tried_settings_of(proj)
        return Response({"exclude": exclude, "key_metric": key_metric})

    @extend_schema(
        request=TriedSettingsIn,
        responses=TRIED_SETTINGS_OUT,
        summary='Change the "tried?" settings (project admins); fingerprints are recomputed',
    )
    def put(self, request: Request, team: str, project: str) -> Response:
        user = _user(request)
        proj = access_project(user, team, project, action="project.update")
        body = body_object(request.data, {"exclude", "key_metric"}, not_null={"exclude", "key_metric"})
        data = TriedSettingsIn(data=body)
        data.is_valid(raise_exception=True)
        row = services.tried_settings_set(
            project=proj,
            actor=user,
            exclude=data.validated_data.get("exclude"),
            key_metric=data.validated_data.get("key_metric"),
        )
        return Response({"exclude": row.exclude, "key_metric": row.key_metric})
