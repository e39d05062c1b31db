"""``assay import neptune --offline .neptune``: runs the Neptune 1.x client kept on disk in offline mode.

In offline mode (``mode="offline"`` or ``NEPTUNE_MODE=offline``) the neptune 1.x client writes each
run to ``.neptune/offline/run__<id>__<pid>__<random>/``: ``metadata.json`` (container id and type,
creation time) and ``data-<n>.log``, its operation queue, one JSON object per line,
``{"obj": {"type": "LogFloats", "path": [...], ...}, "version": n, "at": seconds}`` (the
client's ``neptune.core.components.queue.disk_queue.DiskQueue`` and
``neptune.internal.operation``); files uploaded from memory sit in ``upload_path/``, files
uploaded from disk are referenced by their absolute path and read from there.

The operations are replayed as Neptune's server would: assignments (the last wins), series
(a missing step is the previous one + 1, a ``Clear*Log`` or ``DeleteAttribute`` empties what came
before), string sets (``sys/tags``), files. The mapping to Assay is the Parquet importer's
(``assay.importers.neptune``): parameters to config, float series to points with fractional steps
scaled by one power of ten per run, string series and images kept as files, the rest in remarks.
Only runs (not models or projects) are read; a run's source id is ``offline/<container id>``, as
an offline run has no Neptune project id until it is synced.
"""

from __future__ import annotations

import base64
import datetime as dt
import glob
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from assay.errors import UsageError
from assay.importers.limits import fit_names
from assay.importers.model import Point, SourceFile, SourceModel, SourceRun

BATCH = 5000
_ASSIGN = {"AssignFloat", "AssignInt", "AssignBool", "AssignString", "AssignDatetime"}
_SERIES_CLEAR = {"ClearFloatLog", "ClearStringLog", "ClearImageLog"}
_LOG = re.compile(r"^data-(\d+)\.log$")


def find_run_folders(path: Path) -> list[Path]:
    """Run folders under a project folder, its ``.neptune``, its ``offline`` folder, or one run."""
    if not path.exists():
        raise UsageError(f"--offline {path}: no such file or directory")
    for candidate in (path, path / "offline", path / ".neptune" / "offline"):
        if (candidate / "metadata.json").is_file():
            return [candidate]
        runs = sorted(p for p in candidate.glob("*/") if (p / "metadata.json").is_file() and _logs(p))
        if runs:
            return runs
    raise UsageError(f"--offline {path}: no Neptune offline run here (expected .neptune/offline/run__*/data-1.log)")


def _logs(folder: Path) -> list[Path]:
    numbered = [(int(m.group(1)), p) for p in folder.glob("data-*.log") if (m := _LOG.match(p.name))]
    return [p for _, p in sorted(numbered)]


def _operations(folder: Path, warnings: list[str]) -> Iterator[tuple[dict[str, Any], int, float]]:
    """(operation, version, at) in order; a line cut short by a killed process ends the log."""
    for log in _logs(folder):
        with log.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    element = json.loads(line)
                    operation = element["obj"]
                    yield operation, int(element.get("version") or 0), float(element.get("at") or 0)
                except (ValueError, KeyError, TypeError):
                    warnings.append(f"{log.name} line {number}: not an operation (cut short?), the rest skipped")
                    return


def _decimal_places(step: float) -> int:
    text = format(Decimal(repr(step)).normalize(), "f")
    return min(6, len(text.split(".", 1)[1])) if "." in text else 0


@dataclass
class _Series:
    last_step: float = -1.0
    cleared_at: int = 0  # operations of this version or earlier are gone


@dataclass
class _State:
    container_id: str = ""
    created: float | None = None
    last_at: float | None = None
    values: dict[str, Any] = field(default_factory=dict)
    sets: dict[str, set[str]] = field(default_factory=dict)
    series: dict[str, _Series] = field(default_factory=dict)
    files: dict[str, SourceFile] = field(default_factory=dict)
    decimals: int = 0
    remarks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


class NeptuneOffline:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.folders = find_run_folders(path)
        self._temp = tempfile.TemporaryDirectory(prefix="assay-import-neptune-offline-")

    def describe(self) -> str:
        return f"Neptune offline runs under {self.path}"

    def count_runs(self) -> int | None:
        return len(self.folders)

    def models(self) -> Iterator[SourceModel]:
        return iter(())

    def runs(self) -> Iterator[SourceRun]:
        for index, folder in enumerate(self.folders):
            run = self._read(folder, Path(self._temp.name) / str(index))
            if run is not None:
                yield fit_names(run)

    def _read(self, folder: Path, scratch: Path) -> SourceRun | None:
        try:
            metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        except ValueError:
            raise UsageError(f"{folder / 'metadata.json'}: not JSON (not a Neptune offline run folder?)") from None
        if metadata.get("containerType", "run") != "run":
            return None
        state = _State(container_id=str(metadata.get("containerId") or folder.name))
        created = metadata.get("createdAt")
        if isinstance(created, str):
            state.created = dt.datetime.fromisoformat(created).timestamp()
        strings: dict[str, list[str]] = {}
        scratch.mkdir(parents=True, exist_ok=True)
        for operation, version, at in _operations(folder, state.warnings):
            state.last_at = at
            self._apply(state, folder, scratch, operation, version, strings)
        for path, lines in strings.items():
            local = scratch / f"series-{len(state.files)}.jsonl"
            local.write_text("".join(lines), encoding="utf-8")
            state.files[f"neptune-series/{path}.jsonl"] = SourceFile(f"neptune-series/{path}.jsonl", local)
        return self._source_run(state, folder)

    def _apply(
        self,
        state: _State,
        folder: Path,
        scratch: Path,
        operation: dict[str, Any],
        version: int,
        strings: dict[str, list[str]],
    ) -> None:
        kind = str(operation.get("type"))
        path = "/".join(str(part) for part in operation.get("path") or [])
        if kind in _ASSIGN:
            value = operation.get("value")
            if kind == "AssignDatetime" and isinstance(value, (int, float)):
                value = dt.datetime.fromtimestamp(value / 1000, tz=dt.timezone.utc).isoformat()
            if kind == "AssignFloat" and isinstance(value, float) and not math.isfinite(value):
                value = str(value)
            state.values[path] = value
        elif kind == "AddStrings":
            state.sets.setdefault(path, set()).update(operation.get("values") or [])
        elif kind == "RemoveStrings":
            state.sets.setdefault(path, set()).difference_update(operation.get("values") or [])
        elif kind == "ClearStringSet":
            state.sets[path] = set()
        elif kind == "LogFloats":
            series = state.series.setdefault(path, _Series())
            for item in operation.get("values") or []:
                series.last_step = _next_step(series.last_step, item.get("step"))
                state.decimals = max(state.decimals, _decimal_places(series.last_step))
        elif kind in ("LogStrings", "LogImages"):
            series = state.series.setdefault(path, _Series())
            for item in operation.get("values") or []:
                series.last_step = _next_step(series.last_step, item.get("step"))
                line: dict[str, Any] = {"step": series.last_step, "timestamp": round(float(item.get("ts") or 0) * 1000)}
                if kind == "LogStrings":
                    line["value"] = item.get("value")
                else:
                    image = item.get("value") or {}
                    image = {"data": image} if isinstance(image, str) else image
                    name = f"{path}/step_{_step_text(series.last_step)}.png"
                    local = scratch / f"image-{len(state.files)}.png"
                    local.write_bytes(base64.b64decode(image.get("data") or ""))
                    state.files[name] = SourceFile(name, local)
                    line.update(file=name, name=image.get("name"), description=image.get("description"))
                strings.setdefault(path, []).append(json.dumps(line, ensure_ascii=False) + "\n")
        elif kind in _SERIES_CLEAR:
            state.series[path] = _Series(cleared_at=version)
            strings.pop(path, None)
        elif kind == "DeleteAttribute":
            state.values.pop(path, None)
            state.sets.pop(path, None)
            state.series[path] = _Series(cleared_at=version)
            strings.pop(path, None)
            for name in [name for name in state.files if name == path or name.startswith(path + "/")]:
                del state.files[name]
        elif kind == "UploadFile":
            self._upload(state, folder, path, operation)
        elif kind == "UploadFileContent":
            local = scratch / f"content-{len(state.files)}"
            local.write_bytes(base64.b64decode(operation.get("file_content") or ""))
            name = f"{path}.{operation['ext']}" if operation.get("ext") else path
            state.files[name] = SourceFile(name, local)
        elif kind == "UploadFileSet":
            self._upload_set(state, path, operation)
        else:  # DeleteFiles, artifacts, ConfigFloatSeries, CopyAttribute…
            state.skipped[kind] = state.skipped.get(kind, 0) + 1

    @staticmethod
    def _upload(state: _State, folder: Path, path: str, operation: dict[str, Any]) -> None:
        if operation.get("tmp_file_name"):
            local = folder / "upload_path" / str(operation["tmp_file_name"])
        else:
            local = Path(str(operation.get("file_path") or ""))
        ext = operation.get("ext")
        name = f"{path}.{ext}" if ext else path
        if local.is_file():
            state.files[name] = SourceFile(name, local)
        else:
            state.remarks.append(f"file {path}: {local} is no longer on disk, not imported")

    @staticmethod
    def _upload_set(state: _State, path: str, operation: dict[str, Any]) -> None:
        """A file set: the client wrote absolute globs; the files are read from where they are now,
        named by their path below the folder they share."""
        if operation.get("reset") != "False":
            for name in [name for name in state.files if name.startswith(path + "/")]:
                del state.files[name]
        matched = sorted(
            {
                Path(found)
                for pattern in operation.get("file_globs") or []
                for found in glob.glob(pattern, recursive=True)
            }
        )
        matched = [found for found in matched if found.is_file()]
        if not matched:
            if operation.get("file_globs"):
                state.remarks.append(f"file set {path}: nothing matches {operation['file_globs']} on disk any more")
            return
        common = Path(os.path.commonpath([str(found.parent) for found in matched]))
        for found in matched:
            name = f"{path}/{found.relative_to(common).as_posix()}"
            state.files[name] = SourceFile(name, found)

    def _source_run(self, state: _State, folder: Path) -> SourceRun:
        values = state.values
        sys_values = {key: value for key, value in values.items() if key.startswith("sys/")}
        tags = dict.fromkeys(sorted(state.sets.get("sys/tags", set()) | state.sets.get("sys/group_tags", set())), "")
        for key, value in sys_values.items():
            if key not in ("sys/name", "sys/description", "sys/owner"):
                tags[key] = value if isinstance(value, str) else json.dumps(value)
        config: dict[str, Any] = {key: value for key, value in values.items() if not key.startswith("sys/")}
        config.update({key: sorted(value) for key, value in state.sets.items() if not key.startswith("sys/")})
        remarks = list(state.remarks)
        multiplier = 10**state.decimals
        if state.decimals:
            tags["neptune.step_multiplier"] = str(multiplier)
            remarks.append(
                f"fractional steps: every float series step multiplied by {multiplier}, keeping their order,"
                " spacing and alignment; tag neptune.step_multiplier"
            )
        if any(name.startswith("neptune-series/") for name in state.files):
            remarks.append("string series and image series kept as files neptune-series/<path>.jsonl (step, timestamp)")
        for kind, count in sorted(state.skipped.items()):
            remarks.append(f"{count} {kind} operations not imported (no Assay equivalent in an offline folder)")
        remarks.extend(f"reader: {warning}" for warning in state.warnings)
        cleared = {path: series.cleared_at for path, series in state.series.items() if series.cleared_at}
        return SourceRun(
            source="neptune",
            source_id=f"offline/{state.container_id}",
            experiment=str(values.get("sys/name") or "neptune-offline"),
            name=state.container_id,
            status="failed" if values.get("sys/failed") is True else "finished",
            started_at=state.created,
            ended_at=state.last_at,
            author=str(values.get("sys/owner") or ""),
            config=config,
            tags=tags,
            notes=str(values.get("sys/description") or ""),
            points=_OfflinePoints(folder, multiplier, cleared),
            files=list(state.files.values()),
            remarks=remarks,
        )


def _next_step(last: float, step: Any) -> float:
    return float(step) if isinstance(step, (int, float)) else last + 1


def _step_text(step: float) -> str:
    return str(int(step)) if step == int(step) else format(Decimal(repr(step)).normalize(), "f")


class _OfflinePoints:
    def __init__(self, folder: Path, multiplier: int, cleared: dict[str, int]) -> None:
        self.folder, self.multiplier, self.cleared = folder, multiplier, cleared

    def __iter__(self) -> Iterator[list[Point]]:
        last: dict[str, float] = {}
        batch: list[Point] = []
        for operation, version, _ in _operations(self.folder, []):
            kind = operation.get("type")
            path = "/".join(str(part) for part in operation.get("path") or [])
            if kind in ("ClearFloatLog", "DeleteAttribute"):
                last.pop(path, None)  # as in the first pass: steps start again
                continue
            if kind != "LogFloats":
                continue
            keep = version > self.cleared.get(path, 0)
            for item in operation.get("values") or []:
                step = last[path] = _next_step(last.get(path, -1.0), item.get("step"))
                if keep:
                    value = item.get("value")
                    number = float(value) if isinstance(value, (int, float)) else _non_finite(value)
                    when = round(float(item.get("ts") or 0) * 1000)
                    batch.append(Point(path, round(step * self.multiplier), number, when))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


def _non_finite(value: Any) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(str(value), math.nan)
