"""The JSON shapes of runs and their summary metrics, shared by the REST API
(experiments/api.py, search_api.py) and the live events (experiments/events.py), so an
event carries exactly what ``GET /api/v1/runs/<id>/`` answers. No DRF here: the services
publish events, and they must not depend on the HTTP layer.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from experiments import metrics, selectors
from experiments.models import MetricSummary, Run, Tag


def number_out(value: float | None) -> float | str | None:
    return None if value is None else metrics.json_value(value)


def summary_out(summary: MetricSummary) -> dict[str, Any]:
    """SummaryOut's shape, built directly: a runs page holds hundreds of summaries, and a
    ModelSerializer per summary cost ~0.3 ms each (most of a 50-run search answer)."""
    return {
        "key": summary.key,
        "last": number_out(summary.last),
        "min": number_out(summary.min),
        "max": number_out(summary.max),
        "last_step": summary.last_step,
        "last_timestamp": summary.last_timestamp,
        "count": summary.count,
    }


def run_out(
    run: Run, *, params: dict[str, str], tags: dict[str, str], summaries: list[MetricSummary], url: str
) -> dict[str, Any]:
    """The one JSON shape of a run (API answers and live events)."""
    return {
        "id": run.id,
        "project": run.project.path,
        "experiment": run.experiment.name,
        "name": run.name,
        "author": run.author.username if run.author else None,
        "status": run.status,
        "start_time": run.start_time.isoformat(),
        "end_time": run.end_time.isoformat() if run.end_time else None,
        "duration": run.duration_seconds,
        "notes": run.notes,
        "config": run.config,
        "info": run.info,
        "params": params,
        "tags": tags,
        "metrics": {s.key: summary_out(s) for s in summaries},
        "url": url,
    }


def run_url(run: Run) -> str:
    return f"{settings.PUBLIC_URL}/{run.project.team.name}/{run.project.name}/runs/{run.id}/"


def runs_out(runs: list[Run]) -> list[dict[str, Any]]:
    """Each run in :func:`run_out`'s shape, with its params, tags and summaries (three queries
    for the whole list)."""
    params = selectors.params_of(runs)
    summaries = selectors.summaries_of(runs)
    tags: dict[str, dict[str, str]] = {}
    for run_id, key, value in Tag.objects.filter(run__in=runs).values_list("run_id", "key", "value"):
        tags.setdefault(run_id, {})[key] = value
    return [
        run_out(
            run,
            params=params.get(run.id, {}),
            tags=tags.get(run.id, {}),
            summaries=sorted(summaries.get(run.id, {}).values(), key=lambda s: s.key),
            url=run_url(run),
        )
        for run in runs
    ]
