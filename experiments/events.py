"""Live events of the experiments app: published after commit (live.publish), with the REST
output's shapes.

* ``run:<id>``: ``metrics`` (each logged batch: its points per key, downsampled past
  ``LIVE_POINTS_PER_KEY``, and the keys' summaries after the batch), ``run.updated`` (the run,
  as ``GET /api/v1/runs/<id>/``). (``artifact.processed`` on the same topic: artifacts/events.py.)
* ``project:<team>/<project>``: ``run.created``, ``run.updated`` when a run's status changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments import metrics
from experiments.models import Run
from experiments.presenters import runs_out
from live.publish import publish_lazy_on_commit, publish_on_commit
from live.topics import project_topic, run_topic

# A batch may hold 100,000 points; a chart needs far fewer to extend its line.
LIVE_POINTS_PER_KEY = 200
LIVE_KEYS_PER_EVENT = 100


def _run_payload(run_id: str) -> dict[str, Any] | None:
    """The run as the API answers it (experiments/presenters.py)."""
    run = Run.objects.select_related("project__team", "experiment", "author").filter(pk=run_id).first()
    return runs_out([run])[0] if run is not None else None


def _project_topic(run: Run) -> str:
    return project_topic(run.project.team.name, run.project.name)


def run_created(run: Run) -> None:
    publish_lazy_on_commit(topics=[_project_topic(run)], event="run.created", build=lambda: _run_payload(run.pk))


def run_updated(run: Run, *, status_changed: bool) -> None:
    topics = [run_topic(run.pk)] + ([_project_topic(run)] if status_changed else [])
    publish_lazy_on_commit(topics=topics, event="run.updated", build=lambda: _run_payload(run.pk))


def _thin(series: metrics.Series) -> tuple[list[int], list[float | str], bool]:
    n = len(series)
    if n <= LIVE_POINTS_PER_KEY:
        index = np.arange(n)
    else:
        # Evenly spaced, first and last kept: enough to extend a chart until the next reload.
        index = np.unique(np.linspace(0, n - 1, LIVE_POINTS_PER_KEY).round().astype(np.int64))
    steps = series.steps[index].tolist()
    picked = series.values[index]
    floats: list[float] = picked.tolist()
    # NaN and ±Inf as the API writes them (the per-value conversion only when there are any).
    values: list[float | str] = (
        list(floats) if bool(np.isfinite(picked).all()) else [metrics.json_value(v) for v in floats]
    )
    return steps, values, len(index) < n


def points_logged(*, run: Run, series: dict[str, metrics.Series], summaries: dict[str, metrics.Summary]) -> None:
    """One ``metrics`` event per stored batch (built from the batch, no extra query)."""
    points: dict[str, dict[str, Any]] = {}
    downsampled = False
    for key in list(series)[:LIVE_KEYS_PER_EVENT]:
        steps, values, thinned = _thin(series[key])
        downsampled = downsampled or thinned
        points[key] = {"steps": steps, "values": values}
    data = {
        "run": run.pk,
        "points": points,
        "downsampled": downsampled,
        # More keys than one event carries: the client reads the rest's histories.
        "truncated": len(series) > LIVE_KEYS_PER_EVENT,
        "summaries": {
            key: {
                "key": key,
                "last": metrics.json_value(s.last),
                "min": None if s.min is None else metrics.json_value(s.min),
                "max": None if s.max is None else metrics.json_value(s.max),
                "last_step": s.last_step,
                "last_timestamp": s.last_timestamp,
                "count": s.count,
            }
            for key, s in summaries.items()
        },
    }
    publish_on_commit(topic=run_topic(run.pk), event="metrics", data=data)
