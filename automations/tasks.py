"""The delivery task: thin (one attempt through the service), acknowledged late so a
worker killed mid-delivery leaves the message to be delivered again; the service's claim
of the next attempt number under a row lock keeps a delivery from being sent twice at once.

# SECURITY: the argument is a delivery id only (no URL, no secret, no payload).
"""

from __future__ import annotations

from celery import shared_task

from automations import alerts, services
from automations.services import DELIVER_TASK


@shared_task(name=DELIVER_TASK, acks_late=True, reject_on_worker_lost=True)
def deliver_task(delivery_id: str) -> None:
    wait = services.attempt(delivery_id)
    if wait is not None:
        deliver_task.apply_async(args=(delivery_id,), countdown=wait)


@shared_task(name=alerts.FIRE_TASK, acks_late=True, reject_on_worker_lost=True)
def alert_fire_task(rule_id: str, run_id: str, key: str, value: str, step: str) -> bool:
    """Fire one alert rule on one run (queued by the log path when a batch crossed it);
    idempotent: the unique (rule, run) constraint makes a second call do nothing."""
    fired = alerts.alert_fire(rule_id=rule_id, run_id=run_id, key=key, value=float(value), step=int(step))
    return fired is not None


@shared_task(name=alerts.STALLED_TASK, acks_late=True)
def alerts_stalled_task() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE, every minute): fire ``stalled`` rules on quiet runs."""
    return alerts.stalled_check()


@shared_task(name=services.PRUNE_TASK, acks_late=True)
def deliveries_prune_task() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE, daily): delete deliveries past the retention."""
    return services.deliveries_prune()
