"""Reads for search and compare (issue 6): project keys, compare data, history export rows,
grouped aggregates and the global search, each narrowed by the caller or the policy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import Avg, Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery

from accounts import access
from accounts.models import Project
from experiments import metric_store, metrics
from experiments.models import (
    ConfigValue,
    Experiment,
    MetricSummary,
    Param,
    ProjectKey,
    Run,
    RunsTableLayout,
    SavedView,
    Tag,
)
from experiments.query import parser
from experiments.query.compiler import VALUE_MODELS, ValueModel

if TYPE_CHECKING:
    from accounts.access import AnyUser


def project_keys(project: Project, *, contains: str = "", limit: int = 50) -> dict[str, Any]:
    """Keys of each kind (metrics, params, config, tags; sorted, at most ``limit`` each), from the key registry: an index
    range, never a scan of the project's params."""
    out: dict[str, Any] = {"truncated": False}
    for kind, name in (("metric", "metrics"), ("param", "params"), ("config", "config"), ("tag", "tags")):
        qs = ProjectKey.objects.filter(project=project, kind=kind)
        if contains:
            qs = qs.filter(key__icontains=contains)
        keys = list(qs.order_by("key").values_list("key", flat=True)[: limit + 1])
        out["truncated"] = out["truncated"] or len(keys) > limit
        out[name] = keys[:limit]
    out["attributes"] = [a for a in parser.ATTRIBUTE_NAMES if contains.lower() in a]
    return out


def key_counts(project: Project) -> dict[str, int]:
    """How many keys of each kind the project's runs logged (one index-only count)."""
    counts = {kind: 0 for kind in ProjectKey.Kind.values}
    for row in ProjectKey.objects.filter(project=project).values("kind").annotate(n=Count("pk")).order_by():
        counts[row["kind"]] = row["n"]
    return counts


# The default columns of the runs table come from the newest runs: what a project logs now,
# read in a bounded number of rows however many runs it holds.
POPULAR_SAMPLE = 500


# Read on every view of the runs table, changed by the runs that come and go: kept a minute.
POPULAR_CACHE_SECONDS = 60


def popular_keys(project: Project, *, limit: int, sample: int = POPULAR_SAMPLE) -> dict[str, list[str]]:
    """Per kind (metric, param, config), the keys the most of the project's newest ``sample``
    runs logged, most used first (ties by name); ``system/`` metrics are never among them (the
    SDK logs them for every run). Cached for a minute per project (three aggregates over
    ~10 rows per run each)."""
    cache_key = f"popular-keys:{project.pk}:{limit}:{sample}"
    cached = cache.get(cache_key)
    if isinstance(cached, dict):
        return cached
    out = _popular_keys(project, limit=limit, sample=sample)
    cache.set(cache_key, out, POPULAR_CACHE_SECONDS)
    return out


def _popular_keys(project: Project, *, limit: int, sample: int) -> dict[str, list[str]]:
    # One statement for the three kinds (PostgreSQL and SQLite alike): the newest runs, each
    # kind's keys counted over them, ranked within the kind.
    run, summary, param, config = (m._meta.db_table for m in (Run, MetricSummary, Param, ConfigValue))
    sql = f"""
        WITH newest AS (
            SELECT id FROM {run} WHERE project_id = %s AND deleted_at IS NULL ORDER BY start_time DESC LIMIT %s
        ),
        counted AS (
            SELECT 'metric' AS kind, key, COUNT(*) AS n FROM {summary}
             WHERE run_id IN (SELECT id FROM newest) AND substr(key, 1, 7) <> 'system/' GROUP BY key
            UNION ALL
            SELECT 'param', key, COUNT(*) FROM {param} WHERE run_id IN (SELECT id FROM newest) GROUP BY key
            UNION ALL
            SELECT 'config', key, COUNT(*) FROM {config} WHERE run_id IN (SELECT id FROM newest) GROUP BY key
        )
        SELECT kind, key FROM (
            SELECT kind, key, n, ROW_NUMBER() OVER (PARTITION BY kind ORDER BY n DESC, key) AS place FROM counted
        ) ranked
        WHERE place <= %s ORDER BY kind, place
    """  # noqa: S608 - table names from the models; values bound
    out: dict[str, list[str]] = {"metric": [], "param": [], "config": []}
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk, sample, limit])
        for kind, key in cursor.fetchall():
            out[kind].append(key)
    return out


def top_run_ids_by_metric(
    project: Project,
    *,
    key: str,
    descending: bool,
    limit: int,
    experiment: Experiment | None = None,
    exclude: list[str] | None = None,
) -> list[str]:
    """The ids of the first ``limit`` live runs of ``project`` that logged ``key`` (a non-null
    last value), in the runs table's order for a sort by that metric: by last value, then by
    id. An index walk of ``(key, last, run)`` that stops after ``limit`` rows, instead of
    joining the key's summary to every run of the project. When fewer than ``limit`` come
    back, the page reaches the runs without the key: the caller must use the full query."""
    qs = MetricSummary.objects.filter(key=key, last__isnull=False, run__project=project, run__deleted_at__isnull=True)
    if experiment is not None:
        qs = qs.filter(run__experiment=experiment)
    if exclude:
        qs = qs.exclude(run_id__in=exclude)
    order = ("-last", "run_id") if descending else ("last", "run_id")
    return list(qs.order_by(*order).values_list("run_id", flat=True)[:limit])


def table_layout_of(user: AnyUser | None, project: Project) -> RunsTableLayout | None:
    """``user``'s runs-table layout of ``project``, if they ever chose one."""
    if user is None or not user.is_authenticated:
        return None
    return RunsTableLayout.objects.filter(project=project, user_id=user.pk).first()


def _columns(history: metrics.History) -> dict[str, Any]:
    values = history.values.tolist()
    if not bool(np.all(np.isfinite(history.values))):
        values = [metrics.json_value(v) for v in values]
    return {"steps": history.steps.tolist(), "values": values, "timestamps": history.timestamps.tolist()}


MAX_DEFAULT_KEYS = 20
COMPARE_PARTS = ("runs", "series")


def compare_data(
    runs: list[Run], *, keys: list[str] | None, max_points: int, url: Callable[[Run], str]
) -> dict[str, Any]:
    """Everything the compare page draws from, in one answer: :func:`compare_runs` and
    :func:`compare_series` together."""
    head = compare_runs(runs, url=url)
    chosen = keys if keys is not None else head["all_keys"][:MAX_DEFAULT_KEYS]
    return {**head, "keys": chosen, **compare_series([r.pk for r in runs], keys=chosen, max_points=max_points)}


def compare_runs(runs: list[Run], *, url: Callable[[Run], str]) -> dict[str, Any]:
    """Each run's params, flattened config (``{"optimizer.lr": "0.01"}``, text as params) and
    summary metrics, and every metric key of the runs (``all_keys``); no history is read."""
    summaries: dict[str, dict[str, MetricSummary]] = {}
    for s in MetricSummary.objects.filter(run__in=runs).order_by("key"):
        summaries.setdefault(s.run_id, {})[s.key] = s
    params = _values_of(Param, runs, None)
    config = _values_of(ConfigValue, runs, None)
    all_keys = sorted({k for by_key in summaries.values() for k in by_key})
    return {
        "keys": all_keys[:MAX_DEFAULT_KEYS],
        "all_keys": all_keys,
        "method": metrics.DOWNSAMPLE_METHOD,
        "runs": [
            {
                "id": run.pk,
                "name": run.name,
                "status": run.status,
                "experiment": run.experiment.name,
                "start_time": run.start_time.isoformat(),
                "url": url(run),
                "params": params.get(run.pk, {}),
                "config": config.get(run.pk, {}),
                "metrics": {
                    key: {
                        "last": metrics.json_value(s.last) if s.last is not None else None,
                        "min": metrics.json_value(s.min) if s.min is not None else None,
                        "max": metrics.json_value(s.max) if s.max is not None else None,
                    }
                    for key, s in summaries.get(run.pk, {}).items()
                },
            }
            for run in runs
        ],
    }


def compare_series(run_ids: list[str], *, keys: list[str] | None, max_points: int) -> dict[str, Any]:
    """The runs' histories of ``keys`` (default: the first :data:`MAX_DEFAULT_KEYS` of their
    keys) downsampled to ``max_points`` (MinMaxLTTB): what each panel of the compare page
    asks for on its own (``?only=series``)."""
    if keys is None:
        keys = list(
            MetricSummary.objects.filter(run_id__in=run_ids)
            .order_by("key")
            .values_list("key", flat=True)
            .distinct()[:MAX_DEFAULT_KEYS]
        )
    histories = metric_store.histories_of(run_ids, keys)
    series: dict[str, dict[str, Any]] = {}
    for run_id in run_ids:
        for key, history in histories.get(run_id, {}).items():
            shown = metrics.downsample(history, max_points)
            series.setdefault(run_id, {})[key] = {
                "total": len(history),
                "downsampled": len(shown) < len(history),
                **_columns(shown),
            }
    return {"keys": keys, "method": metrics.DOWNSAMPLE_METHOD, "series": series}


def history_series(runs: list[Run], keys: list[str] | None) -> Iterator[tuple[str, str, str, metrics.History]]:
    """``(run id, run name, key, raw history)``, run by run (one query per run keeps memory
    bounded to one run's histories), keys sorted, points in step order."""
    for run in runs:
        for key, history in sorted(metric_store.histories([run], keys).get(run.pk, {}).items()):
            yield run.pk, run.name, key, history


def history_rows(runs: list[Run], keys: list[str] | None) -> Iterator[list[Any]]:
    """Raw points as rows (the CSV export), in the order of :func:`history_series`."""
    for run_id, run_name, key, history in history_series(runs, keys):
        for point in metrics.points_json(history):
            yield [run_id, run_name, key, point["step"], point["value"], point["timestamp"]]


# --- grouping -----------------------------------------------------------------------------------


@dataclass
class Group:
    value: str | None
    count: int
    metrics: dict[str, dict[str, float | None]]
    label: str = ""  # what the value means when it is not itself readable (a fingerprint)


MAX_GROUPS = 100
MAX_LABEL = 200


def config_label(canonical: object) -> str:
    """A configuration in one line, keys sorted: ``batch_size=32, lr=0.01, …``."""
    if not isinstance(canonical, dict) or not canonical:
        return "(no configuration)"
    text = ", ".join(f"{key}={value}" for key, value in sorted(canonical.items()))
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def grouped(runs: QuerySet[Run], *, entity: str, key: str, metric_keys: list[str]) -> tuple[list[Group], bool]:
    """The runs grouped by the value of a param, config key or tag, or by their configuration
    fingerprint (``entity="attribute", key="fingerprint"``: runs of the same configuration),
    with count and mean/min/max of each metric's last value per group; ``(groups,
    truncated)``, largest groups first. A query per metric, each one aggregate over the
    filtered runs."""
    run_ids = runs.order_by().values("pk")
    if entity == "attribute":
        if key != "fingerprint":
            raise ValueError(f"cannot group by the attribute {key!r}")
        base = runs.order_by().annotate(_group=F("config_fingerprint"))
        group_of: Any = F("run__config_fingerprint")
    else:
        model = VALUE_MODELS[entity]
        base = runs.order_by().annotate(
            _group=Subquery(model.objects.filter(run=OuterRef("pk"), key=key).values("value")[:1])
        )
        group_of = Subquery(model.objects.filter(run=OuterRef("run_id"), key=key).values("value")[:1])
    counts = list(base.values("_group").annotate(n=Count("pk")).order_by("-n", "_group")[: MAX_GROUPS + 1])
    truncated = len(counts) > MAX_GROUPS
    counts = counts[:MAX_GROUPS]
    groups = {row["_group"]: Group(value=row["_group"], count=row["n"], metrics={}) for row in counts}
    if entity == "attribute":
        # The configuration of each group (the same for all its runs: that is what the
        # fingerprint says), one indexed lookup per group shown.
        for group in groups.values():
            config = runs.filter(config_fingerprint=group.value).order_by().values_list("config_canonical", flat=True)
            group.label = config_label(config.first())
    for metric_key in metric_keys:
        rows = (
            MetricSummary.objects.filter(run__in=run_ids, key=metric_key, last__isnull=False)
            .annotate(_group=group_of)
            .values("_group")
            .annotate(mean=Avg("last"), lo=Min("last"), hi=Max("last"))
            .order_by()
        )
        for row in rows:
            if row["_group"] in groups:
                groups[row["_group"]].metrics[metric_key] = {"mean": row["mean"], "min": row["lo"], "max": row["hi"]}
    return list(groups.values()), truncated


# --- saved views ----------------------------------------------------------------------------------


def saved_views_of(user: AnyUser | None, project: Project) -> QuerySet[SavedView]:
    if user is None or not user.is_authenticated:
        return SavedView.objects.none()
    return SavedView.objects.filter(project=project, owner_id=user.pk)


# --- global search --------------------------------------------------------------------------------


class SearchSection(Protocol):
    def __call__(self, user: AnyUser | None, text: str, *, limit: int) -> list[dict[str, Any]]: ...


# Kinds that apps above this one add to the global search, in the order they registered. The
# registry adds "models" (registry/apps.py): it builds on this app, so this app cannot import it.
_sections: dict[str, SearchSection] = {}


def search_section_register(name: str, find: SearchSection) -> None:
    """Add a kind of hit to :func:`global_search`: ``find(user, text, limit=…)`` returns at
    most ``limit`` hits among what ``user`` may see. Called from an ``AppConfig.ready``;
    registering a name again replaces it."""
    _sections[name] = find


def global_search(user: AnyUser | None, text: str, *, limit: int, url: Callable[[Run], str]) -> dict[str, Any]:
    """Projects, experiments and runs whose name contains ``text`` (runs also by a tag
    value or their notes), among what ``user`` may see; then each registered section's hits (the
    registry's models, by name or by a tag of theirs or of a version)."""
    visible = access.project_filter(user)
    projects = (
        Project.objects.select_related("team")
        .filter(visible)
        .filter(Q(name__icontains=text) | Q(team__name__icontains=text) | Q(description__icontains=text))
        .order_by("team__name", "name")[:limit]
    )
    experiments = (
        Experiment.objects.select_related("project__team")
        .filter(access.project_filter(user, prefix="project__"))
        .filter(name__icontains=text)
        .order_by("-created_at")[:limit]
    )
    tagged = Exists(Tag.objects.filter(run=OuterRef("pk"), value__icontains=text))
    runs = (
        Run.objects.select_related("project__team", "experiment")
        .filter(access.project_filter(user, prefix="project__"))
        .filter(Q(name__icontains=text) | Q(tagged) | Q(notes__icontains=text))
        .order_by("-start_time")[:limit]
    )
    return {
        "projects": [{"path": p.path, "name": p.name, "team": p.team.name, "url": f"/{p.path}/"} for p in projects],
        "experiments": [
            {
                "name": e.name,
                "project": e.project.path,
                "url": f"/{e.project.path}/?{urlencode({'experiment': e.name})}",
            }
            for e in experiments
        ],
        "runs": [
            {
                "id": r.pk,
                "name": r.name,
                "project": r.project.path,
                "experiment": r.experiment.name,
                "url": url(r),
                "snippet": snippet(r.notes, text),
            }
            for r in runs
        ],
        **{name: find(user, text, limit=limit) for name, find in _sections.items()},
    }


def snippet(body: str, text: str, *, width: int = 60) -> str:
    """The part of ``body`` around the first occurrence of ``text`` (case-insensitive), on
    one line, or "" when it does not occur: what a hit in notes or a report shows."""
    at = body.lower().find(text.lower()) if text else -1
    if at < 0:
        return ""
    start = max(at - width, 0)
    end = at + len(text) + width
    return ("…" if start else "") + " ".join(body[start:end].split()) + ("…" if end < len(body) else "")


def known_keys(project: Project, wanted: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of the (kind, key) pairs the project's key registry holds (one query)."""
    if not wanted:
        return set()
    q = Q(pk__in=[])
    for kind, key in wanted:
        q |= Q(kind=kind, key=key)
    return set(ProjectKey.objects.filter(project=project).filter(q).values_list("kind", "key"))


def tags_of(runs: list[Run], keys: list[str] | None = None) -> dict[str, dict[str, str]]:
    return _values_of(Tag, runs, keys)


def config_of(runs: list[Run], keys: list[str] | None = None) -> dict[str, dict[str, str]]:
    """The runs' flattened config (``{run id: {"optimizer.lr": "0.01", …}}``), as text."""
    return _values_of(ConfigValue, runs, keys)


def _values_of(model: ValueModel, runs: list[Run], keys: list[str] | None) -> dict[str, dict[str, str]]:
    qs = model.objects.filter(run__in=runs)
    if keys is not None:
        qs = qs.filter(key__in=keys)
    out: dict[str, dict[str, str]] = {}
    for run_id, key, value in qs.values_list("run_id", "key", "value"):
        out.setdefault(run_id, {})[key] = value
    return out
