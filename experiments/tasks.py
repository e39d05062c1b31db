"""Celery tasks of the experiments app: thin (load by id, call one service), idempotent.

# SECURITY: task arguments are ids only.
"""

from __future__ import annotations

from celery import shared_task

from accounts.models import Project
from experiments import services


@shared_task(name=services.REFINGERPRINT_TASK, acks_late=True)
def runs_refingerprint_task(project_id: str) -> int:
    """Re-fingerprint every run of a project after its exclusion list changed, with the
    list as it is now (a later change queues another pass; each pass is idempotent)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    return services.runs_refingerprint(project=project, exclude=services.tried_exclude_of(project_id=project_id))
