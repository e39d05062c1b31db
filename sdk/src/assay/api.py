"""Reading runs back: ``assay.Api()`` (compare ``wandb.Api`` and ``MlflowClient``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from assay.client import Client


class MetricPoint(NamedTuple):
    step: int
    value: float
    timestamp: int


@dataclass(frozen=True)
class RunRecord:
    """A run as the server reports it. ``metrics`` maps each key to its summary
    (``last``, ``min``, ``max``, ``last_step``, ``last_timestamp``, ``count``)."""

    id: str
    project: str
    experiment: str
    name: str
    status: str
    author: str | None
    start_time: str | None
    end_time: str | None
    duration: float | None
    notes: str
    config: dict[str, Any]
    info: dict[str, Any]
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, dict[str, Any]]
    url: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def summary(self) -> dict[str, Any]:
        """Last value of every metric key."""
        return {key: summary.get("last") for key, summary in self.metrics.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        def d(name: str) -> dict[str, Any]:
            value = data.get(name)
            return value if isinstance(value, dict) else {}

        def s(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) else None

        duration = data.get("duration")
        return cls(
            id=str(data.get("id", "")),
            project=s("project") or "",
            experiment=s("experiment") or "",
            name=s("name") or "",
            status=s("status") or "",
            author=s("author"),
            start_time=s("start_time"),
            end_time=s("end_time"),
            duration=float(duration) if isinstance(duration, (int, float)) else None,
            notes=s("notes") or "",
            config=d("config"),
            info=d("info"),
            params={str(k): str(v) for k, v in d("params").items()},
            tags={str(k): str(v) for k, v in d("tags").items()},
            metrics={str(k): v for k, v in d("metrics").items() if isinstance(v, dict)},
            url=s("url"),
            raw=data,
        )


def _value(raw: Any) -> float:
    return float(raw) if isinstance(raw, (int, float, str)) else float("nan")


class Api:
    """Read runs, metric histories and figures. ``url``/``token`` default to ASSAY_URL /
    ASSAY_TOKEN, then to what `assay login` stored."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0) -> None:
        self.client = Client.from_env(url, token, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def me(self) -> dict[str, Any]:
        """Who the token belongs to: username, email, is_staff, teams."""
        return self.client.me()

    def run(self, run_id: str) -> RunRecord:
        return RunRecord.from_json(self.client.get_run(run_id))

    def runs(
        self,
        project: str,
        *,
        experiment: str | None = None,
        status: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs of ``"team/project"``, newest first unless ``sort`` says otherwise
        (``start_time``, ``name``, ``metrics.<key>``, ``params.<key>``, … with ``-`` for descending)."""
        return list(self.iter_runs(project, experiment=experiment, status=status, sort=sort, limit=limit))

    def iter_runs(
        self,
        project: str,
        *,
        experiment: str | None = None,
        status: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        filter: str | None = None,
        order_by: str | list[str] | None = None,
    ) -> Iterator[RunRecord]:
        """Runs page after page, following the server's ``next`` cursor."""
        seen = 0
        page_size = min(limit, 1000) if limit else 200
        orders = [order_by] if isinstance(order_by, str) else list(order_by or [])
        cursor: str | None = None
        while True:
            answer = self.client.list_runs(
                project,
                experiment=experiment,
                status=status,
                sort=sort,
                filter=filter or None,
                order_by=orders or None,
                cursor=cursor,
                page_size=page_size,
            )
            results = answer.get("results")
            if not isinstance(results, list):
                return
            for item in results:
                if isinstance(item, dict):
                    yield RunRecord.from_json(item)
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
            cursor = _cursor_of(answer.get("next"))
            if not cursor or not results:
                return

    def search_runs(
        self,
        project: str,
        filter: str | None = None,
        order_by: str | list[str] | None = None,
        *,
        max_results: int | None = 1000,
        experiment: str | None = None,
    ) -> list[RunRecord]:
        """Runs of ``"team/project"`` matching ``filter`` in the query language (MLflow's
        syntax plus OR, NOT, parentheses, IN, IS NULL; see the server's
        docs/query-language.md), ordered by ``order_by`` (``"metrics.acc DESC"``, or a list)."""
        return list(self.iter_runs(project, experiment=experiment, filter=filter, order_by=order_by, limit=max_results))

    def metrics(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Summary of every metric key of a run."""
        return {str(s.get("key")): s for s in self.client.metric_summaries(run_id)}

    def history(self, run_id: str, key: str, *, max_points: int | None = None) -> list[MetricPoint]:
        """Every point of ``key`` in step order (paged through), or at most ``max_points``
        points downsampled by the server."""
        if max_points is not None:
            answer = self.client.metric_history(run_id, key, max_points=max_points)
            return _points(answer)
        out: list[MetricPoint] = []
        offset, limit = 0, 100_000
        while True:
            answer = self.client.metric_history(run_id, key, offset=offset, limit=limit)
            page = _points(answer)
            out.extend(page)
            if not answer.get("next") or not page:
                return out
            offset += len(page)

    def figures(self, run_id: str) -> list[dict[str, Any]]:
        return self.client.list_figures(run_id)


def _cursor_of(next_url: Any) -> str | None:
    """The cursor in the server's ``next`` URL (the SDK keeps its own base URL)."""
    if not isinstance(next_url, str) or not next_url:
        return None
    values = parse_qs(urlsplit(next_url).query).get("cursor")
    return values[0] if values else None


def _points(answer: dict[str, Any]) -> list[MetricPoint]:
    points = answer.get("points")
    if not isinstance(points, list):
        return []
    return [
        MetricPoint(int(p.get("step", 0)), _value(p.get("value")), int(p.get("timestamp", 0)))
        for p in points
        if isinstance(p, dict)
    ]


def run_row(run: RunRecord) -> dict[str, Any]:
    """A run as one flat record: attributes, then ``params.<k>``, ``metrics.<k>`` (last
    value) and ``tags.<k>`` columns, as MLflow's search_runs frames."""
    row: dict[str, Any] = {
        "run_id": run.id,
        "name": run.name,
        "status": run.status,
        "experiment": run.experiment,
        "author": run.author,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "duration": run.duration,
    }
    row.update({f"params.{k}": v for k, v in run.params.items()})
    row.update({f"metrics.{k}": _value(s.get("last")) for k, s in run.metrics.items()})
    row.update({f"tags.{k}": v for k, v in run.tags.items()})
    return row


def search_runs(
    project: str,
    filter: str | None = None,
    order_by: str | list[str] | None = None,
    *,
    max_results: int | None = 1000,
    experiment: str | None = None,
    as_pandas: bool | None = None,
    url: str | None = None,
    token: str | None = None,
) -> Any:
    """Search a project's runs with the query language::

        assay.search_runs("team/project", "metrics.acc > 0.8 and (params.optimizer = 'adam' or params.optimizer = 'sgd')",
                          order_by="metrics.acc DESC")

    Returns a pandas DataFrame (one row per run, flat columns) when pandas is installed,
    else a list of dicts with the same keys; ``as_pandas`` forces either. A bad filter
    raises ``assay.ValidationError`` whose message names the position."""
    with Api(url, token) as api:
        rows = [
            run_row(r)
            for r in api.search_runs(project, filter, order_by, max_results=max_results, experiment=experiment)
        ]
    if as_pandas is False:
        return rows
    try:  # optional and heavy: imported only when a frame is asked for
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        if as_pandas:
            raise
        return rows
    return pd.DataFrame.from_records(rows)
