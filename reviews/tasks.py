"""Celery tasks of the reviews app: thin (load by id, call one service), idempotent,
acknowledged late, so a worker killed mid-check leaves the message to be delivered again
and the service finds the check where it was.

The services queue these tasks by the names they define (reviews.services.base), so this
module imports the services and the services never import it.

# SECURITY: task arguments are ids only.
"""

from __future__ import annotations

import logging

from celery import shared_task

from reviews import services
from reviews.services.base import CHECK_RUN_TASK, NOTIFICATION_EMAIL_TASK

log = logging.getLogger(__name__)

MAX_RETRIES = 3


@shared_task(name=CHECK_RUN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def check_run_task(self, check_id: str) -> str | None:  # type: ignore[no-untyped-def]
    """Run one review check; a check that is already finished or superseded is left alone."""
    try:
        check = services.check_run(check_id=check_id)
    except Exception as exc:
        if self.request.retries >= MAX_RETRIES:
            log.exception("review check %s failed for good", check_id)
            raise
        raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 60)) from None
    return check.status if check is not None else None


@shared_task(
    name=NOTIFICATION_EMAIL_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES
)
def notification_email_task(self, notification_id: str) -> bool:  # type: ignore[no-untyped-def]
    """E-mail one notification (at most once: the service records when it was sent)."""
    try:
        return services.notification_email(notification_id=notification_id)
    except OSError as exc:  # SMTP trouble: try again later
        raise self.retry(exc=exc, countdown=60) from None
