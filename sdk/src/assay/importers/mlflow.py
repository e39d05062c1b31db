"""``assay import mlflow``: read an MLflow store through MLflow's own client.

Any store MLflow reads: ``sqlite:///mlflow.db`` (MLflow 3's default), a ``mlruns/`` folder,
``postgresql://…`` (or another SQL database), an ``http(s)://`` tracking server. What is read:
experiments, runs (name, status, start and end times, user), params, tags, full metric
histories (every step and timestamp, in MLflow's own order), artifacts (byte for byte),
dataset inputs, registered models with their versions, descriptions, tags and aliases.
MLflow run ids (32 hex) are kept as the Assay run ids.

Where MLflow has something Assay holds otherwise, the report says what was done:
a ``SCHEDULED`` run is imported as running, a deprecated stage becomes the tag
``mlflow.stage`` of its version, a point at a negative step (Assay's steps start at 0) is
left out and counted, a tag longer than Assay's 5,000 characters is cut.

The ``mlflow`` package is needed on the machine that imports (it is not a dependency of
the SDK): ``pip install mlflow``.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlparse

from assay.errors import UsageError
from assay.importers.model import Point, SourceFile, SourceModel, SourceRun, SourceVersion

HELP = "import an MLflow store (sqlite:///mlflow.db, mlruns/, postgresql://, http(s)://)"
POINTS_PER_BATCH = 10_000
PAGE = 1_000
MAX_TAG_VALUE = 5_000
MAX_STEP = 2**53 - 1
STATUS = {"RUNNING": "running", "SCHEDULED": "running", "FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
# Tags that are run fields in Assay (name, notes): kept there, not as tags.
RUN_NAME_TAG = "mlflow.runName"
NOTE_TAG = "mlflow.note.content"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri",
        required=True,
        help="the MLflow store: sqlite:///mlflow.db, ./mlruns, postgresql://…, http(s)://…",
    )
    parser.add_argument("--registry-uri", help="the model registry's URI (default: the tracking URI)")
    parser.add_argument(
        "--experiment", action="append", default=None, help="import only this experiment (repeatable; default: all)"
    )
    parser.add_argument("--no-models", action="store_true", help="leave registered models out")
    parser.add_argument("--workers", type=int, default=4, help="runs imported at once (default: 4)")


def _mask(uri: str) -> str:
    """The URI without its password (for the progress and the report)."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", uri)


def _local_path(uri: str) -> Optional[Path]:
    """The folder of a ``file://`` URI or a plain path; None for any other scheme."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return Path(uri)
    return None


def check_store(uri: str) -> str:
    """Refuse, in one line, what is not an MLflow store, before MLflow would make an empty one
    (it creates a missing SQLite file or ``mlruns/`` folder when asked to read it)."""
    if uri.startswith("sqlite:"):
        path = Path(unquote(uri.split(":///", 1)[1])) if ":///" in uri else None
        if path is None or str(path) in ("", ":memory:"):
            raise UsageError(f"import mlflow: {uri!r} names no database file (sqlite:///path/to/mlflow.db).")
        if not path.is_file():
            raise UsageError(f"import mlflow: no such file: {path}")
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
        except sqlite3.DatabaseError:
            raise UsageError(f"import mlflow: {path} is not a SQLite database.") from None
        if not {"experiments", "runs", "metrics"} <= tables:
            raise UsageError(f"import mlflow: {path} is a SQLite database but not an MLflow store.")
        return uri
    local = _local_path(uri)
    if local is not None:
        if not local.exists():
            raise UsageError(f"import mlflow: no such folder: {local}")
        if local.is_file():
            with open(local, "rb") as handle:
                if handle.read(16) == b"SQLite format 3\x00":
                    raise UsageError(f"import mlflow: {local} is a SQLite file: pass sqlite:///{local}")
            raise UsageError(f"import mlflow: {local} is a file, not an MLflow store (mlruns/ folder).")
        if not any((child / "meta.yaml").is_file() for child in local.iterdir() if child.is_dir()):
            raise UsageError(
                f"import mlflow: {local} is not an MLflow mlruns/ folder (no experiment folder with a meta.yaml)."
            )
        # MLflow 3.x refuses to open a file store unless told to (it is in maintenance mode);
        # reading one to move away from it is exactly what the opt-out is for.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        return local.resolve().as_uri()
    return uri


def open_source(args: argparse.Namespace) -> MlflowSource:
    try:
        import mlflow  # noqa: F401 - imported here: the SDK does not depend on it
    except ImportError:
        raise UsageError("import mlflow needs the mlflow package on this machine: pip install mlflow") from None
    uri = check_store(str(args.tracking_uri))
    registry = check_store(str(args.registry_uri)) if getattr(args, "registry_uri", None) else uri
    source = MlflowSource(uri, registry, experiments=args.experiment, models=not getattr(args, "no_models", False))
    source.check()
    return source


class MlflowSource:
    def __init__(
        self, tracking_uri: str, registry_uri: str, *, experiments: Optional[list[str]] = None, models: bool = True
    ) -> None:
        import mlflow
        from mlflow import MlflowClient

        # Also the process's default: parts of MLflow that resolve a run (the file registry
        # among them) use the global URI, which otherwise is ./mlflow.db, made on first use.
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(registry_uri)
        self.uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        self.only = experiments
        self.with_models = models
        self._experiments: Optional[list[Any]] = None

    def describe(self) -> str:
        return f"MLflow {_mask(self.uri)}"

    def check(self) -> None:
        """Reach the store once, so that a wrong URI is one line now, not an error per run."""
        from mlflow.exceptions import MlflowException

        try:
            found = self.experiments()
        except MlflowException as exc:
            raise UsageError(f"import mlflow: cannot read {_mask(self.uri)}: {exc.message.splitlines()[0]}") from None
        except Exception as exc:  # noqa: BLE001 - the store's drivers raise anything: one line, not a traceback
            raise UsageError(f"import mlflow: cannot read {_mask(self.uri)}: {str(exc).splitlines()[0]}") from None
        if self.only:
            missing = sorted(set(self.only) - {e.name for e in found})
            if missing:
                raise UsageError(f"import mlflow: no experiment named {', '.join(map(repr, missing))} in the store.")

    def experiments(self) -> list[Any]:
        if self._experiments is None:
            from mlflow.entities import ViewType

            found: list[Any] = []
            token = None
            while True:
                page = self.client.search_experiments(
                    view_type=ViewType.ACTIVE_ONLY, max_results=PAGE, page_token=token
                )
                found.extend(page)
                token = page.token
                if not token:
                    break
            self._experiments = sorted(
                (e for e in found if not self.only or e.name in self.only), key=lambda e: str(e.experiment_id)
            )
        return self._experiments

    def _sql_store(self) -> Any:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = self.client._tracking_client.store
        return store if isinstance(store, SqlAlchemyStore) else None

    def count_runs(self) -> Optional[int]:
        store = self._sql_store()
        if store is None:
            return None
        from mlflow.store.tracking.dbmodels.models import SqlRun

        ids = [e.experiment_id for e in self.experiments()]
        with store.ManagedSessionMaker() as session:
            query = session.query(SqlRun).filter(SqlRun.experiment_id.in_(ids), SqlRun.lifecycle_stage == "active")
            return int(query.count())

    # --- runs --------------------------------------------------------------------------------------

    def runs(self) -> Iterator[SourceRun]:
        from mlflow.entities import ViewType

        for experiment in self.experiments():
            token = None
            while True:
                page = self.client.search_runs(
                    [experiment.experiment_id],
                    run_view_type=ViewType.ACTIVE_ONLY,
                    max_results=PAGE,
                    order_by=["attributes.start_time ASC"],
                    page_token=token,
                )
                for run in page:
                    yield self._run(experiment, run)
                token = page.token
                if not token:
                    break

    def _run(self, experiment: Any, run: Any) -> SourceRun:
        info, data = run.info, run.data
        remarks: list[str] = []
        status = STATUS.get(str(info.status), "finished")
        if info.status == "SCHEDULED":
            remarks.append("status SCHEDULED imported as running")
        tags = dict(data.tags)
        name = tags.pop(RUN_NAME_TAG, None) or info.run_name or ""
        notes = tags.pop(NOTE_TAG, "")
        for key, value in list(tags.items()):
            if len(value) > MAX_TAG_VALUE:
                tags[key] = value[:MAX_TAG_VALUE]
                remarks.append(f"tag {key!r} cut to {MAX_TAG_VALUE:,} characters (it had {len(value):,})")
        datasets = []
        for item in getattr(getattr(run, "inputs", None), "dataset_inputs", None) or []:
            dataset = item.dataset
            entry: dict[str, Any] = {
                "name": dataset.name,
                "digest": dataset.digest,
                "source_type": dataset.source_type,
                "source": dataset.source,
            }
            if dataset.schema:
                entry["schema"] = dataset.schema
            if dataset.profile:
                entry["profile"] = dataset.profile
            if item.tags:
                entry["tags"] = {t.key: t.value for t in item.tags}
            datasets.append(entry)
        source = SourceRun(
            source="mlflow",
            source_id=info.run_id,
            experiment=experiment.name,
            name=name,
            status=status,
            started_at=info.start_time / 1000 if info.start_time else None,
            ended_at=info.end_time / 1000 if info.end_time and status != "running" else None,
            author=info.user_id or "",
            run_id=info.run_id,
            params=dict(data.params),
            tags=tags,
            notes=notes,
            datasets=datasets,
            remarks=remarks,
        )
        source.points = self._points(info.run_id, sorted(data.metrics), remarks)
        source.files = self._files(info.run_id, info.artifact_uri)
        return source

    def _points(self, run_id: str, keys: list[str], remarks: list[str]) -> Iterator[list[Point]]:
        """Every point of every metric of the run, key by key in MLflow's order (time, step,
        value), in batches: read lazily, when the writer gets there."""
        outside = 0
        store = self._sql_store()
        chunks = self._sql_rows(store, run_id) if store is not None else self._client_rows(run_id, keys)
        nan = float("nan")
        for rows in chunks:
            batch = [
                Point(key, step, nan if is_nan else value, timestamp)
                for key, step, value, timestamp, is_nan in rows
                if 0 <= step <= MAX_STEP
            ]
            outside += len(rows) - len(batch)
            if batch:
                yield batch
        if outside:
            remarks.append(f"{outside:,} points at steps outside 0..2^53-1 left out (Assay's steps start at 0)")

    def _client_rows(self, run_id: str, keys: list[str]) -> Iterator[list[tuple[str, int, float, int, bool]]]:
        for key in keys:
            history = self.client.get_metric_history(run_id, key)
            for start in range(0, len(history), POINTS_PER_BATCH):
                yield [(key, m.step, m.value, m.timestamp, False) for m in history[start : start + POINTS_PER_BATCH]]

    @staticmethod
    def _sql_rows(store: Any, run_id: str) -> Iterator[list[tuple[str, int, float, int, bool]]]:
        """The same rows as ``get_metric_history`` (same order), read through MLflow's own SQL
        store (its engine and table) in one query per run instead of one per key, fetched as
        the database driver's plain tuples instead of an entity per point (the history of a
        long run reads 20x faster)."""
        from mlflow.store.tracking.dbmodels.models import SqlMetric
        from sqlalchemy import select

        table = SqlMetric.__table__
        query = (
            select(table.c.key, table.c.step, table.c.value, table.c.timestamp, table.c.is_nan)
            .where(table.c.run_uuid == run_id)
            .order_by(table.c.key, table.c.timestamp, table.c.step, table.c.value)
        )
        compiled = query.compile(dialect=store.engine.dialect)
        params = compiled.construct_params()
        args: Any = tuple(params[name] for name in compiled.positiontup or ()) if compiled.positional else params
        connection = store.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(str(compiled), args)
            while True:
                rows = cursor.fetchmany(POINTS_PER_BATCH)
                if not rows:
                    break
                yield rows
        finally:
            connection.close()

    def _files(self, run_id: str, artifact_uri: str, prefix: str = "") -> Iterator[SourceFile]:
        """The run's artifacts: found in place when the store keeps them on this machine,
        else downloaded one at a time into a temporary folder removed when done."""
        local = _local_path(artifact_uri) if artifact_uri else None
        if local is not None and local.is_dir():
            for found in sorted(local.rglob("*")):
                if found.is_file() and not found.is_symlink():
                    yield SourceFile(path=prefix + found.relative_to(local).as_posix(), local=found)
            return
        if local is not None:
            return
        with tempfile.TemporaryDirectory(prefix="assay-import-") as folder:
            for name in self._artifact_paths(run_id, None):
                local_file = self.client.download_artifacts(run_id, name, dst_path=folder)
                yield SourceFile(path=prefix + name, local=Path(local_file))
                os.unlink(local_file)

    def _artifact_paths(self, run_id: str, path: Optional[str]) -> Iterator[str]:
        for item in self.client.list_artifacts(run_id, path):
            if item.is_dir:
                yield from self._artifact_paths(run_id, item.path)
            else:
                yield item.path

    # --- models -------------------------------------------------------------------------------------

    def models(self) -> Iterator[SourceModel]:
        if not self.with_models:
            return
        token = None
        while True:
            page = self.client.search_registered_models(max_results=PAGE, page_token=token)
            for model in page:
                yield self._model(model)
            token = page.token
            if not token:
                break

    def _model(self, model: Any) -> SourceModel:
        versions: list[Any] = []
        token = None
        while True:
            page = self.client.search_model_versions(
                f"name = '{model.name.replace(chr(39), chr(39) * 2)}'", max_results=PAGE, page_token=token
            )
            versions.extend(page)
            token = page.token
            if not token:
                break
        remarks: list[str] = []
        out = SourceModel(
            source="mlflow",
            source_id=model.name,
            name=model.name,
            description=model.description or "",
            tags=dict(model.tags or {}),
            aliases={alias: int(number) for alias, number in (model.aliases or {}).items()},
            remarks=remarks,
        )
        for version in sorted(versions, key=lambda v: int(v.version)):
            out.versions.append(self._version(model.name, version, remarks))
        return out

    def _version(self, name: str, version: Any, remarks: list[str]) -> SourceVersion:
        number = int(version.version)
        run_id = version.run_id or None
        source = str(version.source or "")
        model_id = getattr(version, "model_id", None) or ""
        artifact_path = ""
        files: Iterable[SourceFile] = ()
        if source.startswith("runs:/"):
            run_ref, _, artifact_path = source.removeprefix("runs:/").partition("/")
            run_id = run_id or run_ref
        elif model_id or source.startswith("models:/m-"):
            # An MLflow 3 logged model: its files live beside the run's, not in it; they are
            # imported into the run under models/<model id>/, as Assay's MLflow API keeps them.
            model_id = model_id or source.removeprefix("models:/")
            logged = self.client.get_logged_model(model_id)
            run_id = run_id or logged.source_run_id
            artifact_path = f"models/{model_id}"
            files = self._uri_files(logged.artifact_location, artifact_path + "/")
        elif run_id:
            run_root = self.client.get_run(run_id).info.artifact_uri.rstrip("/")
            if source.startswith(run_root + "/"):
                artifact_path = source[len(run_root) + 1 :]
            else:
                artifact_path = f"registered/{number}"
                files = self._uri_files(source, artifact_path + "/")
        return SourceVersion(
            source_id=f"{name}/{number}",
            version=number,
            run_source_id=run_id,
            artifact_path=artifact_path,
            files=files,
            description=version.description or "",
            tags=dict(version.tags or {}),
            created_at=version.creation_timestamp / 1000 if version.creation_timestamp else None,
            author=version.user_id or "",
            stage=version.current_stage or "",
        )

    def _uri_files(self, uri: str, prefix: str) -> Iterator[SourceFile]:
        local = _local_path(uri)
        if local is not None:
            if local.is_file():
                yield SourceFile(path=prefix + local.name, local=local)
            elif local.is_dir():
                for path in sorted(local.rglob("*")):
                    if path.is_file() and not path.is_symlink():
                        yield SourceFile(path=prefix + path.relative_to(local).as_posix(), local=path)
            return
        from mlflow.artifacts import download_artifacts

        with tempfile.TemporaryDirectory(prefix="assay-import-") as folder:
            root = Path(download_artifacts(artifact_uri=uri, dst_path=folder, tracking_uri=self.uri))
            if root.is_file():
                yield SourceFile(path=prefix + root.name, local=root)
                return
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    yield SourceFile(path=prefix + path.relative_to(root).as_posix(), local=path)
