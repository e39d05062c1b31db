"""What every importer reads a source into, and the writer sends to Assay.

A source (an MLflow store, W&B run folders, neptune-exporter Parquet files) is read on
the user's machine into these plain objects; one writer (``assay.importers.writer``)
sends them through Assay's API, exactly once, whatever the source. Readers stream: a
run's points and files are iterators, produced while the writer sends them, so memory
stays bounded whatever the history size.

``source_id`` is the object's identity in its source system (an MLflow run id, a W&B
``entity/project/run``, a Neptune ``project_id/run_id``); the server keeps it, which is
what makes a second import add nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

SOURCES = ("mlflow", "wandb", "neptune")


@dataclass(frozen=True)
class Point:
    """One metric point. ``timestamp`` in milliseconds since the epoch (MLflow's unit)."""

    key: str
    step: int
    value: float
    timestamp: int


@dataclass(frozen=True)
class SourceFile:
    """A file of a run, kept byte for byte: ``path`` is the artifact path inside the run,
    ``local`` where the reader put (or found) it on this machine."""

    path: str
    local: Path


@dataclass
class SourceRun:
    source: str  # one of SOURCES
    source_id: str
    experiment: str
    name: str = ""
    status: str = "finished"  # running | finished | failed | killed
    started_at: float | None = None  # seconds since the epoch
    ended_at: float | None = None
    author: str = ""  # the source's user name; kept as an attribute when no Assay user has it
    run_id: str | None = None  # kept as the Assay run id when the source's is 32 hex (MLflow)
    params: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    # Streams: consumed once, by the writer, after the run exists.
    points: Iterable[list[Point]] = ()
    files: Iterable[SourceFile] = ()
    # What had no exact Assay equivalent and what was done with it (the import report).
    remarks: list[str] = field(default_factory=list)


@dataclass
class SourceVersion:
    source_id: str
    version: int
    run_source_id: str | None  # the imported run it came from
    artifact_path: str = ""  # inside that run, or files of its own
    files: Iterable[SourceFile] = ()
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float | None = None
    author: str = ""
    stage: str = ""  # MLflow's deprecated stage, reported and kept as a tag


@dataclass
class SourceModel:
    source: str
    source_id: str
    name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    versions: list[SourceVersion] = field(default_factory=list)
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version number
    remarks: list[str] = field(default_factory=list)


class Source(Protocol):
    """A readable source. ``describe`` names it for the progress and the report; ``count_runs``
    may return None when counting would mean reading everything twice."""

    def describe(self) -> str: ...

    def count_runs(self) -> int | None: ...

    def runs(self) -> Iterator[SourceRun]: ...

    def models(self) -> Iterator[SourceModel]: ...
