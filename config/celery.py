from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("assay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Request ids into task headers (web side) and out of them (worker side); task metrics.
from core.observability import connect_celery_signals  # noqa: E402

connect_celery_signals()
