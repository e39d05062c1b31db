"""A run as the training script sees it: log, params, tags, summary, figures, finish."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import enum
import math
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path, PurePath
from typing import Any, Callable

from assay import env
from assay.artifacts import KINDS, LocalFile, Uploader, UploadStats, collect
from assay.capture import SystemMonitor, peak_memory_mb
from assay.client import Client
from assay.errors import AssayError, UsageError
from assay.registry import dataset_fingerprint, register
from assay.spool import SpoolDir
from assay.transport import Transport

_now = time.time
MAX_STEP = 2**53 - 1
MAX_ERROR_MESSAGE = 2_000
MAX_TRACEBACK = 20_000


def utc_now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _check_step(step: Any) -> int:
    if isinstance(step, bool):
        raise UsageError("step must be an integer ≥ 0, not a bool.")
    try:
        value = int(step)
    except (TypeError, ValueError):
        raise UsageError(f"step must be an integer ≥ 0, got {step!r}.") from None
    if value != step or not 0 <= value <= MAX_STEP:
        raise UsageError(f"step must be an integer between 0 and 2**53-1, got {step!r}.")
    return value


def flatten(values: Mapping[Any, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name, sep))
        else:
            out[name] = value
    return out


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, argparse.Namespace):
        return {str(k): _jsonable(v) for k, v in vars(value).items()}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v) for v in items]
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        try:
            return _jsonable(tolist())
        except (TypeError, ValueError):
            pass
    return str(value)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dict, ``argparse.Namespace``, dataclass instance or any mapping → a JSON-ready dict."""
    if config is None:
        return {}
    if not (
        isinstance(config, (Mapping, argparse.Namespace))
        or (dataclasses.is_dataclass(config) and not isinstance(config, type))
    ):
        raise UsageError(
            f"config must be a dict, an argparse.Namespace or a dataclass instance, not {type(config).__name__}."
        )
    result = _jsonable(config)
    assert isinstance(result, dict)
    return result


class Summary:
    """``run.summary[key] = value`` logs ``key`` at the run's current step.

    Assay keeps no separate summary store: the run's summary metrics are the last/min/max
    the server keeps for every metric key, so a summary value is a metric point (at the
    last step logged, without advancing it). Reading returns what this process set.
    """

    def __init__(self, run: Run) -> None:
        self._run = run
        self._values: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def items(self) -> Iterable[tuple[str, Any]]:
        return self._values.items()

    def update(self, values: Mapping[str, Any]) -> None:
        self._run._log_at_current_step(dict(values))
        self._values.update(values)

    def __repr__(self) -> str:
        return f"Summary({self._values!r})"


class Run:
    """One training run. Create it with ``assay.init()``; do not construct it directly.

    ``id`` is the server's run id (``offline-…`` for an offline run until ``assay sync``),
    ``url`` its page in the dashboard (None offline).
    """

    def __init__(
        self,
        *,
        run_id: str,
        name: str,
        url: str | None,
        project: str,
        experiment: str,
        mode: str,
        config: dict[str, Any],
        client: Client | None,
        transport: Transport | None,
        spool_factory: Callable[[], SpoolDir] | None,
        start_step: int = 0,
        system_metrics: float = 0.0,
        say: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.id = run_id
        self.name = name
        self.url = url
        self.project = project
        self.experiment = experiment
        self.mode = mode
        self.config = config
        # assay.init(if_tried="skip") found this configuration already ran: no run was
        # started, and ``tried`` holds the server's answer (identical runs).
        self.skipped = False
        self.tried: dict[str, Any] | None = None
        self.summary = Summary(self)
        self._client = client
        self._transport = transport
        self._spool_factory = spool_factory
        self._step = start_step
        self._params: dict[str, str] = {}
        self._say = say
        self._started = _now()
        self._started_iso = utc_now_iso()
        self._finished = False
        self._lock = threading.Lock()
        self._monitor: SystemMonitor | None = None
        if transport is not None and system_metrics > 0:
            self._monitor = SystemMonitor(system_metrics, transport.put_metrics)
            self._monitor.start()
        self._on_finish: list[Callable[[Run], None]] = []
        self._uploader: Uploader | None = None
        # Where artifacts that could not be uploaded wait for `assay sync` (the run's spool).
        self._artifact_spool: SpoolDir | None = None
        self._artifact_failure = ""

    def __repr__(self) -> str:
        return f"<assay.Run {self.project}/{self.name} id={self.id} mode={self.mode}>"

    # --- logging ----------------------------------------------------------------------------

    @property
    def step(self) -> int:
        """The next step ``log`` uses when called without ``step``."""
        return self._step

    @property
    def finished(self) -> bool:
        return self._finished

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Queue metric values (numbers; nested dicts become ``a/b`` keys) at ``step``.

        Without ``step`` the run's step is used and then advanced by one; with it, later
        calls without ``step`` continue after the highest step seen. Costs about a
        microsecond: the values are copied and sent by a background thread.
        """
        if self._finished:
            raise UsageError(f"run {self.id} is finished; call assay.init() for a new run.")
        if step is None:
            step = self._step
            self._step = step + 1
        else:
            if type(step) is not int or step < 0 or step > MAX_STEP:
                step = _check_step(step)
            if step >= self._step:
                self._step = step + 1
        if type(metrics) is not dict and not isinstance(metrics, Mapping):
            raise UsageError(f"run.log takes a dict of metric name → number, got {type(metrics).__name__}.")
        if self._transport is not None:
            self._transport.put_metrics(step, _now(), metrics.copy() if type(metrics) is dict else dict(metrics))

    def _log_at_current_step(self, metrics: dict[str, Any]) -> None:
        if self._finished:
            raise UsageError(f"run {self.id} is finished.")
        if self._transport is not None:
            self._transport.put_metrics(max(self._step - 1, 0), _now(), metrics)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record hyper-parameters (stored as strings; nested dicts become ``a.b`` keys).

        Params are immutable: setting a key again to another value is refused with a
        warning and the first value stays.
        """
        if self._finished:
            raise UsageError(f"run {self.id} is finished.")
        fresh: dict[str, str] = {}
        for key, value in flatten(params).items():
            text = _as_text(value)
            old = self._params.get(key)
            if old is not None and old != text:
                self._say(f"param {key!r} is already {old!r}; params are immutable, {text!r} was not recorded.")
                continue
            self._params[key] = text
            fresh[key] = text
        if fresh and self._transport is not None:
            self._transport.put_params(fresh)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (string values; a tag set again is overwritten)."""
        if self._finished:
            raise UsageError(f"run {self.id} is finished.")
        values = {key: _as_text(value) for key, value in flatten(tags).items()}
        if values and self._transport is not None:
            self._transport.put_tags(values)

    def update_config(self, config: Any) -> None:
        """Merge more keys into the run's config (same forms as ``init(config=…)``)."""
        values = config_to_dict(config)
        self.config.update(values)
        if self._transport is not None:
            self._transport.put_call("update", {"config": values})

    def log_dataset(
        self,
        name: str,
        path: Any = None,
        uri: str | None = None,
        digest: str | None = None,
        rows: int | None = None,
    ) -> dict[str, Any]:
        """Record a dataset fingerprint (``info.datasets[name]``): with ``path`` the sha256
        digest and size of the file or directory are computed here; nothing is uploaded.
        Returns the fingerprint."""
        if self._finished:
            raise UsageError(f"run {self.id} is finished.")
        fingerprint = dataset_fingerprint(name, path=path, uri=uri, digest=digest, rows=rows)
        if self._transport is not None:
            self._transport.put_call("update", {"info": {"datasets": {name: fingerprint}}})
        return fingerprint

    def register_model(
        self,
        name: str,
        artifact: str,
        datasets: list[Any] | None = None,
        parents: list[Any] | None = None,
        aliases: list[str] | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Any:
        """Register the next version of model ``name`` from this run; ``artifact`` is the
        path (or id) of an artifact this run logged (``log_artifact``/``log_model``).
        Everything logged so far (and every artifact upload) is sent first, so the version's snapshot includes it. Returns an ``assay.ModelVersion``
        (``number``, ``content_hash``, ``url``); None when the run is not online."""
        if self.mode != "online" or self._client is None:
            self._say(f"run {self.id} is {self.mode}: model {name!r} was not registered.")
            return None
        self.flush()
        self.wait_for_artifacts()  # the binary must be uploaded before it can be registered
        version = register(
            self._client,
            project=self.project,
            name=name,
            run_id=self.id,
            artifact=artifact,
            datasets=datasets,
            parents=parents,
            aliases=aliases,
            description=description,
            tags=tags,
        )
        self._say(f"registered {version.model} v{version.number}: {version.url}")
        return version

    def log_confusion_matrix(
        self,
        y_true: Iterable[Any],
        y_pred: Iterable[Any],
        labels: list[Any] | None = None,
        name: str = "confusion_matrix",
        step: int | None = None,
    ) -> list[list[int]]:
        """Count (true, predicted) pairs into a matrix (rows: true, columns: predicted) and
        store it as a figure. ``labels`` are either the label values or, when the values
        are integers 0..n-1 that are not themselves labels, the class names. Returns the matrix.
        """
        truth = [_scalar(v) for v in y_true]
        predicted = [_scalar(v) for v in y_pred]
        if len(truth) != len(predicted):
            raise UsageError(f"y_true has {len(truth)} values but y_pred has {len(predicted)}.")
        seen = set(truth) | set(predicted)
        if labels is None:
            values = sorted(seen, key=lambda v: (str(type(v)), v))
            names = [str(v) for v in values]
        else:
            label_list = [_scalar(v) for v in labels]
            if seen <= set(label_list):
                values = label_list
            elif all(isinstance(v, int) and 0 <= v < len(label_list) for v in seen):
                values = list(range(len(label_list)))
            else:
                missing = sorted(map(str, seen - set(label_list)))[:5]
                raise UsageError(f"values not in labels: {', '.join(missing)}.")
            names = [str(v) for v in label_list]
        index = {value: i for i, value in enumerate(values)}
        matrix = [[0] * len(values) for _ in values]
        for t, p in zip(truth, predicted):
            matrix[index[t]][index[p]] += 1
        if step is not None:
            step = _check_step(step)
        if self._finished:
            raise UsageError(f"run {self.id} is finished.")
        if self._transport is not None:
            self._transport.put_call("figure", {"name": name, "labels": names, "matrix": matrix, "step": step})
        return matrix

    # --- artifacts -----------------------------------------------------------------------------

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None, kind: str = "file") -> None:
        """Upload a file, or a directory (every file under it, as one manifest), as an
        artifact of this run, named ``name`` (default: the file or directory name).

        Names are checked now (``ValueError`` for an absolute name, ``..``, control
        characters, more than 1024 characters); hashing and uploading run in the
        background, straight to the object store, parts in parallel, skipped when the
        server already holds the content. ``finish()`` waits for them.

        Offline, the files are copied into the run's spool at the call and ``assay sync``
        uploads them with the rest of the run.
        """
        if self._finished:
            raise UsageError(f"run {self.id} is finished.")
        if kind not in KINDS:
            raise UsageError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}.")
        files = collect(path, name)
        if self.mode == "disabled":
            return
        label = name if name is not None else Path(path).name
        if self.mode == "offline" or self._client is None:
            # Copied into the spool now (a later save to the same path must not change what
            # was logged), uploaded by `assay sync` in order with the run's other requests.
            if self._transport is None:
                return
            entries = self._spool().add_artifact(files)
            self._transport.put_call("artifact", {"kind": kind, "label": label, "files": entries})
            return
        if self._uploader is None:
            self._uploader = Uploader(
                self._client,
                self.id,
                say=self._say,
                progress=not env.flag(env.SILENT, False),
                on_failed=self._keep_for_sync,
            )
        self._uploader.submit(files, kind, label)

    def _keep_for_sync(self, files: list[LocalFile], kind: str, label: str, reason: str) -> None:
        """The uploader gave up on ``files``: copy them into the run's spool, where
        ``assay sync`` uploads them as it does an offline run's artifacts."""
        if self._artifact_spool is None:
            self._artifact_spool = self._spool()
            self._artifact_spool.lock()  # sync leaves a directory alone while its run is alive
        entries = self._artifact_spool.add_artifact(files)
        self._artifact_spool.append_artifact({"kind": kind, "label": label, "files": entries})
        self._artifact_spool.update_meta(uploads_pending=True)
        self._artifact_failure = reason
        self._say(
            f"artifact {label} was not uploaded ({reason}); kept in {self._artifact_spool.path} for `assay sync`."
        )

    def log_model(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        """``log_artifact(path, name, kind="model")``."""
        self.log_artifact(path, name, kind="model")

    def wait_for_artifacts(self, timeout: float | None = None) -> bool:
        """Wait until the artifacts logged so far are uploaded (or failed). True if done."""
        return self._uploader.wait(timeout) if self._uploader is not None else True

    @property
    def artifact_stats(self) -> UploadStats:
        return self._uploader.stats if self._uploader is not None else UploadStats()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything logged so far was sent or spooled."""
        return self._transport.flush(timeout) if self._transport is not None else True

    # --- ending ------------------------------------------------------------------------------

    def finish(
        self,
        status: str = "finished",
        *,
        error: BaseException | None = None,
        timeout: float | None = None,
    ) -> None:
        """End the run: drain the queue (progress shown after 2 s), record end time,
        duration, peak memory and ``error`` (type, message, traceback), set ``status``
        (finished, failed or killed). Calling it again does nothing.

        ``timeout``: seconds to keep retrying the server before spooling the rest.
        """
        if status not in ("finished", "failed", "killed"):
            raise UsageError("status must be finished, failed or killed.")
        with self._lock:
            if self._finished:
                return
            self._finished = True
        if self._monitor is not None:
            self._monitor.stop()
        ended = _now()
        info: dict[str, Any] = {
            "system": {
                "start_time": self._started_iso,
                "end_time": utc_now_iso(),
                "duration_seconds": round(ended - self._started, 3),
                "peak_memory_mb": peak_memory_mb(),
            }
        }
        if error is not None:
            info["error"] = error_info(error)
        body = {"status": status, "end_time": info["system"]["end_time"], "info": info}
        if self._uploader is not None and not self._uploader.close(timeout):
            self._say("artifact uploads did not finish in time; log them again in a resumed run to complete them.")
        if self._uploader is not None and self._uploader.stats.spooled and self._artifact_spool is not None:
            # The server shows why these artifacts are not there yet (run info "uploads").
            info["uploads"] = {
                "pending": list(self._uploader.stats.spooled),
                "reason": self._artifact_failure[:500],
                "spool": str(self._artifact_spool.path),
                "host": socket.gethostname(),
            }
        transport = self._transport
        if transport is not None:
            transport.close(timeout=timeout, progress=self._progress)
        if self.mode == "disabled":
            pass
        elif self.mode == "offline":
            spool = transport.spool if transport is not None and transport.spool else self._spool()
            spool.update_meta(finish=body)
            spool.unlock()
            self._say(f"offline run {self.name} ({status}) saved in {spool.path}; upload it with `assay sync`.")
        else:
            self._finish_online(body, status)
        for callback in self._on_finish:
            callback(self)
        if self._client is not None:
            self._client.close()

    def _finish_online(self, body: dict[str, Any], status: str) -> None:
        transport = self._transport
        sent = False
        if self._client is not None and transport is not None and not transport.degraded:
            for attempt in range(3):
                try:
                    self._client.update_run(self.id, body)
                    sent = True
                    break
                except AssayError as exc:
                    if attempt == 2:
                        self._say(f"could not record the end of the run: {exc}")
                    else:
                        time.sleep(0.5 * (attempt + 1))
        spool = transport.spool if transport is not None else None
        spool = spool or self._artifact_spool
        if not sent or (spool is not None and spool.files()):
            spool = spool or self._spool()
            spool.update_meta(finish=body)
            spool.unlock()
            if self._artifact_spool is not None:
                self._artifact_spool.unlock()
            spooled = transport.stats.points_spooled if transport is not None else 0
            pending = self.artifact_stats.spooled
            parts = [f"{spooled} points"] if spooled or not pending else []
            if pending:
                shown = ", ".join(pending[:3]) + (", …" if len(pending) > 3 else "")
                parts.append(f"{len(pending)} artifact file(s) ({shown})")
            waiting = ", ".join(parts)
            self._say(
                f"run {self.name} {status}, but not everything reached the server: {waiting} and the "
                f"end of the run are spooled in {spool.path}; upload them with `assay sync`. {self.url or ''}"
            )
            return
        if spool is not None:
            spool.remove()
        self._say(f"run {self.name} {status}: {self.url}")

    def _spool(self) -> SpoolDir:
        if self._spool_factory is None:
            raise AssayError("this run has no spool")
        return self._spool_factory()

    def _progress(self, queued: int, elapsed: float) -> None:
        if elapsed >= 2.0 and (int(elapsed * 2) % 4 == 0 or sys.stderr.isatty()):
            end = "\r" if sys.stderr.isatty() else "\n"
            print(f"assay: uploading… {queued} log calls queued, {elapsed:.0f} s", end=end, file=sys.stderr)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("killed", error=exc)
        else:
            self.finish("failed", error=exc)


class Terminated(BaseException):
    """The process was stopped by a signal (SIGTERM from a scheduler, for example);
    ``stack`` is where the main thread was when it arrived."""

    def __init__(self, signal_name: str, stack: str = "") -> None:
        super().__init__(f"the process received {signal_name} and stopped")
        self.signal_name = signal_name
        self.stack = stack


def error_info(error: BaseException) -> dict[str, Any]:
    if isinstance(error, Terminated):
        return {"type": error.signal_name, "message": str(error), "traceback": error.stack[-MAX_TRACEBACK:]}
    kind = type(error)
    name = (
        kind.__qualname__ if kind.__module__ in ("builtins", "__main__") else f"{kind.__module__}.{kind.__qualname__}"
    )
    text = "".join(traceback.format_exception(kind, error, error.__traceback__))
    return {
        "type": name,
        "message": str(error)[:MAX_ERROR_MESSAGE],
        "traceback": text[-MAX_TRACEBACK:],
    }


def _scalar(value: Any) -> Any:
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes)):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value
