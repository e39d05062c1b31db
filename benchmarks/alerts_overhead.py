"""What metric alert rules cost the log path: server CPU per point of 1,000-point batches
(benchmarks/ingest.py's "rows 1k x1" scenario) with the project's rules disabled and
enabled, alternating, on the production profile (gunicorn + UvicornWorker, PostgreSQL).

The rules are evaluated on every batch and never fire (so the number is the evaluation, not
the firing): a threshold on a logged key, NaN/Infinity on any key, and "versus the best run"
on a logged key (which reads the experiment's best values, cached per process). Disabled
rules leave the project with no rule at all: the log path's cost is then one dict lookup.

    .venv/bin/python benchmarks/alerts_overhead.py [--rounds 3] [--batches 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib
from benchmarks.ingest import assay_scenario

DBNAME = benchlib.dbname("assay_bench_alerts")
RULES: list[dict[str, Any]] = [
    {"kind": "threshold", "condition": "val/loss > 1000000", "name": "threshold"},
    {"kind": "nonfinite", "name": "nan"},
    {"kind": "versus_best", "key": "val/acc", "goal": "max", "percent": 1000000, "name": "versus best"},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="pairs of (without, with) measurements")
    parser.add_argument("--batches", type=int, default=200, help="1,000-point batches per measurement")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    # The rules are read again after a second (the default is 10), so a toggle applies at once.
    env = benchlib.server_env(DBNAME, redis_db=6, extra={"ASSAY_ALERT_RULES_TTL": "1"})
    print(f"preparing database {DBNAME} ...", flush=True)
    token = benchlib.prepare(DBNAME, env)
    per_point: dict[bool, list[float]] = {False: [], True: []}
    rates: dict[bool, list[float]] = {False: [], True: []}
    with benchlib.Server("gunicorn", env, workers=args.workers) as server:
        print(f"gunicorn + UvicornWorker x{args.workers} on {server.url}", flush=True)
        assay_scenario(server, token, "warm-up", clients=1, form="rows", batches=5, batch_size=1000)
        with benchlib.api_client(server.url, token) as api:
            ids = []
            for rule in RULES:
                answer = api.post("/api/v1/projects/bench/ingest/alerts/", json={**rule, "enabled": False})
                answer.raise_for_status()
                ids.append(answer.json()["id"])

            def toggle(on: bool) -> None:
                for rule_id in ids:
                    api.patch(
                        f"/api/v1/projects/bench/ingest/alerts/{rule_id}/", json={"enabled": on}
                    ).raise_for_status()
                time.sleep(1.5)  # every worker's rule cache expires

            for round_ in range(args.rounds):
                for on in (False, True):
                    toggle(on)
                    assay_scenario(server, token, "warm-up", clients=1, form="rows", batches=3, batch_size=1000)
                    result = assay_scenario(
                        server, token, f"r{round_}-{on}", clients=1, form="rows", batches=args.batches, batch_size=1000
                    )
                    assert result.server_cpu is not None
                    per_point[on].append(result.server_cpu / result.points * 1e6)
                    rates[on].append(result.rate)
                    print(
                        f"round {round_ + 1} rules {'on ' if on else 'off'}: {per_point[on][-1]:.2f} µs/pt server CPU, "
                        f"{result.rate:,.0f} points/s",
                        flush=True,
                    )
            fired = api.get("/api/v1/projects/bench/ingest/alerts/fired/").json()
            if fired:
                raise RuntimeError(f"a benchmark rule fired: {fired[:1]}")
    off, with_rules = statistics.median(per_point[False]), statistics.median(per_point[True])
    benchlib.print_table(
        ["rules", "server µs/pt (median)", "each round", "points/s (median)"],
        [
            [
                "none",
                f"{off:.2f}",
                ", ".join(f"{v:.2f}" for v in per_point[False]),
                f"{statistics.median(rates[False]):,.0f}",
            ],
            [
                "3 enabled",
                f"{on:.2f}",
                ", ".join(f"{v:.2f}" for v in per_point[True]),
                f"{statistics.median(rates[True]):,.0f}",
            ],
        ],
    )
    print(f"overhead: {100 * (with_rules - off) / off:+.1f} % server CPU per point (target < 5 %)")
    micro = evaluation_cost(env, off)
    print(
        f"in-process: on_batch with the 3 rules over a 1,000-point batch takes {micro:.1f} µs "
        f"= {micro / 1000:.3f} µs/pt = {100 * micro / 1000 / off:.2f} % of the server CPU per point without rules"
    )


def evaluation_cost(env: dict[str, str], server_us_per_point: float, calls: int = 2000) -> float:
    """The evaluation alone, timed in this process against the benchmark database (the
    server-side measurement above is dominated by the noise of a shared machine): the
    median µs of ``automations.alerts.on_batch`` for one 1,000-point batch of ingest's
    rows, with the 3 rules enabled and the caches warm."""
    import os

    os.environ.update(env)
    import django

    django.setup()
    from automations import alerts
    from benchmarks.ingest import KEYS, _rows_body
    from experiments import metrics
    from experiments.models import Run

    run = Run.objects.filter(project__name="ingest").order_by("-created_at").first()
    assert run is not None
    series = metrics.parse_rows(_rows_body(0, 1000, KEYS, int(time.time() * 1000))["metrics"], now_ms=0)
    alerts.on_batch(run, series)  # warm the caches
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        alerts.on_batch(run, series)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


if __name__ == "__main__":
    main()
