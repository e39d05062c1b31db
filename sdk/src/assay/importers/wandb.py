"""``assay import wandb``: W&B run folders (``offline-run-*``, synced ``run-*``) or W&B's API.

Local folders are read through the wandb package's own reader of its ``.wandb`` transaction
log: since wandb 0.2x the Python ``datastore`` module is gone and the reader lives in the
``wandb-core`` binary shipped with the package, which prints the records as JSON lines
(``wandb leet inspect --json``). It is run as a subprocess and its output streamed, line by
line, so memory stays bounded whatever the history size. Two passes per run: the first
collects what the run record needs before the run is created (config, summary, tags, notes,
times, status) and keeps the non-numeric history values in a JSON-lines file; the second,
started only when the writer asks for the points, yields the numbers in batches.

What has no exact Assay equivalent, and what is done with it (each said in the run's remarks):
- numbers (int, float, the ``"NaN"``/``"Infinity"``/``"-Infinity"`` that wandb-core writes for
  non-finite floats) become metric points at W&B's ``_step``; booleans become 1/0;
- everything else in the history (strings, lists, nulls, media references, histograms,
  tables: any value carrying a W&B ``_type``) is kept, one line per value, in the file
  ``wandb-history-other.jsonl`` (``{"step", "timestamp", "key", "value"}``); media files
  themselves are files of the run (``media/…``);
- system metrics (``stats`` records) become ``system/<name>`` points; W&B samples them by time,
  not step, so their steps are their sample numbers 0, 1, 2… and their timestamps are kept;
- W&B tags (labels) become Assay tags with an empty value; group, job type, host, program and
  Python become ``wandb.*`` tags; W&B's own bookkeeping (``_wandb`` in config, ``_runtime``,
  ``_step``, ``_timestamp``, ``_wandb.*`` in summaries) is not imported.

``--entity`` with ``--wandb-project`` reads W&B's public API instead (``wandb.Api``): the full
history through ``scan_history`` (the complete export, not the sampled ``history``), system
metrics through ``history(stream="system")`` (W&B samples those), and the run's files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import math
import os
import pickle
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from assay.errors import UsageError
from assay.importers.limits import fit_names
from assay.importers.model import Point, SourceFile, SourceModel, SourceRun

HELP = "W&B run folders (offline-run-*, run-*) or, with --entity and --wandb-project, W&B's API"

BATCH = 5000  # points per batch handed to the writer
# The first wandb whose wandb-core prints a log as JSON lines (`leet inspect --json`) that this
# reader was tested with; wandb-core reads logs written by older clients.
MIN_WANDB = "0.31.0"
OTHER_FILE = "wandb-history-other.jsonl"
# History keys W&B adds to every row: the step is kept as the step, the others are not metrics.
_ROW_KEYS = ("_step", "_runtime", "_timestamp")
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_RUN_DIR = re.compile(r"^(?:offline-)?run-\d{8}_\d{6}-(?P<id>[A-Za-z0-9]+)$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        help="a wandb directory holding offline-run-*/run-* folders, one such folder, or one .wandb file",
    )
    parser.add_argument("--entity", help="W&B entity: read W&B's API instead of local folders (with --wandb-project)")
    parser.add_argument("--wandb-project", help="W&B project to read through the API (with --entity)")
    parser.add_argument("--run", action="append", default=[], metavar="ID", help="only this W&B run id (repeatable)")


def open_source(args: argparse.Namespace) -> WandbFolders | WandbApi:
    directory = getattr(args, "dir", None)
    entity = getattr(args, "entity", None)
    project = getattr(args, "wandb_project", None)
    only = set(getattr(args, "run", None) or [])
    if directory and (entity or project):
        raise UsageError("give either --dir or --entity/--wandb-project, not both.")
    if entity or project:
        if not (entity and project):
            raise UsageError("--entity and --wandb-project go together (the W&B project to read).")
        return WandbApi(entity, project, only)
    if not directory:
        raise UsageError("--dir ./wandb (a W&B folder) or --entity ENTITY --wandb-project PROJECT is required.")
    return WandbFolders(Path(directory), only)


# --- values ---------------------------------------------------------------------------------


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as W&B shows them, with dotted keys (wandb-core already prints them so)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def number(value: Any) -> float | None:
    """The metric value of a history value, or None when it is not a number."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    return None


@dataclass
class RowSplit:
    numbers: dict[str, float]
    others: dict[str, Any]  # key -> value (objects with a W&B _type regrouped as one dict)
    booleans: list[str]


def split_row(row: dict[str, Any]) -> RowSplit:
    """Split one (flattened) history row into metric values and the rest. Keys under an object
    that has a ``_type`` (``h._type: histogram``, ``h.bins``, ``h.values``) form one value."""
    objects = sorted((key[: -len("._type")] for key in row if key.endswith("._type")), key=len)
    split = RowSplit({}, {}, [])
    for key, value in row.items():
        if key in _ROW_KEYS or key.startswith("_wandb"):
            continue
        owner = next((name for name in objects if key.startswith(name + ".")), None)
        if owner is not None:
            split.others.setdefault(owner, {})[key[len(owner) + 1 :]] = value
            continue
        metric = number(value)
        if metric is None:
            split.others[key] = value
        else:
            split.numbers[key] = metric
            if isinstance(value, bool):
                split.booleans.append(key)
    return split


def timestamp_ms(value: Any) -> int:
    """W&B's ``_timestamp`` (seconds, float) or an RFC 3339 string, as milliseconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(value * 1000)
    if isinstance(value, str) and value:
        return round(parse_time(value) * 1000)
    return 0


def parse_time(text: str) -> float:
    """RFC 3339 with up to nanoseconds (Go's format) to seconds; ``fromisoformat`` before 3.11
    takes neither ``Z`` nor more than six fraction digits."""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$", text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    base, fraction, zone = match.groups()
    moment = dt.datetime.fromisoformat(base + ("+00:00" if zone in (None, "Z") else zone))
    return moment.timestamp() + (int(fraction[:9].ljust(9, "0")) / 1e9 if fraction else 0.0)


def _summary_clean(summary: dict[str, Any]) -> dict[str, Any]:
    """The run's summary without W&B's bookkeeping (``_runtime``, ``_step``, ``_wandb.*``); keys of
    an object with a W&B ``_type`` (a histogram, a table reference) regrouped as one dict."""
    split = split_row(summary)
    kept: dict[str, Any] = {key: value for key, value in summary.items() if key in split.numbers}
    kept.update(split.others)
    return {key: kept[key] for key in sorted(kept)}


_orjson: Any
try:  # the SDK's "fast" extra: several times json's speed on wandb-core's lines
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is optional
    _orjson = None


def _loads(line: str) -> Any:
    if _orjson is not None:
        try:
            return _orjson.loads(line)
        except _orjson.JSONDecodeError:  # integers beyond 64 bits, which json reads
            pass
    return json.loads(line)


# --- local folders --------------------------------------------------------------------------


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def core_path() -> str:
    """The wandb-core binary of the installed wandb package (its transaction log reader), found
    where ``wandb.util.get_core_path`` looks, without importing wandb (seconds of imports)."""
    spec = importlib.util.find_spec("wandb")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"reading W&B folders needs the wandb package: pip install 'wandb>={MIN_WANDB}'")
    installed = importlib.metadata.version("wandb")
    if _version_tuple(installed) < _version_tuple(MIN_WANDB):
        raise UsageError(
            f"wandb {installed} is installed; reading .wandb logs needs wandb>={MIN_WANDB}, whose wandb-core"
            f" prints them (older logs are read too): pip install -U 'wandb>={MIN_WANDB}'"
        )
    for location in spec.submodule_search_locations:
        binary = Path(location) / "bin" / "wandb-core"
        if binary.is_file():
            return str(binary)
    raise UsageError("the installed wandb package has no wandb-core reader for this platform")


class TransactionLog:
    """The records of one ``.wandb`` file, as dicts, streamed from wandb-core's reader.

    ``warnings`` collects what the reader said on stderr (skipped corrupt data, an incomplete
    file); a file it cannot read at all raises ``UsageError`` naming the file and the reason.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings: list[str] = []

    def records(self) -> Iterator[dict[str, Any]]:
        # These are the arguments `wandb leet inspect --json FILE` passes to wandb-core; calling
        # the binary directly skips a second Python start per run and any telemetry upload.
        command = [
            core_path(),
            "leet",
            "inspect",
            "--no-observability",
            "--json",
            "--run-file",
            str(self.path),
            str(self.path.parent.parent),
        ]
        with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=errors,
                stdin=subprocess.DEVNULL,
                encoding="utf-8",  # wandb-core writes UTF-8 whatever the locale
                bufsize=1 << 20,
            )
            assert process.stdout is not None
            try:
                yield from self._parse(process.stdout)
                process.wait()
            finally:
                if process.poll() is None:  # the consumer stopped early, or a line was not JSON
                    process.kill()
                    process.wait()
                process.stdout.close()
            errors.seek(0)
            messages = [line.strip() for line in errors if line.strip()]
        if process.returncode != 0:
            reason = (
                messages[-1].removeprefix("Error: ") if messages else f"wandb-core exited with {process.returncode}"
            )
            raise UsageError(f"{self.path}: not a readable W&B transaction log ({reason})")
        self.warnings = [message.removeprefix("wandb leet inspect: ") for message in messages]

    def _parse(self, lines: IO[str]) -> Iterator[dict[str, Any]]:
        for line in lines:
            try:
                record = _loads(line)
            except ValueError:
                raise UsageError(f"{self.path}: wandb-core printed something that is not JSON: {line[:80]!r}") from None
            yield record


@dataclass
class _RunState:
    """What the first pass over a run's logs found."""

    entity: str = ""
    project: str = ""
    run_id: str = ""
    name: str = ""
    notes: str = ""
    tags: list[str] = field(default_factory=list)
    group: str = ""
    job_type: str = ""
    started_at: float | None = None
    last_time: float | None = None
    exit_code: int | None = None
    runtime: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    history_rows: int = 0
    stats_rows: int = 0
    other_values: int = 0
    other_keys: set[str] = field(default_factory=set)
    boolean_keys: set[str] = field(default_factory=set)
    artifacts: int = 0
    warnings: list[str] = field(default_factory=list)


def _apply_update(target: dict[str, Any], record: dict[str, Any]) -> None:
    update = record.get("update") or {}
    if isinstance(update, dict):
        target.update(update)
    for removed in record.get("remove") or []:
        if isinstance(removed, dict):
            path = removed.get("nested_key") or [removed.get("key", "")]
            _remove(target, [str(part) for part in path])


def _remove(target: dict[str, Any], path: list[str]) -> None:
    if not path:
        return
    if len(path) == 1:
        target.pop(path[0], None)
        target.pop(".".join(path), None)
        return
    inner = target.get(path[0])
    if isinstance(inner, dict):
        _remove(inner, path[1:])
    target.pop(".".join(path), None)


class WandbFolders:
    """Every W&B run under a folder. A run resumed several times has one folder per resumption
    (same run id in the folder name): their logs are read, in order, as one run."""

    def __init__(self, path: Path, only: set[str]) -> None:
        if not path.exists():
            raise UsageError(f"--dir {path}: no such file or directory")
        self.path = path
        self.groups = self._find(path, only)
        if not self.groups:
            raise UsageError(
                f"--dir {path}: no W&B run here (expected offline-run-*/run-* folders holding a .wandb file)"
            )
        self._temp = tempfile.TemporaryDirectory(prefix="assay-import-wandb-")

    @staticmethod
    def _find(path: Path, only: set[str]) -> list[list[Path]]:
        if path.is_file():
            if path.suffix != ".wandb":
                raise UsageError(f"--dir {path}: not a .wandb file nor a folder")
            logs = [path]
        elif list(path.glob("*.wandb")):
            logs = sorted(path.glob("*.wandb"))
        else:
            logs = sorted(log for log in path.glob("*/*.wandb") if _RUN_DIR.match(log.parent.name))
        groups: dict[str, list[Path]] = {}
        for log in logs:
            match = _RUN_DIR.match(log.parent.name)
            run_id = match.group("id") if match else log.stem.removeprefix("run-")
            if only and run_id not in only:
                continue
            # Folder names start with the date: sorting them sorts a run's resumptions in time.
            groups.setdefault(run_id, []).append(log)
        return [sorted(group, key=lambda log: log.parent.name.removeprefix("offline-")) for group in groups.values()]

    def describe(self) -> str:
        return f"W&B folders under {self.path}"

    def count_runs(self) -> int | None:
        return len(self.groups)

    def models(self) -> Iterator[SourceModel]:
        return iter(())

    def runs(self) -> Iterator[SourceRun]:
        for index, logs in enumerate(self.groups):
            yield fit_names(self._read_run(logs, Path(self._temp.name) / str(index)))

    def _read_run(self, logs: list[Path], scratch: Path) -> SourceRun:
        scratch.mkdir(parents=True, exist_ok=True)
        other_path = scratch / OTHER_FILE
        state = _RunState()
        spool = _PointSpool(scratch / "points.pickle", keep=self._temp)
        with other_path.open("w", encoding="utf-8") as others, spool:
            for log in logs:
                reader = TransactionLog(log)
                for record in reader.records():
                    self._read_record(state, record, others, spool)
                state.warnings.extend(f"{log.name}: {warning}" for warning in reader.warnings)
        return self._source_run(state, logs, other_path, spool)

    @staticmethod
    def _read_record(state: _RunState, record: dict[str, Any], others: IO[str], spool: _PointSpool) -> None:
        kind = record.get("type")
        body = record.get(kind or "") or {}
        if kind == "run":
            state.entity = body.get("entity") or state.entity
            state.project = body.get("project") or state.project
            state.run_id = body.get("run_id") or state.run_id
            state.name = body.get("display_name") or state.name
            state.notes = body.get("notes") or state.notes
            state.tags = list(body.get("tags") or state.tags)
            state.group = body.get("run_group") or state.group
            state.job_type = body.get("job_type") or state.job_type
            if body.get("start_time") and state.started_at is None:
                state.started_at = parse_time(body["start_time"])
            _apply_update(state.config, body.get("config") or {})
        elif kind == "config":
            _apply_update(state.config, body)
        elif kind == "summary":
            _apply_update(state.summary, body)
        elif kind == "environment":
            state.environment.update({k: v for k, v in body.items() if isinstance(v, str)})
        elif kind == "history":
            row = body.get("item") or {}
            state.history_rows += 1
            step = _step_of(body)
            when = row.get("_timestamp")
            if isinstance(when, (int, float)):
                state.last_time = max(state.last_time or 0.0, float(when))
            split = split_row(row)
            state.boolean_keys.update(split.booleans)
            stamp = timestamp_ms(when)
            spool.extend((key, step, value, stamp) for key, value in split.numbers.items())
            for key, value in split.others.items():
                state.other_values += 1
                state.other_keys.add(key)
                line = {"step": step, "timestamp": timestamp_ms(when), "key": key, "value": value}
                others.write(json.dumps(line, ensure_ascii=False) + "\n")
        elif kind == "stats":
            sample = state.stats_rows
            state.stats_rows += 1
            stamp = timestamp_ms(body.get("timestamp"))
            if body.get("timestamp"):
                state.last_time = max(state.last_time or 0.0, stamp / 1000)
            for key, value in flatten(body.get("item") or {}).items():
                metric = number(value)
                if metric is not None:
                    spool.extend([(f"system/{key}", sample, metric, stamp)])
        elif kind == "exit":
            state.exit_code = int(body.get("exit_code") or 0)
            state.runtime = max(state.runtime, float(body.get("runtime") or 0))
        elif kind in ("artifact", "use_artifact"):
            state.artifacts += 1

    def _source_run(self, state: _RunState, logs: list[Path], other_path: Path, spool: _PointSpool) -> SourceRun:
        entity = state.entity or "-"
        project = state.project or "uncategorized"
        run_id = state.run_id or logs[0].stem.removeprefix("run-")
        tags = dict.fromkeys(state.tags, "")
        extra = {
            "wandb.group": state.group,
            "wandb.job_type": state.job_type,
            "wandb.host": state.environment.get("host", ""),
            "wandb.program": state.environment.get("program", ""),
            "wandb.python": state.environment.get("python", ""),
        }
        tags.update({key: value for key, value in extra.items() if value})
        ended = state.last_time
        if state.started_at is not None and state.runtime:
            ended = max(ended or 0.0, state.started_at + state.runtime)
        remarks = _remarks(state)
        if state.exit_code is None:
            status = "killed"
            remarks.append(
                "no exit record in the log: the run was interrupted (or is still running); imported as killed"
            )
        else:
            status = "finished" if state.exit_code == 0 else "failed"
        remarks.extend(f"reader: {warning}" for warning in state.warnings)
        files = _folder_files([log.parent / "files" for log in logs], remarks)
        if state.other_values:
            files.append(SourceFile(OTHER_FILE, other_path))
        config = {key: value for key, value in state.config.items() if key != "_wandb"}
        return SourceRun(
            source="wandb",
            source_id=f"{entity}/{project}/{run_id}",
            experiment=project,
            name=state.name or run_id,
            status=status,
            started_at=state.started_at,
            ended_at=ended,
            author=state.environment.get("username", ""),
            config=config,
            tags=tags,
            notes=state.notes,
            summary=_summary_clean(state.summary),
            points=spool,
            files=files,
            remarks=remarks,
        )


def _step_of(history: dict[str, Any]) -> int:
    step = (history.get("step") or {}).get("num")
    if step is None:
        step = (history.get("item") or {}).get("_step", 0)
    return int(step or 0)


def _remarks(state: _RunState) -> list[str]:
    remarks = []
    if state.other_values:
        keys = ", ".join(sorted(state.other_keys)[:10]) + ("…" if len(state.other_keys) > 10 else "")
        remarks.append(
            f"{state.other_values} history values that are not numbers (keys: {keys}) kept in {OTHER_FILE}"
            " (step, timestamp, key, value); media files are files of the run"
        )
    if state.boolean_keys:
        remarks.append(f"boolean history values logged as 1/0: {', '.join(sorted(state.boolean_keys))}")
    if state.stats_rows:
        remarks.append(
            f"{state.stats_rows} system metric samples as system/<name>; W&B samples them by time, so their"
            " steps are the sample numbers 0, 1, 2… and their timestamps are kept"
        )
    if state.artifacts:
        remarks.append(
            f"{state.artifacts} W&B artifact records (logged or used artifacts) not imported: their files are"
            " not in the run folder (W&B keeps them in its artifact cache)"
        )
    return remarks


def _folder_files(folders: list[Path], remarks: list[str]) -> list[SourceFile]:
    """The run's files/ folders (later resumptions win for the same path), byte for byte."""
    found: dict[str, SourceFile] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_dir():
                continue
            relative = path.relative_to(folder).as_posix()
            if not path.exists():  # a dangling link (run.save with policy "live" links the original)
                remarks.append(f"file {relative}: a link to {os.readlink(path)}, which no longer exists; not imported")
                continue
            found[relative] = SourceFile(relative, path.resolve())
    return list(found.values())


class _PointSpool:
    """The run's numeric history and system metrics, kept in a private temporary file while the
    log is read once, then handed to the writer in batches: one pass of wandb-core over the log
    instead of two, and never more than one batch in memory."""

    def __init__(self, path: Path, keep: object = None) -> None:
        self.path = path
        self.keep = keep  # the temporary directory holding the file lives as long as this
        self.batch: list[tuple[str, int, float, int]] = []
        self.handle: IO[bytes] | None = None

    def __enter__(self) -> _PointSpool:
        self.handle = self.path.open("wb")
        return self

    def __exit__(self, *_: object) -> None:
        self._flush()
        if self.handle is not None:
            self.handle.close()

    def extend(self, points: Iterable[tuple[str, int, float, int]]) -> None:
        self.batch.extend(points)
        if len(self.batch) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.batch and self.handle is not None:
            pickle.dump(self.batch, self.handle, protocol=pickle.HIGHEST_PROTOCOL)
            self.batch = []

    def __iter__(self) -> Iterator[list[Point]]:
        # SECURITY: unpickles only the file this object wrote, in a 0700 temporary directory.
        with self.path.open("rb") as handle:
            while True:
                try:
                    batch = pickle.load(handle)  # noqa: S301 - our own file, see above
                except EOFError:
                    break
                yield [Point(key, step, value, stamp) for key, step, value, stamp in batch]


# --- W&B's public API (not testable here: no network) ----------------------------------------


class WandbApi:
    """Runs of one W&B project through ``wandb.Api`` (needs ``WANDB_API_KEY`` or ``wandb login``;
    ``WANDB_BASE_URL`` for a dedicated or self-hosted server)."""

    def __init__(self, entity: str, project: str, only: set[str]) -> None:
        try:
            import wandb  # optional (assay-sdk[import-wandb]), and seconds to import: only for the API path
        except ImportError:
            raise UsageError("reading W&B's API needs the wandb package: pip install wandb") from None
        self.entity, self.project, self.only = entity, project, only
        try:
            self.api = wandb.Api(timeout=60)
            self._runs = self.api.runs(f"{entity}/{project}", per_page=200, lazy=False)
            self._total: int | None = len(self._runs)
        except Exception as exc:  # noqa: BLE001 - wandb raises CommError, ValueError, requests errors…
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"W&B project {entity}/{project}: cannot be read through W&B's API ({first})") from None
        self._temp = tempfile.TemporaryDirectory(prefix="assay-import-wandb-api-")

    def describe(self) -> str:
        return f"W&B project {self.entity}/{self.project} (W&B API)"

    def count_runs(self) -> int | None:
        return len(self.only) if self.only else self._total

    def models(self) -> Iterator[SourceModel]:
        return iter(())

    def runs(self) -> Iterator[SourceRun]:
        for index, run in enumerate(self._runs):
            if self.only and run.id not in self.only:
                continue
            yield fit_names(self._source_run(run, Path(self._temp.name) / str(index)))

    def _source_run(self, run: Any, scratch: Path) -> SourceRun:
        scratch.mkdir(parents=True, exist_ok=True)
        state = {"running": "running", "finished": "finished", "crashed": "failed", "failed": "failed"}
        started = parse_time(run.created_at if run.created_at.endswith("Z") else run.created_at + "Z")
        runtime = (run.summary_metrics or {}).get("_runtime")
        tags = dict.fromkeys(run.tags or [], "")
        tags.update(
            {key: value for key, value in {"wandb.group": run.group, "wandb.job_type": run.job_type}.items() if value}
        )
        remarks = [
            f"history read with W&B's scan_history (complete, unsampled); non-numeric values kept in {OTHER_FILE}",
            "system metrics as W&B's API returns them (history(stream='system'), sampled by W&B)",
        ]
        if run.state not in state:
            remarks.append(f"W&B state {run.state!r} imported as killed")
        return SourceRun(
            source="wandb",
            source_id=f"{self.entity}/{self.project}/{run.id}",
            experiment=self.project,
            name=run.name or run.id,
            status=state.get(run.state, "killed"),
            started_at=started,
            ended_at=started + float(runtime) if isinstance(runtime, (int, float)) else None,
            author=getattr(run, "username", "") or "",
            config={key: value for key, value in dict(run.config).items() if key != "_wandb"},
            tags=tags,
            notes=run.notes or "",
            summary=_summary_clean(flatten(dict(run.summary_metrics or {}))),
            points=_ApiPoints(run, scratch / OTHER_FILE),
            files=_ApiFiles(run, scratch),
            remarks=remarks,
        )


class _ApiPoints:
    def __init__(self, run: Any, other_path: Path) -> None:
        self.run, self.other_path = run, other_path

    def __iter__(self) -> Iterator[list[Point]]:
        batch: list[Point] = []
        with self.other_path.open("w", encoding="utf-8") as others:
            for row in self.run.scan_history(page_size=1000):
                flat = flatten(row)
                step = int(flat.get("_step") or 0)
                when = timestamp_ms(flat.get("_timestamp"))
                split = split_row(flat)
                batch.extend(Point(key, step, value, when) for key, value in split.numbers.items())
                for key, value in split.others.items():
                    line = {"step": step, "timestamp": when, "key": key, "value": value}
                    others.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
            for sample, row in enumerate(self.run.history(stream="system", pandas=False, samples=100_000)):
                flat = flatten(row)
                when = timestamp_ms(flat.get("_timestamp"))
                for key, value in flat.items():
                    metric = number(value)
                    if metric is not None and not key.startswith("_"):
                        name = key if key.startswith("system/") else f"system/{key.removeprefix('system.')}"
                        batch.append(Point(name, sample, metric, when))
        if batch:
            yield batch


class _ApiFiles:
    """The run's files, each downloaded when the writer asks for it; then the non-numeric history
    (written while the points were read, so after them)."""

    def __init__(self, run: Any, scratch: Path) -> None:
        self.run, self.scratch = run, scratch

    def __iter__(self) -> Iterator[SourceFile]:
        target = self.scratch / "files"
        for remote in self.run.files():
            remote.download(root=str(target), replace=True)
            yield SourceFile(remote.name, target / remote.name)
        other = self.scratch / OTHER_FILE
        if other.exists() and other.stat().st_size:
            yield SourceFile(OTHER_FILE, other)
