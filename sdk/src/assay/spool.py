"""The disk spool: what could not reach the server waits here for ``assay sync``.

Layout, one directory per run under ``$ASSAY_DIR/spool/`` (default ``~/.assay/spool/``)::

    <run-id or offline-…>/
        run.json          {"version", "local_id", "run_id", "url", "create", "finish", "name", ...}
        0000000001.jsonl  one request per line: {"op": "log"|"update"|"figure"|"artifact", "body": {...}}
        artifact-<id>.jsonl  an online run's artifact whose upload failed (one "artifact" line),
                          written by the uploader's thread, so never numbered like the others
        artifacts/<id>/…  copies of the files an offline run logged as artifacts, or an online
                          run failed to upload
        .lock             held (flock) by the process that is still writing the run

Every file is written to a temporary name, fsynced and renamed, so a crash leaves either
the whole file or none of it. Each ``log`` line keeps the ``batch_id`` it was given when
the points were first batched; the server ignores a batch id it has seen, ``update`` is a
merge and ``figure`` replaces the figure of the same name and step, so sending a file
twice changes nothing. A file is deleted only after every line in it got a 2xx answer,
and the server-assigned run id of an offline run is written to ``run.json`` before any
batch is sent, so a second ``assay sync`` neither duplicates points nor creates a second
run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

from assay import env
from assay.artifacts import LocalFile, Uploader
from assay.client import Client
from assay.errors import (
    AssayError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)

try:  # POSIX only; on Windows the lock is advisory-free and sync trusts the user.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

META = "run.json"
LOCK = ".lock"
ARTIFACTS = "artifacts"
SPOOL_VERSION = 1


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def log_line(body: bytes) -> bytes:
    """A spool line for an already-encoded ``/log/`` batch (no re-encoding of big batches)."""
    return b'{"op":"log","body":' + body + b"}"


def op_line(op: str, body: dict[str, Any]) -> bytes:
    return json.dumps({"op": op, "body": body}, separators=(",", ":"), allow_nan=False).encode()


class SpoolDir:
    """One run's spool directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_handle: IO[bytes] | None = None
        self._seq = 0

    @classmethod
    def create(cls, name: str, meta: dict[str, Any], root: Path | None = None) -> SpoolDir:
        path = (root or env.spool_root()) / name
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        spool = cls(path)
        existing = spool.read_meta() if (path / META).exists() else {}
        spool.write_meta({**existing, **meta, "version": SPOOL_VERSION})
        return spool

    # --- metadata -------------------------------------------------------------------------

    def read_meta(self) -> dict[str, Any]:
        raw: Any = json.loads((self.path / META).read_bytes())
        if not isinstance(raw, dict):
            raise AssayError(f"{self.path / META} is not a JSON object.")
        return raw

    def write_meta(self, meta: dict[str, Any]) -> None:
        _atomic_write(self.path / META, json.dumps(meta, indent=1, allow_nan=False).encode())

    def update_meta(self, **changes: Any) -> dict[str, Any]:
        meta = {**self.read_meta(), **changes}
        self.write_meta(meta)
        return meta

    # --- request files --------------------------------------------------------------------

    def files(self) -> list[Path]:
        return sorted(p for p in self.path.glob("*.jsonl") if not p.name.startswith("."))

    def append(self, lines: list[bytes]) -> Path:
        """Write ``lines`` as one new file, atomically, after every file already there."""
        if not self._seq:
            names = [p.stem for p in self.files()]
            self._seq = max((int(n) for n in names if n.isdigit()), default=0)
        self._seq += 1
        path = self.path / f"{self._seq:010d}.jsonl"
        _atomic_write(path, b"\n".join(lines) + b"\n")
        return path

    def append_artifact(self, body: dict[str, Any]) -> Path:
        """Write one ``artifact`` line as a file of its own (safe beside the transport's
        numbered files: no shared counter); sync sends it after the numbered ones."""
        path = self.path / f"artifact-{uuid.uuid4().hex}.jsonl"
        _atomic_write(path, op_line("artifact", body) + b"\n")
        return path

    @staticmethod
    def read_lines(path: Path) -> list[dict[str, Any]]:
        out = []
        for raw in path.read_bytes().splitlines():
            if raw.strip():
                item: Any = json.loads(raw)
                if isinstance(item, dict) and isinstance(item.get("op"), str) and isinstance(item.get("body"), dict):
                    out.append(item)
        return out

    def pending_batches(self) -> int:
        return sum(len(self.read_lines(p)) for p in self.files())

    def add_artifact(self, files: Sequence[Any]) -> list[dict[str, Any]]:
        """Copy logged files (``assay.artifacts.LocalFile``: ``source``, checked ``name``)
        into the spool; the entries of the spool's ``artifact`` line."""
        folder = self.path / ARTIFACTS / uuid.uuid4().hex
        entries = []
        for item in files:
            target = folder / item.name  # a checked relative name: no "..", not absolute
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.source, target)
            entries.append(
                {"path": item.name, "file": target.relative_to(self.path).as_posix(), "size": target.stat().st_size}
            )
        return entries

    # --- the writer's lock ----------------------------------------------------------------

    def lock(self) -> bool:
        """Take the directory's lock without waiting; False if another process holds it."""
        if fcntl is None or self._lock_handle is not None:
            return True
        handle = open(self.path / LOCK, "ab")  # noqa: SIM115 - held until unlock()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_handle = handle
        return True

    def unlock(self) -> None:
        if self._lock_handle is not None:
            with contextlib.suppress(OSError):
                if fcntl is not None:
                    fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def remove(self) -> None:
        self.unlock()
        shutil.rmtree(self.path, ignore_errors=True)


def send_line(client: Client, run_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """Send one spooled request; raises the client's errors."""
    op, body = item["op"], item["body"]
    if op == "log":
        return client.log_batch(run_id, json.dumps(body, separators=(",", ":")).encode())
    if op == "update":
        return client.update_run(run_id, body)
    if op == "figure":
        return client.add_figure(run_id, body)
    raise AssayError(f"Unknown spooled operation {op!r}.")


@dataclass
class SyncResult:
    """What ``sync`` did for one spool directory."""

    directory: str
    run_id: str | None = None
    url: str | None = None
    created: bool = False
    batches: int = 0
    duplicates: int = 0
    points: int = 0
    artifacts: int = 0  # files of offline artifacts uploaded (or already on the server)
    rejected: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None


def spooled_dirs(root: Path | None = None) -> list[SpoolDir]:
    base = root or env.spool_root()
    if not base.is_dir():
        return []
    return [SpoolDir(p) for p in sorted(base.iterdir()) if p.is_dir() and (p / META).exists()]


def sync(
    *,
    url: str | None = None,
    token: str | None = None,
    root: Path | None = None,
    only: list[str] | None = None,
    on_progress: Callable[[SyncResult], None] | None = None,
    progress: bool = False,
) -> list[SyncResult]:
    """Upload every spooled run (or those named in ``only``) exactly once.

    A directory whose writer is still alive (its lock is held) is skipped. Errors of one
    directory are reported in its result and do not stop the others; files not yet
    acknowledged stay on disk for the next ``sync``. ``progress``: print a progress line
    to stderr while a run's spool files and artifacts are sent.
    """
    results = []
    for spool in spooled_dirs(root):
        if only and spool.path.name not in only:
            continue
        result = SyncResult(directory=str(spool.path))
        if not spool.lock():
            result.skipped = "in use by a running process"
            results.append(result)
            continue
        try:
            _sync_one(spool, result, url=url, token=token, progress=progress)
        except AssayError as exc:
            result.error = str(exc)
        finally:
            spool.unlock()
        results.append(result)
        if on_progress is not None:
            on_progress(result)
    return results


def _stderr(message: str) -> None:
    print(f"assay: {message}", file=sys.stderr, flush=True)


class _SyncProgress:
    """``assay: syncing <run>: 3/40 files, 120000 points`` on stderr: refreshed in place on a
    terminal, at most every 2 s otherwise; nothing for a spool of one file."""

    def __init__(self, name: str, total: int, enabled: bool) -> None:
        self.name, self.total = name, total
        self.enabled = enabled and total > 1
        self._tty = sys.stderr.isatty()
        self._last = 0.0

    def update(self, done: int, result: SyncResult) -> None:
        now = time.monotonic()
        final = done == self.total
        if not self.enabled or (not final and now - self._last < (0.2 if self._tty else 2.0)):
            return
        self._last = now
        end = "\n" if final or not self._tty else "\r"
        line = f"assay: syncing {self.name}: {done}/{self.total} files, {result.points} points"
        print(line, end=end, file=sys.stderr, flush=True)


def _upload_artifact(uploader: Uploader, spool: SpoolDir, body: dict[str, Any], result: SyncResult) -> None:
    files = []
    for entry in body.get("files") or []:
        source = spool.path / str(entry.get("file", ""))
        if spool.path.resolve() not in source.resolve().parents or not source.is_file():
            raise ValidationError(f"the spooled copy of artifact {entry.get('path')!r} is missing")
        files.append(LocalFile(source, str(entry["path"]), source.stat().st_size))
    kind, label = str(body.get("kind") or "file"), str(body.get("label") or "artifact")
    uploader.upload(files, kind, label)  # raises when it fails: the spool file is kept
    result.artifacts += len(files)


def _sync_one(
    spool: SpoolDir, result: SyncResult, *, url: str | None, token: str | None, progress: bool = False
) -> None:
    meta = spool.read_meta()
    server = url or meta.get("url") or env.resolve_url()
    if not server:
        raise ConfigurationError("No Assay server URL: set ASSAY_URL, pass --url or run `assay login`.")
    with Client(server, env.resolve_token(token)) as client:
        result.url = client.url
        run_id = meta.get("run_id")
        if not run_id:
            create = meta.get("create")
            if not isinstance(create, dict):
                raise AssayError(f"{spool.path / META} has no run to create.")
            answer = client.create_run(create)
            run_id = str(answer["id"])
            # Written before any batch is sent: a second sync reuses this run.
            meta = spool.update_meta(run_id=run_id, url=client.url, web_url=answer.get("url"))
            result.created = True
        result.run_id = run_id
        files = spool.files()
        shown = _SyncProgress(spool.path.name, len(files), progress)
        uploader: Uploader | None = None
        try:
            for done, path in enumerate(files, start=1):
                for item in spool.read_lines(path):
                    try:
                        if item["op"] == "artifact":
                            if uploader is None:
                                uploader = Uploader(client, run_id, say=_stderr, progress=progress)
                            _upload_artifact(uploader, spool, item["body"], result)
                            continue
                        answer = send_line(client, run_id, item)
                    except (ValidationError, ConflictError) as exc:
                        # Final refusals: resending cannot help, so do not block the spool on them.
                        result.rejected.append(f"{path.name}: {exc}")
                        continue
                    except (AuthenticationError, PermissionDeniedError, NotFoundError):
                        raise
                    if item["op"] == "log":
                        result.batches += 1
                        if answer.get("duplicate"):
                            result.duplicates += 1
                        points = answer.get("points")
                        result.points += points if isinstance(points, int) else 0
                path.unlink()
                shown.update(done, result)
        finally:
            if uploader is not None:
                uploader.close()
        finish = meta.get("finish")
        if isinstance(finish, dict) and finish:
            client.update_run(run_id, _uploads_done(finish))
        elif result.artifacts and meta.get("uploads_pending"):
            client.update_run(run_id, {"info": {"uploads": {"pending": [], "synced_at": _now_iso()}}})
    spool.remove()


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _uploads_done(finish: dict[str, Any]) -> dict[str, Any]:
    """The end of the run as the SDK recorded it, with the artifacts it could not upload
    marked uploaded: sync only gets here once every spooled artifact went up."""
    info = finish.get("info")
    uploads = info.get("uploads") if isinstance(info, dict) else None
    if not isinstance(info, dict) or not isinstance(uploads, dict) or not uploads.get("pending"):
        return finish
    return {**finish, "info": {**info, "uploads": {**uploads, "pending": [], "synced_at": _now_iso()}}}


@contextlib.contextmanager
def locked(spool: SpoolDir) -> Iterator[bool]:
    got = spool.lock()
    try:
        yield got
    finally:
        if got:
            spool.unlock()
