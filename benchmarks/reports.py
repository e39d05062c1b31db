"""A report with 10 live chart blocks over 100 runs, loaded in headless Chromium (issue 22).

Builds its own database (``assay_bench_reports``): one project with ``--runs`` runs (target
100), each logging ``--points`` points (default 1,000) of two keys, ``val/loss`` and
``train/loss``, through the API; one report whose body has 10 ``assay-chart`` blocks, each
over every run (``limit=100``, alternately one and both keys) — so a load resolves 10 queries,
reads 100 runs × the keys' histories per block, downsamples each curve to 300 points and
draws the SVG on the server. Then Debian's chromium (Playwright, the browser tests' flags)
signs in and loads the report page ``--reps`` times (after one warm-up load); the time is the
navigation's ``loadEventEnd`` (request sent → page drawn and loaded), and the page's size.
Served by gunicorn with 2 uvicorn workers (deploy/gunicorn.conf.py). Target: < 1.5 s.

    .venv/bin/python benchmarks/reports.py [--runs 100] [--points 1000] [--reps 10] [--distinct-queries] [--keep]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib

DBNAME = benchlib.dbname("assay_bench_reports")
PROJECT = "bench/reports"
TARGET_S = 1.5
PASSWORD = "bench-password-123"  # benchlib.prepare's superuser
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip


def _seed(client: object, runs: int, points: int) -> None:
    import httpx

    assert isinstance(client, httpx.Client)
    for index in range(runs):
        run_id = benchlib.create_run(client, PROJECT, f"run-{index:03d}")
        steps = list(range(points))
        body = {
            "batch_id": "seed",
            "params": {"lr": str(0.001 * (index + 1))},
            "series": [
                {"key": "val/loss", "steps": steps, "values": [1 / (s + 2 + index) for s in steps]},
                {"key": "train/loss", "steps": steps, "values": [0.8 / (s + 2 + index) for s in steps]},
            ],
        }
        answer = client.post(f"/api/v1/runs/{run_id}/log/", json=body)
        answer.raise_for_status()


def _report_body(blocks: int, runs: int, *, distinct: bool) -> str:
    """``distinct``: every block asks another query text (all matching the same runs), so no
    block reuses another's run search; their curves are still read once per render."""
    parts = ["# Ten live charts\n"]
    for index in range(blocks):
        metrics = "val/loss,train/loss" if index % 2 else "val/loss"
        query = f"params.lr > {index / 1_000_000}" if distinct else "params.lr > 0"
        parts.append(f'Chart {index + 1}.\n\n```assay-chart metrics={metrics} query="{query}" limit={runs}\n```\n')
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--distinct-queries", action="store_true", help="another query text in every block")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    env = benchlib.server_env(DBNAME)
    token = benchlib.prepare(DBNAME, env)
    benchlib.manage(env, "collectstatic", "--noinput", "-v", "0")
    try:
        with benchlib.Server("gunicorn", env, workers=2) as server:
            client = benchlib.api_client(server.url, token)
            started = time.perf_counter()
            _seed(client, args.runs, args.points)
            print(f"seeded {args.runs} runs × 2 keys × {args.points} points in {time.perf_counter() - started:.1f} s")
            created = client.post(
                f"/api/v1/projects/{PROJECT}/reports/",
                json={
                    "title": "Benchmark",
                    "body": _report_body(args.blocks, args.runs, distinct=args.distinct_queries),
                },
            )
            created.raise_for_status()
            url = f"{server.url}/{PROJECT}/reports/{created.json()['number']}/"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                page.goto(f"{server.url}/login/")
                page.get_by_label("Username").fill(benchlib.USERNAME)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(f"{server.url}/")
                page.goto(url)  # warm-up: connections, the workers' first compile of the queries
                charts = page.locator('[data-testid="report-chart"]').count()
                lines = page.locator('[data-testid="report-chart"] polyline').count()
                samples: list[float] = []
                server_ms: list[float] = []
                for _ in range(args.reps):
                    page.goto(url, wait_until="load")
                    timing = page.evaluate(
                        "() => { const n = performance.getEntriesByType('navigation')[0];"
                        " return {load: n.loadEventEnd, ttfb: n.responseStart - n.requestStart,"
                        " size: n.transferSize}; }"
                    )
                    samples.append(timing["load"] / 1000)
                    server_ms.append(timing["ttfb"])
                browser.close()
            stats = benchlib.summary_ms(samples)
            print(
                json.dumps(
                    {
                        "runs": args.runs,
                        "points_per_key": args.points,
                        "blocks": args.blocks,
                        "distinct_queries": args.distinct_queries,
                        "chart_panels_drawn": charts,
                        "polylines": lines,
                        "page_bytes": timing["size"],
                        "load_ms": stats,
                        "time_to_first_byte_ms": benchlib.summary_ms([s / 1000 for s in server_ms]),
                        "target_ms": TARGET_S * 1000,
                        "met": stats["p95"] < TARGET_S * 1000,
                    },
                    indent=2,
                )
            )
    finally:
        if not args.keep:
            benchlib.recreate_database(DBNAME)


if __name__ == "__main__":
    main()
