"""Every write to reports: create, edit (a new revision), freeze (a revision with its blocks'
data), delete, comment, link as evidence. Mentions and comment notifications go through
the review workflow's notification machinery (reviews.services.notifications: one
mechanism, one notification centre, one e-mail path)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts.models import Project, User
from core.errors import Conflict, Invalid, NotFound
from core.markdown import render
from core.validation import string
from registry import refs
from registry import selectors as registry_selectors
from registry.models import ModelVersion
from reports import resolve
from reports.blocks import blocks_of
from reports.models import Report, ReportComment, ReportCounter, ReportLink, ReportRevision
from reviews.models import Notification, ReviewRequest
from reviews.services import notifications

MAX_TITLE = 200
MAX_BODY = 200_000
MAX_COMMENT = 20_000
MAX_MESSAGE = 300


@dataclass
class Saved:
    report: Report
    revision: ReportRevision | None  # None: nothing changed, no revision added
    unreachable_mentions: list[str]


def _title(value: object) -> str:
    return string(value, field="title", max_length=MAX_TITLE).strip()


def _body(value: object) -> str:
    return string(value, field="body", max_length=MAX_BODY, allow_blank=True)


def _message(value: object) -> str:
    return string(value, field="message", max_length=MAX_MESSAGE, allow_blank=True)


def _mentions(report: Report, user: User, text: str, previous: str, place: str) -> list[str]:
    found = notifications.notify_mentions_about(
        project=report.project, actor=user, text=text, place=place, link=report.path, previous_text=previous
    )
    return found.unreachable


def _revision_add(report: Report, *, user: User, message: str, snapshot: dict[str, object] | None) -> ReportRevision:
    report.revision_count += 1
    report.save(update_fields=["title", "body", "revision_count", "updated_at"])
    return ReportRevision.objects.create(
        report=report,
        number=report.revision_count,
        title=report.title,
        body=report.body,
        author=user,
        message=message,
        snapshot=snapshot,
    )


@transaction.atomic
def report_create(*, user: User, project: Project, title: object, body: object = "", message: object = "") -> Saved:
    clean_title, clean_body, clean_message = _title(title), _body(body), _message(message)
    counter, _ = ReportCounter.objects.get_or_create(project=project)
    counter = ReportCounter.objects.select_for_update().get(pk=counter.pk)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    report = Report.objects.create(
        project=project, number=counter.last_number, title=clean_title, body=clean_body, created_by=user
    )
    revision = _revision_add(report, user=user, message=clean_message or "Created", snapshot=None)
    unreachable = _mentions(report, user, clean_body, "", f"report #{report.number}: {report.title}")
    return Saved(report=report, revision=revision, unreachable_mentions=unreachable)


@transaction.atomic
def report_update(
    *, user: User, report: Report, title: object = None, body: object = None, message: object = ""
) -> Saved:
    """A new revision when the title or body changed (else nothing is written). An edit
    after a freeze is live again: its revision has no snapshot."""
    clean_title = _title(title) if title is not None else None
    clean_body = _body(body) if body is not None else None
    clean_message = _message(message)
    report = Report.objects.select_for_update().select_related("project__team").get(pk=report.pk)
    previous = report.body
    changed = False
    if clean_title is not None and clean_title != report.title:
        report.title, changed = clean_title, True
    if clean_body is not None and clean_body != report.body:
        report.body, changed = clean_body, True
    if not changed:
        return Saved(report=report, revision=None, unreachable_mentions=[])
    revision = _revision_add(report, user=user, message=clean_message, snapshot=None)
    unreachable = _mentions(report, user, report.body, previous, f"report #{report.number}: {report.title}")
    return Saved(report=report, revision=revision, unreachable_mentions=unreachable)


@transaction.atomic
def report_freeze(*, user: User, report: Report, message: object = "") -> ReportRevision:
    """Store what every live block shows now in a new revision (same title and body), for
    the record: that revision shows this data whatever is logged later."""
    clean_message = _message(message)
    report = Report.objects.select_for_update().select_related("project__team").get(pk=report.pk)
    if not blocks_of(report.body):
        raise Conflict("This report has no live blocks to freeze.", code="nothing_to_freeze", field="body")
    snapshot: dict[str, object] = dict(resolve.resolve_all(report.project, report.body))
    return _revision_add(report, user=user, message=clean_message or "Frozen", snapshot=snapshot)


@transaction.atomic
def report_delete(*, user: User, report: Report) -> None:
    Report.objects.filter(pk=report.pk).delete()


@transaction.atomic
def report_comment_create(*, user: User, report: Report, body: object) -> tuple[ReportComment, list[str]]:
    text = string(body, field="body", max_length=MAX_COMMENT)
    comment = ReportComment.objects.create(report=report, author=user, body=text, body_html=render(text))
    place = f"a comment on report #{report.number}: {report.title}"
    found = notifications.notify_mentions_about(
        project=report.project, actor=user, text=text, place=place, link=report.path
    )
    # The author and earlier commenters hear of the comment (unless a mention already told them).
    followers = {report.created_by_id} | set(
        ReportComment.objects.filter(report=report).values_list("author_id", flat=True)
    )
    notifications.notify_about(
        users=User.objects.filter(pk__in=[f for f in followers if f is not None]),
        kind=Notification.Kind.REPORT_COMMENT,
        project=report.project,
        actor=user,
        summary=f"{user.username} commented on report #{report.number}: {report.title}",
        link=report.path,
        skip=found.reached,
    )
    return comment, found.unreachable


def link_target(
    report: Report, *, review_request: object = None, model: object = None, version: object = None
) -> ReviewRequest | ModelVersion:
    """The review request (by number) or model version (model name and vN/number) of the
    report's project that a link names. # SECURITY: looked up inside the report's project
    only, so an id of another project is "not found" like a missing one."""
    if review_request is not None:
        if model is not None or version is not None:
            raise Invalid("Link to a review request or to a model version, not both.", field="review_request")
        number = review_request if isinstance(review_request, int) and not isinstance(review_request, bool) else None
        if number is None or not 0 < number < 10**9:
            raise Invalid("review_request is a review request's number.", field="review_request")
        found = ReviewRequest.objects.filter(project=report.project, number=number).first()
        if found is None:
            raise NotFound(f"No review request #{number} in {report.project.path}.", field="review_request")
        return found
    if model is None:
        raise Invalid("Send review_request, or model and version.", field="review_request")
    name = string(model, field="model", max_length=200).strip().lower()
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    ref_text = string(version, field="version", max_length=80)
    repository = registry_selectors.model_of(report.project, name)
    if repository is None:
        raise NotFound(f"No model {name!r} in {report.project.path}.", field="model")
    try:
        ref = refs.parse_version_arg(ref_text)
    except refs.RefError as exc:
        raise Invalid(str(exc), field="version") from None
    return registry_selectors.resolve_version(repository, ref, field="version")


@transaction.atomic
def report_link_add(*, user: User, report: Report, target: ReviewRequest | ModelVersion) -> ReportLink:
    """Cite the report as evidence on a review request or a model version of its project."""
    if target.project_id != report.project_id:
        # SECURITY: only objects of the report's own project (the caller's access was checked there).
        raise NotFound("Not found.", field="review_request")
    if isinstance(target, ReviewRequest):
        link, _ = ReportLink.objects.get_or_create(report=report, review_request=target, defaults={"created_by": user})
    else:
        link, _ = ReportLink.objects.get_or_create(report=report, model_version=target, defaults={"created_by": user})
    return link


@transaction.atomic
def report_link_remove(*, user: User, link: ReportLink) -> None:
    ReportLink.objects.filter(pk=link.pk).delete()
