"""Domain events for listeners above the apps that cause them (automations' webhooks).

An app that causes an event (registry, reviews, experiments) calls :func:`emit` inside
the transaction of the change; an app higher up (``automations``) tells this module about
itself with :func:`subscribe` from its ``ready()``, the way ``live`` learns its topics.
Emitters therefore never import their listeners. A handler runs synchronously inside the
emitter's transaction, so whatever it writes (an outbox row) commits or rolls back with
the change; it must queue any network work after commit (``core.tasks.enqueue_on_commit``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Every event type a listener may subscribe to; emit() refuses any other (a programming error).
EVENT_TYPES: tuple[str, ...] = (
    "alias.moved",
    "version.created",
    "review_request.opened",
    "review_request.approved",
    "review_request.changes_requested",
    "review_request.merged",
    "review_request.closed",
    "run.finished",
    "run.failed",
    "check.completed",
    "artifact.processed",
    "metric.alert",
)


@dataclass(frozen=True)
class DomainEvent:
    """``type`` one of EVENT_TYPES; ``project_id`` and ``repository_id`` say whose it is;
    ``data`` is JSON-safe and ids only where the listener must look more up (the listener
    lives higher and may read every app's models)."""

    type: str
    project_id: str
    actor: str | None
    data: dict[str, Any] = field(default_factory=dict)
    repository_id: str | None = None


Handler = Callable[[DomainEvent], None]
_handlers: list[Handler] = []


def subscribe(handler: Handler) -> None:
    """Register ``handler`` for every event (idempotent: ready() may run more than once)."""
    if handler not in _handlers:
        _handlers.append(handler)


def emit(event: DomainEvent) -> None:
    if event.type not in EVENT_TYPES:
        raise KeyError(f"unknown domain event {event.type!r}")
    for handler in list(_handlers):
        handler(event)


# --- metric batches -------------------------------------------------------------------------------
# The log path (experiments.services.run_log) tells the listeners (automations' metric alerts)
# about every stored batch: the run and its series (key -> experiments.metrics.Series, numpy
# arrays). A listener must be cheap (it runs in the log call, after the write) and look at
# the series only when its project has rules; network and database work it queues after commit.
BatchHandler = Callable[[Any, dict[str, Any]], None]
_batch_handlers: list[BatchHandler] = []


def subscribe_batches(handler: BatchHandler) -> None:
    if handler not in _batch_handlers:
        _batch_handlers.append(handler)


def batch_logged(run: Any, series: dict[str, Any]) -> None:
    for handler in _batch_handlers:
        handler(run, series)
