"""The embedded profile's scheduler: what Celery beat and a worker's timers do in production,
inside the one server process of ``make run`` (no Redis, tasks eager).

Without it the embedded profile had no periodic work at all (stalled-run alerts never fired,
abandoned uploads were never swept, webhook deliveries never pruned), and a task queued with
a delay (``apply_async(countdown=…)``, a webhook's next attempt) ran at once, inside the
request that caused it, because eager Celery ignores the countdown.

One daemon thread keeps a heap of due times: every ``CELERY_BEAT_SCHEDULE`` entry at its
interval (first run one interval after start, as beat does), and the delayed tasks
:class:`DelayAwareTask` hands it. Each job runs with the database connections of the thread
closed before and after (the request threads' connections are theirs), and a failing job is
logged and never stops the thread. Started by ``config/asgi.py`` when tasks are eager and
``ASSAY_EMBEDDED_SCHEDULER`` is on (the default); production runs beat and workers instead.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from celery import Task, current_app
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

log = logging.getLogger(__name__)

Job = Callable[[], Any]


class Scheduler:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Job, float | None, str]] = []
        self._order = itertools.count()  # ties run in the order they were added
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.ran: dict[str, int] = {}  # job name -> how many times it has run

    def every(self, seconds: float, job: Job, name: str) -> None:
        """Run ``job`` every ``seconds``, the first time ``seconds`` from now."""
        if seconds <= 0:
            raise ValueError(f"{name}: an interval must be positive, not {seconds!r}")
        self._push(self._clock() + seconds, job, seconds, name)

    def later(self, seconds: float, job: Job, name: str) -> None:
        """Run ``job`` once, ``seconds`` from now (at once when not positive)."""
        self._push(self._clock() + max(0.0, seconds), job, None, name)

    def _push(self, due: float, job: Job, interval: float | None, name: str) -> None:
        with self._wake:
            heapq.heappush(self._heap, (due, next(self._order), job, interval, name))
            self._wake.notify()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="assay-embedded-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._heap or self._heap[0][0] > self._clock()):
                    self._wake.wait(None if not self._heap else max(0.0, self._heap[0][0] - self._clock()))
                if self._stopped:
                    return
                due, _, job, interval, name = heapq.heappop(self._heap)
                if interval is not None:  # the next run counts from this one's due time, not its end
                    heapq.heappush(
                        self._heap, (max(due + interval, self._clock()), next(self._order), job, interval, name)
                    )
            self._run(job, name)

    def _run(self, job: Job, name: str) -> None:
        close_old_connections()
        try:
            job()
        except Exception:
            log.exception("embedded scheduler: %s failed", name)
        finally:
            close_old_connections()
            self.ran[name] = self.ran.get(name, 0) + 1


scheduler = Scheduler()


def _task_job(task_name: str, args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None) -> Job:
    def job() -> Any:
        return current_app.tasks[task_name].apply(args=args, kwargs=dict(kwargs or {}))

    return job


def start(schedule: Mapping[str, Mapping[str, Any]] | None = None) -> Scheduler:
    """Schedule every entry of ``schedule`` (default: ``CELERY_BEAT_SCHEDULE``; an entry's
    ``schedule`` must be seconds) and start the thread."""
    entries: Mapping[str, Mapping[str, Any]] = settings.CELERY_BEAT_SCHEDULE if schedule is None else schedule
    for name, entry in entries.items():
        interval = entry["schedule"]
        if not isinstance(interval, int | float):
            raise TypeError(f"CELERY_BEAT_SCHEDULE[{name!r}]: the embedded scheduler takes seconds, not {interval!r}")
        scheduler.every(float(interval), _task_job(entry["task"], tuple(entry.get("args", ()))), name)
    scheduler.start()
    return scheduler


class DelayAwareTask(Task):  # type: ignore[type-arg]
    """Celery's Task, except that with eager tasks and the embedded scheduler running, a
    delayed call (``countdown`` or ``eta``) waits on the scheduler instead of running now."""

    def apply_async(self, args: Any = None, kwargs: Any = None, task_id: Any = None, *rest: Any, **options: Any) -> Any:
        delay = _delay_of(options)
        if delay is not None and self.app.conf.task_always_eager and scheduler.running:
            scheduler.later(delay, _task_job(self.name, tuple(args or ()), kwargs), f"{self.name} (delayed)")
            return None
        return super().apply_async(args, kwargs, task_id, *rest, **options)


def _delay_of(options: Mapping[str, Any]) -> float | None:
    if options.get("countdown") is not None:
        return float(options["countdown"])
    eta = options.get("eta")
    if eta is not None:
        return float((eta - timezone.now()).total_seconds())
    return None
