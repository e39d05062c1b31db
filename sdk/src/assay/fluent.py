"""``assay.init()`` and the module-level functions that act on the active run."""

from __future__ import annotations

import atexit
import os
import re
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Callable

from assay import env, tried
from assay.capture import code_info, environment_info
from assay.client import Client, normalize_url
from assay.errors import (
    AssayError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    ProjectNotFoundError,
    ServerUnreachableError,
    UsageError,
    ValidationError,
)
from assay.run import Run, Terminated, config_to_dict, utc_now_iso
from assay.spool import SpoolDir
from assay.transport import Transport

PROJECT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}/[a-z0-9][a-z0-9_-]{0,63}$")
DEFAULT_SYSTEM_METRICS_INTERVAL = 10.0
# Seconds a SIGTERM'd job spends sending what is queued before spooling the rest (Slurm's
# KillWait and Kubernetes' grace period are 30 s by default: this leaves room for the job's own clean-up).
TERM_GRACE_SECONDS = 10.0

_active: Run | None = None
_unfinished: list[Run] = []
_hooks_installed = False
_uncaught: BaseException | None = None
_state_lock = threading.Lock()


def _printer(silent: bool) -> Callable[[str], None]:
    def say(message: str) -> None:
        if not silent:
            print(f"assay: {message}", file=sys.stderr, flush=True)

    return say


# --- init ---------------------------------------------------------------------------------------


def init(
    project: str | None = None,
    *,
    experiment: str | None = None,
    name: str | None = None,
    config: Any = None,
    tags: Mapping[str, Any] | None = None,
    notes: str | None = None,
    resume: str | None = None,
    mode: str | None = None,
    url: str | None = None,
    token: str | None = None,
    capture_code: bool | None = None,
    capture_environment: bool | None = None,
    system_metrics: float | bool | None = None,
    retry_timeout: float | None = None,
    silent: bool | None = None,
    if_tried: str | None = None,
) -> Run:
    """Start (or, with ``resume=RUN_ID``, continue) a run and make it the active run.

    Online, the server is asked at once, so a wrong URL, a bad token or a project you
    cannot reach raises here with a one-line message. See the README for every argument.

    ``if_tried`` (default ``ASSAY_IF_TRIED`` or ``"warn"``), online with a config only:
    ``"warn"`` asks the server in a background thread whether this configuration already
    ran in the project and prints one line (the run starts at once either way);
    ``"skip"`` asks first (bounded by ``ASSAY_TRIED_TIMEOUT``, 3 s) and, when an identical
    run exists, starts no run and returns a run in ``disabled`` mode whose ``skipped`` is
    True and ``tried`` holds the server's answer (if the server cannot tell in time, the
    run starts); ``"ignore"`` asks nothing.
    """
    global _active
    silent = env.flag(env.SILENT, False) if silent is None else silent
    say = _printer(silent)
    mode = (mode or env.get(env.MODE) or "online").strip().lower()
    if mode not in env.MODES:
        raise ConfigurationError(f"mode must be one of {', '.join(env.MODES)} (ASSAY_MODE), not {mode!r}.")
    if capture_code is None:
        capture_code = env.flag(env.CAPTURE_CODE, True)
    if capture_environment is None:
        capture_environment = env.flag(env.CAPTURE_ENVIRONMENT, True)
    if system_metrics is None or system_metrics is True:
        interval = env.number(env.SYSTEM_METRICS, DEFAULT_SYSTEM_METRICS_INTERVAL)
    else:
        interval = float(system_metrics)
    if retry_timeout is None:
        retry_timeout = env.number(env.RETRY_TIMEOUT, 30.0)
    if_tried = (if_tried or env.get(env.IF_TRIED) or "warn").strip().lower()
    if if_tried not in tried.IF_TRIED:
        raise ConfigurationError(
            f"if_tried must be one of {', '.join(tried.IF_TRIED)} (ASSAY_IF_TRIED), not {if_tried!r}."
        )

    previous = _active
    if previous is not None and not previous.finished:
        say(f"finishing the previous run {previous.name} before starting a new one.")
        previous.finish()

    config_dict = config_to_dict(config)
    tag_values = {str(k): v if isinstance(v, str) else str(v) for k, v in (tags or {}).items()}

    if mode == "disabled":
        run = Run(
            run_id=f"disabled-{uuid.uuid4().hex[:8]}",
            name=name or "disabled",
            url=None,
            project=project or "",
            experiment=experiment or "default",
            mode=mode,
            config=config_dict,
            client=None,
            transport=None,
            spool_factory=None,
            say=say,
        )
        return _activate(run)

    if resume is not None:
        if mode == "offline":
            raise ConfigurationError("resume needs the server: it cannot be combined with mode='offline'.")
        run = _resume(
            resume,
            url=url,
            token=token,
            config=config_dict,
            tags=tag_values,
            retry_timeout=retry_timeout,
            interval=interval,
            say=say,
        )
        return _activate(run)

    project = (project or env.get(env.PROJECT) or "").strip().lower()
    if not project:
        raise ConfigurationError('No project: pass assay.init(project="team/project") or set ASSAY_PROJECT.')
    if not PROJECT_PATTERN.match(project):
        raise ConfigurationError(
            f'project must be "team/project" (lower-case letters, digits, "-" and "_"), not {project!r}.'
        )
    experiment = experiment or env.get(env.EXPERIMENT) or "default"
    info: dict[str, Any] = {}
    if capture_code:
        info["code"] = code_info()
    if capture_environment:
        info["environment"] = environment_info()
    create: dict[str, Any] = {
        "project": project,
        "experiment": experiment,
        "name": name,
        "config": config_dict,
        "tags": tag_values,
        "notes": notes or "",
        "info": info,
        "start_time": utc_now_iso(),
        # Makes creation idempotent: a retried or re-synced create returns the same run.
        "client_id": uuid.uuid4().hex,
    }

    if mode == "offline":
        local_id = f"offline-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        run_name = name or local_id
        server = env.resolve_url(url)
        spool = SpoolDir.create(
            local_id,
            {
                "local_id": local_id,
                "run_id": None,
                "url": normalize_url(server) if server else None,
                "name": run_name,
                "project": project,
                "create": create,
                "finish": None,
            },
        )
        spool.lock()
        transport = Transport(client=None, run_id=None, spool_factory=lambda: spool, offline=True, warn=say)
        run = Run(
            run_id=local_id,
            name=run_name,
            url=None,
            project=project,
            experiment=experiment,
            mode=mode,
            config=config_dict,
            client=None,
            transport=transport,
            spool_factory=lambda: spool,
            system_metrics=interval,
            say=say,
        )
        say(f"offline run {run_name}: saving to {spool.path}")
        return _activate(run)

    client = _connect(url, token)
    token_used = env.resolve_token(token)
    if if_tried == "skip" and config_dict:
        known = tried.ask_bounded(client.url, token_used, project, config_dict)
        if known is not None and known.get("identical"):
            client.close()
            say(f"skipped: {tried.describe(known)}")
            skipped = Run(
                run_id=f"skipped-{uuid.uuid4().hex[:8]}",
                name=name or "skipped",
                url=None,
                project=project,
                experiment=experiment,
                mode="disabled",
                config=config_dict,
                client=None,
                transport=None,
                spool_factory=None,
                say=say,
            )
            skipped.skipped = True
            skipped.tried = known
            return _activate(skipped)
    try:
        answer = client.create_run(create)
    except AssayError as exc:
        client.close()
        raise _explain(exc, client.url, project) from None
    run_id = str(answer["id"])
    server_url = client.url
    meta = {"local_id": run_id, "run_id": run_id, "url": server_url, "name": answer.get("name"), "project": project}
    transport = Transport(
        client=client,
        run_id=run_id,
        spool_factory=lambda: SpoolDir.create(run_id, meta),
        retry_timeout=retry_timeout,
        warn=say,
    )
    run = Run(
        run_id=run_id,
        name=str(answer.get("name") or run_id),
        url=answer.get("url") if isinstance(answer.get("url"), str) else None,
        project=project,
        experiment=experiment,
        mode=mode,
        config=config_dict,
        client=client,
        transport=transport,
        spool_factory=lambda: SpoolDir.create(run_id, meta),
        system_metrics=interval,
        say=say,
    )
    say(f"run {run.name}: {run.url}")
    if if_tried == "warn" and config_dict:
        # Off the training thread: the line comes when the server answers, or never.
        tried.warn_in_background(server_url, token_used, project, config_dict, exclude_run=run_id, say=say)
    return _activate(run)


def _connect(url: str | None, token: str | None) -> Client:
    server = env.resolve_url(url)
    if not server:
        raise ConfigurationError("No Assay server: set ASSAY_URL (e.g. http://127.0.0.1:8000) or run `assay login`.")
    secret = env.resolve_token(token)
    if not secret:
        raise ConfigurationError("No API token: set ASSAY_TOKEN or run `assay login`.")
    try:
        client = Client(server, secret)
    except AssayError as exc:
        raise ConfigurationError(str(exc)) from None
    # GET /me/ is safe to retry and tells a wrong URL from a bad token before anything is written.
    for attempt in range(3):
        try:
            client.me()
            return client
        except ServerUnreachableError as exc:
            if attempt == 2:
                client.close()
                raise ServerUnreachableError(str(exc)) from None
            time.sleep(0.3 * (attempt + 1))
        except NotFoundError:
            client.close()
            raise ConfigurationError(
                f"{client.url} has no Assay API (GET /api/v1/me/ is 404): is ASSAY_URL the server's address?"
            ) from None
        except AssayError as exc:
            client.close()
            raise _explain(exc, client.url, None) from None
    raise AssayError("unreachable")  # pragma: no cover


def _explain(exc: AssayError, server: str, project: str | None) -> AssayError:
    """One line that says what to fix, instead of HTTP internals."""
    if isinstance(exc, AuthenticationError):
        return AuthenticationError(
            f"The Assay server at {server} rejected the token ({exc.message}). "
            "Set ASSAY_TOKEN to a valid token or run `assay login`.",
            status=exc.status,
            code=exc.code,
        )
    if isinstance(exc, NotFoundError) and project:
        return ProjectNotFoundError(
            f"Project {project!r} not found at {server} ({exc.message}). Check the team and project in "
            "project= / ASSAY_PROJECT: the team must exist and you must belong to it.",
            status=exc.status,
            code=exc.code,
            field=exc.field,
        )
    if isinstance(exc, PermissionDeniedError) and project:
        return PermissionDeniedError(
            f"No permission to log runs in {project!r} ({exc.message}). Ask a project admin for the writer role.",
            status=exc.status,
            code=exc.code,
            field=exc.field,
        )
    if isinstance(exc, ValidationError):
        where = f" (field {exc.field})" if exc.field else ""
        return ValidationError(
            f"The server refused the run{where}: {exc.message}", status=exc.status, code=exc.code, field=exc.field
        )
    return exc


def _resume(
    run_id: str,
    *,
    url: str | None,
    token: str | None,
    config: dict[str, Any],
    tags: dict[str, str],
    retry_timeout: float,
    interval: float,
    say: Callable[[str], None],
) -> Run:
    client = _connect(url, token)
    try:
        existing = client.get_run(run_id)
        update: dict[str, Any] = {"status": "running"}
        if config:
            update["config"] = config
        client.update_run(run_id, update)
        summaries = client.metric_summaries(run_id)
    except NotFoundError:
        client.close()
        raise NotFoundError(
            f"Run {run_id!r} not found at {client.url} (or not visible with this token); check resume=.",
            status=404,
            code="not_found",
        ) from None
    except AssayError as exc:
        client.close()
        raise _explain(exc, client.url, None) from None
    steps = [s.get("last_step") for s in summaries if not str(s.get("key", "")).startswith("system/")]
    next_step = max((s for s in steps if isinstance(s, int)), default=-1) + 1
    meta = {"local_id": run_id, "run_id": run_id, "url": client.url, "name": existing.get("name")}
    transport = Transport(
        client=client,
        run_id=run_id,
        spool_factory=lambda: SpoolDir.create(run_id, meta),
        retry_timeout=retry_timeout,
        warn=say,
    )
    run = Run(
        run_id=run_id,
        name=str(existing.get("name") or run_id),
        url=existing.get("url") if isinstance(existing.get("url"), str) else None,
        project=str(existing.get("project", "")),
        experiment=str(existing.get("experiment", "default")),
        mode="online",
        config={**(existing.get("config") or {}), **config},
        client=client,
        transport=transport,
        spool_factory=lambda: SpoolDir.create(run_id, meta),
        start_step=next_step,
        system_metrics=interval,
        say=say,
    )
    if tags:
        run.set_tags(tags)
    say(f"resumed run {run.name} at step {next_step}: {run.url}")
    return run


# --- the active run, atexit and uncaught exceptions ------------------------------------------------


def _activate(run: Run) -> Run:
    global _active
    with _state_lock:
        _install_hooks()
        _active = run
        _unfinished.append(run)
    run._on_finish.append(_forget)
    return run


def _forget(run: Run) -> None:
    global _active
    with _state_lock:
        if run in _unfinished:
            _unfinished.remove(run)
        if _active is run:
            _active = None


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        global _uncaught
        _uncaught = value
        previous(kind, value, tb)

    sys.excepthook = excepthook
    atexit.register(_finish_at_exit)
    _install_sigterm_handler()


def _install_sigterm_handler() -> None:
    """SIGTERM (what schedulers and ``kill`` send) skips atexit: without a handler the queue
    would be lost and the run left ``running``. Only the default disposition is replaced
    (a handler the script installed is kept), and only from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # pragma: no cover - embedded interpreters without signals
        return


def _on_sigterm(signum: int, frame: Any) -> None:
    """Finish every open run as ``killed`` (what could not be sent in a few seconds is
    spooled for ``assay sync``), then die of SIGTERM as the process would have."""
    stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
    for run in list(_unfinished):
        if run.finished:
            continue
        try:
            run.finish("killed", error=Terminated("SIGTERM", stack), timeout=TERM_GRACE_SECONDS)
        except Exception as exc:  # noqa: BLE001 - dying anyway: report and carry on
            print(f"assay: could not finish run {run.id}: {exc}", file=sys.stderr)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _finish_at_exit() -> None:
    """Finish every run the script left open: failed (or killed on Ctrl-C) after an uncaught
    exception, finished otherwise."""
    for run in list(_unfinished):
        if run.finished:
            continue
        try:
            if _uncaught is None:
                run.finish()
            elif isinstance(_uncaught, KeyboardInterrupt):
                run.finish("killed", error=_uncaught)
            else:
                run.finish("failed", error=_uncaught)
        except Exception as exc:  # noqa: BLE001 - at exit, report and carry on
            print(f"assay: could not finish run {run.id}: {exc}", file=sys.stderr)


def active_run() -> Run | None:
    """The run ``assay.init()`` started last, until it finishes."""
    return _active


def _require_run() -> Run:
    if _active is None:
        raise UsageError("No active run: call assay.init() before assay.log().")
    return _active


def log(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """``run.log`` on the active run."""
    _require_run().log(metrics, step=step)


def log_params(params: Mapping[str, Any]) -> None:
    _require_run().log_params(params)


def set_tags(tags: Mapping[str, Any]) -> None:
    _require_run().set_tags(tags)


def log_confusion_matrix(
    y_true: Any, y_pred: Any, labels: list[Any] | None = None, name: str = "confusion_matrix", step: int | None = None
) -> list[list[int]]:
    return _require_run().log_confusion_matrix(y_true, y_pred, labels=labels, name=name, step=step)


def log_artifact(path: str | os.PathLike[str], name: str | None = None, kind: str = "file") -> None:
    """``run.log_artifact`` on the active run."""
    _require_run().log_artifact(path, name, kind)


def log_model(path: str | os.PathLike[str], name: str | None = None) -> None:
    """``run.log_model`` on the active run."""
    _require_run().log_model(path, name)


def log_dataset(
    name: str, path: Any = None, uri: str | None = None, digest: str | None = None, rows: int | None = None
) -> dict[str, Any]:
    """``run.log_dataset`` on the active run."""
    return _require_run().log_dataset(name, path=path, uri=uri, digest=digest, rows=rows)


def register_model(name: str, artifact: str, **kwargs: Any) -> Any:
    """``run.register_model`` on the active run."""
    return _require_run().register_model(name, artifact, **kwargs)


def finish(status: str = "finished", *, timeout: float | None = None) -> None:
    """Finish the active run (nothing happens if there is none)."""
    if _active is not None:
        _active.finish(status, timeout=timeout)
