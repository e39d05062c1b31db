"""The unmodified MLflow client (``MlflowClient``, mlflow 3.17.2 in ``.venv-mlflow``) against
Assay's MLflow API (``/mlflow/<team>/<project>``), on the production profile, and, when an
MLflow server with a PostgreSQL driver is at hand, against ``mlflow server`` on the same
PostgreSQL in the same minutes (issue 18's targets).

Scenarios, all through ``MlflowClient`` in a separate process (the client's own cost is in
every number, as a user sees it):

- ``log_batch`` of 1,000 metric points, ``--reps`` times: points per second and latency;
- ``get_metric_history`` of a 100,000-point history (``--history-points``; the client
  pages it, 25,000 points a request), 5 times: seconds;
- a single ``log_metric``, ``--singles`` times: p50 and p95 latency.

    .venv/bin/python benchmarks/mlflow_compat.py
    .venv/bin/python benchmarks/mlflow_compat.py --mlflow /tmp/mlflow-venv/bin/mlflow   # side by side

The MLflow side needs ``mlflow`` and ``psycopg2-binary`` in one venv (``.venv-mlflow`` has
no PostgreSQL driver: see ``benchmarks/mlflow_search.py`` for the recipe); without one,
only Assay is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib
from benchmarks.mlflow_search import MlflowServer, find_mlflow

DBNAME = benchlib.dbname("assay_bench_mlflow")
CLIENT_PYTHON = benchlib.ROOT / ".venv-mlflow" / "bin" / "python"
PROJECT = "bench/mlflow-compat"

CLIENT_SCRIPT = r"""
import json, statistics, sys, time
from mlflow import MlflowClient
from mlflow.entities import Metric

reps, history_points, singles = (int(a) for a in sys.argv[1:4])
client = MlflowClient()
experiment = client.create_experiment(f"bench-{time.time_ns()}")
run = client.create_run(experiment).info.run_id
ts = int(time.time() * 1000)
client.log_batch(run, metrics=[Metric("warm-up", 0.0, ts, i) for i in range(1000)])

batches = [[Metric("loss", 1.0 / (i + 1), ts + i, r * 1000 + i) for i in range(1000)] for r in range(reps)]
batch_s = []
for metrics in batches:
    t0 = time.perf_counter()
    client.log_batch(run, metrics=metrics)
    batch_s.append(time.perf_counter() - t0)

history_run = client.create_run(experiment).info.run_id
for b in range(history_points // 1000):
    client.log_batch(history_run, metrics=[Metric("h", float(i), ts + i, b * 1000 + i) for i in range(1000)])
history_s = []
for _ in range(5):
    t0 = time.perf_counter()
    points = client.get_metric_history(history_run, "h")
    history_s.append(time.perf_counter() - t0)
    assert len(points) == history_points, len(points)

single_s = []
for i in range(singles):
    t0 = time.perf_counter()
    client.log_metric(run, "single", float(i), step=i)
    single_s.append(time.perf_counter() - t0)
assert len(client.get_metric_history(run, "loss")) == reps * 1000

def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]

print(json.dumps({
    "batch_points_per_s": reps * 1000 / sum(batch_s),
    "batch_p50_ms": pct(batch_s, 50) * 1000,
    "batch_p95_ms": pct(batch_s, 95) * 1000,
    "history_median_s": statistics.median(history_s),
    "history_min_s": min(history_s),
    "single_p50_ms": pct(single_s, 50) * 1000,
    "single_p95_ms": pct(single_s, 95) * 1000,
}))
"""


def run_client(tracking_uri: str, token: str | None, args: argparse.Namespace) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "300",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "GIT_PYTHON_REFRESH": "quiet",
    }
    if token:
        env["MLFLOW_TRACKING_TOKEN"] = token
    done = subprocess.run(
        [str(CLIENT_PYTHON), "-c", CLIENT_SCRIPT, str(args.reps), str(args.history_points), str(args.singles)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the MLflow client failed against {tracking_uri}:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def raw_http(base: str, token: str | None, args: argparse.Namespace) -> dict[str, Any]:
    """The same two calls as plain HTTP with a body built beforehand: the server's share."""
    import time

    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base + "/api/2.0/mlflow/", headers=headers, timeout=300) as http:
        experiment = http.post("experiments/create", json={"name": f"raw-{time.time_ns()}"}).json()["experiment_id"]
        run = http.post("runs/create", json={"experiment_id": experiment}).json()["run"]["info"]["run_id"]
        ts = 1764150000000
        bodies = [
            json.dumps(
                {
                    "run_id": run,
                    "metrics": [
                        {"key": "loss", "value": 1.0 / (i + 1), "timestamp": ts + i, "step": r * 1000 + i}
                        for i in range(1000)
                    ],
                }
            )
            for r in range(args.reps)
        ]
        batch_s = []
        for body in bodies:
            t0 = time.perf_counter()
            http.post("runs/log-batch", content=body, headers={"Content-Type": "application/json"}).raise_for_status()
            batch_s.append(time.perf_counter() - t0)
        history_s = []
        for _ in range(5):
            t0 = time.perf_counter()
            token_ = None
            count = 0
            while True:
                params = {"run_id": run, "metric_key": "loss", "max_results": 25000}
                if token_:
                    params["page_token"] = token_
                page = http.get("metrics/get-history", params=params).json()
                count += len(page.get("metrics", []))
                token_ = page.get("next_page_token")
                if not token_:
                    break
            history_s.append(time.perf_counter() - t0)
            assert count == args.reps * 1000, count
    batch_s.sort()
    return {
        "batch_points_per_s": args.reps * 1000 / sum(batch_s),
        "batch_p50_ms": batch_s[len(batch_s) // 2] * 1000,
        "history_median_s": sorted(history_s)[2],
        "history_points": args.reps * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=50, help="log_batch calls of 1,000 points")
    parser.add_argument("--history-points", type=int, default=100_000)
    parser.add_argument("--singles", type=int, default=200, help="single log_metric calls")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mlflow", help="an mlflow executable whose venv has psycopg2 (side by side)")
    args = parser.parse_args()
    if not CLIENT_PYTHON.exists():
        sys.exit(f"{CLIENT_PYTHON} is missing: make .venv-mlflow/.installed")

    env = benchlib.server_env(DBNAME)
    token = benchlib.prepare(DBNAME, env)
    results: dict[str, dict[str, Any]] = {}
    with benchlib.Server("gunicorn", env, workers=args.workers) as server:
        with benchlib.api_client(server.url, token) as api:
            benchlib.create_run(api, PROJECT, "seed")  # makes the project
        results["Assay"] = run_client(f"{server.url}/mlflow/{PROJECT}", token, args)
        raw = raw_http(f"{server.url}/mlflow/{PROJECT}", token, args)

    executable = find_mlflow(args.mlflow)
    if executable:
        try:
            with MlflowServer(executable, workers=args.workers, dbname="mlflow_bench_compat") as mlflow:
                results[f"MLflow {mlflow.version.split()[-1]}"] = run_client(mlflow.url, None, args)
        except RuntimeError as exc:
            print(f"MLflow server side skipped: {exc}")
    else:
        print("No mlflow executable with a PostgreSQL driver (--mlflow): Assay only.")

    names = list(results)
    rows = []
    for key, label in [
        ("batch_points_per_s", "log_batch 1,000 points: points/s"),
        ("batch_p50_ms", "log_batch 1,000 points: p50 ms"),
        ("batch_p95_ms", "log_batch 1,000 points: p95 ms"),
        ("history_median_s", f"get_metric_history {args.history_points:,} points: median s"),
        ("history_min_s", f"get_metric_history {args.history_points:,} points: min s"),
        ("single_p50_ms", "log_metric: p50 ms"),
        ("single_p95_ms", "log_metric: p95 ms"),
    ]:
        rows.append([label, *(f"{results[n][key]:,.1f}" for n in names)])
    benchlib.print_table(["MlflowClient", *names], rows)
    print()
    benchlib.print_table(
        ["plain HTTP, body built beforehand (Assay)", "value"],
        [
            ["log-batch 1,000 points: points/s", f"{raw['batch_points_per_s']:,.0f}"],
            ["log-batch 1,000 points: p50 ms", f"{raw['batch_p50_ms']:,.1f}"],
            [
                f"get-history {raw['history_points']:,} points (pages of 25,000): median s",
                f"{raw['history_median_s']:,.2f}",
            ],
        ],
    )


if __name__ == "__main__":
    main()
