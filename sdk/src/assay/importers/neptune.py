"""``assay import neptune``: the Parquet files of neptune-exporter (Neptune 2.x and 3.x exports).

neptune-exporter (github.com/neptune-ai/neptune-exporter) writes, under its ``--data-path``,
one folder per project and per run ``<run>_part_<n>.parquet`` files of one schema
(``neptune_exporter.model.SCHEMA``): ``project_id``, ``run_id``, ``attribute_path``,
``attribute_type``, ``step`` (decimal(18, 6)), ``timestamp``, typed value columns,
``file_value{path}`` and ``histogram_value{type, edges, values}``; the files themselves sit
under its ``--files-path``, in the same per-project folders. A run counts as exported once
its ``part_0`` exists (the exporter's own rule), so half-written runs are not read.

Reading is streamed with pyarrow, batch by batch: a first pass over a run's parts collects
parameters, ``sys/*`` attributes, files, string series and histograms; the float series are
read again, in batches, when the writer asks for the points. What has no exact Assay
equivalent, and what is done with it (said in each run's remarks):

- parameters (``float``, ``int``, ``string``, ``bool``, ``datetime``, ``string_set``) become the
  run's config under their Neptune path (``parameters/lr``), natively typed (datetimes as
  ISO 8601 text, string sets as sorted lists);
- ``sys/name`` names the experiment (neptune-exporter's rule for every target),
  ``sys/custom_run_id`` (else the run id) names the run, ``sys/creation_time`` and
  ``sys/modification_time`` are its start and end, ``sys/failed`` its status, ``sys/owner`` its
  author, ``sys/tags`` and ``sys/group_tags`` its tags (empty values), ``sys/description`` its
  notes; every other ``sys/*`` attribute is kept as a tag named by its path;
- float series become metric points. Neptune steps are decimals: when a run has fractional
  steps, all its float series' steps are multiplied by the same power of ten (the smallest that
  makes them whole, at most 10**6) so that order and spacing are kept and series stay aligned;
  the factor is kept in the tag ``neptune.step_multiplier`` and said in the remarks;
- string series and histogram series are kept as files ``neptune-series/<path>.jsonl``, one
  line per point with its original step and timestamp;
- files, file series (``<path>/step_<step>/<name>``), file sets and artifacts become files of the
  run, byte for byte; a file the export does not have on disk is named in the remarks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from assay.errors import UsageError
from assay.importers.limits import fit_names
from assay.importers.model import Point, SourceFile, SourceModel, SourceRun
from assay.importers.neptune_offline import NeptuneOffline

HELP = "neptune-exporter Parquet files (--parquet) or Neptune 1.x offline runs (--offline .neptune)"

BATCH_ROWS = 16_384  # rows per Parquet batch read (65,536 costs ~50 MB more peak RSS, no speed)
REQUIRED = ("project_id", "run_id", "attribute_path", "attribute_type", "step", "timestamp")
VALUE_COLUMNS = (
    "int_value",
    "float_value",
    "string_value",
    "bool_value",
    "datetime_value",
    "string_set_value",
    "file_value",
    "histogram_value",
)
PARAMETER_TYPES = {"float", "int", "string", "bool", "datetime", "string_set"}
FILE_TYPES = {"file", "file_series", "file_set", "artifact"}
SERIES_FILES = {"string_series", "histogram_series"}
_PART = re.compile(r"^(?P<prefix>.+)_part_(?P<n>\d+)\.parquet$")
# The sys/* attributes that have a place of their own in Assay (the others become tags).
_MAPPED_SYS = {"sys/tags", "sys/group_tags", "sys/description", "sys/owner", "sys/creation_time"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--parquet",
        help="neptune-exporter's --data-path (one folder per project), or one project folder",
    )
    parser.add_argument(
        "--files",
        help="neptune-exporter's --files-path (default: a 'files' folder next to the data folder, if there is one)",
    )
    parser.add_argument(
        "--offline", help="a Neptune 1.x client's offline folder (.neptune, or the project folder holding it)"
    )
    parser.add_argument(
        "--run", action="append", default=[], metavar="ID", help="only this Neptune run id (repeatable, --parquet)"
    )


def open_source(args: argparse.Namespace) -> NeptuneParquet | NeptuneOffline:
    directory = getattr(args, "parquet", None)
    offline = getattr(args, "offline", None)
    if directory and offline:
        raise UsageError("give either --parquet or --offline, not both.")
    if offline:
        return NeptuneOffline(Path(offline))
    if not directory:
        raise UsageError("--parquet DIR (neptune-exporter's data path) or --offline .neptune is required.")
    files = getattr(args, "files", None)
    return NeptuneParquet(Path(directory), Path(files) if files else None, set(getattr(args, "run", None) or []))


def _pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq  # the optional extra assay-sdk[import], loaded when used
    except ImportError:
        raise UsageError("reading Parquet needs pyarrow: pip install 'assay-sdk[import]'") from None
    return pq


@dataclass
class _Run:
    folder: Path
    prefix: str
    parts: list[Path]


def sanitize_path_part(part: str) -> str:
    """neptune-exporter's folder name for a project id (``neptune_exporter.utils``), to find the
    files of a project from its ``project_id``."""
    safe = "".join(c if c.isalnum() or c in ("_", "-") else "_" for c in part)
    return safe + "-" + hashlib.blake2b(part.encode("utf-8"), digest_size=8).hexdigest()


class NeptuneParquet:
    def __init__(self, path: Path, files: Path | None, only: set[str]) -> None:
        if not path.exists():
            raise UsageError(f"--parquet {path}: no such file or directory")
        if not path.is_dir():
            raise UsageError(f"--parquet {path}: not a folder (give neptune-exporter's data path)")
        if files is not None and not files.is_dir():
            raise UsageError(f"--files {files}: no such folder")
        self.path = path
        self.only = only
        self.runs_found = self._find(path)
        if not self.runs_found:
            if any(path.glob("models")) or any(path.glob("*/models")) or any(path.glob("*/model_versions")):
                raise UsageError(
                    f"--parquet {path}: a model registry export (export-models), which this importer does not"
                    " read; give the runs' data path (neptune-exporter export --data-path)"
                )
            raise UsageError(
                f"--parquet {path}: no neptune-exporter run here (expected <project>/<run>_part_0.parquet)"
            )
        guess = path.parent / "files"
        self.files_root = files if files is not None else (guess if guess.is_dir() else None)
        self._pq = _pyarrow()
        for run in self.runs_found:  # a foreign file fails now, before anything is imported
            for part in run.parts:
                self._check_schema(part)
        self._temp = tempfile.TemporaryDirectory(prefix="assay-import-neptune-")

    @staticmethod
    def _find(path: Path) -> list[_Run]:
        folders = [path] if list(path.glob("*_part_0.parquet")) else sorted(p for p in path.iterdir() if p.is_dir())
        found = []
        for folder in folders:
            parts: dict[str, list[tuple[int, Path]]] = {}
            for file in folder.glob("*_part_*.parquet"):
                match = _PART.match(file.name)
                if match:
                    parts.setdefault(match.group("prefix"), []).append((int(match.group("n")), file))
            for prefix in sorted(parts):
                numbered = sorted(parts[prefix])
                if numbered[0][0] == 0:  # the exporter's "complete run" rule: part_0 exists
                    found.append(_Run(folder, prefix, [file for _, file in numbered]))
        return found

    def _check_schema(self, part: Path) -> None:
        try:
            schema = self._pq.read_schema(part)
        except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
            raise UsageError(f"{part}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        missing = [name for name in REQUIRED if name not in schema.names]
        if missing or not any(name in schema.names for name in VALUE_COLUMNS):
            raise UsageError(
                f"{part}: not a neptune-exporter file (missing columns: {', '.join(missing) or 'every *_value'})"
            )

    def describe(self) -> str:
        return f"neptune-exporter Parquet files under {self.path}"

    def count_runs(self) -> int | None:
        wanted = {sanitize_path_part(run_id) for run_id in self.only}
        return sum(1 for run in self.runs_found if not wanted or run.prefix in wanted)

    def models(self) -> Iterator[SourceModel]:
        return iter(())

    def runs(self) -> Iterator[SourceRun]:
        # The exporter names a run's files after its id (sanitize_path_part): a filtered-out run is
        # skipped without being read.
        wanted = {sanitize_path_part(run_id) for run_id in self.only}
        for index, run in enumerate(self.runs_found):
            if wanted and run.prefix not in wanted:
                continue
            source_run = self._read_run(run, Path(self._temp.name) / str(index))
            if source_run is not None:
                yield fit_names(source_run)

    # --- first pass: everything but the float series ------------------------------------------

    def _batches(self, part: Path, columns: list[str]) -> Iterator[Any]:
        file = self._pq.ParquetFile(part)
        present = [name for name in columns if name in file.schema_arrow.names]
        yield from file.iter_batches(batch_size=BATCH_ROWS, columns=present)

    def _read_run(self, run: _Run, scratch: Path) -> SourceRun | None:
        import pyarrow.compute as pc  # optional (assay-sdk[import]); present once _pyarrow() passed

        state = _RunState()
        series = _SeriesFiles(scratch)
        columns = list(REQUIRED) + list(VALUE_COLUMNS)
        try:
            for part in run.parts:
                for batch in self._batches(part, columns):
                    if not state.project_id and batch.num_rows:
                        state.project_id = batch.column("project_id")[0].as_py() or ""
                        state.run_id = batch.column("run_id")[0].as_py() or ""
                    kinds = batch.column("attribute_type")
                    floats = pc.equal(kinds, "float_series")
                    state.decimals = max(state.decimals, _decimals(batch.filter(floats).column("step")))
                    values = batch.filter(floats).column("float_value")
                    state.float_points += len(values) - values.null_count
                    state.null_floats += values.null_count
                    rest = batch.filter(pc.invert(floats))
                    for row in rest.to_pylist():
                        self._first_pass(state, row, series, run)
        finally:
            series.close()
        if self.only and state.run_id not in self.only:
            return None
        return self._source_run(state, run, series)

    def _first_pass(self, state: _RunState, row: dict[str, Any], series: _SeriesFiles, run: _Run) -> None:
        kind, path = row["attribute_type"], row["attribute_path"]
        if kind in PARAMETER_TYPES:
            value = _parameter(kind, row)
            if path.startswith("sys/"):
                state.sys[path] = value
            else:
                state.config[path] = value
        elif kind in SERIES_FILES:
            line: dict[str, Any] = {"step": _step_number(row["step"]), "timestamp": _ms(row["timestamp"])}
            if kind == "string_series":
                line["value"] = row.get("string_value")
            else:
                line.update(row.get("histogram_value") or {})
            series.write(path, line)
            state.counts[kind] = state.counts.get(kind, 0) + 1
        elif kind in FILE_TYPES:
            self._file(state, row, run)
        else:
            state.counts[f"unknown:{kind}"] = state.counts.get(f"unknown:{kind}", 0) + 1

    def _file(self, state: _RunState, row: dict[str, Any], run: _Run) -> None:
        kind, path = row["attribute_type"], row["attribute_path"]
        relative = (row.get("file_value") or {}).get("path")
        state.counts[kind] = state.counts.get(kind, 0) + 1
        if not relative:
            state.missing.append(f"{path} ({kind} without a path)")
            return
        local = self._local(run, state.project_id, relative)
        if local is None:
            state.missing.append(f"{path} ({relative})")
            return
        if kind == "file_series":
            target = f"{path}/step_{_step_text(row['step'])}/{local.name}"
        else:
            target = f"{path}/{local.name}"
        if local.is_dir():  # a file set (or an artifact saved as a folder)
            for inner in sorted(local.rglob("*")):
                if inner.is_file():
                    state.files.append(SourceFile(f"{path}/{inner.relative_to(local).as_posix()}", inner))
        else:
            state.files.append(SourceFile(target, local))

    def _local(self, run: _Run, project_id: str, relative: str) -> Path | None:
        roots = []
        if self.files_root is not None:
            roots += [
                self.files_root / sanitize_path_part(project_id),
                self.files_root / run.folder.name,
                self.files_root,
            ]
        roots.append(run.folder)
        for root in roots:
            candidate = (root / relative).resolve()
            # SECURITY: a path from the Parquet file must stay inside the export's folders.
            if root.resolve() in candidate.parents and candidate.exists():
                return candidate
        return None

    def _source_run(self, state: _RunState, run: _Run, series: _SeriesFiles) -> SourceRun:
        sys = state.sys
        tags = dict.fromkeys(sorted(set(_as_list(sys.get("sys/tags")) + _as_list(sys.get("sys/group_tags")))), "")
        for key, value in sys.items():
            if key not in _MAPPED_SYS:
                tags[key] = value if isinstance(value, str) else json.dumps(value)
        remarks: list[str] = []
        multiplier = 10**state.decimals
        if state.decimals:
            tags["neptune.step_multiplier"] = str(multiplier)
            remarks.append(
                f"fractional steps: every float series step multiplied by {multiplier} (step {multiplier * 3 // 2}"
                f" is Neptune step 1.5), keeping their order, spacing and alignment; tag neptune.step_multiplier"
            )
        for kind, label in (("string_series", "string series"), ("histogram_series", "histogram series")):
            if state.counts.get(kind):
                remarks.append(
                    f"{state.counts[kind]} {label} values kept as files neptune-series/<path>.jsonl"
                    " (original step, timestamp, value)"
                )
        for kind, count in sorted(state.counts.items()):
            if kind.startswith("unknown:"):
                remarks.append(f"{count} values of attribute type {kind[8:]!r}, unknown to this importer, not imported")
        if state.null_floats:
            remarks.append(f"{state.null_floats} float series rows without a value (null in the export) skipped")
        if state.missing:
            shown = ", ".join(state.missing[:5]) + ("…" if len(state.missing) > 5 else "")
            remarks.append(f"{len(state.missing)} files named in the export but not on disk, not imported: {shown}")
        if self.files_root is None and state.counts.keys() & FILE_TYPES:
            remarks.append(
                "no --files folder given nor found next to the data: files looked up in the data folder only"
            )
        started = sys.get("sys/creation_time")
        ended = sys.get("sys/modification_time") or sys.get("sys/ping_time")
        status = "failed" if sys.get("sys/failed") is True else "finished"
        if sys.get("sys/state") in ("Active", "running"):
            status = "running"
        run_name = str(sys.get("sys/custom_run_id") or state.run_id or run.prefix)
        files = list(state.files) + series.files()
        return SourceRun(
            source="neptune",
            source_id=f"{state.project_id}/{state.run_id or run.prefix}",
            experiment=str(sys.get("sys/name") or state.project_id.rsplit("/", 1)[-1] or "neptune"),
            name=run_name,
            status=status,
            started_at=_seconds(started),
            ended_at=_seconds(ended),
            author=str(sys.get("sys/owner") or ""),
            config=state.config,
            tags=tags,
            notes=str(sys.get("sys/description") or ""),
            points=_FloatSeries(self, run.parts, multiplier, _seconds(started)),
            files=files,
            remarks=remarks,
        )


@dataclass
class _RunState:
    project_id: str = ""
    run_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    sys: dict[str, Any] = field(default_factory=dict)
    files: list[SourceFile] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    decimals: int = 0
    float_points: int = 0
    null_floats: int = 0


class _SeriesFiles:
    """String and histogram series, one JSON-lines file per attribute."""

    def __init__(self, scratch: Path) -> None:
        self.root = scratch / "neptune-series"
        self.open: dict[str, IO[str]] = {}
        self.paths: dict[str, Path] = {}

    def write(self, attribute: str, line: dict[str, Any]) -> None:
        handle = self.open.get(attribute)
        if handle is None:
            local = self.root / f"{len(self.paths)}.jsonl"
            local.parent.mkdir(parents=True, exist_ok=True)
            handle = self.open[attribute] = local.open("w", encoding="utf-8")
            self.paths[attribute] = local
        handle.write(json.dumps(line, ensure_ascii=False) + "\n")

    def close(self) -> None:
        for handle in self.open.values():
            handle.close()
        self.open.clear()

    def files(self) -> list[SourceFile]:
        return [SourceFile(f"neptune-series/{attribute}.jsonl", local) for attribute, local in self.paths.items()]


class _FloatSeries:
    """The float series of a run as points, in batches (second pass over its parts)."""

    def __init__(self, source: NeptuneParquet, parts: list[Path], multiplier: int, started: float | None) -> None:
        self.source, self.parts, self.multiplier = source, parts, multiplier
        self.default_ms = round(started * 1000) if started is not None else 0

    def __iter__(self) -> Iterator[list[Point]]:
        import pyarrow as pa  # optional (assay-sdk[import]); present once _pyarrow() passed
        import pyarrow.compute as pc  # optional (assay-sdk[import]); present once _pyarrow() passed

        factor = pa.scalar(Decimal(self.multiplier), pa.decimal128(7, 0))
        columns = ["attribute_path", "attribute_type", "step", "timestamp", "float_value"]
        for part in self.parts:
            for batch in self.source._batches(part, columns):
                wanted = pc.and_(
                    pc.equal(batch.column("attribute_type"), "float_series"), pc.is_valid(batch.column("float_value"))
                )
                rows = batch.filter(wanted)
                if not rows.num_rows:
                    continue
                steps = pc.cast(pc.multiply(rows.column("step"), factor), pa.int64()).to_pylist()
                times = pc.cast(rows.column("timestamp"), pa.int64()).to_pylist()
                keys = rows.column("attribute_path").to_pylist()
                values = rows.column("float_value").to_pylist()
                yield [
                    Point(key, step or 0, value, self.default_ms if ms is None else ms)
                    for key, step, value, ms in zip(keys, steps, values, times)
                ]


def _decimals(steps: Any) -> int:
    """The fewest decimal places that hold every step of a batch exactly (0 to 6)."""
    import pyarrow.compute as pc  # optional (assay-sdk[import]); present once _pyarrow() passed

    if not len(steps) or steps.null_count == len(steps):
        return 0
    for places in range(6):
        if pc.all(pc.equal(steps, pc.round(steps, places))).as_py() is not False:
            return places
    return 6


def _parameter(kind: str, row: dict[str, Any]) -> Any:
    value = row.get(f"{kind}_value")
    if kind == "datetime" and isinstance(value, dt.datetime):
        return value.isoformat()
    if kind == "string_set":
        return sorted(value or [])
    if kind == "float" and isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _as_list(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _step_number(step: Decimal | None) -> int | float | None:
    if step is None:
        return None
    return int(step) if step == step.to_integral_value() else float(step)


def _step_text(step: Decimal | None) -> str:
    if step is None:
        return "none"
    return str(int(step)) if step == step.to_integral_value() else format(step.normalize(), "f")


def _ms(moment: dt.datetime | None) -> int | None:
    return None if moment is None else round(moment.timestamp() * 1000)


def _seconds(value: Any) -> float | None:
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)).timestamp()
    return None
