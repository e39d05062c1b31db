"""Reads shared by the API and the pages, already narrowed to what the user may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from accounts import access
from accounts.models import Project
from experiments import metrics
from experiments.models import Experiment, MetricSummary, Param, Run, Tag
from experiments.query import compiler

if TYPE_CHECKING:
    from accounts.access import AnyUser
    from accounts.models import User


def runs_visible_to(user: AnyUser | None) -> QuerySet[Run]:
    return Run.objects.filter(access.project_filter(user, prefix="project__"))


def run_of_client(user: User, client_id: str) -> Run | None:
    """The run ``user`` created with this ``client_id``, if any (idempotent creation)."""
    return (
        Run.objects.select_related("project__team", "experiment", "author")
        .filter(author=user, client_id=client_id)
        .first()
    )


def experiments_of(project: Project) -> QuerySet[Experiment]:
    """The project's experiments, without those deleted through the MLflow API."""
    return project.experiments.filter(deleted_at__isnull=True)


# Attributes a runs list may be sorted by; anything else is refused (never passed raw to
# order_by: that would be ORM injection).
RUN_SORT_ATTRIBUTES = {
    "start_time": "start_time",
    "end_time": "end_time",
    "name": "name",
    "status": "status",
    "created_at": "created_at",
    "author": "author__username",
    "duration": "duration",
}


def runs_of(project: Project, *, experiment: Experiment | None = None, deleted: bool | None = False) -> QuerySet[Run]:
    """The project's runs; ``deleted``: False (the default) leaves out runs deleted through
    the MLflow API, True gives only those, None all."""
    qs = Run.objects.filter(project=project).select_related("author", "experiment")
    if deleted is not None:
        qs = qs.filter(deleted_at__isnull=not deleted)
    if experiment is not None:
        qs = qs.filter(experiment=experiment)
    return qs


def parse_sort(sort: str) -> str | None:
    """Return an error message, or None when ``sort`` is acceptable."""
    name = sort.lstrip("-")
    if sort.count("-") > 1 and sort.startswith("--"):
        return "sort takes one leading '-'."
    if name in RUN_SORT_ATTRIBUTES:
        return None
    for prefix in ("metrics.", "params."):
        if name.startswith(prefix):
            try:
                metrics.check_key(name[len(prefix) :], "sort")
            except metrics.PointError as exc:
                return str(exc)
            return None
    return f"sort must be one of {', '.join(RUN_SORT_ATTRIBUTES)}, metrics.<key> or params.<key> (with '-' for descending)."


def summaries_of(runs: list[Run], keys: list[str] | None = None) -> dict[str, dict[str, MetricSummary]]:
    qs = MetricSummary.objects.filter(run__in=runs)
    if keys is not None:
        qs = qs.filter(key__in=keys)
    out: dict[str, dict[str, MetricSummary]] = {}
    for summary in qs:
        out.setdefault(summary.run_id, {})[summary.key] = summary
    return out


def params_of(runs: list[Run], keys: list[str] | None = None) -> dict[str, dict[str, str]]:
    qs = Param.objects.filter(run__in=runs)
    if keys is not None:
        qs = qs.filter(key__in=keys)
    out: dict[str, dict[str, str]] = {}
    for run_id, key, value in qs.values_list("run_id", "key", "value"):
        out.setdefault(run_id, {})[key] = value
    return out


@dataclass
class RunRecords:
    """The params, last metric values and tags of some runs, each by run id, then by key in
    key order (as :func:`params_of`, :func:`summaries_of` and ``Tag`` ordered by key give them)."""

    params: dict[str, dict[str, str]]
    # key -> (last, last_step, last_timestamp)
    metrics: dict[str, dict[str, tuple[float | None, int, int]]]
    tags: dict[str, dict[str, str]]


def run_records_of(run_ids: list[str]) -> RunRecords:
    """Params, last metric values and tags of ``run_ids``: three queries of plain tuples (no
    model rows). One UNION ALL query was tried: PostgreSQL plans it in parallel (Gather
    Merge), and starting the workers cost more than the two round trips it saved."""
    out = RunRecords(params={}, metrics={}, tags={})
    if not run_ids:
        return out
    for run_id, key, value in Param.objects.filter(run_id__in=run_ids).values_list("run_id", "key", "value"):
        out.params.setdefault(run_id, {})[key] = value
    summaries = MetricSummary.objects.filter(run_id__in=run_ids).values_list(
        "run_id", "key", "last", "last_step", "last_timestamp"
    )
    for run_id, key, last, last_step, last_timestamp in summaries:
        out.metrics.setdefault(run_id, {})[key] = (last, last_step, last_timestamp)
    for run_id, key, value in Tag.objects.filter(run_id__in=run_ids).values_list("run_id", "key", "value"):
        out.tags.setdefault(run_id, {})[key] = value
    return out


def run_detail_context(run: Run) -> dict[str, Any]:
    return {
        "params": list(run.params.all()),
        "config_values": list(run.config_values.all()),
        "tags": list(run.tags.all()),
        "summaries": list(run.summaries.all()),
        "figures": list(run.figures.all()),
    }


# --- search: the run query language -----------------------------------------------------------


@dataclass
class RunPage:
    runs: list[Run]
    next_cursor: str | None


def runs_search(
    project: Project,
    *,
    filter_text: str = "",
    order_by: list[str] | None = None,
    experiment: Experiment | None = None,
    extra: str = "",
) -> tuple[QuerySet[Run], list[compiler.SortKey], str]:
    """The project's runs matching ``filter_text``, ordered by ``order_by`` (default newest
    first), as one queryset; with the sort keys and the fingerprint that binds cursors to
    this query. Raises ``parser.FilterError`` for a bad filter or ordering."""
    order_by = order_by or []
    qs, keys, _, _ = compiler.search(
        runs_of(project, experiment=experiment), filter_text=filter_text, order_by=order_by
    )
    fingerprint = compiler.query_fingerprint(
        project.pk, filter_text, order_by, f"{experiment.pk if experiment else ''}|{extra}"
    )
    return qs, keys, fingerprint


def runs_page(
    qs: QuerySet[Run], keys: list[compiler.SortKey], fingerprint: str, *, cursor: str | None, size: int
) -> RunPage:
    """One keyset page of ``qs`` (from :func:`runs_search`): the rows after ``cursor``."""
    if cursor:
        qs = qs.filter(compiler.read_cursor(cursor, fingerprint, keys))
    runs = list(qs[: size + 1])
    next_cursor = None
    if len(runs) > size:
        runs = runs[:size]
        last = runs[-1]
        next_cursor = compiler.make_cursor(fingerprint, [getattr(last, k.alias) for k in keys], last.pk)
    return RunPage(runs=runs, next_cursor=next_cursor)
