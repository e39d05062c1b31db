"""Review requests: "move alias A of model M to version V", reviewed like a pull request.

A request is numbered per project (#1, #2 …). Its candidate may be replaced by a newer
version (a "push"); reviews and checks are bound to the candidate's content hash, so a
push dismisses earlier approvals and re-runs the checks. What may happen when is decided
in one place, :mod:`reviews.policy`; every write is in :mod:`reviews.services`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Project, ProjectRole, Team, new_id
from registry.models import ModelRepository, ModelVersion
from reviews.timeline import entry_text

MAX_TITLE = 200
MAX_BODY = 20_000
MAX_LABELS = 20
MAX_LABEL = 50


class ReviewCounter(models.Model):
    """The last number given to a review request of a project (locked FOR UPDATE to allocate)."""

    project = models.OneToOneField(Project, primary_key=True, on_delete=models.CASCADE, related_name="+")
    last_number = models.PositiveIntegerField(default=0)


class ReviewPolicy(models.Model):
    """The fields of a review policy (R3, R4, R8 and the metric gates), set per project
    (:class:`ProjectReviewSettings`, the default of every model of the project) or per
    model repository (:class:`ReviewSettings`, which overrides the project's);
    ``reviews.selectors.settings_for`` resolves which one applies.

    # SECURITY: R10 — only the settings endpoints (project admins) change them;
    nothing inside a review request can."""

    required_approvals = models.PositiveSmallIntegerField(default=1)  # R4: 1-6
    approver_role = models.PositiveSmallIntegerField(default=ProjectRole.MAINTAINER)  # R3: writer or maintainer
    # [{"name": "acc-not-worse", "expression": "candidate.metrics.acc >= current.metrics.acc - 0.005"}]
    gates = models.JSONField(default=list, blank=True)
    # Names of the checks that block a merge; by default artifact integrity only.
    required_checks = models.JSONField(default=list, blank=True)
    # Whether a model file the scanner could not read ("not scanned: <reason>") fails the
    # artifact-integrity check; by default it passes with a warning. A dangerous global
    # found in a file always fails it.
    block_unscanned = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ReviewSettings(ReviewPolicy):
    """The review policy of one model repository; overrides its project's."""

    repository = models.OneToOneField(ModelRepository, primary_key=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(required_approvals__gte=1, required_approvals__lte=6), name="reviewsettings_approvals_1_6"
            )
        ]


class ProjectReviewSettings(ReviewPolicy):
    """The review policy of a project: the default of every model repository without its own."""

    project = models.OneToOneField(Project, primary_key=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(required_approvals__gte=1, required_approvals__lte=6),
                name="projectreviewsettings_approvals_1_6",
            )
        ]


class ReviewRequest(models.Model):
    class State(models.TextChoices):
        OPEN = "open"
        MERGED = "merged"
        CLOSED = "closed"

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="review_requests")
    number = models.PositiveIntegerField()
    repository = models.ForeignKey(ModelRepository, on_delete=models.CASCADE, related_name="review_requests")
    alias = models.CharField(max_length=64)
    candidate = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    # What the alias held when the request was opened (None: the alias did not exist yet).
    base = models.ForeignKey(ModelVersion, null=True, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=MAX_TITLE)
    description = models.TextField(blank=True, max_length=MAX_BODY)
    description_html = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    labels = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    merged_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="reviewrequest_project_number")]
        indexes = [models.Index(fields=["project", "state", "-number"], name="reviewrequest_project_state")]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"#{self.number}"


class ReviewerRequest(models.Model):
    """A requested reviewer: a user or a whole team."""

    request = models.ForeignKey(ReviewRequest, on_delete=models.CASCADE, related_name="reviewer_requests")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, team__isnull=True) | Q(user__isnull=True, team__isnull=False),
                name="reviewer_user_xor_team",
            ),
            models.UniqueConstraint(fields=["request", "user"], name="reviewer_unique_user"),
            models.UniqueConstraint(fields=["request", "team"], name="reviewer_unique_team"),
        ]


class Review(models.Model):
    class Verdict(models.TextChoices):
        APPROVE = "approve"
        REQUEST_CHANGES = "request_changes"
        COMMENT = "comment"

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    request = models.ForeignKey(ReviewRequest, on_delete=models.CASCADE, related_name="reviews")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    body = models.TextField(blank=True, max_length=MAX_BODY)
    body_html = models.TextField(blank=True)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    version_hash = models.CharField(max_length=64)  # R7: the candidate's content hash it was made on
    created_at = models.DateTimeField(auto_now_add=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dismiss_reason = models.TextField(blank=True, max_length=2_000)

    class Meta:
        ordering = ["created_at", "id"]


class Comment(models.Model):
    class AnchorKind(models.TextChoices):
        PARAM = "param"
        METRIC = "metric"
        PACKAGE = "package"
        DATASET = "dataset"
        FILE = "file"

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    request = models.ForeignKey(ReviewRequest, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    body = models.TextField(max_length=MAX_BODY)
    body_html = models.TextField(blank=True)
    anchor = models.JSONField(null=True, blank=True)  # {"kind": "metric", "key": "acc"}
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]


class Check(models.Model):
    class Kind(models.TextChoices):
        METRIC_GATE = "metric_gate"
        ARTIFACT_INTEGRITY = "artifact_integrity"
        LINEAGE = "lineage"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"
        ERROR = "error"

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    request = models.ForeignKey(ReviewRequest, on_delete=models.CASCADE, related_name="checks")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    name = models.CharField(max_length=80)
    expression = models.TextField(blank=True)  # metric gates only
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    summary = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    version_hash = models.CharField(max_length=64)
    # What the alias held when the check ran: a merge needs the alias to still hold it.
    against = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    attempt = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "version", "name"], name="check_request_version_name")
        ]
        ordering = ["name"]


class TimelineEvent(models.Model):
    class Kind(models.TextChoices):
        OPENED = "opened"
        REVIEW = "review"
        COMMENT = "comment"
        CANDIDATE = "candidate_pushed"
        REVIEW_DISMISSED = "review_dismissed"
        CHECK = "check"
        EDITED = "edited"
        MERGED = "merged"
        CLOSED = "closed"
        REOPENED = "reopened"
        POLICY = "policy_changed"

    request = models.ForeignKey(ReviewRequest, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    @property
    def text(self) -> str:
        """The entry's wording after the actor's name (reviews/timeline.py)."""
        return entry_text(self.kind, self.data)


class Notification(models.Model):
    class Kind(models.TextChoices):
        MENTION = "mention"
        REVIEW_REQUESTED = "review_requested"
        REVIEW_SUBMITTED = "review_submitted"
        NEW_CANDIDATE = "new_candidate"
        CHECKS_FAILED = "checks_failed"
        MERGED = "merged"
        CLOSED = "closed"
        REPORT_COMMENT = "report_comment"
        METRIC_ALERT = "metric_alert"  # an alert rule fired on a run (automations)

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # What the notification is about: a review request, or (request NULL) another object of
    # ``project`` that an app above this one names by its page path in ``link`` (a report).
    request = models.ForeignKey(
        ReviewRequest, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    link = models.CharField(max_length=300, blank=True, default="")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    summary = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "read_at", "-created_at"], name="notification_user_unread")]
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(request__isnull=False) | (models.Q(project__isnull=False) & ~models.Q(link="")),
                name="notification_has_target",
            )
        ]


class NotificationPreference(models.Model):
    """Which notification kinds a user also receives by e-mail (all of them by default)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+")
    email_kinds = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
