"""Webhooks of a project (optionally of one model repository), their deliveries and every
attempt of each delivery (append-only log)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import Project, new_id
from registry.models import ModelRepository


class Webhook(models.Model):
    class Format(models.TextChoices):
        JSON = "json"
        SLACK = "slack"

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
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["webhook", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook_id} ({self.state})"


class Attempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
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
