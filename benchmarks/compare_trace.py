"""One compare page load at a time, in detail (issue 20): when each history request was sent
and answered, how long each panel's drawing took (the page's ``assay:draw <key>`` measures),
when each panel was drawn, and with ``--profile`` the page's main-thread CPU profile by
function (Chrome DevTools protocol). Uses the data ``benchmarks/charts.py`` seeded (same
``BENCH_DB``), 1400 x 4000 window, cold cache per repetition.

    .venv/bin/python benchmarks/compare_trace.py [--reps 2] [--profile]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib, charts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    env = benchlib.server_env(charts.DBNAME)
    with psycopg.connect(benchlib.PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{charts.DBNAME}") as pg:
        sweep = [r[0] for r in pg.execute("SELECT id FROM experiments_run WHERE name LIKE 'sweep-%' ORDER BY name")]
    path = "/bench/sweep/compare/?runs=" + ",".join(sweep)
    with benchlib.Server("gunicorn", env, workers=2) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=charts.CHROMIUM, args=charts.CHROMIUM_ARGS)
        for rep in range(args.reps):
            context = browser.new_context(viewport={"width": 1400, "height": 4000})
            charts.log_in(context, server.url)
            page = context.new_page()
            page.add_init_script(charts.RECORDER)
            cdp = context.new_cdp_session(page)
            if args.profile:
                cdp.send("Profiler.enable")
                cdp.send("Profiler.setSamplingInterval", {"interval": 200})
                cdp.send("Profiler.start")
            page.goto(server.url + path, wait_until="domcontentloaded")
            deadline = time.monotonic() + 60
            drawn: dict[str, float] = {}
            while time.monotonic() < deadline and len(drawn) < 10:
                drawn = page.evaluate("window.__drawn")
                time.sleep(0.05)
            print(f"repetition {rep} (load average {Path('/proc/loadavg').read_text().split()[0]})")
            print("  sent ms  answered ms     bytes  request")
            for r in page.evaluate(
                "performance.getEntriesByType('resource').map(e => ({n: e.name, s: e.startTime, e: e.responseEnd, b: e.encodedBodySize}))"
            ):
                if "/api/" in r["n"]:
                    part = "only=runs" if "only=runs" in r["n"] else r["n"].split("keys=")[1].split("&")[0]
                    print(f"  {r['s']:7.0f} {r['e']:11.0f} {r['b']:9d}  {part}")
            measures = page.evaluate(
                "performance.getEntriesByType('measure').filter(e => e.name.startsWith('assay:draw ')).map(e => [e.name, e.duration])"
            )
            print(
                "  drawing ms:", " ".join(f"{d:.0f}" for _, d in measures), f"(sum {sum(d for _, d in measures):.0f})"
            )
            for key, at in sorted(drawn.items(), key=lambda kv: kv[1]):
                print(f"  drawn at {at:6.0f} ms  {key}")
            if args.profile:
                profile = cdp.send("Profiler.stop")["profile"]
                nodes = {n["id"]: n["callFrame"] for n in profile["nodes"]}
                self_time: collections.Counter[tuple[str, str]] = collections.Counter()
                for sample, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
                    frame = nodes[sample]
                    self_time[(frame["functionName"] or "(anonymous)", frame["url"].rsplit("/", 1)[-1])] += delta
                print(f"  main thread profile, {sum(self_time.values()) / 1000:.0f} ms:")
                for (name, url), micros in self_time.most_common(20):
                    print(f"    {micros / 1000:8.1f} ms  {name} {url}")
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
