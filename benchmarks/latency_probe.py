"""Small-response latency on one kept-alive connection: ``uvicorn --workers 2`` against
gunicorn + ``uvicorn_worker.UvicornWorker`` (deploy/gunicorn.conf.py), same app, same database.

The design notes that uvicorn's own multi-process mode left ``TCP_NODELAY`` unset and
added ~40 ms (Nagle + delayed ACK) to every small response on a kept-alive connection.
This probe sends many sequential small requests (GET /healthz, and a single-point log
call) on one connection to each server and prints p50/p95/p99 and how many answers took
≥ 35 ms (the signature of that stall).

    .venv/bin/python benchmarks/latency_probe.py [--requests 500] [--tuned]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib

DBNAME = benchlib.dbname("assay_bench_probe")
STALL_MS = 35.0


def probe(server: benchlib.Server, token: str, requests: int) -> list[list[str]]:
    rows = []
    with benchlib.api_client(server.url, token) as api:
        run_id = benchlib.create_run(api, "bench/probe", f"probe-{server.kind}")
        log_path = f"/api/v1/runs/{run_id}/log/"
        step = iter(range(10**9))

        def healthz() -> httpx.Response:
            return api.get("/healthz")

        def log_one() -> httpx.Response:
            body = {"batch_id": uuid.uuid4().hex, "metrics": [{"key": "loss", "step": next(step), "value": 0.5}]}
            return api.post(log_path, content=orjson.dumps(body))

        for name, call in (("GET /healthz", healthz), ("POST log, 1 point", log_one)):
            for _ in range(30):  # warm-up
                call().raise_for_status()
            samples = []
            for _ in range(requests):
                start = time.perf_counter()
                answer = call()
                samples.append(time.perf_counter() - start)
                answer.raise_for_status()
            s = benchlib.summary_ms(samples)
            stalls = sum(1 for x in samples if x * 1000 >= STALL_MS)
            rows.append(
                [
                    server.kind if server.kind == "gunicorn" else f"uvicorn --workers {server.workers}",
                    name,
                    str(requests),
                    f"{s['p50']:.2f}",
                    f"{s['p95']:.2f}",
                    f"{s['p99']:.2f}",
                    f"{s['max']:.1f}",
                    f"{stalls} ({stalls / requests:.0%})",
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tuned", action="store_true", help="serve with benchmarks/tuned_settings.py")
    args = parser.parse_args()
    env = benchlib.server_env(DBNAME)
    if args.tuned:
        env["DJANGO_SETTINGS_MODULE"] = "benchmarks.tuned_settings"
    print(f"preparing database {DBNAME} ...", flush=True)
    token = benchlib.prepare(DBNAME, env)
    rows: list[list[str]] = []
    for kind in ("uvicorn", "gunicorn"):
        print(f"  {kind} ...", flush=True)
        with benchlib.Server(kind, env, workers=args.workers) as server:
            rows += probe(server, token, args.requests)
    print()
    benchlib.print_table(
        ["server", "request", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", f"≥ {STALL_MS:.0f} ms"], rows
    )
    print(f"one kept-alive httpx connection, sequential requests; {args.workers} worker processes each")


if __name__ == "__main__":
    main()
