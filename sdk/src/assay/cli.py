"""The ``assay`` command: login, status, sync, runs list, artifacts list/download."""

from __future__ import annotations

import argparse
import ast
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from assay import env, importers, registry, reviews, tried, watch
from assay._version import __version__
from assay.api import Api, RunRecord
from assay.artifacts import download
from assay.client import Client, normalize_url
from assay.errors import AssayError, ConfigurationError, UsageError
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
    results = sync(url=args.url, only=args.run or None, progress=not env.flag(env.SILENT, False))
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
            artifacts = f", {result.artifacts} artifact file(s)" if result.artifacts else ""
            print(
                f"{name}: {created}{result.batches} batch(es), {result.points} new point(s), "
                f"{result.duplicates} already there{artifacts} → run {result.run_id}"
            )
        for line in result.rejected:
            print(f"  refused by the server: {line}", file=sys.stderr)
    return 1 if failed else 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    project = args.project or env.get(env.PROJECT)
    if not project:
        return _err("which project? pass --project team/project or set ASSAY_PROJECT.")
    with Api(args.url) as api:
        runs = list(
            api.iter_runs(
                project,
                experiment=args.experiment,
                status=args.status,
                sort=args.sort,
                limit=args.limit,
                filter=args.filter,
                order_by=args.order_by,
            )
        )
    if args.json:
        print(json.dumps([r.raw for r in runs], indent=1))
        return 0
    if not runs:
        print(f"No runs in {project}.")
        return 0
    ordered = _ordering_field(args.order_by, args.sort)
    id_width = max(len("ID"), *(len(run.id) for run in runs))
    name_width = min(28, max(len("NAME"), *(len(run.name) for run in runs)))
    last = ordered.upper() if ordered else "METRICS"
    print(f"{'ID':<{id_width}}  {'NAME':<{name_width}}  {'STATUS':<8}  {'STARTED':<19}  {last}")
    for run in runs:
        if ordered:
            shown = _short(_field_value(run, ordered))
        else:
            shown = ", ".join(f"{k}={_short(v.get('last'))}" for k, v in list(run.metrics.items())[:4])
        started = (run.start_time or "")[:19].replace("T", " ")
        name = run.name if len(run.name) <= name_width else run.name[: name_width - 1] + "…"
        print(f"{run.id:<{id_width}}  {name:<{name_width}}  {run.status:<8}  {started:<19}  {shown}")
    return 0


_FIELD_PREFIXES = {"metric.": "metrics.", "param.": "params.", "tag.": "tags.", "attribute.": "", "run.": ""}


def _ordering_field(order_by: list[str] | None, sort: str | None) -> str:
    """The field the list is ordered by (``metrics.acc`` of ``--order-by "metrics.acc DESC"``
    or ``--sort -metrics.acc``) when it is a metric, param or tag: the column worth showing."""
    text = (order_by[0] if order_by else sort or "").strip()
    text = text.split()[0].lstrip("-").strip('"`') if text else ""
    for alias, prefix in _FIELD_PREFIXES.items():
        if text.startswith(alias):
            text = prefix + text[len(alias) :]
    return text if text.startswith(("metrics.", "params.", "tags.")) else ""


def _field_value(run: RunRecord, name: str) -> object:
    kind, _, key = name.partition(".")
    if kind == "metrics":
        summary = run.metrics.get(key)
        return summary.get("last") if isinstance(summary, dict) else "—"
    return (run.params if kind == "params" else run.tags).get(key, "—")


class _RunEnded(Exception):
    """Raised from ``runs watch``'s subscription callback: the run had ended already (its status)."""


def load_config_file(path: str) -> dict[str, object]:
    """A config from a file (``-`` for stdin): JSON, YAML (needs PyYAML: ``assay-sdk[yaml]``)
    or an argparse dump (``Namespace(lr=0.01, epochs=10)``, what ``print(args)`` writes)."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    stripped = text.strip()
    if stripped.startswith("Namespace("):
        tree = ast.parse(stripped, mode="eval").body
        if not isinstance(tree, ast.Call) or tree.args:
            raise ConfigurationError(f"{path}: not an argparse dump (Namespace(key=value, ...)).")
        try:
            out: dict[str, object] = {}
            for keyword in tree.keywords:
                if keyword.arg is None:  # **{'a.b': 1}: how a Namespace writes keys that are not names
                    out.update({str(k): v for k, v in dict(ast.literal_eval(keyword.value)).items()})
                else:
                    out[keyword.arg] = ast.literal_eval(keyword.value)
            return out
        except (ValueError, TypeError):
            raise ConfigurationError(f"{path}: an argparse dump may hold only literal values.") from None
    try:
        loaded = json.loads(stripped)
    except ValueError:
        try:
            import yaml
        except ImportError:
            raise ConfigurationError(
                f"{path} is not JSON; for YAML install PyYAML (pip install 'assay-sdk[yaml]')."
            ) from None
        try:
            loaded = yaml.safe_load(stripped)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{path}: neither JSON nor valid YAML ({exc.__class__.__name__}).") from None
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"{path}: the config must be an object (key: value), not {type(loaded).__name__}.")
    return loaded


def cmd_tried(args: argparse.Namespace) -> int:
    """Exit 0 when an identical run exists, 1 when none, 2 on an error."""
    project = args.project or env.get(env.PROJECT)
    if not project:
        print("assay: error: which project? pass -p team/project or set ASSAY_PROJECT.", file=sys.stderr)
        return 2
    try:
        config = load_config_file(args.config)
        with Client.from_env(args.url) as client:
            answer = client.tried(project, config)
    except (OSError, AssayError, SyntaxError) as exc:
        print(f"assay: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer, indent=1))
    else:
        print(tried.describe(answer) or f"not tried yet in {project}, and no run differs in only one or two keys.")
    return 0 if answer.get("identical") else 1


def cmd_runs_watch(args: argparse.Namespace) -> int:
    """Print a run's metrics as they are logged, until it ends (or Ctrl-C)."""
    server = env.resolve_url(args.url)
    if not server:
        return _err("which server? set ASSAY_URL or run `assay login`.")
    topic = f"run:{args.run_id}"

    def subscribed(seq: int, resumed: bool) -> None:
        if resumed:
            print(f"reconnected; resuming after event {seq}", file=sys.stderr, flush=True)
            return
        # Asked once subscribed, so an end that comes after this answer still arrives as an event.
        with Api(args.url) as api:
            status = api.run(args.run_id).status
        if status in watch.TERMINAL:
            raise _RunEnded(status)
        print(f"watching {topic} (Ctrl-C to stop)", file=sys.stderr, flush=True)

    try:
        for message in watch.follow(server, env.resolve_token(None), topic, on_subscribed=subscribed):
            if args.json:
                print(json.dumps(message), flush=True)
            else:
                for line in watch.format_event(message):
                    print(line, flush=True)
            if message.get("event") == "run.updated" and message["data"].get("status") in watch.TERMINAL:
                return 0
    except _RunEnded as ended:
        print(f"{topic} has already ended", file=sys.stderr, flush=True)
        if not args.json:
            print(f"status: {ended}", flush=True)
        return 0
    except KeyboardInterrupt:
        return 130
    return 0


def cmd_artifacts_list(args: argparse.Namespace) -> int:
    with Api(args.url) as api:
        items = api.client.list_artifacts(args.run_id, path=args.path)
    if args.json:
        print(json.dumps(items, indent=1))
        return 0
    if not items:
        print(f"No artifacts in run {args.run_id}.")
        return 0
    for item in items:
        flag = "  UNSAFE PICKLE" if (item.get("findings") or {}).get("unsafe") else ""
        print(f"{item.get('status', '?'):<10} {_size(item.get('size')):>10}  {item.get('path')}{flag}")
    return 0


def cmd_artifacts_download(args: argparse.Namespace) -> int:
    with Api(args.url) as api:
        written = download(api.client, args.run_id, Path(args.output), args.path)
    for path in written:
        print(path)
    return 0


def _size(value: object) -> str:
    if not isinstance(value, int):
        return "?"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cmd_models_diff(args: argparse.Namespace) -> int:
    result = registry.diff(args.a, args.b, url=args.url)
    print(json.dumps(result, indent=1) if args.json else registry.format_diff(result))
    return 0


def cmd_models_alias(args: argparse.Namespace) -> int:
    version = registry.set_alias(args.ref, args.alias, reason=args.reason or "", url=args.url)
    print(f"{args.alias} → {version.model} v{version.number} ({version.content_hash[:12]})")
    return 0


def cmd_review_open(args: argparse.Namespace) -> int:
    opened = reviews.open_request(
        args.ref,
        into=args.into,
        title=args.title,
        description=args.message or "",
        reviewers=args.reviewer or [],
        url=args.url,
    )
    print(f"#{opened.number} {opened.title}: {opened.model}@{opened.alias} → v{opened.version}\n{opened.url}")
    if opened.unreachable_mentions:
        names = ", ".join("@" + n for n in opened.unreachable_mentions)
        print(f"Nobody was notified for {names}: no one by that name may see the project.", file=sys.stderr)
    return 0


def cmd_review_list(args: argparse.Namespace) -> int:
    project = args.project or env.get(env.PROJECT) or ""
    for item in reviews.list_requests(project, state=args.state, url=args.url):
        print(f"#{item.number}\t{item.status}\t{item.model}@{item.alias} → v{item.version}\t{item.title}")
    return 0


def cmd_review_verdict(args: argparse.Namespace) -> int:
    verdict = {"approve": "approve", "request-changes": "request_changes"}[args.review_command]
    where, number = reviews.parse_request_ref(args.ref, args.project)
    review = reviews.submit_review(args.ref, verdict, body=args.message or "", project=args.project, url=args.url)
    done = "approved" if verdict == "approve" else "asked for changes on"
    print(f"{review.get('author') or 'you'} {done} {where}#{number} (v{review.get('version')})")
    return 0


def cmd_review_comment(args: argparse.Namespace) -> int:
    where, number = reviews.parse_request_ref(args.ref, args.project)
    comment = reviews.comment(args.ref, args.message or "", project=args.project, url=args.url)
    print(f"{comment.get('author') or 'you'} commented on {where}#{number}")
    for name in comment.get("unreachable_mentions") or []:
        print(f"Nobody was notified for @{name}: no one by that name may see the project.", file=sys.stderr)
    return 0


def cmd_review_merge(args: argparse.Namespace) -> int:
    merged = reviews.merge(args.ref, reason=args.reason, bypass=args.bypass, project=args.project, url=args.url)
    print(f"merged #{merged.number}: {merged.model}@{merged.alias} → v{merged.version}\n{merged.url}")
    return 0


def _project_arg(args: argparse.Namespace) -> str:
    project = args.project or env.get(env.PROJECT) or ""
    if project.count("/") != 1:
        raise UsageError("--project team/project (or ASSAY_PROJECT) is required.")
    return project


def cmd_webhooks_list(args: argparse.Namespace) -> int:
    project = _project_arg(args)
    with Api(args.url) as api:
        items = api.client.list_webhooks(project)
    if args.json:
        print(json.dumps(items, indent=1))
        return 0
    if not items:
        print(f"No webhooks in {project}.")
        return 0
    for item in items:
        state = "enabled" if item.get("enabled") else "disabled"
        events = ",".join(str(e) for e in item.get("events") or [])
        print(f"{item.get('id')}\t{state}\t{item.get('format')}\t{item.get('name')}\t{item.get('url')}\t{events}")
    return 0


def cmd_webhooks_test(args: argparse.Namespace) -> int:
    project = _project_arg(args)
    with Api(args.url) as api:
        delivery = api.client.test_webhook(project, args.webhook_id)
    print(f"Test event queued: delivery {delivery.get('id')} ({delivery.get('state')}).")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    manifest = registry.reproduce(args.ref, args.out, repo=args.repo, url=args.url)
    print(
        f"Wrote {args.out}/reproduce.sh for {manifest.get('model')} v{manifest.get('version')}: run it with `sh {args.out}/reproduce.sh`."
    )
    for problem in manifest.get("problems") or []:
        print(f"cannot be reproduced: {problem}", file=sys.stderr)
    for warning in manifest.get("warnings") or []:
        print(f"note: {warning}", file=sys.stderr)
    return 0 if manifest.get("reproducible") else 2


def cmd_pull(args: argparse.Namespace) -> int:
    path = registry.pull(args.ref, args.out, url=args.url)
    print(f"{path} (sha256 checked) and {args.out}/manifest.json")
    return 0


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
    runs_list.add_argument(
        "--filter", "-f", help="query language, e.g. \"metrics.acc > 0.8 and params.optimizer = 'adam'\""
    )
    runs_list.add_argument("--order-by", action="append", dest="order_by", help='e.g. "metrics.acc DESC" (repeatable)')
    runs_list.add_argument("--limit", "-n", type=int, default=20)
    runs_list.add_argument("--json", action="store_true", help="print the server's JSON")
    runs_list.add_argument("--url")
    runs_list.set_defaults(func=cmd_runs_list)
    runs_watch = runs_commands.add_parser("watch", help="print a run's metrics as they arrive (needs assay-sdk[live])")
    runs_watch.add_argument("run_id")
    runs_watch.add_argument("--json", action="store_true", help="one JSON frame per line")
    runs_watch.add_argument("--url")
    runs_watch.set_defaults(func=cmd_runs_watch)

    artifacts = commands.add_parser("artifacts", help="list and download a run's artifacts")
    artifacts_commands = artifacts.add_subparsers(dest="artifacts_command", required=True)
    artifacts_list = artifacts_commands.add_parser("list", help="a run's artifacts with status and size")
    artifacts_list.add_argument("run_id")
    artifacts_list.add_argument("path", nargs="?", help="a file or folder of the run")
    artifacts_list.add_argument("--json", action="store_true", help="print the server's JSON")
    artifacts_list.add_argument("--url")
    artifacts_list.set_defaults(func=cmd_artifacts_list)
    artifacts_download = artifacts_commands.add_parser(
        "download", help="download a run's artifacts (checked against their sha256)"
    )
    artifacts_download.add_argument("run_id")
    artifacts_download.add_argument("path", nargs="?", help="a file or folder of the run (default: everything)")
    artifacts_download.add_argument("-o", "--output", default=".", help="target folder (default: .)")
    artifacts_download.add_argument("--url")
    artifacts_download.set_defaults(func=cmd_artifacts_download)

    models = commands.add_parser("models", help="the model registry")
    models_commands = models.add_subparsers(dest="models_command", required=True)
    models_diff = models_commands.add_parser(
        "diff", help="diff two versions: assay models diff fraud@production fraud@v7"
    )
    models_diff.add_argument("a", help="from: team/project/model@ref or model@ref (ASSAY_PROJECT)")
    models_diff.add_argument("b", help="to: a reference to the same model")
    models_diff.add_argument("--json", action="store_true", help="print the server's JSON")
    models_diff.add_argument("--url")
    models_diff.set_defaults(func=cmd_models_diff)
    models_alias = models_commands.add_parser("alias", help="point an unprotected alias at a version")
    models_alias.add_argument("ref", help="the version: team/project/model@ref or model@ref")
    models_alias.add_argument("alias", help="e.g. staging (protected aliases move only through review requests)")
    models_alias.add_argument("--reason", "-m")
    models_alias.add_argument("--url")
    models_alias.set_defaults(func=cmd_models_alias)

    review = commands.add_parser("review", help="review requests: move an alias through a review")
    review_commands = review.add_subparsers(dest="review_command", required=True)
    review_open = review_commands.add_parser(
        "open", help="assay review open fraud-detector@v7 --into production --reviewer @ana"
    )
    review_open.add_argument("ref", help="the candidate: team/project/model@vN or model@vN (ASSAY_PROJECT)")
    review_open.add_argument("--into", required=True, help="the alias to move, e.g. production")
    review_open.add_argument("--reviewer", action="append", help="@user or team:name (repeatable)")
    review_open.add_argument("--title")
    review_open.add_argument("--message", "-m", help="description (markdown; @mentions notify)")
    review_open.add_argument("--url")
    review_open.set_defaults(func=cmd_review_open)
    review_list = review_commands.add_parser("list", help="review requests of a project")
    review_list.add_argument("--project", "-p", help="team/project (default: ASSAY_PROJECT)")
    review_list.add_argument("--state", default="open", choices=["open", "closed", "merged", "all"])
    review_list.add_argument("--url")
    review_list.set_defaults(func=cmd_review_list)
    ref_help = "the request: N, #N or team/project#N"
    for name, text in (("approve", "approve a request"), ("request-changes", "ask for changes before a merge")):
        verdict = review_commands.add_parser(name, help=text)
        verdict.add_argument("ref", help=ref_help)
        verdict.add_argument("--message", "-m", help="what to say with it (markdown; @mentions notify)")
        verdict.add_argument("--project", "-p", help="team/project (default: ASSAY_PROJECT)")
        verdict.add_argument("--url")
        verdict.set_defaults(func=cmd_review_verdict)
    review_comment = review_commands.add_parser("comment", help="comment on a request's conversation")
    review_comment.add_argument("ref", help=ref_help)
    review_comment.add_argument("--message", "-m", required=True, help="the comment (markdown; @mentions notify)")
    review_comment.add_argument("--project", "-p", help="team/project (default: ASSAY_PROJECT)")
    review_comment.add_argument("--url")
    review_comment.set_defaults(func=cmd_review_comment)
    review_merge = review_commands.add_parser("merge", help="move the alias to the candidate (maintainers)")
    review_merge.add_argument("ref", help=ref_help)
    review_merge.add_argument("--reason", help="why (required with --bypass)")
    review_merge.add_argument("--bypass", action="store_true", help="merge despite failing checks (admins)")
    review_merge.add_argument("--project", "-p", help="team/project (default: ASSAY_PROJECT)")
    review_merge.add_argument("--url")
    review_merge.set_defaults(func=cmd_review_merge)

    webhooks = commands.add_parser("webhooks", help="a project's webhooks (project admins)")
    webhooks_commands = webhooks.add_subparsers(dest="webhooks_command", required=True)
    webhooks_list = webhooks_commands.add_parser("list", help="webhooks of a project")
    webhooks_list.add_argument("--project", help="team/project (default: ASSAY_PROJECT)")
    webhooks_list.add_argument("--json", action="store_true")
    webhooks_list.add_argument("--url")
    webhooks_list.set_defaults(func=cmd_webhooks_list)
    webhooks_test = webhooks_commands.add_parser("test", help="send a test event to a webhook")
    webhooks_test.add_argument("webhook_id")
    webhooks_test.add_argument("--project", help="team/project (default: ASSAY_PROJECT)")
    webhooks_test.add_argument("--url")
    webhooks_test.set_defaults(func=cmd_webhooks_test)

    reproduce_cmd = commands.add_parser("reproduce", help="write a script that rebuilds a model version, and verify.py")
    reproduce_cmd.add_argument("ref", help="team/project/model@ref or model@ref")
    reproduce_cmd.add_argument("-o", "--out", required=True, help="directory to write into")
    reproduce_cmd.add_argument("--repo", help="clone from here instead of the recorded git remote")
    reproduce_cmd.add_argument("--url")
    reproduce_cmd.set_defaults(func=cmd_reproduce)

    tried_cmd = commands.add_parser(
        "tried", help="has this configuration run in the project? (exit 0: yes, 1: no, 2: error)"
    )
    tried_cmd.add_argument("config", help="a JSON or YAML file, or an argparse dump; - for stdin")
    tried_cmd.add_argument("-p", "--project", help="team/project (default ASSAY_PROJECT)")
    tried_cmd.add_argument("--json", action="store_true", help="print the server's whole answer as JSON")
    tried_cmd.add_argument("--url")
    tried_cmd.set_defaults(func=cmd_tried)

    pull_cmd = commands.add_parser("pull", help="download a version's binary and manifest.json")
    pull_cmd.add_argument("ref", help="team/project/model@ref or model@ref")
    pull_cmd.add_argument("-o", "--out", required=True, help="directory to write into")
    pull_cmd.add_argument("--url")
    pull_cmd.set_defaults(func=cmd_pull)

    importers.add_parser(commands)  # assay import mlflow|wandb|neptune
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
