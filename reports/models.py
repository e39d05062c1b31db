"""Reports (issue 22): markdown documents of a project with live blocks, their revisions
(append-only: an edit or a freeze adds one), comments, and links from review requests and
model versions ("evidence")."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Project, new_id
from registry.models import ModelVersion
from reviews.models import ReviewRequest


class ReportCounter(models.Model):
    """The last number given to a report of a project (locked FOR UPDATE to allocate)."""

    project = models.OneToOneField(Project, primary_key=True, on_delete=models.CASCADE, related_name="+")
    last_number = models.PositiveIntegerField(default=0)


class Report(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reports")
    number = models.PositiveIntegerField()
    # The newest revision's title and body, kept here so that lists and search read one row.
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    revision_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="report_project_number")]
        ordering = ["-updated_at", "-number"]

    @property
    def path(self) -> str:
        return f"/{self.project.team.name}/{self.project.name}/reports/{self.number}/"


class ReportRevision(models.Model):
    """One saved state of a report. ``snapshot`` is set on a frozen revision: each live
    block's resolved data, by the block's index in the body, so that the revision shows
    what it showed when it was frozen, whatever is logged later."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    message = models.CharField(max_length=300, blank=True)
    snapshot = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["report", "number"], name="reportrevision_report_number")]
        ordering = ["-number"]

    @property
    def frozen(self) -> bool:
        return self.snapshot is not None


class ReportComment(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField()
    body_html = models.TextField(blank=True)  # core.markdown.render(body), cached
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]


class ReportLink(models.Model):
    """A report cited as evidence by a review request or a model version of its project."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="links")
    review_request = models.ForeignKey(
        ReviewRequest, null=True, blank=True, on_delete=models.CASCADE, related_name="report_links"
    )
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="report_links"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(review_request__isnull=False, model_version__isnull=True)
                | Q(review_request__isnull=True, model_version__isnull=False),
                name="reportlink_one_target",
            ),
            models.UniqueConstraint(
                fields=["report", "review_request"],
                condition=Q(review_request__isnull=False),
                name="reportlink_request",
            ),
            models.UniqueConstraint(
                fields=["report", "model_version"], condition=Q(model_version__isnull=False), name="reportlink_version"
            ),
        ]
