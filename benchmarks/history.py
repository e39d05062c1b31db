"""Metric history reads on the production profile.

Self-contained like ingest.py (database ``assay_bench_history``): logs one run with a
100,000-point series and one with a 1,000,000-point series through the log API (10,000-
point batches, columnar form), then times, client-side over several repetitions on a
kept-alive connection:

* the full 100,000 points in one request (``?limit=100000``), target < 0.5 s;
* ``?max_points=1000`` over the 1,000,000-point series (server-side MinMaxLTTB), target < 300 ms;
* for reference: ``?max_points=10000`` over 1,000,000 and the first raw page of 100,000 of it.

    .venv/bin/python benchmarks/history.py [--reps 15] [--tuned]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib

DBNAME = "assay_bench_history"
BATCH = 10_000


def log_series(client, run_id: str, points: int, key: str = "loss") -> float:
    start = time.perf_counter()
    ts0 = int(time.time() * 1000)
    for step0 in range(0, points, BATCH):
        steps = list(range(step0, min(points, step0 + BATCH)))
        body = {
            "batch_id": uuid.uuid4().hex,
            "series": [
                {
                    "key": key,
                    "steps": steps,
                    "values": [1.0 / (s + 1) + (s % 97) * 1e-3 for s in steps],
                    "timestamps": [ts0 + s for s in steps],
                }
            ],
        }
        answer = client.post(f"/api/v1/runs/{run_id}/log/", content=orjson.dumps(body))
        answer.raise_for_status()
    return time.perf_counter() - start


def time_get(client, path: str, reps: int, expect_points: int) -> dict[str, float]:
    client.get(path).raise_for_status()  # warm-up
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        answer = client.get(path)
        data = orjson.loads(answer.content)
        samples.append(time.perf_counter() - start)
        answer.raise_for_status()
        if len(data["points"]) != expect_points:
            raise RuntimeError(f"{path}: {len(data['points'])} points, expected {expect_points}")
    ms = [s * 1000 for s in samples]
    return {
        "median": statistics.median(ms),
        "p95": benchlib.percentile(ms, 95),
        "min": min(ms),
        "bytes": len(answer.content),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tuned", action="store_true", help="serve with benchmarks/tuned_settings.py")
    args = parser.parse_args()

    env = benchlib.server_env(DBNAME)
    if args.tuned:
        env["DJANGO_SETTINGS_MODULE"] = "benchmarks.tuned_settings"
    print(f"preparing database {DBNAME} ...", flush=True)
    token = benchlib.prepare(DBNAME, env)
    rows = []
    with (
        benchlib.Server("gunicorn", env, workers=args.workers) as server,
        benchlib.api_client(server.url, token) as api,
    ):
        small = benchlib.create_run(api, "bench/history", "100k")
        big = benchlib.create_run(api, "bench/history", "1M")
        print("logging 100,000 + 1,000,000 points ...", flush=True)
        t_small = log_series(api, small, 100_000)
        t_big = log_series(api, big, 1_000_000)
        print(f"  logged in {t_small:.1f} s and {t_big:.1f} s ({1_000_000 / t_big:,.0f} points/s)", flush=True)
        plan = [
            (
                "100k series, limit=100000 (all raw points)",
                f"/api/v1/runs/{small}/metrics/loss/?limit=100000",
                100_000,
                "< 500 ms",
            ),
            ("1M series, max_points=1000", f"/api/v1/runs/{big}/metrics/loss/?max_points=1000", 1000, "< 300 ms"),
            ("1M series, max_points=10000", f"/api/v1/runs/{big}/metrics/loss/?max_points=10000", 10_000, ""),
            ("1M series, limit=100000 (first raw page)", f"/api/v1/runs/{big}/metrics/loss/?limit=100000", 100_000, ""),
        ]
        for name, path, expect, target in plan:
            print(f"  {name} ...", flush=True)
            r = time_get(api, path, args.reps, expect)
            rows.append(
                [
                    name,
                    str(args.reps),
                    f"{r['median']:.1f}",
                    f"{r['p95']:.1f}",
                    f"{r['min']:.1f}",
                    f"{r['bytes']:,}",
                    target,
                ]
            )
    print()
    benchlib.print_table(["read", "reps", "median ms", "p95 ms", "min ms", "response bytes", "target"], rows)
    print("client-observed: request sent to JSON parsed, one kept-alive connection")


if __name__ == "__main__":
    main()
