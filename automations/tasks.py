"""The delivery task: thin (one attempt through the service), acknowledged late so a
worker killed mid-delivery leaves the message to be delivered again; the service's claim
of the next attempt number under a row lock keeps a delivery from being sent twice at once.

# SECURITY: the argument is a delivery id only (no URL, no secret, no payload).
"""

from __future__ import annotations

from celery import shared_task

from automations import services
from automations.services import DELIVER_TASK


@shared_task(name=DELIVER_TASK, acks_late=True, reject_on_worker_lost=True)
def deliver_task(delivery_id: str) -> None:
    wait = services.attempt(delivery_id)
    if wait is not None:
        deliver_task.apply_async(args=(delivery_id,), countdown=wait)
