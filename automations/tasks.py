"""The dispatch task: thin (services.dispatch sends every due delivery, a batch at a time),
acknowledged late so a worker killed mid-batch leaves the message to run again; the
deliveries it claimed stay claimed until their lease ends, then any dispatcher takes them
again (same delivery ids), so a delivery is never sent by two dispatchers at once.

# SECURITY: no argument at all (no URL, no secret, no payload); the old per-delivery
# task takes a delivery id only.
"""

from __future__ import annotations

from celery import shared_task

from automations import alerts, services
from automations.services import DELIVER_TASK, DISPATCH_TASK


@shared_task(name=DISPATCH_TASK, acks_late=True, reject_on_worker_lost=True)
def dispatch_task() -> int:
    """Woken after commits (one wake-up per burst), by its own timer for retries and lease
    ends, and periodically (CELERY_BEAT_SCHEDULE ``webhook-dispatch``) as a safety net."""
    return services.dispatch()


@shared_task(name=DELIVER_TASK, acks_late=True, reject_on_worker_lost=True)
def deliver_task(delivery_id: str) -> int:
    """A message queued before the dispatcher existed (one per delivery): it wakes it."""
    return services.dispatch()


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
