"""Celery tasks of the artifacts app: thin (load by id, call one service), idempotent,
acknowledged late (settings: ``CELERY_TASK_ACKS_LATE``), so a worker killed in the middle
leaves the message to be delivered again and the service finds where it stopped.

# SECURITY: task arguments are ids only, never URLs, keys or tokens (they sit in Redis).
"""

from __future__ import annotations

import logging

from celery import shared_task

from artifacts import processing, retention, services

log = logging.getLogger(__name__)

MAX_RETRIES = 5


@shared_task(
    name=services.ARTIFACT_PROCESS_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES
)
def artifact_process_task(self, artifact_id: str) -> None:  # type: ignore[no-untyped-def]
    """Verify, promote and inspect one artifact; retried with backoff on store trouble,
    then marked failed with the reason."""
    try:
        processing.artifact_process(artifact_id=artifact_id)
    except Exception as exc:
        if self.request.retries >= MAX_RETRIES:
            log.exception("artifact %s: processing failed for good", artifact_id)
            processing.artifact_fail(artifact_id=artifact_id, reason=f"Processing failed: {type(exc).__name__}.")
            return
        raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from None


@shared_task(acks_late=True)
def artifacts_sweep_task() -> dict[str, int]:
    """Periodic (CELERY_BEAT_SCHEDULE): expire abandoned uploads, re-queue lost processing."""
    return services.artifacts_sweep()


@shared_task(acks_late=True)
def retention_enforce_task() -> dict[str, int]:
    """Periodic (CELERY_BEAT_SCHEDULE, daily): apply every project's retention policy."""
    reports = retention.retention_enforce(dry_run=False)
    return {
        "projects": len(reports),
        "runs": sum(len(r.runs) for r in reports),
        "artifacts": sum(len(r.artifacts) for r in reports),
    }
