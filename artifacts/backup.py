"""Copy the artifact store to a folder and back: the "bucket sync" half of a backup
(docs/deploy.md, "Backup and restore"; the database half is ``pg_dump``).

Works with either backend (``ASSAY_ARTIFACTS``), so a backup of a MinIO bucket can be
restored into another bucket or a local store. Like ``aws s3 sync``/``mc mirror`` it copies
only what differs (a key of the same size is skipped: keys under ``objects/`` are
content-addressed, so the same key and size is the same content). ``staging/`` (uploads in
flight) is left out.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from artifacts import storage

PREFIXES = ("objects", "derived")


@dataclass
class SyncReport:
    copied: int = 0
    skipped: int = 0
    bytes_copied: int = 0


def store_backup(*, folder: Path) -> SyncReport:
    """Copy every object of the store under ``folder/<key>``."""
    store = storage.artifact_store()
    report = SyncReport()
    for prefix in PREFIXES:
        for key, size in store.keys(prefix):
            target = folder / storage.check_key(key)
            if target.is_file() and target.stat().st_size == size:
                report.skipped += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with store.local_copy(key) as local:
                shutil.copyfile(local, target)
            report.copied += 1
            report.bytes_copied += size
    return report


def store_restore(*, folder: Path) -> SyncReport:
    """Put every file under ``folder`` (as written by ``store_backup``) back into the store."""
    store = storage.artifact_store()
    report = SyncReport()
    for prefix in PREFIXES:
        root = folder / prefix
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            key = storage.check_key(path.relative_to(folder).as_posix())
            size = path.stat().st_size
            if store.size_of(key) == size:
                report.skipped += 1
                continue
            store.put_file(key, path)
            report.copied += 1
            report.bytes_copied += size
    return report
