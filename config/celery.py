from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# core.embedded.DelayAwareTask: in the embedded profile a delayed task waits on the in-process
# scheduler instead of running at once (eager Celery ignores countdowns); elsewhere Celery's Task.
app = Celery("assay", task_cls="core.embedded:DelayAwareTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Request ids into task headers (web side) and out of them (worker side); task metrics.
from core.observability import connect_celery_signals  # noqa: E402

connect_celery_signals()
