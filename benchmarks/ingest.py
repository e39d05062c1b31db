"""Metric ingestion throughput and single-point log latency, on the production profile.

Self-contained: recreates the PostgreSQL database ``assay_bench``, migrates it, creates a
user and a token, starts gunicorn + UvicornWorker (deploy/gunicorn.conf.py) on a free
port, runs the scenarios with kept-alive httpx clients (several clients = several
processes), checks that every point arrived, prints a table and stops the server.

Server CPU is utime+stime of the gunicorn master and its workers from /proc, before and
after each scenario, divided by the points sent; PostgreSQL CPU is the same over every
``postgres`` process on the machine (backends, WAL writer, checkpointer, ...).

    .venv/bin/python benchmarks/ingest.py                 # everything, ~2 minutes
    .venv/bin/python benchmarks/ingest.py --quick         # fewer batches
    .venv/bin/python benchmarks/ingest.py --mlflow-url http://127.0.0.1:5000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import random
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib

DBNAME = benchlib.dbname("assay_bench")
KEYS = [
    "train/loss",
    "train/acc",
    "val/loss",
    "val/acc",
    "lr",
    "grad_norm",
    "gpu/util",
    "gpu/mem",
    "epoch",
    "throughput",
]


# --- payloads -------------------------------------------------------------------------------


def _rows_body(step0: int, points: int, keys: list[str], ts0: int) -> dict[str, Any]:
    rows = []
    rng = random.Random(step0)
    for i in range(points):
        step = step0 + i // len(keys)
        rows.append({"key": keys[i % len(keys)], "step": step, "value": rng.random(), "timestamp": ts0 + step})
    return {"batch_id": uuid.uuid4().hex, "metrics": rows}


def _series_body(step0: int, points: int, keys: list[str], ts0: int) -> dict[str, Any]:
    per_key = points // len(keys)
    rng = random.Random(step0)
    steps = list(range(step0, step0 + per_key))
    series = [
        {"key": k, "steps": steps, "values": [rng.random() for _ in steps], "timestamps": [ts0 + s for s in steps]}
        for k in keys
    ]
    return {"batch_id": uuid.uuid4().hex, "series": series}


def _mlflow_body(run_id: str, step0: int, points: int, keys: list[str], ts0: int) -> dict[str, Any]:
    rows = _rows_body(step0, points, keys, ts0)["metrics"]
    return {"run_id": run_id, "metrics": rows}


def build_bodies(target: str, form: str, run_id: str, batches: int, batch_size: int, keys: list[str]) -> list[bytes]:
    ts0 = int(time.time() * 1000)
    per_batch_steps = batch_size // len(keys)
    out = []
    for b in range(batches):
        step0 = b * per_batch_steps
        if target == "mlflow":
            body = _mlflow_body(run_id, step0, batch_size, keys, ts0)
        elif form == "rows":
            body = _rows_body(step0, batch_size, keys, ts0)
        else:
            body = _series_body(step0, batch_size, keys, ts0)
        out.append(orjson.dumps(body))
    return out


# --- clients ------------------------------------------------------------------------------------


@dataclass
class Job:
    target: str  # "assay" or "mlflow"
    base_url: str
    token: str
    run_id: str
    form: str
    batches: int
    batch_size: int
    keys: list[str]


def _path(job: Job) -> str:
    return "/api/2.0/mlflow/runs/log-batch" if job.target == "mlflow" else f"/api/v1/runs/{job.run_id}/log/"


def _client_process(job: Job, barrier: Any, results: Any) -> None:
    bodies = build_bodies(job.target, job.form, job.run_id, job.batches, job.batch_size, job.keys)
    latencies = []
    with benchlib.api_client(job.base_url, job.token) as client:
        client.get("/healthz" if job.target == "assay" else "/health")  # open the connection
        barrier.wait()
        for body in bodies:
            start = time.perf_counter()
            answer = client.post(_path(job), content=body)
            latencies.append(time.perf_counter() - start)
            if answer.status_code != 200:
                raise SystemExit(f"log failed: {answer.status_code} {answer.text[:300]}")
    results.put(latencies)


def run_clients(jobs: list[Job]) -> tuple[float, list[float]]:
    """Run one process per job, all starting together; returns (wall seconds, latencies)."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(jobs) + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=_client_process, args=(job, barrier, results)) for job in jobs]
    for p in procs:
        p.start()
    barrier.wait(timeout=300)
    start = time.perf_counter()
    latencies: list[float] = []
    done = 0
    while done < len(jobs):
        try:
            latencies += results.get(timeout=1)
            done += 1
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                for p in procs:
                    p.terminate()
                raise RuntimeError("a client failed") from None
    wall = time.perf_counter() - start
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a client failed (exit {p.exitcode})")
    return wall, latencies


# --- scenarios --------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    clients: int
    batch_size: int
    points: int
    wall: float
    latencies: list[float]
    server_cpu: float | None
    pg_cpu: float | None
    target: str = ""

    @property
    def rate(self) -> float:
        return self.points / self.wall

    def row(self) -> list[str]:
        lat = benchlib.summary_ms(self.latencies)
        us = lambda cpu: "-" if cpu is None else f"{cpu / self.points * 1e6:.1f}"  # noqa: E731
        return [
            self.name,
            str(self.clients),
            f"{self.batch_size:,}",
            f"{self.points:,}",
            f"{self.wall:.2f}",
            f"{self.rate:,.0f}",
            f"{lat['p50']:.1f} / {lat['p95']:.1f}",
            us(self.server_cpu),
            us(self.pg_cpu),
            self.target,
        ]


HEADERS = [
    "scenario",
    "clients",
    "batch",
    "points",
    "wall s",
    "points/s",
    "batch ms p50/p95",
    "server µs/pt",
    "pg µs/pt",
    "target",
]


def assay_scenario(
    server: benchlib.Server,
    token: str,
    name: str,
    *,
    clients: int,
    form: str,
    batches: int,
    batch_size: int,
    target: str = "",
) -> Result:
    with benchlib.api_client(server.url, token) as api:
        run_ids = [benchlib.create_run(api, "bench/ingest", f"{name}-{i}") for i in range(clients)]
    jobs = [Job("assay", server.url, token, run_id, form, batches, batch_size, KEYS) for run_id in run_ids]
    before = server.cpu_snapshot()
    wall, latencies = run_clients(jobs)
    cpu = server.cpu_since(before)
    expected = batches * batch_size
    with benchlib.api_client(server.url, token) as api:
        for run_id in run_ids:
            got = sum(m["count"] for m in api.get(f"/api/v1/runs/{run_id}/metrics/").json())
            if got != expected:
                raise RuntimeError(f"{name}: run {run_id} holds {got} points, expected {expected}")
    return Result(name, clients, batch_size, expected * clients, wall, latencies, cpu.server, cpu.postgres, target)


def single_point_latency(server: benchlib.Server, token: str, calls: int) -> dict[str, float]:
    """Sequential one-point log calls on one kept-alive connection (what an SDK without
    batching would do), each with its own batch_id."""
    with benchlib.api_client(server.url, token) as api:
        run_id = benchlib.create_run(api, "bench/ingest", "single-point")
        path = f"/api/v1/runs/{run_id}/log/"
        samples = []
        for i in range(calls + 50):
            body = orjson.dumps(
                {"batch_id": uuid.uuid4().hex, "metrics": [{"key": "loss", "step": i, "value": 1.0 / (i + 1)}]}
            )
            start = time.perf_counter()
            answer = api.post(path, content=body)
            elapsed = time.perf_counter() - start
            if answer.status_code != 200:
                raise RuntimeError(answer.text)
            if i >= 50:  # warm-up
                samples.append(elapsed)
    return benchlib.summary_ms(samples)


def mlflow_single_point_latency(url: str, calls: int) -> dict[str, float]:
    """The same sequential one-point calls against MLflow's ``runs/log-metric``."""
    with httpx.Client(base_url=url, timeout=60) as api:
        answer = api.post("/api/2.0/mlflow/experiments/create", json={"name": f"bench-single-{uuid.uuid4().hex[:8]}"})
        answer.raise_for_status()
        created = api.post(
            "/api/2.0/mlflow/runs/create",
            json={"experiment_id": answer.json()["experiment_id"], "start_time": int(time.time() * 1000)},
        )
        created.raise_for_status()
        run_id = created.json()["run"]["info"]["run_id"]
        samples = []
        for i in range(calls + 50):
            body = {
                "run_id": run_id,
                "key": "loss",
                "value": 1.0 / (i + 1),
                "timestamp": int(time.time() * 1000),
                "step": i,
            }
            start = time.perf_counter()
            answer = api.post("/api/2.0/mlflow/runs/log-metric", json=body)
            elapsed = time.perf_counter() - start
            if answer.status_code != 200:
                raise RuntimeError(answer.text)
            if i >= 50:  # warm-up
                samples.append(elapsed)
    return benchlib.summary_ms(samples)


def mlflow_scenarios(url: str, clients_list: list[int], batches: int) -> list[Result]:
    out = []
    with httpx.Client(base_url=url, timeout=120) as api:
        answer = api.post("/api/2.0/mlflow/experiments/create", json={"name": f"bench-{uuid.uuid4().hex[:8]}"})
        answer.raise_for_status()
        experiment_id = answer.json()["experiment_id"]

        def new_run() -> str:
            r = api.post(
                "/api/2.0/mlflow/runs/create",
                json={"experiment_id": experiment_id, "start_time": int(time.time() * 1000)},
            )
            r.raise_for_status()
            return str(r.json()["run"]["info"]["run_id"])

        for clients in clients_list:
            jobs = [Job("mlflow", url, "", new_run(), "rows", batches, 1000, KEYS) for _ in range(clients)]
            wall, latencies = run_clients(jobs)
            out.append(
                Result(
                    f"MLflow rows 1k x{clients}", clients, 1000, batches * 1000 * clients, wall, latencies, None, None
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a third of the batches")
    parser.add_argument("--workers", type=int, default=2, help="web worker processes (default 2)")
    parser.add_argument("--mlflow-url", help="also run the 1,000-point scenarios against this MLflow server")
    parser.add_argument("--mlflow-only", action="store_true", help="with --mlflow-url: skip Assay")
    parser.add_argument("--only", help="comma-separated scenario names to run (see the table), or 'single'")
    parser.add_argument(
        "--tuned",
        action="store_true",
        help="serve with benchmarks/tuned_settings.py (connection pool + one-hop middleware chain; "
        "BENCH_TUNING=pool or sync-chain selects one)",
    )
    args = parser.parse_args()
    scale = 3 if args.quick else 1

    results: list[Result] = []
    latency: dict[str, float] | None = None
    mlflow_latency: dict[str, float] | None = None
    if not args.mlflow_only:
        env = benchlib.server_env(DBNAME)
        if args.tuned:
            env["DJANGO_SETTINGS_MODULE"] = "benchmarks.tuned_settings"
            print(f"settings: benchmarks.tuned_settings ({env.get('BENCH_TUNING', 'pool,sync-chain')})")
        print(f"preparing database {DBNAME} ...", flush=True)
        token = benchlib.prepare(DBNAME, env)
        with benchlib.Server("gunicorn", env, workers=args.workers) as server:
            print(f"gunicorn + UvicornWorker x{args.workers} on {server.url}", flush=True)
            # Warm-up: imports, connections, the project row.
            assay_scenario(server, token, "warm-up", clients=2, form="rows", batches=5, batch_size=1000)
            plan: list[tuple[str, dict[str, Any]]] = [
                (
                    "rows 1k x1",
                    {
                        "clients": 1,
                        "form": "rows",
                        "batches": 300 // scale,
                        "batch_size": 1_000,
                        "target": "≥ 77,000/s",
                    },
                ),
                (
                    "rows 1k x4",
                    {
                        "clients": 4,
                        "form": "rows",
                        "batches": 100 // scale,
                        "batch_size": 1_000,
                        "target": "(MLflow 14,600/s)",
                    },
                ),
                (
                    "rows 10k x1",
                    {
                        "clients": 1,
                        "form": "rows",
                        "batches": 60 // scale,
                        "batch_size": 10_000,
                        "target": "≥ 100,000/s",
                    },
                ),
                (
                    "series 10k x1",
                    {
                        "clients": 1,
                        "form": "series",
                        "batches": 60 // scale,
                        "batch_size": 10_000,
                        "target": "≥ 100,000/s",
                    },
                ),
                (
                    "rows 10k x4",
                    {
                        "clients": 4,
                        "form": "rows",
                        "batches": 30 // scale,
                        "batch_size": 10_000,
                        "target": "≥ 150,000/s",
                    },
                ),
                (
                    "series 10k x4",
                    {
                        "clients": 4,
                        "form": "series",
                        "batches": 30 // scale,
                        "batch_size": 10_000,
                        "target": "≥ 150,000/s",
                    },
                ),
            ]
            wanted = set(args.only.split(",")) if args.only else None
            for name, kw in plan:
                if wanted and name not in wanted:
                    continue
                print(f"  {name} ...", flush=True)
                results.append(assay_scenario(server, token, name, **kw))
            if not wanted or "single" in wanted:
                print("  single-point log latency ...", flush=True)
                latency = single_point_latency(server, token, 1000 // scale)
    if args.mlflow_url:
        print(f"MLflow at {args.mlflow_url} ...", flush=True)
        results += mlflow_scenarios(args.mlflow_url, [1, 4], 100 // scale)
        mlflow_latency = mlflow_single_point_latency(args.mlflow_url, 1000 // scale)

    print()
    benchlib.print_table(HEADERS, [r.row() for r in results])
    print("server µs/pt: CPU of gunicorn master + workers; pg µs/pt: CPU of all postgres processes; target ≤ 10 µs/pt")
    if latency:
        print(
            f"\nsingle-point log call, one kept-alive connection, n={latency['n']:.0f}: "
            f"p50 {latency['p50']:.2f} ms, p95 {latency['p95']:.2f} ms, p99 {latency['p99']:.2f} ms, "
            f"max {latency['max']:.2f} ms (target p95 ≤ 3.6 ms)"
        )
    if mlflow_latency:
        print(
            f"MLflow single-point log-metric, n={mlflow_latency['n']:.0f}: p50 {mlflow_latency['p50']:.2f} ms, "
            f"p95 {mlflow_latency['p95']:.2f} ms, p99 {mlflow_latency['p99']:.2f} ms"
        )
    by_name = {r.name: r for r in results}
    for clients in (1, 4):
        a, m = by_name.get(f"rows 1k x{clients}"), by_name.get(f"MLflow rows 1k x{clients}")
        if a and m:
            print(
                f"1,000-point batches, {clients} client(s): Assay {a.rate:,.0f}/s vs MLflow {m.rate:,.0f}/s = {a.rate / m.rate:.1f}x"
            )


if __name__ == "__main__":
    main()
