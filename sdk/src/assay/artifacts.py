"""Artifact uploads and downloads: straight to the object store through presigned URLs.

``run.log_artifact(path)`` checks the names at the call (the server's rules, mirrored in
``name_problem``), then a background thread hashes the files, declares them to the server
(one manifest per directory), PUTs what the server does not already hold (multipart parts
in parallel), and completes. ``run.finish()`` waits for it. An interrupted upload resumes:
declaring the same file again makes the server list only the parts still missing.

A failed upload is retried (each PUT ``PUT_ATTEMPTS`` times, the whole file
``JOB_ATTEMPTS`` times with fresh URLs, with exponential backoff from ``RETRY_BACKOFF``
seconds); when it still fails, ``on_failed`` hands the files to the run, which copies them
into its spool for ``assay sync`` and tells the server that they are pending.

# SECURITY: presigned URLs are sent without the Assay token (they are their own
# credential, and the store is another host); downloads write only inside the target
# folder, under names that pass the same rules, and are checked against their sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import sys
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import unquote

import httpx

from assay.client import USER_AGENT, Client
from assay.digests import CHUNK, file_sha256
from assay.errors import AssayError, UsageError

MAX_PATH_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255
MAX_FILES_PER_DECLARE = 1_000
KINDS = ("file", "model", "dataset")
PARALLEL_PARTS = 4
PUT_ATTEMPTS = 4
JOB_ATTEMPTS = 3
RETRY_BACKOFF = 0.5  # seconds before the first retry; doubled at each next one


class ArtifactNameError(UsageError, ValueError):
    """A name the server would refuse (absolute, ``..``, control characters, too long…)."""


def _control(ch: str) -> bool:
    return unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"}


def name_problem(name: object) -> Optional[str]:
    """The server's artifact-path rule (artifacts/paths.py), checked before any upload."""
    if not isinstance(name, str) or not name:
        return "an artifact name is a non-empty string"
    text = name
    for _ in range(8):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    text = unicodedata.normalize("NFC", text)
    if len(text) > MAX_PATH_LENGTH:
        return f"it is longer than {MAX_PATH_LENGTH} characters"
    if any(ch == "\x00" or _control(ch) for ch in text):
        return "it contains a NUL or control character"
    for ch in "\\;?#":
        if ch in text:
            return f"it contains {ch!r}"
    if text.startswith("/"):
        return "it is absolute (starts with '/')"
    if len(text) >= 2 and text[1] == ":" and text[0].isalpha():
        return "it starts with a drive letter"
    for segment in text.split("/"):
        if segment in ("", ".", ".."):
            return f"it has an empty, '.' or '..' segment ({name!r})"
        if segment != segment.strip():
            return "a segment starts or ends with a space"
        if len(segment) > MAX_SEGMENT_LENGTH:
            return f"a segment is longer than {MAX_SEGMENT_LENGTH} characters"
    return None


def check_name(name: str) -> str:
    problem = name_problem(name)
    if problem:
        raise ArtifactNameError(f"artifact name {name!r} is refused: {problem}.")
    return name


@dataclass
class LocalFile:
    source: Path
    name: str
    size: int = 0
    sha256: str = ""


def collect(path: str | os.PathLike[str], name: Optional[str] = None) -> list[LocalFile]:
    """The files to upload for ``path`` (a file, or every file under a directory), named
    ``name`` (default: the file or directory name) and checked now."""
    source = Path(path)
    if not source.exists():
        raise UsageError(f"log_artifact: {str(source)!r} does not exist.")
    base = name if name is not None else source.name
    check_name(base)
    if source.is_file():
        return [LocalFile(source, base, source.stat().st_size)]
    files = []
    for item in sorted(source.rglob("*")):
        if item.is_file() and not item.is_symlink():
            files.append(
                LocalFile(item, check_name(f"{base}/{item.relative_to(source).as_posix()}"), item.stat().st_size)
            )
    if not files:
        raise UsageError(f"log_artifact: the directory {str(source)!r} holds no files.")
    return files


def _read_range(path: Path, start: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(start)
        return handle.read(size)


@dataclass
class UploadStats:
    files_declared: int = 0
    files_uploaded: int = 0
    files_skipped: int = 0  # the server already held the content
    parts_uploaded: int = 0
    parts_resumed: int = 0  # parts the server already had from an earlier attempt
    bytes_uploaded: int = 0
    errors: list[str] = field(default_factory=list)
    spooled: list[str] = field(default_factory=list)  # names kept in the spool for `assay sync`


class Progress:
    """One stderr line per artifact job, refreshed in place on a terminal, every 25 % otherwise."""

    def __init__(self, label: str, total: int, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.done = 0
        self._shown = -1
        self._lock = threading.Lock()
        self._tty = sys.stderr.isatty()

    def add(self, count: int) -> None:
        with self._lock:
            self.done += count
            percent = int(self.done * 100 / self.total) if self.total else 100
            step = percent if self._tty else percent // 25 * 25
            if self.enabled and step != self._shown:
                self._shown = step
                end = "\r" if self._tty and percent < 100 else "\n"
                print(
                    f"assay: uploading {self.label}: {percent}% ({sizes(self.done, self.total)})",
                    end=end,
                    file=sys.stderr,
                )


def sizes(done: int, total: int) -> str:
    """``512/2,048 bytes``, ``12.5/40.0 KiB``, ``1.2/3.4 MiB``, ``0.50/1.20 GiB``: the unit of the total."""
    if total < 1024:
        return f"{done:,}/{total:,} bytes"
    for unit, scale, digits in (("KiB", 2**10, 1), ("MiB", 2**20, 1), ("GiB", 2**30, 2)):
        if total < scale * 1024 or unit == "GiB":
            return f"{done / scale:.{digits}f}/{total / scale:.{digits}f} {unit}"
    raise AssertionError("unreachable")


class Uploader:
    """A background thread that runs artifact jobs in order (each a file or a directory)."""

    def __init__(
        self,
        client: Client,
        run_id: str,
        *,
        say: Callable[[str], None],
        progress: bool = True,
        parallel: int = PARALLEL_PARTS,
        on_failed: Optional[Callable[[list[LocalFile], str, str, str], None]] = None,
    ) -> None:
        self._client = client
        self._on_failed = on_failed
        self._run_id = run_id
        self._say = say
        self._progress = progress
        self._parallel = parallel
        self._jobs: queue.Queue[Optional[tuple[list[LocalFile], str, str]]] = queue.Queue()
        self._store = store_client()
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="assay-part")
        self.stats = UploadStats()
        self._thread = threading.Thread(target=self._loop, name="assay-artifacts", daemon=True)
        self._thread.start()

    def submit(self, files: list[LocalFile], kind: str, label: str) -> None:
        self._jobs.put((files, kind, label))

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until every job so far is done; True if they are."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._jobs.unfinished_tasks:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self, timeout: Optional[float] = None) -> bool:
        done = self.wait(timeout)
        self._jobs.put(None)
        self._pool.shutdown(wait=done)
        self._store.close()
        return done

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                files, kind, label = job
                self.upload(files, kind, label)
            except Exception as exc:  # noqa: BLE001 - one failed artifact must not stop the others
                if job is not None and self._on_failed is not None:
                    try:
                        self._on_failed(job[0], job[1], job[2], str(exc))
                        self.stats.spooled.extend(item.name for item in job[0])
                        continue
                    except Exception as spool_exc:  # noqa: BLE001 - say why, below
                        exc = AssayError(f"{exc}; and it could not be kept for `assay sync`: {spool_exc}")
                message = f"artifact {job[2] if job else '?'} was not uploaded: {exc}"
                self.stats.errors.append(message)
                self._say(message)
            finally:
                self._jobs.task_done()

    # --- one job -------------------------------------------------------------------------------

    def upload(self, files: list[LocalFile], kind: str, label: str) -> None:
        for item in files:
            if not item.sha256:
                item.size = item.source.stat().st_size
                item.sha256 = file_sha256(item.source)
        progress = Progress(label, sum(f.size for f in files), self._progress)
        for start in range(0, len(files), MAX_FILES_PER_DECLARE):
            chunk = files[start : start + MAX_FILES_PER_DECLARE]
            for attempt in range(JOB_ATTEMPTS):
                answers = self._client.declare_artifacts(self._run_id, [self._entry(f) for f in chunk], kind)
                if attempt == 0:
                    self.stats.files_declared += len(chunk)
                try:
                    for item, answer in zip(chunk, answers):
                        self._send(item, answer, progress, first=attempt == 0)
                    break
                except (httpx.HTTPError, AssayError) as exc:
                    if attempt == JOB_ATTEMPTS - 1:
                        raise AssayError(f"upload failed after {JOB_ATTEMPTS} attempts: {_reason(exc)}") from None
                    # Fresh URLs and the list of parts already stored: resume, not restart.
                    time.sleep(RETRY_BACKOFF * 2 ** (attempt + 1))

    @staticmethod
    def _entry(item: LocalFile) -> dict[str, Any]:
        return {"path": item.name, "size": item.size, "sha256": item.sha256}

    def _send(self, item: LocalFile, answer: dict[str, Any], progress: Progress, *, first: bool) -> None:
        artifact = answer.get("artifact") or {}
        upload = answer.get("upload")
        if upload is None:
            if first:
                self.stats.files_skipped += 1
            progress.add(item.size)
            return
        if upload.get("multipart"):
            part_size = int(upload["part_size"])
            done = list(upload.get("parts_done") or [])
            self.stats.parts_resumed += len(done)
            for number in done:
                progress.add(min(part_size, item.size - (int(number) - 1) * part_size))
            futures = [
                self._pool.submit(self._put_part, item, part, part_size, upload.get("headers") or {}, progress)
                for part in upload.get("parts") or []
            ]
            for future in futures:
                future.result()
        elif upload.get("url"):
            self._put(upload["url"], _read_range(item.source, 0, item.size), upload.get("headers") or {})
            self.stats.bytes_uploaded += item.size
            progress.add(item.size)
        else:
            progress.add(item.size)
        self._client.complete_artifact(self._run_id, str(artifact.get("id", "")))
        self.stats.files_uploaded += 1

    def _put_part(
        self, item: LocalFile, part: dict[str, Any], part_size: int, headers: dict[str, str], progress: Progress
    ) -> None:
        number, size = int(part["number"]), int(part["size"])
        self._put(str(part["url"]), _read_range(item.source, (number - 1) * part_size, size), headers)
        self.stats.parts_uploaded += 1
        self.stats.bytes_uploaded += size
        progress.add(size)

    def _put(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        sent_headers = {str(k): str(v) for k, v in headers.items()}
        sent_headers["Content-Length"] = str(len(data))
        for attempt in range(PUT_ATTEMPTS):
            try:
                response = self._store.put(url, content=data, headers=sent_headers)
            except httpx.TransportError:
                if attempt == PUT_ATTEMPTS - 1:
                    raise
            else:
                if response.status_code < 300:
                    return
                if response.status_code < 500 and response.status_code != 429:
                    raise AssayError(f"the object store refused a part (HTTP {response.status_code})")
                if attempt == PUT_ATTEMPTS - 1:
                    raise AssayError(f"the object store failed (HTTP {response.status_code})")
            time.sleep(RETRY_BACKOFF * 2**attempt)


def _reason(exc: Exception) -> str:
    """A transport error in words: httpx's ``ConnectError`` says "[Errno 111] Connection refused"."""
    if isinstance(exc, httpx.TransportError):
        host = ""
        with contextlib.suppress(RuntimeError):
            host = f" ({exc.request.url.scheme}://{exc.request.url.netloc.decode()})"
        return f"the object store could not be reached{host}: {exc}"
    return str(exc)


# --- the object store ---------------------------------------------------------------------------


# SECURITY: presigned URLs go through this client, never through ``Client``: they are their
# own credential, and the Assay token must not travel to the store's host.
def store_client() -> httpx.Client:
    """HTTP to the object store's presigned URLs (uploads and downloads): the SDK's user
    agent, long timeouts, no redirects."""
    return httpx.Client(
        headers={"User-Agent": USER_AGENT}, timeout=httpx.Timeout(300.0, connect=10.0), follow_redirects=False
    )


def download_checked(store: httpx.Client, url: str, destination: Path, sha256: str, label: str) -> None:
    """GET a presigned URL into ``destination`` through a ``.part`` file that replaces it
    only when its bytes have the expected ``sha256`` (hex)."""
    partial = destination.with_name(destination.name + ".part")
    digest = hashlib.sha256()
    with store.stream("GET", url) as response:
        if response.status_code != 200:
            raise AssayError(f"download of {label} failed (HTTP {response.status_code})")
        with open(partial, "wb") as out:
            for block in response.iter_bytes(CHUNK):
                digest.update(block)
                out.write(block)
    if digest.hexdigest() != sha256:
        partial.unlink()
        raise AssayError(f"{label}: the downloaded bytes do not match its sha256")
    os.replace(partial, destination)


# --- downloads ----------------------------------------------------------------------------------


def download(client: Client, run_id: str, target: Path, path: Optional[str] = None) -> list[Path]:
    """Download a run's ready artifacts (all, one file, or a folder) into ``target``,
    keeping their relative names; each file is checked against its sha256."""
    if path is not None:
        check_name(path.rstrip("/"))
    items = client.list_artifacts(run_id, path=path.rstrip("/") if path else None)
    if not items:
        raise UsageError(f"run {run_id} has no artifact {path!r}." if path else f"run {run_id} has no artifacts.")
    root = target.resolve()
    written: list[Path] = []
    with store_client() as store:
        for item in items:
            name = str(item.get("path", ""))
            if item.get("status") != "ready":
                raise AssayError(f"{name} is {item.get('status')} ({item.get('reason') or 'not ready yet'}).")
            check_name(name)
            destination = (root / name).resolve()
            if root not in destination.parents:
                raise AssayError(f"refusing to write {name!r} outside {root}")
            link = client.artifact_download(run_id, str(item["id"]))
            destination.parent.mkdir(parents=True, exist_ok=True)
            download_checked(store, str(link["url"]), destination, str(item.get("sha256")), name)
            written.append(destination)
    return written
