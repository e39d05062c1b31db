from __future__ import annotations

import assay


def all_points(run_id: str, key: str) -> list[assay.MetricPoint]:
    with assay.Api() as api:
        return api.history(run_id, key)


def assert_exactly(run_id: str, keys: list[str], steps: range) -> None:
    """Every key has exactly one point per step of ``steps``: nothing lost, nothing twice."""
    with assay.Api() as api:
        summaries = api.metrics(run_id)
        for key in keys:
            points = api.history(run_id, key)
            got = [p.step for p in points]
            assert len(got) == len(steps), f"{key}: {len(got)} points, expected {len(steps)}"
            assert sorted(got) == list(steps), f"{key}: steps differ"
            assert summaries[key]["count"] == len(steps)
