"""Webhooks: manage them (admins), turn domain events into deliveries (an outbox written in
the transaction of the change, sent after commit by a worker), and send one attempt of a
delivery (the worker's side), with retries, the attempt log and auto-disabling."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import secrets
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import access
from accounts.audit import audit_record
from accounts.models import Membership, Project, ProjectGrant, ProjectRole, User
from automations import outbound, payloads
from automations.models import Attempt, Delivery, Webhook
from core.domain_events import EVENT_TYPES, DomainEvent
from core.errors import Conflict, Invalid, NotFound
from core.tasks import enqueue_on_commit
from core.validation import choice, choices, string
from registry import selectors as registry_selectors

log = logging.getLogger(__name__)

DELIVER_TASK = "automations.deliver"
PRUNE_TASK = "automations.deliveries_prune"
PRUNE_CHUNK = 5_000
TEST_EVENT = "webhook.test"
MAX_WEBHOOKS_PER_PROJECT = 20
SECRET_MIN, SECRET_MAX = 16, 200
# A delivery is tried at most this many times, waiting base, 2×base, 4×base … between them
# (ASSAY_WEBHOOK_RETRY_BASE_MS; 30 s by default: about an hour and 4 minutes in all).
DISABLE_AFTER_FAILED_DELIVERIES = 5


def _max_attempts() -> int:
    return int(getattr(settings, "WEBHOOK_MAX_ATTEMPTS", 8))


def backoff_seconds(attempt: int) -> float:
    """Wait after failed attempt ``attempt`` (1-based): base × 2^(attempt-1), at most an hour."""
    base = int(getattr(settings, "WEBHOOK_RETRY_BASE_MS", 30_000)) / 1000
    return float(min(base * 2 ** (attempt - 1), 3600.0))


# --- input ---------------------------------------------------------------------------------------


def check_url(value: Any) -> str:
    try:
        outbound.check(value)
    except outbound.Refused as exc:
        raise Invalid(str(exc), field="url") from None
    assert isinstance(value, str)
    return value


def check_secret(value: Any) -> str:
    text = string(value, field="secret", max_length=SECRET_MAX)
    if len(text) < SECRET_MIN:
        raise Invalid(f"secret must be {SECRET_MIN} to {SECRET_MAX} characters.", field="secret")
    return text


def check_events(value: Any) -> list[str]:
    events = choices(value, EVENT_TYPES, field="events", max_items=len(EVENT_TYPES))
    if not events:
        raise Invalid("events must name at least one event.", field="events")
    return events


def check_format(value: Any, events: list[str]) -> str:
    fmt = choice(value, Webhook.Format.values, field="format")
    unnamed = [e for e in events if e not in payloads.MLFLOW_EVENTS]
    if fmt == Webhook.Format.MLFLOW and unnamed:
        raise Invalid(
            f"format mlflow sends only events MLflow names ({', '.join(payloads.MLFLOW_EVENTS)}), not {unnamed[0]}.",
            field="format",
        )
    return fmt


def check_enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("enabled must be true or false.", field="enabled")
    return value


def _repository(project: Project, model: Any) -> Any:
    if model is None:
        return None
    name = string(model, field="model", max_length=200)
    repository = registry_selectors.model_of(project, name)
    if repository is None:
        raise NotFound(f"No model {name!r} in {project.path}.", code="not_found", field="model")
    return repository


# --- management (webhook.manage: project admins) -------------------------------------------------


def webhooks_of(project: Project) -> QuerySet[Webhook]:
    return Webhook.objects.filter(project=project).select_related("repository").order_by("created_at")


def webhook_get(project: Project, webhook_id: Any) -> Webhook:
    """A webhook of ``project``: 404 for any other id (another project's included)."""
    found = webhooks_of(project).filter(pk=webhook_id).first() if isinstance(webhook_id, str) and webhook_id else None
    if found is None:
        raise NotFound("No such webhook in this project.", code="not_found")
    return found


@transaction.atomic
def webhook_create(
    *,
    user: User,
    project: Project,
    url: Any,
    events: Any,
    name: Any = None,
    secret: Any = None,
    format: Any = "json",
    model: Any = None,
    enabled: Any = True,
) -> tuple[Webhook, str]:
    """Create a webhook; returns it and its secret (generated when not given: shown once)."""
    access.require(user, "webhook.manage", project)
    checked_url = check_url(url)
    chosen = check_events(events)
    fmt = check_format(format, chosen)
    key = check_secret(secret) if secret is not None else secrets.token_urlsafe(32)
    on = check_enabled(enabled)
    label = string(name, field="name", max_length=100) if name is not None else outbound.parse(checked_url).host
    repository = _repository(project, model)
    if Webhook.objects.select_for_update().filter(project=project).count() >= MAX_WEBHOOKS_PER_PROJECT:
        raise Conflict(f"A project has at most {MAX_WEBHOOKS_PER_PROJECT} webhooks.", code="too_many", field="url")
    webhook = Webhook.objects.create(
        project=project,
        repository=repository,
        name=label,
        url=checked_url,
        secret=key,
        events=chosen,
        format=fmt,
        enabled=on,
        created_by=user,
    )
    audit_record(actor=user, action="webhook.create", target=webhook, target_label=label, project=project)
    return webhook, key


@transaction.atomic
def webhook_update(*, user: User, webhook: Webhook, changes: dict[str, Any]) -> Webhook:
    """Change any of name, url, secret, events, format, model, enabled (the keys given)."""
    access.require(user, "webhook.manage", webhook.project)
    webhook = Webhook.objects.select_for_update().select_related("project__team").get(pk=webhook.pk)
    if "name" in changes:
        webhook.name = string(changes["name"], field="name", max_length=100)
    if "url" in changes:
        webhook.url = check_url(changes["url"])
    if "secret" in changes:
        webhook.secret = check_secret(changes["secret"])
    if "events" in changes:
        webhook.events = check_events(changes["events"])
    if "format" in changes or "events" in changes:
        webhook.format = check_format(changes.get("format", webhook.format), webhook.events)
    if "model" in changes:
        webhook.repository = _repository(webhook.project, changes["model"])
    if "enabled" in changes:
        enabled = check_enabled(changes["enabled"])
        if enabled and not webhook.enabled:
            webhook.failed_deliveries = 0
            webhook.disabled_reason = ""
        webhook.enabled = enabled
    webhook.save()
    audit_record(
        actor=user,
        action="webhook.update",
        target=webhook,
        target_label=webhook.name,
        project=webhook.project,
        data={"fields": sorted(k for k in changes if k != "secret") + (["secret"] if "secret" in changes else [])},
    )
    return webhook


@transaction.atomic
def webhook_delete(*, user: User, webhook: Webhook) -> None:
    access.require(user, "webhook.manage", webhook.project)
    audit_record(
        actor=user, action="webhook.delete", target=webhook, target_label=webhook.name, project=webhook.project
    )
    webhook.delete()


def deliveries_of(webhook: Webhook, limit: int = 100) -> list[Delivery]:
    return list(
        Delivery.objects.filter(webhook=webhook).prefetch_related("attempt_log").order_by("-created_at")[:limit]
    )


def delivery_get(webhook: Webhook, delivery_id: Any) -> Delivery:
    found = (
        Delivery.objects.filter(webhook=webhook, pk=delivery_id).first()
        if isinstance(delivery_id, str) and delivery_id
        else None
    )
    if found is None:
        raise NotFound("No such delivery of this webhook.", code="not_found")
    return found


def _queue(webhook: Webhook, kind: str, payload: dict[str, Any], *, redelivery_of: Delivery | None = None) -> Delivery:
    delivery = Delivery.objects.create(webhook=webhook, event=kind, payload=payload, redelivery_of=redelivery_of)
    enqueue_on_commit(DELIVER_TASK, delivery.id)
    return delivery


@transaction.atomic
def send_test(*, user: User, webhook: Webhook) -> Delivery:
    """Queue a ``webhook.test`` delivery (even to a disabled webhook: that is how one checks
    a fix before enabling it again)."""
    access.require(user, "webhook.manage", webhook.project)
    payload = payloads.build(webhook.project, TEST_EVENT, user.username, {"webhook": webhook.id}, {})
    return _queue(webhook, TEST_EVENT, payload)


def send_test_now(*, user: User, webhook: Webhook) -> Attempt:
    """Send a ``webhook.test`` delivery in this request, once (no retry: it is a check), and
    answer its attempt (MLflow's ``test_webhook`` waits for the receiver's answer). The
    delivery and attempt are logged as any other; no task is queued, so no worker sends it too."""
    access.require(user, "webhook.manage", webhook.project)
    payload = payloads.build(webhook.project, TEST_EVENT, user.username, {"webhook": webhook.id}, {})
    delivery = Delivery.objects.create(webhook=webhook, event=TEST_EVENT, payload=payload)
    if attempt(delivery.id) is not None:  # a retryable failure: a test is tried once
        Delivery.objects.filter(pk=delivery.pk, state=Delivery.State.PENDING).update(
            state=Delivery.State.FAILED, finished_at=timezone.now()
        )
    return Attempt.objects.filter(delivery=delivery).order_by("-number").first() or Attempt(
        delivery=delivery, number=0, started_at=timezone.now(), error="not sent"
    )


@transaction.atomic
def redeliver(*, user: User, webhook: Webhook, delivery: Delivery) -> Delivery:
    """Queue the same payload again as a new delivery (a new delivery id; the payload's
    ``event_id`` is the same, for receivers that dedupe by event)."""
    access.require(user, "webhook.manage", webhook.project)
    return _queue(webhook, delivery.event, delivery.payload, redelivery_of=delivery)


# --- events → deliveries (inside the emitter's transaction) --------------------------------------


def on_domain_event(event: DomainEvent) -> None:
    """core.domain_events handler: one delivery per enabled webhook of the project that
    chose ``event.type`` (a model's webhook only for that model's events), written in the
    transaction of the change and queued after its commit."""
    # A project has a handful of webhooks: their event lists are filtered here, which works on
    # SQLite too (it has no JSON containment lookup) and needs no index.
    hooks = [
        h
        for h in Webhook.objects.filter(project_id=event.project_id, enabled=True).select_related("project__team")
        if event.type in h.events and (h.repository_id is None or h.repository_id == event.repository_id)
    ]
    if not hooks:
        return
    data, links = payloads.event_data(event)
    payload = payloads.build(hooks[0].project, event.type, event.actor, data, links)
    for webhook in hooks:
        _queue(webhook, event.type, payload)


# --- sending (the worker) ------------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``<timestamp>.<body>`` under the webhook's secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def mlflow_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's ``X-MLflow-Signature`` (mlflow/webhooks/delivery.py): ``v1,`` + base64 of the
    HMAC-SHA256 of ``<delivery id>.<timestamp>.<body>`` under the webhook's secret."""
    message = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _begin(delivery_id: str) -> tuple[Delivery, int] | None:
    """Claim the next attempt number, or None when there is nothing to send."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update().select_related("webhook__project__team").filter(pk=delivery_id).first()
        )
        if delivery is None or delivery.state != Delivery.State.PENDING:
            return None
        if not delivery.webhook.enabled and delivery.event != TEST_EVENT:
            delivery.state = Delivery.State.SKIPPED
            delivery.finished_at = timezone.now()
            delivery.save(update_fields=["state", "finished_at"])
            return None
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
        return delivery, delivery.attempts


def attempt(delivery_id: str) -> float | None:
    """Send one attempt of a delivery and log it; returns the seconds to wait before the
    next attempt, or None when the delivery is finished (delivered, failed for good, or
    nothing to do)."""
    claimed = _begin(delivery_id)
    if claimed is None:
        return None
    delivery, number = claimed
    webhook = delivery.webhook
    body = json.dumps(payloads.body(delivery.payload, webhook.format, webhook.events), separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Assay-Webhooks/1",
        "X-Assay-Event": delivery.event,
        "X-Assay-Delivery": delivery.id,
        "X-Assay-Timestamp": timestamp,
        "X-Assay-Signature": signature(webhook.secret, timestamp, body),
    }
    if webhook.format == Webhook.Format.MLFLOW:
        headers |= {
            "X-MLflow-Delivery-Id": delivery.id,
            "X-MLflow-Timestamp": timestamp,
            "X-MLflow-Signature": mlflow_signature(webhook.secret, delivery.id, timestamp, body),
        }
    started = timezone.now()
    clock = time.monotonic()
    status: int | None = None
    excerpt = error = ""
    final = False
    try:
        answer = outbound.post(webhook.url, body, headers)
        status, excerpt = answer.status, answer.excerpt
        if 300 <= status < 400:
            error = f"redirect to {answer.location or '?'} not followed"[:500]
    except outbound.Refused as exc:
        error, final = f"refused: {exc}"[:500], True  # retrying a forbidden target changes nothing
    except (OSError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    latency = int((time.monotonic() - clock) * 1000)
    ok = status is not None and 200 <= status < 300
    with transaction.atomic():
        Attempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=started,
            status_code=status,
            latency_ms=latency,
            ok=ok,
            error=error,
            response_excerpt=excerpt,
        )
        if ok:
            Delivery.objects.filter(pk=delivery.pk).update(state=Delivery.State.DELIVERED, finished_at=timezone.now())
            # No lock of the webhook on success (deliveries of one webhook would queue behind
            # each other): the failure count is reset only when there is one to reset.
            Webhook.objects.filter(pk=webhook.pk, failed_deliveries__gt=0).update(failed_deliveries=0)
            return None
        locked = Webhook.objects.select_for_update().get(pk=webhook.pk)
        if not final and number < _max_attempts():
            return backoff_seconds(number)
        Delivery.objects.filter(pk=delivery.pk).update(state=Delivery.State.FAILED, finished_at=timezone.now())
        if delivery.event != TEST_EVENT:
            locked.failed_deliveries += 1
            locked.save(update_fields=["failed_deliveries"])
            if locked.enabled and locked.failed_deliveries >= DISABLE_AFTER_FAILED_DELIVERIES:
                _disable(locked, last_error=error or f"HTTP {status}")
    return None


def _admins(project: Project) -> list[User]:
    candidates: set[User | None] = {m.user for m in Membership.objects.filter(team=project.team).select_related("user")}
    candidates |= {
        g.user for g in ProjectGrant.objects.filter(project=project, user__isnull=False).select_related("user")
    }
    return sorted(
        (
            u
            for u in candidates
            if u is not None and u.is_active and (access.role_on(u, project) or 0) >= ProjectRole.ADMIN
        ),
        key=lambda u: u.username,
    )


def _disable(webhook: Webhook, *, last_error: str) -> None:
    webhook.enabled = False
    webhook.disabled_reason = (
        f"Disabled after {webhook.failed_deliveries} failed deliveries in a row (last: {last_error})"[:300]
    )
    webhook.save(update_fields=["enabled", "disabled_reason"])
    project = webhook.project
    audit_record(
        actor=None,
        action="webhook.disable",
        target=webhook,
        target_label=webhook.name,
        project=project,
        data={"reason": webhook.disabled_reason},
    )
    recipients = [u.email for u in _admins(project) if u.email]
    page = f"{settings.PUBLIC_URL}/{project.team.name}/{project.name}/settings/webhooks/"
    if recipients:
        transaction.on_commit(
            lambda: send_mail(
                subject=f"[Assay] Webhook {webhook.name} of {project.path} was disabled",
                message=f"{webhook.disabled_reason}.\n\nSee its deliveries and enable it again: {page}\n",
                from_email=None,
                recipient_list=recipients,
                fail_silently=True,
            )
        )
    log.warning("webhook %s of %s disabled: %s", webhook.id, project.path, webhook.disabled_reason)


# --- retention (a periodic task) -----------------------------------------------------------------


def deliveries_prune(*, days: int | None = None) -> int:
    """Delete finished deliveries (delivered, failed, skipped) created more than ``days``
    ago (``ASSAY_WEBHOOK_RETENTION_DAYS``), with their attempts, in chunks so that no
    statement holds many locks; pending ones stay whatever their age. Returns how many."""
    keep = int(getattr(settings, "WEBHOOK_RETENTION_DAYS", 30)) if days is None else days
    cutoff = timezone.now() - timedelta(days=keep)
    old = Delivery.objects.filter(created_at__lt=cutoff).exclude(state=Delivery.State.PENDING)
    deleted = 0
    while True:
        chunk = list(old.values_list("pk", flat=True)[:PRUNE_CHUNK])
        if not chunk:
            return deleted
        with transaction.atomic():
            Delivery.objects.filter(redelivery_of__in=chunk).update(redelivery_of=None)
            Attempt.objects.filter(delivery_id__in=chunk).delete()
            deleted += Delivery.objects.filter(pk__in=chunk).delete()[1].get("automations.Delivery", 0)
