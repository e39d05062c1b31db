"""The ``assay`` command: login, status, sync, runs list."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence

from assay import env
from assay._version import __version__
from assay.api import Api
from assay.client import Client, normalize_url
from assay.errors import AssayError, ConfigurationError
from assay.spool import SpoolDir, spooled_dirs, sync


def _err(message: str) -> int:
    print(f"assay: error: {message}", file=sys.stderr)
    return 1


def cmd_login(args: argparse.Namespace) -> int:
    url = args.url or env.resolve_url()
    if not url:
        url = input("Assay server URL (e.g. http://127.0.0.1:8000): ").strip()
    url = normalize_url(url)
    token = args.token or env.get(env.TOKEN)
    if not token:
        token = getpass.getpass("API token (input hidden): ").strip()
    if not token:
        return _err("no token given.")
    with Client(url, token) as client:
        me = client.me()  # refuses a bad token or URL before anything is stored
    path = env.save_credentials(url, token)
    print(f"Logged in to {url} as {me.get('username')}; token stored in {path} (mode 0600).")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    url = env.resolve_url(args.url)
    token = env.resolve_token()
    source = "ASSAY_TOKEN" if env.get(env.TOKEN) else ("credentials file" if token else "none")
    print(f"assay-sdk {__version__}")
    print(f"server:  {url or '(not configured: set ASSAY_URL or run `assay login`)'}")
    print(f"token:   {source}")
    healthy = 0
    if url:
        try:
            with Client(url, token) as client:
                me = client.me()
            teams = ", ".join(str(t) for t in me.get("teams", []) or []) or "none"
            print(f"user:    {me.get('username')} (teams: {teams})")
        except AssayError as exc:
            print(f"user:    unknown: {exc}")
            healthy = 1
    dirs = spooled_dirs()
    print(f"spool:   {env.spool_root()} — {len(dirs)} run(s) waiting")
    for spool in dirs:
        try:
            meta = spool.read_meta()
            batches = spool.pending_batches()
        except (OSError, ValueError, AssayError) as exc:
            print(f"  {spool.path.name}: unreadable ({exc})")
            continue
        state = "in use" if not _free(spool) else ("offline, not created yet" if not meta.get("run_id") else "ready")
        finished = (meta.get("finish") or {}).get("status", "running")
        print(
            f"  {spool.path.name}: {meta.get('project', '?')} {meta.get('name', '')} — {batches} request(s), {finished}, {state}"
        )
    return healthy


def _free(spool: SpoolDir) -> bool:
    got = spool.lock()
    if got:
        spool.unlock()
    return got


def cmd_sync(args: argparse.Namespace) -> int:
    dirs = spooled_dirs()
    if not dirs:
        print("Nothing to sync.")
        return 0
    results = sync(url=args.url, only=args.run or None)
    failed = 0
    for result in results:
        name = result.directory.rsplit("/", 1)[-1]
        if result.skipped:
            print(f"{name}: skipped ({result.skipped})")
        elif result.error:
            failed += 1
            print(f"{name}: not synced: {result.error}", file=sys.stderr)
        else:
            created = "created, " if result.created else ""
            print(
                f"{name}: {created}{result.batches} batch(es), {result.points} new point(s), "
                f"{result.duplicates} already there → run {result.run_id}"
            )
        for line in result.rejected:
            print(f"  refused by the server: {line}", file=sys.stderr)
    return 1 if failed else 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    project = args.project or env.get(env.PROJECT)
    if not project:
        return _err("which project? pass --project team/project or set ASSAY_PROJECT.")
    with Api(args.url) as api:
        runs = api.runs(project, experiment=args.experiment, status=args.status, sort=args.sort, limit=args.limit)
    if args.json:
        print(json.dumps([r.raw for r in runs], indent=1))
        return 0
    if not runs:
        print(f"No runs in {project}.")
        return 0
    print(f"{'ID':<24} {'NAME':<28} {'STATUS':<9} {'STARTED':<20} {'METRICS'}")
    for run in runs:
        shown = ", ".join(f"{k}={_short(v.get('last'))}" for k, v in list(run.metrics.items())[:4])
        started = (run.start_time or "")[:19].replace("T", " ")
        print(f"{run.id:<24} {run.name[:28]:<28} {run.status:<9} {started:<20} {shown}")
    return 0


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assay", description="Assay: log and inspect training runs.")
    parser.add_argument("--version", action="version", version=f"assay-sdk {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    login = commands.add_parser("login", help="store a server URL and API token (mode 0600)")
    login.add_argument("--url", help="server URL (default: ASSAY_URL, or asked)")
    login.add_argument("--token", help="API token (default: ASSAY_TOKEN, or asked without echo)")
    login.set_defaults(func=cmd_login)

    status = commands.add_parser("status", help="server reachable? who am I? what is spooled?")
    status.add_argument("--url", help="server URL (default: ASSAY_URL or the stored login)")
    status.set_defaults(func=cmd_status)

    sync_cmd = commands.add_parser("sync", help="upload spooled and offline runs, exactly once")
    sync_cmd.add_argument("--url", help="server URL (default: the run's own, else ASSAY_URL or the login)")
    sync_cmd.add_argument("run", nargs="*", help="spool directory names to sync (default: all)")
    sync_cmd.set_defaults(func=cmd_sync)

    runs = commands.add_parser("runs", help="list runs")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True)
    runs_list = runs_commands.add_parser("list", help="runs of a project, newest first")
    runs_list.add_argument("--project", "-p", help='"team/project" (default: ASSAY_PROJECT)')
    runs_list.add_argument("--experiment", "-e")
    runs_list.add_argument("--status", choices=["running", "finished", "failed", "killed"])
    runs_list.add_argument("--sort", help="e.g. -start_time, metrics.val_acc, -params.lr")
    runs_list.add_argument("--limit", "-n", type=int, default=20)
    runs_list.add_argument("--json", action="store_true", help="print the server's JSON")
    runs_list.add_argument("--url")
    runs_list.set_defaults(func=cmd_runs_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigurationError as exc:
        return _err(str(exc))
    except AssayError as exc:
        return _err(str(exc))
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
