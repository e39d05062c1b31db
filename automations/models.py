"""Webhooks of a project (optionally of one model repository), their deliveries and every
attempt of each delivery (append-only log); metric alert rules of a project and what they
fired (at most once per rule and run)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Project, new_id
from experiments.models import Experiment, Run
from registry.models import ModelRepository


class Webhook(models.Model):
    class Format(models.TextChoices):
        JSON = "json"
        SLACK = "slack"
        MLFLOW = "mlflow"  # MLflow's body and X-MLflow-* signature (docs/automations.md)

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    repository = models.ForeignKey(
        ModelRepository, null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks"
    )
    name = models.CharField(max_length=100)
    url = models.CharField(max_length=2000)
    # Needed in clear to sign; never returned by the API or shown on a page after it is set.
    secret = models.CharField(max_length=200)
    events = models.JSONField(default=list)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.JSON)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    failed_deliveries = models.PositiveIntegerField(default=0)  # in a row; reset by a success
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"


class Delivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"
        SKIPPED = "skipped"  # the webhook was disabled before it was sent

    # The delivery id sent as X-Assay-Delivery: the same on every attempt, so receivers dedupe.
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    # Every delivery's row is written three times (queued, claimed, done), each a new row
    # version in every index: so no index the others cover (by webhook: the (webhook,
    # -created_at) index; by redelivery_of: a partial index of the few redeliveries).
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # When a dispatcher may take it (pending only): now when queued; while a dispatcher sends
    # it, the end of that dispatcher's lease (a killed one's claim runs out, another takes it);
    # after a failed attempt, the time of the next one (exponential backoff).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["webhook", "-created_at"]),
            models.Index(fields=["next_attempt_at"], name="delivery_pending_due", condition=models.Q(state="pending")),
            models.Index(
                fields=["redelivery_of"], name="delivery_redelivery_of", condition=models.Q(redelivery_of__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook_id} ({self.state})"


class Attempt(models.Model):
    # by delivery: the (delivery, number) unique constraint's index
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log", db_index=False)
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True, default="")
    response_excerpt = models.CharField(max_length=1024, blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="automations_attempt_unique")]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}: {self.status_code or self.error}"


class AlertRule(models.Model):
    """A condition on a project's runs (or one experiment's), checked as points arrive
    (automations/alerts.py) or, for ``stalled``, by a periodic task."""

    class Kind(models.TextChoices):
        THRESHOLD = "threshold"  # a point of ``key`` ``op`` ``value`` (val/loss > 2)
        STALLED = "stalled"  # a running run has logged no point for ``minutes``
        NONFINITE = "nonfinite"  # NaN or ±Infinity logged for ``key`` (any key when blank)
        VERSUS_BEST = "versus_best"  # ``key`` worse than the experiment's best other run by ``percent`` %

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alert_rules")
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.CharField(max_length=250, blank=True, default="")
    op = models.CharField(max_length=2, blank=True, default="")  # threshold: > >= < <=
    value = models.FloatField(null=True, blank=True)  # threshold
    minutes = models.PositiveIntegerField(null=True, blank=True)  # stalled
    goal = models.CharField(max_length=3, blank=True, default="")  # versus_best: min or max is better
    percent = models.FloatField(null=True, blank=True)  # versus_best
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["kind", "enabled"], name="alertrule_kind_enabled")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class AlertFiring(models.Model):
    """One rule fired on one run: the unique constraint makes it once, whichever process
    (web, worker, the periodic check) sees the condition first."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="firings")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="alert_firings")
    key = models.CharField(max_length=250, blank=True, default="")
    value = models.FloatField(null=True, blank=True)  # NaN and ±Inf as logged
    step = models.BigIntegerField(null=True, blank=True)
    message = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["rule", "run"], name="automations_alertfiring_once")]
        indexes = [models.Index(fields=["rule", "-created_at"], name="alertfiring_rule_created")]

    def __str__(self) -> str:
        return self.message
