"""Queueing Celery tasks from services without importing the task modules (which import
the services they call: importing them back would be a cycle). A task module names its
tasks with the constants its app's services queue them by, and the app's ``ready()``
imports it, so every process (web, worker, eager tests) has them registered."""

from __future__ import annotations

from celery import current_app
from django.db import transaction


def enqueue_on_commit(task_name: str, *args: str) -> None:
    """Queue the task named ``task_name`` with ``args`` (ids only) after the transaction
    commits; nothing is queued if it rolls back. An unknown name raises KeyError then: a
    programming error, as an unknown action is in accounts.access."""
    transaction.on_commit(lambda: current_app.tasks[task_name].delay(*args))
