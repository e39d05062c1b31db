"""What the SDK costs a training job: µs per ``run.log`` call on the training thread, and
end-to-end points per second from one process, against a real server.

Self-contained: recreates the PostgreSQL database ``assay_bench_sdk``, migrates it, creates a
user and a token (benchmarks/benchlib.py), starts uvicorn (one process, as the SDK's tests
do) on a free port, runs the SDK in this process and prints the numbers.

    .venv/bin/python benchmarks/sdk_overhead.py            # ~1 minute
    .venv/bin/python benchmarks/sdk_overhead.py --quick

Targets (issue 3): < 10 µs per ``run.log`` of ten metrics; ≥ 50,000 points/s end to end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib

DBNAME = "assay_bench_sdk"
KEYS = [f"metric_{i}" for i in range(10)]


def overhead(calls: int, pause_s: float) -> dict[str, float]:
    """Time each run.log({ten metrics}) call on this thread. Between calls the "training
    step" sleeps ``pause_s`` (releasing the GIL, as numpy/torch kernels do), so the background
    thread batches and sends concurrently, sharing the GIL as it does in a real job."""
    import assay as sdk

    run = sdk.init(project="bench/sdk-overhead", system_metrics=0, silent=True)
    values = dict.fromkeys(KEYS, 0.5)
    samples_us = []
    clock = time.perf_counter_ns
    for step in range(calls):
        values["metric_0"] = step * 1e-3
        t0 = clock()
        run.log(values)
        samples_us.append((clock() - t0) / 1000)
        if pause_s:
            time.sleep(pause_s)
    run.finish()
    ordered = sorted(samples_us)
    return {
        "calls": calls,
        "median_us": statistics.median(samples_us),
        "mean_us": statistics.fmean(samples_us),
        "p99_us": ordered[int(0.99 * (len(ordered) - 1))],
    }


def throughput(points: int) -> dict[str, float]:
    """Log ``points`` points as fast as possible (ten metrics a call), then finish(): points
    per second from the first log call until finish() returned, i.e. until all are stored."""
    import assay as sdk

    run = sdk.init(project="bench/sdk-overhead", system_metrics=0, silent=True)
    calls = points // len(KEYS)
    t0 = time.perf_counter()
    for step in range(calls):
        run.log({key: step * 0.001 + i for i, key in enumerate(KEYS)})
    t_logged = time.perf_counter()
    run.finish()
    t_done = time.perf_counter()
    with sdk.Api() as api:
        stored = sum(int(s["count"]) for s in api.metrics(run.id).values())
    assert stored == calls * len(KEYS), f"stored {stored} of {calls * len(KEYS)} points"
    return {
        "points": calls * len(KEYS),
        "log_seconds": t_logged - t0,
        "total_seconds": t_done - t0,
        "points_per_second": calls * len(KEYS) / (t_done - t0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    env = benchlib.server_env(DBNAME, redis_db=12)
    token = benchlib.prepare(DBNAME, env)
    with benchlib.Server(kind="uvicorn", env=env, workers=1) as server, tempfile.TemporaryDirectory() as spool:
        os.environ.update({"ASSAY_URL": server.url, "ASSAY_TOKEN": token, "ASSAY_DIR": spool})
        os.environ.setdefault("ASSAY_CAPTURE_ENVIRONMENT", "0")
        calls = 20_000 if args.quick else 100_000
        points = 200_000 if args.quick else 1_000_000
        burst = overhead(min(calls, 20_000), 0.0)
        paced = overhead(calls // 4, 0.0001)
        speed = throughput(points)
    for label, cost in (("back-to-back", burst), ("with a 0.1 ms training step", paced)):
        print(
            f"run.log of ten metrics, {label}: median {cost['median_us']:.2f} µs, mean {cost['mean_us']:.2f} µs, "
            f"p99 {cost['p99_us']:.2f} µs ({cost['calls']:,} calls; target < 10 µs)"
        )
    print(
        f"end to end: {speed['points']:,} points logged in {speed['log_seconds']:.2f} s, all stored after "
        f"{speed['total_seconds']:.2f} s → {speed['points_per_second']:,.0f} points/s (target ≥ 50,000/s)"
    )


if __name__ == "__main__":
    main()
