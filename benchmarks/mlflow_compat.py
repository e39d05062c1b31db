"""The unmodified MLflow client (``MlflowClient``, mlflow 3.17.2 in ``.venv-mlflow``) against
Assay's MLflow API (``/mlflow/<team>/<project>``) and against ``mlflow server`` on the same
PostgreSQL, side by side and interleaved in the same minutes (issue 18's targets).

Scenarios, all through ``MlflowClient`` in a separate process (the client's own cost is in
every number, as a user sees it):

- ``log_batch`` of 1,000 metric points, ``--reps`` times: points per second and latency
  (target: Assay ≥ 10× MLflow's points/s);
- ``get_metric_history`` of a 100,000-point history (``--history-points``; the client
  pages it), 5 times: seconds (target: ≥ 5× faster);
- ``search_runs`` over 10,000 runs (``--search-runs``: 10 params, 10 metrics, 3 tags each)
  with a two-clause filter (a metric and a param) ordered by a metric, first 50 runs,
  ``--search-reps`` times: p95 (target: ≥ 3× faster);
- a single ``log_metric``, ``--singles`` times: p50 and p95 (target: p95 no worse).

Both servers run at once with the same number of workers (``--workers``): Assay under
gunicorn + uvicorn workers (deploy/gunicorn.conf.py), MLflow under gunicorn
(``mlflow server --workers N --gunicorn-opts …``, its best configuration for small calls;
``--mlflow-uvicorn`` for its default). The client takes turns, ``--rounds`` rounds, the side
that starts alternating, so both sides see the same load; samples of all rounds are pooled.
The 10,000 runs are written into Assay's tables with COPY (``benchmarks/search.py``) and
copied into MLflow's (``benchmarks/mlflow_search.py``): both search identical data.

    .venv/bin/python benchmarks/mlflow_compat.py [--rounds 2] [--mlflow .venv-mlflow/bin/mlflow]

The MLflow server needs ``psycopg2`` in its venv: ``.venv-mlflow`` has it
(``requirements-mlflow.lock``). ``--no-mlflow`` measures Assay only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib, mlflow_search, search

DBNAME = benchlib.dbname("assay_bench_mlflow")
CLIENT_PYTHON = benchlib.ROOT / ".venv-mlflow" / "bin" / "python"
DEFAULT_MLFLOW = benchlib.ROOT / ".venv-mlflow" / "bin" / "mlflow"
PROJECT = "bench/mlflow-compat"
SEARCH_FILTER = search.TWO_CLAUSE_FILTER  # metrics.acc > 0.8 and params.optimizer = 'adam'
SEARCH_ORDER = search.SEARCH_ORDER  # metrics.acc DESC

CLIENT_SCRIPT = r"""
import json, sys, time
from mlflow import MlflowClient
from mlflow.entities import Metric

cfg = json.loads(sys.argv[1])
reps, history_points, singles = cfg["reps"], cfg["history_points"], cfg["singles"]
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

search_s, first_page = [], []
if cfg.get("search_experiment"):
    args = ([cfg["search_experiment"]],)
    kwargs = {"filter_string": cfg["filter"], "order_by": [cfg["order"]], "max_results": 50}
    first_page = [r.info.run_id for r in client.search_runs(*args, **kwargs)]  # warm-up
    assert first_page, "the search should match runs"
    for _ in range(cfg["search_reps"]):
        t0 = time.perf_counter()
        page = client.search_runs(*args, **kwargs)
        search_s.append(time.perf_counter() - t0)
        assert len(page) == len(first_page)

print(json.dumps({"batch_s": batch_s, "history_s": history_s, "single_s": single_s,
                  "search_s": search_s, "first_page": first_page}))
"""


def run_client(tracking_uri: str, token: str | None, cfg: dict[str, Any]) -> dict[str, Any]:
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
        [str(CLIENT_PYTHON), "-c", CLIENT_SCRIPT, json.dumps(cfg)],
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


def summarise(samples: dict[str, list[Any]]) -> dict[str, float]:
    batch, history, single = samples["batch_s"], samples["history_s"], samples["single_s"]
    out = {
        "batch_points_per_s": 1000 * len(batch) / sum(batch),
        "batch_p50_ms": benchlib.percentile(batch, 50) * 1000,
        "batch_p95_ms": benchlib.percentile(batch, 95) * 1000,
        "history_median_s": statistics.median(history),
        "history_min_s": min(history),
        "single_p50_ms": benchlib.percentile(single, 50) * 1000,
        "single_p95_ms": benchlib.percentile(single, 95) * 1000,
    }
    if samples["search_s"]:
        out["search_p50_ms"] = benchlib.percentile(samples["search_s"], 50) * 1000
        out["search_p95_ms"] = benchlib.percentile(samples["search_s"], 95) * 1000
    return out


def seed_search_runs(dsn: str, runs: int) -> str:
    """``runs`` runs in the project's default experiment (COPY, as benchmarks/search.py
    writes them); its id, which is also its MLflow experiment id."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM experiments_run")
    built = search.build(dsn, runs)
    search.add_project_keys(dsn)
    print(f"built {built['runs']:,} runs in {built['seconds']:.0f} s")
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT DISTINCT experiment_id FROM experiments_run").fetchall()
    assert len(row) == 1, row
    return str(row[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=50, help="log_batch calls of 1,000 points per round")
    parser.add_argument("--history-points", type=int, default=100_000)
    parser.add_argument("--singles", type=int, default=200, help="single log_metric calls per round")
    parser.add_argument("--search-runs", type=int, default=10_000)
    parser.add_argument("--search-reps", type=int, default=30, help="search_runs calls per round")
    parser.add_argument("--rounds", type=int, default=2, help="turns of the client on each side")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mlflow", help="an mlflow executable whose venv has psycopg2 (default: .venv-mlflow's)")
    parser.add_argument("--mlflow-uvicorn", action="store_true", help="MLflow's default serving (uvicorn)")
    parser.add_argument("--no-mlflow", action="store_true", help="measure Assay only")
    parser.add_argument("--raw", action="store_true", help="also Assay's log-batch and get-history as plain HTTP")
    args = parser.parse_args()
    if not CLIENT_PYTHON.exists():
        sys.exit(f"{CLIENT_PYTHON} is missing: make .venv-mlflow/.installed")
    executable = None if args.no_mlflow else (args.mlflow or str(DEFAULT_MLFLOW))

    env = benchlib.server_env(DBNAME)
    dsn = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    token = benchlib.prepare(DBNAME, env)
    cfg: dict[str, Any] = {
        "reps": args.reps,
        "history_points": args.history_points,
        "singles": args.singles,
        "search_reps": args.search_reps,
        "filter": SEARCH_FILTER,
        "order": SEARCH_ORDER,
    }
    pooled: dict[str, dict[str, list[Any]]] = {}
    pages: dict[str, list[str]] = {}
    with benchlib.Server("gunicorn", env, workers=args.workers) as server:
        with benchlib.api_client(server.url, token) as api:
            benchlib.create_run(api, PROJECT, "seed")  # makes the project and its default experiment
        experiment = seed_search_runs(dsn, args.search_runs)
        sides: dict[str, tuple[str, str | None, dict[str, Any]]] = {
            "Assay": (f"{server.url}/mlflow/{PROJECT}", token, {**cfg, "search_experiment": experiment})
        }
        mlflow: mlflow_search.MlflowServer | None = None
        try:
            if executable:
                mlflow = mlflow_search.MlflowServer(
                    executable, workers=args.workers, dbname="mlflow_bench_compat", gunicorn=not args.mlflow_uvicorn
                ).__enter__()
                ml_experiment, seconds = mlflow_search.load(mlflow, dsn, PROJECT)
                print(f"{mlflow.version}: {args.search_runs:,} runs copied in {seconds:.0f} s")
                sides[f"MLflow {mlflow.version.split()[-1]}"] = (
                    mlflow.url,
                    None,
                    {**cfg, "search_experiment": ml_experiment},
                )
            names = list(sides)
            for turn in range(args.rounds):
                order = names if turn % 2 == 0 else names[::-1]
                for name in order:
                    uri, side_token, side_cfg = sides[name]
                    result = run_client(uri, side_token, side_cfg)
                    into = pooled.setdefault(name, {"batch_s": [], "history_s": [], "single_s": [], "search_s": []})
                    for key in into:
                        into[key].extend(result[key])
                    pages[name] = result["first_page"]
                    print(f"round {turn + 1}, {name}: done")
            raw = raw_http(f"{server.url}/mlflow/{PROJECT}", token, args) if args.raw else None
        finally:
            if mlflow is not None:
                mlflow.__exit__(None, None, None)

    results = {name: summarise(samples) for name, samples in pooled.items()}
    names = list(results)
    rows = []
    for key, label in [
        ("batch_points_per_s", "log_batch 1,000 points: points/s"),
        ("batch_p50_ms", "log_batch 1,000 points: p50 ms"),
        ("batch_p95_ms", "log_batch 1,000 points: p95 ms"),
        ("history_median_s", f"get_metric_history {args.history_points:,} points: median s"),
        ("history_min_s", f"get_metric_history {args.history_points:,} points: min s"),
        ("search_p50_ms", f"search_runs {args.search_runs:,} runs, 2 clauses + order, 50 rows: p50 ms"),
        ("search_p95_ms", f"search_runs {args.search_runs:,} runs, 2 clauses + order, 50 rows: p95 ms"),
        ("single_p50_ms", "log_metric: p50 ms"),
        ("single_p95_ms", "log_metric: p95 ms"),
    ]:
        rows.append([label, *(f"{results[n].get(key, float('nan')):,.1f}" for n in names)])
    benchlib.print_table(["MlflowClient", *names], rows)
    if len(names) == 2:
        ours, theirs = results[names[0]], results[names[1]]
        print()
        benchlib.print_table(
            ["target", "ratio", "goal"],
            [
                [
                    "log_batch points/s, Assay / MLflow",
                    f"{ours['batch_points_per_s'] / theirs['batch_points_per_s']:.1f}x",
                    "≥ 10x",
                ],
                [
                    "get_metric_history median, MLflow / Assay",
                    f"{theirs['history_median_s'] / ours['history_median_s']:.1f}x",
                    "≥ 5x",
                ],
                ["search_runs p95, MLflow / Assay", f"{theirs['search_p95_ms'] / ours['search_p95_ms']:.1f}x", "≥ 3x"],
                ["log_metric p95, MLflow / Assay", f"{theirs['single_p95_ms'] / ours['single_p95_ms']:.2f}x", "≥ 1x"],
            ],
        )
        same = pages[names[0]] == pages[names[1]]
        print(f"\nsearch_runs: both answer the same first page of 50 runs: {'yes' if same else 'NO'}")
    if raw is not None:
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
    print(json.dumps(results))


if __name__ == "__main__":
    main()
