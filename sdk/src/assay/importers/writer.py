"""Send what a reader yields to Assay, exactly once, whatever the source.

How "exactly once" and "resumable" hold:

- A run is created through ``POST /api/v1/projects/{team}/{project}/imports/runs/`` with its
  source identity (``source``, ``source_id``). The server keeps that identity (unique in the
  project): importing it again answers 200 with the run it made, and whether its import
  *completed* (``POST …/imports/runs/{id}/complete/`` is the last call for a run, after its
  points and files). A completed run is skipped whole, without reading its history.
- Points go through the ordinary bulk log path (``POST /api/v1/runs/{id}/log/``) in batches
  cut by this module, ``BATCH_POINTS`` points each, numbered in the order the reader yields
  them (readers yield a source in a fixed order), with the batch id ``imp-<number>``. The
  server remembers every batch id of a run (a retried batch adds nothing), and its answer to
  a repeated create lists the batch ids it holds: a resumed run sends only the others.
- Files go through the normal upload path (declared with their sha256, PUT to the object
  store, hashed and scanned by the server's workers); declaring a file the run holds
  already uploads nothing.
- Models are imported one per call, with versions and aliases: the server skips what it
  holds (by the versions' source ids) and says why it skipped anything else.

Memory stays bounded: runs are read one at a time (``WORKERS`` of them in flight), points
are cut into batches as the reader streams them, files are read from disk in parts.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional
from urllib.parse import quote

from assay import env
from assay.artifacts import LocalFile, Uploader, name_problem
from assay.client import Client
from assay.errors import ApiError, AssayError, NotFoundError, PermissionDeniedError, UsageError
from assay.importers.model import Point, Source, SourceFile, SourceModel, SourceRun

try:  # optional, much faster encoding of big batches (`pip install assay-sdk[fast]`)
    import orjson

    def _dumps(body: dict[str, Any]) -> bytes:
        return orjson.dumps(body)

except ImportError:  # pragma: no cover - depends on the environment

    def _dumps(body: dict[str, Any]) -> bytes:
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


BATCH_POINTS = 50_000  # points per log call (the server takes up to 100,000)
MAX_CREATE_ITEMS = 1_000  # params or tags in the create call; more go in log batches
WORKERS = 4  # runs imported at once
PROJECT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
STATUSES = ("running", "finished", "failed", "killed")


@dataclass
class Report:
    """What an import did: counts per object type, what it skipped and why, the readers' remarks."""

    counts: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, count: int = 1) -> None:
        with self.lock:
            self.counts[what] += count

    def skip(self, message: str) -> None:
        with self.lock:
            self.skipped.append(message)

    def remark(self, message: str) -> None:
        with self.lock:
            self.remarks.append(message)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)


class Progress:
    """One stderr line per phase with counts and throughput: refreshed in place on a terminal,
    every ``every`` seconds otherwise, and once more when the phase ends."""

    def __init__(self, phase: str, total: Optional[int], *, every: float = 5.0) -> None:
        self.phase, self.total, self.every = phase, total, every
        self.started = self.shown = time.monotonic()
        self.done = 0
        self.points = 0
        self.files = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._tty = sys.stderr.isatty()

    def step(self, *, done: int = 0, points: int = 0, files: int = 0, size: int = 0) -> None:
        with self._lock:
            self.done += done
            self.points += points
            self.files += files
            self.bytes += size
            now = time.monotonic()
            if now - self.shown >= (0.25 if self._tty else self.every):
                self.shown = now
                self._print(end="\r" if self._tty else "\n")

    def finish(self) -> None:
        with self._lock:
            self._print(end="\n")

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        of = f"/{self.total:,}" if self.total is not None else ""
        text = f"assay import: {self.phase}: {self.done:,}{of} ({self.done / elapsed:,.1f}/s)"
        if self.points:
            text += f", points {self.points:,} ({self.points / elapsed:,.0f}/s)"
        if self.files:
            text += f", files {self.files:,} ({self.bytes / elapsed / 2**20:,.1f} MiB/s)"
        return text + f", {elapsed:,.1f} s"

    def _print(self, *, end: str) -> None:
        print(self.line(), end=end, file=sys.stderr, flush=True)


# --- helpers ------------------------------------------------------------------------------------------


def _iso(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()


def _value(value: float) -> Any:
    """A point's value on the wire: NaN and ±Infinity as the strings the server reads."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _chunks(batches: Iterable[list[Point]], size: int) -> Iterator[list[Point]]:
    """Cut the reader's batches into batches of exactly ``size`` points (the last one shorter):
    the same source always gives the same batches, whatever the reader's own batching."""
    pending: list[Point] = []
    for batch in batches:
        pending.extend(batch)
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    if pending:
        yield pending


def _series(points: list[Point]) -> list[dict[str, Any]]:
    """A batch as the log endpoint's columns, one per key (the bulk form: about 3x cheaper to
    encode and parse than a row per point)."""
    by_key: dict[str, list[Point]] = {}
    for point in points:
        same = by_key.get(point.key)
        if same is None:
            by_key[point.key] = [point]
        else:
            same.append(point)
    inf = math.inf
    return [
        {
            "key": key,
            "steps": [p.step for p in same],
            # NaN fails every comparison and ±inf the bounds: only those go through _value.
            "values": [p.value if -inf < p.value < inf else _value(p.value) for p in same],
            "timestamps": [p.timestamp for p in same],
        }
        for key, same in by_key.items()
    ]


def model_name(name: str) -> str:
    """An Assay model name for a source's (lower case; other characters than letters, digits,
    ``_ . -`` become ``-``)."""
    canonical = re.sub(r"[^a-z0-9_.-]+", "-", name.strip().lower()).strip("-._")[:64] or "model"
    return canonical if MODEL_NAME.match(canonical) else f"m-{canonical}"[:64]


def project_path(args: argparse.Namespace) -> str:
    project = getattr(args, "project", None) or env.get(env.PROJECT)
    if not project:
        raise UsageError("import: which project? pass --project team/project or set ASSAY_PROJECT.")
    if not PROJECT_PATTERN.match(project):
        raise UsageError(f"import: --project must be team/project, not {project!r}.")
    return project


# --- the import ----------------------------------------------------------------------------------------


class Importer:
    def __init__(self, client: Client, project: str, source_name: str, *, workers: int = WORKERS) -> None:
        self.client = client
        self.project = project
        team, name = project.split("/")
        self.base = f"/projects/{quote(team, safe='')}/{quote(name, safe='')}/imports"
        self.source_name = source_name
        self.workers = workers
        self.report = Report()
        self.run_ids: dict[str, str] = {}  # source run id -> Assay run id
        self.may: dict[str, bool] = {}

    # preflight: may the token import here at all?
    def check_access(self) -> None:
        try:
            answer = self.client.request(
                "POST", f"{self.base}/runs/lookup/", body={"source": self.source_name, "source_ids": ["-"]}
            )
        except NotFoundError:
            raise UsageError(
                f"import: no project {self.project} (or this token may not see it); create it first."
            ) from None
        except PermissionDeniedError:
            raise UsageError(f"import: this token may not write to {self.project} (a read-only token?).") from None
        self.may = dict(answer.get("may") or {})
        if not self.may.get("runs"):
            raise UsageError(f"import: you may not import into {self.project}: it needs the writer role.")

    # --- runs ----------------------------------------------------------------------------------------

    def import_runs(self, runs: Iterable[SourceRun], total: Optional[int]) -> None:
        progress = Progress("runs", total)
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="assay-import") as pool:
            in_flight: set[Future[None]] = set()
            for run in runs:
                if len(in_flight) >= self.workers * 2:
                    finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        future.result()
                in_flight.add(pool.submit(self._run_guarded, run, progress))
            for future in in_flight:
                future.result()
        progress.finish()

    def _run_guarded(self, run: SourceRun, progress: Progress) -> None:
        try:
            self.import_run(run, progress)
        except (UsageError, PermissionDeniedError):
            raise
        except AssayError as exc:
            # One run failing must not stop the others; its import stays unfinished, so a
            # re-run takes it up again.
            self.report.error(f"run {run.source_id} ({run.name or 'unnamed'}): {exc}")
            self.report.add("runs failed")
        progress.step(done=1)

    def _create_body(self, run: SourceRun) -> dict[str, Any]:
        status = run.status if run.status in STATUSES else "finished"
        if status != run.status:
            self.report.remark(f"run {run.source_id}: status {run.status!r} imported as {status!r}")
        info: dict[str, Any] = {}
        if run.datasets:
            info["datasets"] = {_dataset_key(d): _dataset(d) for d in run.datasets}
        if run.summary:
            info["imported"] = {"source": self.source_name, "summary": run.summary}
        body: dict[str, Any] = {
            "source": self.source_name,
            "source_id": run.source_id,
            "experiment": run.experiment or "default",
            "name": run.name[:128],
            "status": status,
            "start_time": _iso(run.started_at),
            "end_time": _iso(run.ended_at) if status != "running" else None,
            "author": run.author[:150],
            "params": dict(list(run.params.items())[:MAX_CREATE_ITEMS]),
            "tags": dict(list(run.tags.items())[:MAX_CREATE_ITEMS]),
            "config": run.config,
            "notes": run.notes,
            "info": info,
        }
        if run.run_id is not None and re.fullmatch(r"[0-9a-f]{32}", run.run_id):
            body["run_id"] = run.run_id
        return body

    def import_run(self, run: SourceRun, progress: Progress) -> None:
        answer = self.client.request("POST", f"{self.base}/runs/", body=self._create_body(run))
        run_id = str(answer["id"])
        self.run_ids[run.source_id] = run_id
        if answer.get("complete"):
            self.report.add("runs already imported")
            return
        if run.run_id and not answer.get("id_kept") and run.run_id == run.source_id:
            self.report.remark(f"run {run.source_id}: another Assay run has this id; imported as {run_id}")
        self.report.add("runs imported" if answer.get("created") else "runs resumed")
        for remark in run.remarks:
            self.report.remark(f"run {run.source_id}: {remark}")
        held = set(answer.get("batches") or [])
        self._extra_items(run, run_id, held)
        index = -1
        for index, batch in enumerate(_chunks(run.points, BATCH_POINTS)):
            batch_id = f"imp-{index:06d}"
            if batch_id in held:
                self.report.add("points already imported", len(batch))
                continue
            result = self.client.log_batch(run_id, _dumps({"batch_id": batch_id, "series": _series(batch)}))
            sent = int(result.get("points", 0)) if not result.get("duplicate") else 0
            self.report.add("points", sent)
            if result.get("duplicate"):
                self.report.add("points already imported", len(batch))
            progress.step(points=len(batch))
        self.report.add("batches", index + 1)
        self._files(run_id, run.files, progress, owner=f"run {run.source_id}")
        self.client.request("POST", f"{self.base}/runs/{run_id}/complete/", body={})

    def _extra_items(self, run: SourceRun, run_id: str, held: set[str]) -> None:
        """Params and tags beyond what the create call takes, in batches of their own."""
        for kind, items in (("params", run.params), ("tags", run.tags)):
            extra = list(items.items())[MAX_CREATE_ITEMS:]
            for number, start in enumerate(range(0, len(extra), MAX_CREATE_ITEMS)):
                batch_id = f"imp-{kind}-{number:04d}"
                if batch_id not in held:
                    body = {"batch_id": batch_id, kind: dict(extra[start : start + MAX_CREATE_ITEMS])}
                    self.client.log_batch(run_id, _dumps(body))

    def _files(self, run_id: str, files: Iterable[SourceFile], progress: Progress, *, owner: str) -> int:
        batch: list[LocalFile] = []
        count = 0
        for item in files:
            problem = name_problem(item.path)
            if problem:
                self.report.skip(f"{owner}: file {item.path!r} not imported: {problem}")
                continue
            if not item.local.is_file():
                self.report.skip(f"{owner}: file {item.path!r} not imported: {item.local} is missing")
                continue
            batch.append(LocalFile(item.local, item.path, item.local.stat().st_size))
            if len(batch) >= 100:
                count += self._upload(run_id, batch, progress)
                batch = []
        if batch:
            count += self._upload(run_id, batch, progress)
        return count

    def _upload(self, run_id: str, files: list[LocalFile], progress: Progress) -> int:
        uploader = Uploader(self.client, run_id, say=lambda message: None, progress=False)
        try:
            uploader.upload(files, "file", f"{len(files)} files")
        finally:
            uploader.close()
        # A file whose content the project holds already (another run's identical file, or
        # this run's from an interrupted import) is declared, not uploaded again.
        self.report.add("files", len(files))
        self.report.add("files whose content was held already", uploader.stats.files_skipped)
        self.report.add("bytes uploaded", uploader.stats.bytes_uploaded)
        progress.step(files=len(files), size=sum(f.size for f in files))
        return len(files)

    # --- models --------------------------------------------------------------------------------------

    def import_models(self, models: Iterable[SourceModel]) -> None:
        progress = Progress("models", None)
        for model in models:
            try:
                self.import_model(model, progress)
            except (UsageError, PermissionDeniedError):
                raise
            except AssayError as exc:
                self.report.error(f"model {model.name}: {exc}")
                self.report.add("models failed")
            progress.step(done=1)
        progress.finish()

    def import_model(self, model: SourceModel, progress: Progress) -> None:
        for remark in model.remarks:
            self.report.remark(f"model {model.name}: {remark}")
        if not self.may.get("models"):
            self.report.skip(f"model {model.name}: importing models needs the maintainer role on {self.project}")
            self.report.add("models skipped")
            return
        name = model_name(model.name)
        if name != model.name:
            self.report.remark(f"model {model.name!r} imported as {name!r} (Assay's model names)")
        versions = []
        for version in model.versions:
            label = f"model {model.name} version {version.version}"
            run_id = self.run_ids.get(version.run_source_id or "")
            if run_id is None:
                why = (
                    "it has no source run"
                    if not version.run_source_id
                    else f"its run {version.run_source_id} was not imported"
                )
                self.report.skip(f"{label}: {why} (an Assay version is registered from a run)")
                self.report.add("versions skipped")
                continue
            self._files(run_id, version.files, progress, owner=label)
            if version.stage and version.stage.lower() != "none":
                self.report.remark(f"{label}: stage {version.stage!r} kept as the tag mlflow.stage")
            item: dict[str, Any] = {
                "source_id": version.source_id,
                "version": version.version,
                "run": run_id,
                "artifact_path": version.artifact_path,
                "description": version.description,
                "tags": version.tags,
                "author": version.author[:150],
                "stage": version.stage,
            }
            if version.created_at is not None:
                item["created_at"] = _iso(version.created_at)
            versions.append(item)
        body = {
            "source": self.source_name,
            "source_id": model.source_id,
            "name": name,
            "description": model.description,
            "tags": model.tags,
            "versions": versions,
            "aliases": model.aliases,
        }
        answer = self.client.request("POST", f"{self.base}/models/", body=body)
        self.report.add("models imported" if answer.get("created") else "models already imported")
        for entry in answer.get("versions") or []:
            result = entry.get("result")
            label = f"model {name} version {entry.get('version')}"
            if result == "created":
                self.report.add("versions imported")
                if entry.get("reason"):
                    self.report.remark(f"{label}: {entry['reason']}")
            elif result == "already":
                self.report.add("versions already imported")
            else:
                self.report.add("versions skipped" if result == "skipped" else "versions merged")
                self.report.skip(f"{label}: {entry.get('reason', result)}")
        for entry in answer.get("aliases") or []:
            result = entry.get("result")
            if result == "set":
                self.report.add("aliases set")
            elif result == "already":
                self.report.add("aliases already set")
            else:
                self.report.add("aliases skipped")
                self.report.skip(f"model {name} alias {entry.get('alias')}: {entry.get('reason', result)}")


def _dataset_key(dataset: dict[str, Any]) -> str:
    name = str(dataset.get("name") or "dataset")
    digest = str(dataset.get("digest") or "")
    return f"{name}@{digest}" if digest else name


def _dataset(dataset: dict[str, Any]) -> dict[str, Any]:
    """A dataset as the MLflow-compatible API shows it (compat/tracking.py ``_inputs_out``)."""
    out = {k: v for k, v in dataset.items() if k in {"name", "digest", "source_type", "schema", "profile", "tags"}}
    if "source" in dataset:
        out["uri"] = dataset["source"]
    return out


# --- dry run ---------------------------------------------------------------------------------------------


def dry_run(source: Source, project: str, client: Optional[Client], source_name: str) -> Report:
    """Read everything and count it; ask the server (when reachable) which runs it holds."""
    report = Report()
    progress = Progress("runs (dry run)", source.count_runs())
    pending: list[str] = []
    missing: list[bool] = []  # the project is not on the server: stop asking

    def ask() -> None:
        if client is None or not pending or missing:
            pending.clear()
            return
        team, name = project.split("/")
        path = f"/projects/{quote(team, safe='')}/{quote(name, safe='')}/imports/runs/lookup/"
        try:
            answer = client.request("POST", path, body={"source": source_name, "source_ids": pending})
        except NotFoundError:
            report.remark(f"no project {project} on the server (or not visible to this token): nothing is there yet")
            missing.append(True)
            pending.clear()
            return
        found = answer.get("found") or {}
        report.add("runs already imported", sum(1 for v in found.values() if v.get("complete")))
        report.add("runs to resume", sum(1 for v in found.values() if not v.get("complete")))
        pending.clear()

    for run in source.runs():
        report.add("runs")
        report.add("params", len(run.params))
        report.add("tags", len(run.tags))
        points = sum(len(batch) for batch in run.points)
        report.add("points", points)
        for item in run.files:
            report.add("files")
            report.add("bytes", item.local.stat().st_size if item.local.is_file() else 0)
        for remark in run.remarks:
            report.remark(f"run {run.source_id}: {remark}")
        pending.append(run.source_id)
        if len(pending) >= 500:
            ask()
        progress.step(done=1, points=points)
    ask()
    progress.finish()
    for model in source.models():
        report.add("models")
        report.add("versions", len(model.versions))
        report.add("aliases", len(model.aliases))
        for remark in model.remarks:
            report.remark(f"model {model.name}: {remark}")
    return report


# --- entry point --------------------------------------------------------------------------------------


def print_report(report: Report, *, title: str, out: Any = None) -> None:
    out = out or sys.stdout
    print(title, file=out)
    for what in sorted(report.counts):
        print(f"  {what}: {report.counts[what]:,}", file=out)
    if report.skipped:
        print(f"skipped ({len(report.skipped)}):", file=out)
        for line in report.skipped:
            print(f"  - {line}", file=out)
    if report.remarks:
        print(f"remarks ({len(report.remarks)}):", file=out)
        for line in report.remarks:
            print(f"  - {line}", file=out)
    if report.errors:
        print(f"errors ({len(report.errors)}); run the same command again to finish:", file=out)
        for line in report.errors:
            print(f"  - {line}", file=out)


def import_source(source: Source, args: argparse.Namespace) -> int:
    """Import ``source`` into ``args.project``: runs (with their points and files), then models.
    Returns the process exit code (1 when anything failed; a re-run finishes the job)."""
    project = project_path(args)
    source_name = str(getattr(args, "import_source", "") or "")
    started = time.monotonic()
    if getattr(args, "dry_run", False):
        client: Optional[Client] = None
        if env.resolve_url(getattr(args, "url", None)):
            client = Client.from_env(getattr(args, "url", None))
        try:
            report = dry_run(source, project, client, source_name)
        finally:
            if client is not None:
                client.close()
        print_report(report, title=f"dry run: {source.describe()} -> {project} (nothing was written)")
        return 0
    with Client.from_env(getattr(args, "url", None), timeout=120) as client:
        importer = Importer(client, project, source_name, workers=int(getattr(args, "workers", None) or WORKERS))
        importer.check_access()
        print(f"assay import: {source.describe()} -> {project}", file=sys.stderr)
        try:
            importer.import_runs(source.runs(), source.count_runs())
            importer.import_models(source.models())
        except ApiError as exc:
            raise UsageError(f"import: {exc}") from None
    report = importer.report
    elapsed = time.monotonic() - started
    points = report.counts.get("points", 0)
    title = (
        f"imported {source.describe()} -> {project} in {elapsed:,.1f} s ({points / max(elapsed, 1e-9):,.0f} points/s)"
    )
    if not any(report.counts.get(k) for k in ("runs imported", "runs resumed", "models imported", "versions imported")):
        title += ": already imported, nothing added"
    print_report(report, title=title)
    return 1 if report.errors else 0
