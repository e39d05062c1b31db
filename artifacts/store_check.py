"""The artifact store against the database (``manage.py artifacts_check``).

* every verified blob (what artifact rows point at once processed) has its object at
  ``objects/<project>/<sha256>`` with the recorded size and, unless ``digests=False``, the
  recorded sha256 (the object is read through);
* a blob marked as having a thumbnail has it under ``derived/``;
* every object under ``objects/`` and ``derived/`` belongs to a blob row: the others are
  orphans (bytes nothing can reach), listed, and deleted only with ``delete_orphans``.

Uploads still in flight (``staging/``) are the periodic sweep's business
(``artifacts.services.artifacts_sweep``) and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from artifacts import storage
from artifacts.models import Artifact, Blob


@dataclass(frozen=True)
class Problem:
    kind: str  # missing | size_mismatch | digest_mismatch | missing_thumbnail | orphan
    key: str
    detail: str
    artifacts: tuple[str, ...] = ()


@dataclass
class StoreReport:
    blobs_checked: int = 0
    objects_seen: int = 0
    problems: list[Problem] = field(default_factory=list)
    orphans_deleted: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def store_check(*, digests: bool = True, delete_orphans: bool = False) -> StoreReport:
    store = storage.artifact_store()
    report = StoreReport()
    expected: set[str] = set()
    users: dict[str, list[str]] = {}
    for artifact_id, blob_id in Artifact.objects.values_list("id", "blob_id").order_by("id"):
        users.setdefault(blob_id, []).append(artifact_id)
    # Every key a blob row may own, whatever its state, is not an orphan.
    for blob in Blob.objects.order_by("project_id", "sha256").iterator():
        key = storage.object_key(blob.project_id, blob.sha256)
        expected.add(key)
        thumbnail = storage.derived_key(blob.project_id, blob.sha256, "thumbnail.png")
        expected.add(thumbnail)
        if blob.status != Blob.Status.VERIFIED:
            continue
        report.blobs_checked += 1
        used_by = tuple(users.get(blob.id, ()))
        size = store.size_of(key)
        if size is None:
            report.problems.append(Problem("missing", key, "the object is missing from the store", used_by))
            continue
        if size != blob.size:
            report.problems.append(Problem("size_mismatch", key, f"{size} bytes stored, {blob.size} recorded", used_by))
            continue
        if digests:
            with store.local_copy(key) as local:
                sha256, _ = storage.sha256_of(local)
            if sha256 != blob.sha256:
                report.problems.append(Problem("digest_mismatch", key, f"the stored bytes hash to {sha256}", used_by))
        if blob.thumbnail and store.size_of(thumbnail) is None:
            report.problems.append(Problem("missing_thumbnail", thumbnail, "the thumbnail is missing", used_by))
    for prefix in ("objects", "derived"):
        for key, size in store.keys(prefix):
            report.objects_seen += 1
            if key in expected:
                continue
            report.problems.append(Problem("orphan", key, f"{size} bytes that no blob row references"))
            if delete_orphans:
                store.delete(key)
                report.orphans_deleted += 1
    return report
