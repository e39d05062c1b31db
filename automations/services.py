"""Webhooks: manage them (admins), turn domain events into deliveries (an outbox written in
the transaction of the change, sent after commit by a worker), and send one attempt of a
delivery (the worker's side), with retries, the attempt log and auto-disabling."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import http.client
import json
import logging
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import redis
from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F, Model, QuerySet
from django.utils import timezone

from accounts import access
from accounts.audit import audit_record
from accounts.models import Membership, Project, ProjectGrant, ProjectRole, Team, User, new_id
from automations import outbound, payloads
from automations.models import Attempt, Delivery, Webhook
from core import embedded
from core.domain_events import EVENT_TYPES, DomainEvent
from core.errors import Conflict, Invalid, NotFound
from core.querycache import prepared_cursor
from core.validation import choice, choices, string
from experiments.models import Experiment, Run
from registry import selectors as registry_selectors

log = logging.getLogger(__name__)

DELIVER_TASK = "automations.deliver"  # one task per delivery, before the dispatcher
DISPATCH_TASK = "automations.dispatch"
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


def _queue(
    webhook_ids: list[str], kind: str, payload: dict[str, Any], *, redelivery_of: str | None = None
) -> list[str]:
    """The outbox rows (one INSERT for all the webhooks of the event) and one wake-up of the
    dispatcher after the commit, however many deliveries the transaction queues; their ids."""
    ids = [new_id() for _ in webhook_ids]
    _insert(list(zip(ids, webhook_ids, strict=True)), kind, payload, redelivery_of)
    kick_on_commit()
    return ids


_INSERT_COLUMNS = (
    "id",
    "webhook",
    "event",
    "payload",
    "state",
    "attempts",
    "redelivery_of",
    "created_at",
    "next_attempt_at",
)


@functools.cache
def _insert_sql(model: type[Model], names: tuple[str, ...], rows: int) -> str:
    """``INSERT INTO <table> (<columns of names>) VALUES (%s, …), …`` for ``rows`` rows,
    written once per shape from the model's metadata (table and column names only)."""
    meta = model._meta
    column = {f.name: f.column for f in meta.concrete_fields}
    columns = ", ".join(f'"{column[name]}"' for name in names)
    row = "(" + ", ".join(["%s"] * len(names)) + ")"
    return f'INSERT INTO "{meta.db_table}" ({columns}) VALUES ' + ", ".join([row] * rows)  # noqa: S608


def _insert(rows: list[tuple[str, str]], kind: str, payload: dict[str, Any], redelivery_of: str | None) -> None:
    """One INSERT of the outbox rows ((delivery id, webhook id) each, the same event and
    payload), its SQL written once from the model's metadata and kept prepared by PostgreSQL:
    this runs in every emitting transaction, where the ORM's bulk_create (model instances, SQL
    compiling) cost more CPU than the statement, and an unprepared statement is parsed and
    planned again each time."""
    now = timezone.now()
    stored = Delivery._meta.get_field("payload").get_db_prep_save(payload, connection)
    params: list[Any] = []
    for delivery_id, webhook_id in rows:
        params += [delivery_id, webhook_id, kind, stored, Delivery.State.PENDING.value, 0, redelivery_of, now, now]
    with prepared_cursor(connection) as cursor:
        cursor.execute(_insert_sql(Delivery, _INSERT_COLUMNS, len(rows)), params)


@transaction.atomic
def send_test(*, user: User, webhook: Webhook) -> Delivery:
    """Queue a ``webhook.test`` delivery (even to a disabled webhook: that is how one checks
    a fix before enabling it again)."""
    access.require(user, "webhook.manage", webhook.project)
    payload = payloads.build(webhook.project, TEST_EVENT, user.username, {"webhook": webhook.id}, {})
    return Delivery.objects.get(pk=_queue([webhook.pk], TEST_EVENT, payload)[0])


def send_test_now(*, user: User, webhook: Webhook) -> Attempt:
    """Send a ``webhook.test`` delivery in this request, once (no retry: it is a check), and
    answer its attempt (MLflow's ``test_webhook`` waits for the receiver's answer). The
    delivery and attempt are logged as any other; it is written already claimed by this
    request (attempt 1, under a lease), so no dispatcher sends it too."""
    access.require(user, "webhook.manage", webhook.project)
    payload = payloads.build(webhook.project, TEST_EVENT, user.username, {"webhook": webhook.id}, {})
    lease_end = _lease_end()
    delivery = Delivery.objects.create(
        webhook=webhook, event=TEST_EVENT, payload=payload, attempts=1, next_attempt_at=lease_end
    )
    _send_and_record([(Claimed(delivery.pk, webhook, TEST_EVENT, payload), 1)], lease_end=lease_end, tries=1)
    return Attempt.objects.filter(delivery=delivery).order_by("-number").first() or Attempt(
        delivery=delivery, number=0, started_at=timezone.now(), error="not sent"
    )


@transaction.atomic
def redeliver(*, user: User, webhook: Webhook, delivery: Delivery) -> Delivery:
    """Queue the same payload again as a new delivery (a new delivery id; the payload's
    ``event_id`` is the same, for receivers that dedupe by event)."""
    access.require(user, "webhook.manage", webhook.project)
    queued = _queue([webhook.pk], delivery.event, delivery.payload, redelivery_of=delivery.pk)
    return Delivery.objects.get(pk=queued[0])


# --- events → deliveries (inside the emitter's transaction) --------------------------------------


_HOOKS_SQL: str | None = None

_Hook = tuple[str, list[str], str | None]  # id, events, repository id
_RunRow = tuple[str, str, str, str, str, str]  # payloads.run_data's arguments


def _enabled_webhooks(project_id: str, run_id: str = "") -> tuple[list[_Hook], tuple[str, str], _RunRow | None]:
    """The project's enabled webhooks, its (team, project) names, and (when there is a webhook
    and ``run_id`` is a run of the project) the run's row for a run event's payload: one
    statement, kept prepared, for the two reads every run event made (the most frequent)."""
    global _HOOKS_SQL
    if _HOOKS_SQL is None:
        # Table and column names from the models' metadata only; the ids are parameters.
        hook, project, team = Webhook._meta, Project._meta, Team._meta
        run, experiment = Run._meta, Experiment._meta
        _HOOKS_SQL = (
            f'SELECT w."id", w."events", w."{hook.get_field("repository").column}", p."name", t."name", '  # noqa: S608
            f'r."id", r."name", r."status", e."name" '
            f'FROM "{hook.db_table}" w JOIN "{project.db_table}" p ON p."id" = w."{hook.get_field("project").column}" '
            f'JOIN "{team.db_table}" t ON t."id" = p."{project.get_field("team").column}" '
            f'LEFT JOIN "{run.db_table}" r ON r."id" = %s AND r."{run.get_field("project").column}" = p."id" '
            f'LEFT JOIN "{experiment.db_table}" e ON e."id" = r."{run.get_field("experiment").column}" '
            f'WHERE w."{hook.get_field("project").column}" = %s AND w."enabled" ORDER BY w."created_at"'
        )
    with prepared_cursor(connection) as cursor:
        cursor.execute(_HOOKS_SQL, [run_id, project_id])
        rows = cursor.fetchall()
    # JSON arrives as text (Django leaves decoding to JSONField, bypassed here) or decoded.
    hooks = [(str(row[0]), json.loads(row[1]) if isinstance(row[1], str | bytes) else row[1], row[2]) for row in rows]
    if not rows:
        return [], ("", ""), None
    first = rows[0]
    run_row = None if first[5] is None else (first[5], first[6], first[7], first[8], first[3], first[4])
    return hooks, (first[4], first[3]), run_row


def on_domain_event(event: DomainEvent) -> None:
    """core.domain_events handler: one delivery per enabled webhook of the project that
    chose ``event.type`` (a model's webhook only for that model's events), written in the
    transaction of the change and queued after its commit."""
    # A project has a handful of webhooks: their event lists are filtered here (no JSON
    # containment lookup, no index needed), from one SQL statement written once: this runs in
    # every emitting transaction, and the ORM's compiling of the query cost more CPU than the
    # database's answer.
    is_run_event = event.type in payloads.RUN_EVENTS
    hooks, (team_name, project_name), run_row = _enabled_webhooks(
        event.project_id, event.data["run"] if is_run_event else ""
    )
    chosen = [
        hook_id
        for hook_id, events, repository_id in hooks
        if event.type in events and (repository_id is None or repository_id == event.repository_id)
    ]
    if not chosen:
        return
    data, links = payloads.run_data(*run_row) if run_row is not None else payloads.event_data(event)
    payload = payloads.build_named(team_name, project_name, event.type, event.actor, data, links)
    _queue(chosen, event.type, payload)


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


# The outbox is sent by a dispatcher (automations.tasks.dispatch_task): it claims a batch of
# due pending deliveries at once under a lease (``next_attempt_at`` moved to the lease's end,
# so a killed dispatcher's claim runs out and another takes the delivery again, same id),
# sends them concurrently over kept-alive connections (outbound.Session: the SSRF check per
# target at send time), then logs the attempts in one transaction (one bulk insert, a few
# bulk updates). Commits wake it through one task per transaction at most, and a burst of
# commits through one task in all: the wake-up is sent only by whoever sets the Redis key
# ``assay:webhooks:kick:<queue>``; the dispatcher deletes it once nothing is due, then looks
# once more (a commit made before the delete saw the key and sent nothing). Retries and
# expired leases are taken by a timer task at the earliest ``next_attempt_at`` (one timer at a
# time, ``assay:webhooks:timer:<queue>``) and by the periodic ``webhook-dispatch`` beat entry.

DISPATCH_SECONDS = 20.0  # a dispatcher busy longer hands over to a new task (no endless task)
TIMER_MAX_SECONDS = 300.0  # a timer further off is set again when it fires (ETA tasks stay short)
EAGER_WAIT_SECONDS = 2.0  # without a broker (eager tasks), retries this close are waited for

_redis_client: Any = None
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _lease_seconds() -> float:
    return float(getattr(settings, "WEBHOOK_LEASE_SECONDS", 60))


def _batch_size() -> int:
    return int(getattr(settings, "WEBHOOK_BATCH", 100))


def _batch_wait() -> float:
    return int(getattr(settings, "WEBHOOK_BATCH_WAIT_MS", 50)) / 1000


def _lease_end() -> datetime:
    return timezone.now() + timedelta(seconds=_lease_seconds())


def _eager() -> bool:
    return bool(current_app.conf.task_always_eager) or not settings.REDIS_URL


def _key(kind: str) -> str:
    return f"assay:webhooks:{kind}:{current_app.conf.task_default_queue}"


def _redis() -> Any:
    global _redis_client
    if _redis_client is None:
        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _redis_client


def _sender_pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            threads = int(getattr(settings, "WEBHOOK_SEND_THREADS", 16))
            _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook-send")
        return _executor


class _Kick:
    """The after-commit wake-up of one transaction (``done`` once it ran)."""

    def __init__(self) -> None:
        self.done = False

    def __call__(self) -> None:
        self.done = True
        kick()


def kick_on_commit() -> None:
    """Wake a dispatcher after this transaction commits: one callback per transaction, however
    many deliveries it queues (nothing if it rolls back)."""
    connection = transaction.get_connection()
    pending = getattr(connection, "_assay_webhook_kick", None)
    if (
        connection.in_atomic_block
        and pending is not None
        and not pending.done
        and any(entry[1] is pending for entry in connection.run_on_commit)
    ):
        return
    callback = _Kick()
    connection._assay_webhook_kick = callback
    # robust: the rows are committed whatever happens here; a broker outage is caught up by
    # the periodic dispatch, and must not turn the committed change into an error.
    transaction.on_commit(callback, robust=True)


def _kick_window() -> float:
    return int(getattr(settings, "WEBHOOK_KICK_WINDOW_MS", 250)) / 1000


# When this process last saw each wake-up key set (time.monotonic() taken before asking Redis).
_awake_seen_at: dict[str, float] = {}


def kick() -> None:
    """Send a dispatch task unless one is awake already (the key's owner sent it).

    A process that saw the key set less than the kick window ago sends nothing and does not
    ask Redis again (one Redis command per window and process instead of one per commit: it
    cost a producer as much CPU as its INSERT). That is safe because a dispatcher that deletes
    the key looks once more a whole window after the delete (:func:`_dispatch`): the key was
    set when this process asked, so it was deleted after that, and the dispatcher's last look
    comes after every commit this process made within the window."""
    if not _eager():
        key = _key("kick")
        asked_at = time.monotonic()
        if asked_at - _awake_seen_at.get(key, float("-inf")) < _kick_window():
            return
        try:
            woken = _redis().set(key, "1", nx=True, ex=max(1, int(_lease_seconds())))
        except redis.RedisError:  # Redis trouble: wake one anyway (a spare dispatcher is harmless)
            log.warning("webhook wake-up key not set; sending a dispatch task anyway", exc_info=True)
        else:
            _awake_seen_at[key] = asked_at
            if not woken:
                return
    current_app.tasks[DISPATCH_TASK].delay()


def _release() -> None:
    if not _eager():
        try:
            _redis().delete(_key("kick"))
        except redis.RedisError:  # the key expires by itself
            log.warning("webhook wake-up key not deleted", exc_info=True)


def _linger() -> None:
    """After deleting the wake-up key: a kick window (see :func:`kick`) before the last look."""
    if not _eager():
        time.sleep(_kick_window())


def _retake() -> bool:
    if _eager():
        return True
    try:
        return bool(_redis().set(_key("kick"), "1", nx=True, ex=max(1, int(_lease_seconds()))))
    except Exception:  # noqa: BLE001
        return True


def _schedule(wait: float) -> None:
    """A dispatch in ``wait`` seconds, unless a timer fires by then already."""
    wait = min(max(wait, 0.05), TIMER_MAX_SECONDS)
    due = time.time() + wait
    try:
        client = _redis()
        current = client.get(_key("timer"))
        if current is not None and time.time() < float(current) <= due + 0.5:
            return
        client.set(_key("timer"), f"{due:.3f}", ex=int(wait) + 5)
    except redis.RedisError:  # at worst a second timer
        log.warning("webhook timer key not read or set", exc_info=True)
    current_app.tasks[DISPATCH_TASK].apply_async(countdown=wait)


def _next_due_in() -> float | None:
    """Seconds until the earliest pending delivery may be taken (retry, lease end), or None."""
    first = (
        Delivery.objects.filter(state=Delivery.State.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return None if first is None else (first - timezone.now()).total_seconds()


def dispatch(*, max_seconds: float = DISPATCH_SECONDS) -> int:
    """Send every due pending delivery, a batch at a time, until none is due; returns how
    many attempts were made. Then leave a timer for the next retry or lease end."""
    session = outbound.Session()
    try:
        return _dispatch(session, max_seconds)
    finally:
        session.close()


def _dispatch(session: outbound.Session, max_seconds: float) -> int:
    clock = time.monotonic()
    made = 0
    while True:
        lease_end = _lease_end()
        claimed = _claim(_batch_size(), lease_end=lease_end)
        if claimed:
            made += _send_and_record(claimed, lease_end=lease_end, session=session)
            if time.monotonic() - clock > max_seconds:
                current_app.tasks[DISPATCH_TASK].delay()  # hand over; the wake-up key stays set
                return made
            if len(claimed) < _batch_size() and not _eager():
                # Commits are arriving one by one: let the next batch fill for a moment (a
                # batch's claim and log cost the same for 1 delivery as for 100).
                time.sleep(_batch_wait())
            continue
        # Nothing due: the next commit must wake a dispatcher, so delete the key, then look
        # once more a kick window later (a commit between the last claim and the delete saw
        # the key and sent nothing; so may a commit up to a window after its process saw it).
        _release()
        _linger()
        lease_end = _lease_end()
        claimed = _claim(_batch_size(), lease_end=lease_end)
        if not claimed:
            break
        made += _send_and_record(claimed, lease_end=lease_end, session=session)
        if not _retake():
            break  # a commit woke another dispatcher meanwhile: it carries on
    wait = _next_due_in()
    if wait is not None:
        if not _eager():
            _schedule(max(wait, 1.0))
        elif embedded.scheduler.running:  # the embedded profile: its scheduler waits, not this request
            current_app.tasks[DISPATCH_TASK].apply_async(countdown=max(wait, 0.05))
        elif wait <= EAGER_WAIT_SECONDS:
            time.sleep(max(wait, 0.0))
            made += _dispatch(session, max_seconds)
    return made


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery taken by a dispatcher: what its attempt needs (no model instance: a batch
    builds a hundred of them, and Django's model building cost more CPU than sending)."""

    id: str
    webhook: Webhook
    event: str
    payload: dict[str, Any]

    @property
    def webhook_id(self) -> str:
        return str(self.webhook.pk)


def _claim(limit: int, *, lease_end: datetime) -> list[tuple[Claimed, int]]:
    """Take up to ``limit`` due pending deliveries (rows other dispatchers hold are skipped):
    each gets its next attempt number and the lease; a disabled webhook's are skipped for good."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=Delivery.State.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("id", "webhook_id", "event", "payload", "attempts", "webhook__enabled")[:limit]
        )
        if not rows:
            return []
        skipped = [r[0] for r in rows if not r[5] and r[2] != TEST_EVENT]
        if skipped:
            Delivery.objects.filter(pk__in=skipped).update(state=Delivery.State.SKIPPED, finished_at=now)
        send = [r for r in rows if r[5] or r[2] == TEST_EVENT]
        if not send:
            return []
        Delivery.objects.filter(pk__in=[r[0] for r in send]).update(
            attempts=F("attempts") + 1, next_attempt_at=lease_end
        )
        hooks = Webhook.objects.in_bulk({r[1] for r in send})
    return [(Claimed(r[0], hooks[r[1]], r[2], r[3]), r[4] + 1) for r in send]


@dataclass
class _Result:
    delivery: Claimed
    number: int
    started: datetime
    sent: bool = True
    status: int | None = None
    latency_ms: int = 0
    error: str = ""
    excerpt: str = ""
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _headers(delivery: Claimed, webhook: Webhook, body: bytes) -> dict[str, str]:
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
    return headers


def _send_one(session: outbound.Session, delivery: Claimed, number: int, lease_end: datetime) -> _Result:
    """One attempt (no database access: sender threads run this). Not sent when the lease
    would end before the request's time bound (another dispatcher could take it meanwhile)."""
    result = _Result(delivery=delivery, number=number, started=timezone.now())
    remaining = (lease_end - result.started).total_seconds() - 1.0
    if remaining < 1.0:
        result.sent = False
        return result
    webhook = delivery.webhook
    body = orjson.dumps(payloads.body(delivery.payload, webhook.format, webhook.events))
    clock = time.monotonic()
    try:
        answer = session.post(
            webhook.url, body, _headers(delivery, webhook, body), timeout=min(outbound.TIMEOUT_SECONDS, remaining)
        )
        result.status, result.excerpt = answer.status, answer.excerpt
        if 300 <= answer.status < 400:
            result.error = f"redirect to {answer.location or '?'} not followed"[:500]
    except outbound.Refused as exc:
        result.error, result.refused = f"refused: {exc}"[:500], True  # retrying a forbidden target changes nothing
    except (OSError, http.client.HTTPException) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:500]
    result.latency_ms = int((time.monotonic() - clock) * 1000)
    return result


def _send_and_record(
    claimed: list[tuple[Claimed, int]],
    *,
    lease_end: datetime,
    tries: int | None = None,
    session: outbound.Session | None = None,
) -> int:
    """Send the claimed deliveries concurrently (sender threads sharing the dispatcher's
    Session: connections kept alive across its batches, targets checked again per batch),
    then log them; ``tries``: attempts allowed (a test sent in a request is tried once)."""
    own = session is None
    sender = outbound.Session() if session is None else session
    sender.new_batch()
    try:
        if len(claimed) == 1:
            results = [_send_one(sender, claimed[0][0], claimed[0][1], lease_end)]
        else:
            results = list(_sender_pool().map(lambda c: _send_one(sender, c[0], c[1], lease_end), claimed))
    finally:
        if own:
            sender.close()
    _record(results, lease_end=lease_end, tries=tries or _max_attempts())
    return sum(1 for r in results if r.sent)


def _record(results: list[_Result], *, lease_end: datetime, tries: int) -> None:
    """One transaction for a batch: the attempts (one INSERT), delivered and failed states,
    retry times per attempt number, failure counts and auto-disabling per webhook."""
    now = timezone.now()
    sent = [r for r in results if r.sent]
    with transaction.atomic():
        _log_attempts(sent)
        delivered = [r.delivery.id for r in sent if r.ok]
        if delivered:
            Delivery.objects.filter(pk__in=delivered).update(state=Delivery.State.DELIVERED, finished_at=now)
            # No lock of the webhook on success (deliveries of one webhook would queue behind
            # each other): the failure count is reset only when there is one to reset.
            Webhook.objects.filter(
                pk__in={r.delivery.webhook_id for r in sent if r.ok}, failed_deliveries__gt=0
            ).update(failed_deliveries=0)
        retry: dict[int, list[str]] = {}
        failed: list[_Result] = []
        for r in sent:
            if r.ok:
                continue
            if not r.refused and r.number < tries:
                retry.setdefault(r.number, []).append(r.delivery.id)
            else:
                failed.append(r)
        for number, pks in retry.items():
            Delivery.objects.filter(pk__in=pks).update(next_attempt_at=now + timedelta(seconds=backoff_seconds(number)))
        if failed:
            Delivery.objects.filter(pk__in=[r.delivery.id for r in failed]).update(
                state=Delivery.State.FAILED, finished_at=now
            )
            counted: dict[str, list[_Result]] = {}
            for r in failed:
                if r.delivery.event != TEST_EVENT:
                    counted.setdefault(r.delivery.webhook_id, []).append(r)
            for webhook_id in sorted(counted):
                locked = Webhook.objects.select_for_update().select_related("project__team").get(pk=webhook_id)
                locked.failed_deliveries += len(counted[webhook_id])
                locked.save(update_fields=["failed_deliveries"])
                if locked.enabled and locked.failed_deliveries >= DISABLE_AFTER_FAILED_DELIVERIES:
                    last = counted[webhook_id][-1]
                    _disable(locked, last_error=last.error or f"HTTP {last.status}")
        unsent = [r.delivery.id for r in results if not r.sent]
        if unsent:  # given back, unless another dispatcher took them after our lease ran out
            Delivery.objects.filter(pk__in=unsent, state=Delivery.State.PENDING, next_attempt_at=lease_end).update(
                attempts=F("attempts") - 1, next_attempt_at=now
            )


_ATTEMPT_COLUMNS = ("delivery", "number", "started_at", "status_code", "latency_ms", "ok", "error", "response_excerpt")


def _log_attempts(results: list[_Result]) -> None:
    """One INSERT of a batch's attempts, its SQL written once from the model's metadata (the
    ORM's bulk_create prepared every value of every row through the fields: a third of a
    dispatcher's CPU)."""
    if not results:
        return
    started = Attempt._meta.get_field("started_at")
    params: list[Any] = []
    for r in results:
        params += [
            r.delivery.id,
            r.number,
            started.get_db_prep_value(r.started, connection),
            r.status,
            r.latency_ms,
            r.ok,
            r.error,
            r.excerpt,
        ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(Attempt, _ATTEMPT_COLUMNS, len(results)), params)


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
