"""What a live block shows now: each block resolved to JSON-ready data from the project's
current state (the reads of experiments, registry and reviews). A frozen revision stores
exactly this data, and :mod:`reports.render` draws a block from it either way.

Every read is inside the report's project: a run id, a model, a request number of another
project is "not found" here, the same as a missing one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from accounts.models import Project
from core.errors import DomainError
from experiments import metric_store, metrics, search_selectors, selectors
from experiments.models import Figure, Run
from experiments.query.parser import FilterError
from registry import refs
from registry import selectors as registry_selectors
from reports.blocks import DEFAULT_LIMIT, MAX_COLUMNS, MAX_LIMIT, MAX_METRICS, Block, BlockError, blocks_of
from reviews.models import Check, Review, ReviewRequest

MIN_POINTS = 40
PANEL_POINTS = 6000
MAX_POINTS = 150  # per curve: a chart about 640 px wide in a document, not an analysis tool (the compare page is)
DEFAULT_METRIC_COLUMNS = 4


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _run_url(run: Run) -> str:
    return f"/{run.project.team.name}/{run.project.name}/runs/{run.pk}/"


@dataclass
class Reads:
    """What the blocks of one report read, kept for the other blocks of the same render: a
    report often asks the same query for several charts, and charts of the same runs share
    their curves. One render only: nothing outlives the request."""

    runs: dict[tuple[str, str, int], list[Run]] = field(default_factory=dict)
    curves: dict[tuple[str, str, int], dict[str, Any] | None] = field(default_factory=dict)


def points_per_curve(curves: int) -> int:
    """How many points each curve of a chart panel keeps: MAX_POINTS for a few runs, fewer
    when many runs overlap in one panel (a panel about 640 px wide holds PANEL_POINTS in all,
    never less than MIN_POINTS a curve): what a reader can tell apart, and a page that stays
    light (10 charts over 100 runs are 1,500 curves)."""
    return max(MIN_POINTS, min(MAX_POINTS, PANEL_POINTS // max(curves, 1)))


def _runs(project: Project, block: Block, reads: Reads, *, order_by: list[str] | None = None) -> list[Run]:
    limit = block.int_param("limit", DEFAULT_LIMIT.get(block.kind, 20), 1, MAX_LIMIT)
    memo = (block.get("query"), "|".join(order_by or []), limit)
    if memo in reads.runs:
        return reads.runs[memo]
    try:
        qs, _, _ = selectors.runs_search(project, filter_text=block.get("query"), order_by=order_by)
    except FilterError as exc:
        raise BlockError(f"query: {exc}") from None
    found = list(qs.select_related("project__team")[:limit])
    reads.runs[memo] = found
    return found


def _curves(runs: list[Run], keys: list[str], reads: Reads, points: int) -> None:
    """Read (once per render) and downsample each run's history of each key into ``reads``."""
    missing_runs = [r for r in runs if any((r.pk, k, points) not in reads.curves for k in keys)]
    if not missing_runs:
        return
    histories = metric_store.histories(missing_runs, keys)
    for run in missing_runs:
        for key in keys:
            if (run.pk, key, points) in reads.curves:
                continue
            history = histories.get(run.pk, {}).get(key)
            if history is None or not len(history):
                reads.curves[(run.pk, key, points)] = None
                continue
            shown = metrics.downsample(history, points)
            reads.curves[(run.pk, key, points)] = {
                "total": len(history),
                "steps": shown.steps.tolist(),
                # JSON has no NaN: non-finite points are left out of a drawn line anyway.
                "values": [v if math.isfinite(v) else None for v in shown.values.tolist()],
            }


def chart(project: Project, block: Block, reads: Reads) -> dict[str, Any]:
    keys = block.list_param("metrics", MAX_METRICS)
    if not keys:
        raise BlockError("metrics names one or more metric keys, separated by commas.")
    runs = _runs(project, block, reads)
    points = points_per_curve(len(runs))
    _curves(runs, keys, reads, points)
    series: dict[str, list[dict[str, Any]]] = {key: [] for key in keys}
    for index, run in enumerate(runs):
        for key in keys:
            curve = reads.curves.get((run.pk, key, points))
            if curve is not None:
                series[key].append({"run": index, **curve})
    return {
        "metrics": keys,
        "query": block.get("query"),
        "runs": [{"id": r.pk, "name": r.name, "url": _run_url(r)} for r in runs],
        "series": series,
    }


def _column_values(runs: list[Run], columns: list[str]) -> dict[str, dict[str, Any]]:
    """Run id → column → value, for ``metrics.k``/``params.k``/``config.k``/``tags.k`` columns."""
    wanted: dict[str, list[str]] = {"metrics": [], "params": [], "config": [], "tags": []}
    for column in columns:
        entity, _, key = column.partition(".")
        if entity in wanted and key:
            wanted[entity].append(key)
    out: dict[str, dict[str, Any]] = {r.pk: {} for r in runs}
    if wanted["metrics"]:
        for run_id, by_key in selectors.summaries_of(runs, wanted["metrics"]).items():
            for key, summary in by_key.items():
                out[run_id][f"metrics.{key}"] = _number(summary.last)
    for entity, read in (
        ("params", selectors.params_of),
        ("config", search_selectors.config_of),
        ("tags", search_selectors.tags_of),
    ):
        if wanted[entity]:
            for run_id, values in read(runs, wanted[entity]).items():
                for key, value in values.items():
                    out[run_id][f"{entity}.{key}"] = value
    return out


ATTRIBUTE_COLUMNS = ("name", "status", "experiment", "author", "start_time")


def runs_table(project: Project, block: Block, reads: Reads) -> dict[str, Any]:
    columns = block.list_param("columns", MAX_COLUMNS)
    for column in columns:
        entity, _, key = column.partition(".")
        if column not in ATTRIBUTE_COLUMNS and not (entity in ("metrics", "params", "config", "tags") and key):
            raise BlockError(
                f"columns: {column[:60]!r} is not a column (name, status, experiment, author, start_time, "
                "metrics.<key>, params.<key>, config.<key>, tags.<key>)."
            )
    order = block.get("order")
    runs = _runs(project, block, reads, order_by=[order] if order else None)
    if not columns:
        metric_keys = sorted({k for by_key in selectors.summaries_of(runs).values() for k in by_key})
        columns = ["name", "status", *[f"metrics.{k}" for k in metric_keys if not k.startswith("system/")]][
            : 2 + DEFAULT_METRIC_COLUMNS
        ]
    values = _column_values(runs, columns)
    rows = []
    for run in runs:
        attributes = {
            "name": run.name,
            "status": run.status,
            "experiment": run.experiment.name,
            "author": run.author.username if run.author else "",
            "start_time": run.start_time.isoformat(),
        }
        rows.append(
            {"id": run.pk, "url": _run_url(run), "cells": [attributes.get(c, values[run.pk].get(c)) for c in columns]}
        )
    return {"columns": columns, "query": block.get("query"), "rows": rows}


def confusion(project: Project, block: Block, reads: Reads) -> dict[str, Any]:
    run_id = block.get("run").strip()
    run = (
        selectors.runs_of(project).select_related("project__team").filter(pk=run_id).first()
        if len(run_id) <= 32
        else None
    )
    if run is None:
        raise BlockError(f"run: no run {run_id[:40]!r} in this project.")
    figures = Figure.objects.filter(run=run, kind=Figure.Kind.CONFUSION_MATRIX)
    name = block.get("name")
    if name:
        figures = figures.filter(name=name)
    figure = figures.order_by("-step", "-created_at").first()
    if figure is None:
        raise BlockError(f"run {run.name!r} has no confusion matrix{f' named {name[:60]!r}' if name else ''}.")
    return {
        "run": {"id": run.pk, "name": run.name, "url": _run_url(run)},
        "name": figure.name,
        "step": figure.step,
        "labels": figure.data.get("labels", []),
        "matrix": figure.data.get("matrix", []),
    }


def version_diff(project: Project, block: Block, reads: Reads) -> dict[str, Any]:
    repository = registry_selectors.model_of(project, block.get("model").strip().lower())
    if repository is None:
        raise BlockError(f"model: no model {block.get('model')[:60]!r} in this project.")
    try:
        a = registry_selectors.resolve_version(repository, refs.parse_version_ref(block.get("from")), field="from")
        b = registry_selectors.resolve_version(repository, refs.parse_version_ref(block.get("to")), field="to")
    except refs.RefError as exc:
        raise BlockError(str(exc)) from None
    diff = registry_selectors.version_diff(a, b)
    return {
        "model": repository.name,
        "from": a.number,
        "to": b.number,
        "url": f"/{project.team.name}/{project.name}/models/{repository.name}/v{b.number}/",
        "params": diff.get("params", {}),
        "metrics": diff.get("metrics", []),
    }


def review(project: Project, block: Block, reads: Reads) -> dict[str, Any]:
    raw = block.get("request").strip().lstrip("#")
    number = int(raw) if raw.isdigit() and len(raw) < 10 else 0
    request = (
        ReviewRequest.objects.select_related("repository", "candidate", "author")
        .filter(project=project, number=number)
        .first()
    )
    if request is None:
        raise BlockError(f"request: no review request #{raw[:20]} in this project.")
    reviews = Review.objects.filter(request=request, dismissed_at__isnull=True, version=request.candidate)
    checks = Check.objects.filter(request=request, version=request.candidate)
    return {
        "number": request.number,
        "title": request.title,
        "state": request.state,
        "model": request.repository.name,
        "alias": request.alias,
        "candidate": request.candidate.number,
        "author": request.author.username if request.author else "",
        "approvals": reviews.filter(verdict=Review.Verdict.APPROVE).count(),
        "changes_requested": reviews.filter(verdict=Review.Verdict.REQUEST_CHANGES).count(),
        "checks": {status: checks.filter(status=status).count() for status in Check.Status.values},
        "url": f"/{project.team.name}/{project.name}/reviews/{request.number}/",
    }


RESOLVERS: dict[str, Callable[[Project, Block, Reads], dict[str, Any]]] = {
    "chart": chart,
    "runs": runs_table,
    "confusion": confusion,
    "diff": version_diff,
    "review": review,
}


def resolve(
    project: Project, block: Block, *, now: datetime | None = None, reads: Reads | None = None
) -> dict[str, Any]:
    """``{"kind", "params", "at", "data"}`` or ``{"kind", "params", "at", "error"}``: never raises
    for bad parameters (the report still renders; the block says what is wrong)."""
    out: dict[str, Any] = {"kind": block.kind, "params": block.params, "at": (now or timezone.now()).isoformat()}
    if block.error:
        out["error"] = block.error
        return out
    try:
        out["data"] = RESOLVERS[block.kind](project, block, reads if reads is not None else Reads())
    except BlockError as exc:
        out["error"] = str(exc)
    except DomainError as exc:  # a bad version ref and the like: the message names it
        out["error"] = str(exc)
    return out


def resolve_all(project: Project, body: str) -> dict[str, dict[str, Any]]:
    """Every block of ``body``, by index (as text: JSON keys), resolved now (what a freeze stores)."""
    now = timezone.now()
    reads = Reads()
    return {str(b.index): resolve(project, b, now=now, reads=reads) for b in blocks_of(body)}
