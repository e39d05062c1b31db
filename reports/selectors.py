"""Reads of reports shared by the API, the pages and the global search, narrowed by the
policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet

from accounts import access
from accounts.models import Project
from core import textdiff
from core.errors import NotFound
from experiments import search_selectors
from registry.models import ModelVersion
from reports.models import Report, ReportComment, ReportLink, ReportRevision
from reviews.models import ReviewRequest

if TYPE_CHECKING:
    from accounts.access import AnyUser


def reports_of(project: Project) -> QuerySet[Report]:
    return Report.objects.filter(project=project).select_related("project__team", "created_by")


def revisions_of(report: Report) -> QuerySet[ReportRevision]:
    return ReportRevision.objects.filter(report=report).select_related("author").order_by("-number")


def revision_of(report: Report, number: int | str, *, field: str = "revision") -> ReportRevision:
    try:
        value = int(number)
    except (TypeError, ValueError):
        raise NotFound(f"Report #{report.number} has no revision {str(number)[:20]!r}.", field=field) from None
    revision = (
        ReportRevision.objects.select_related("author").filter(report=report, number=value).first()
        if 0 < value < 10**9
        else None
    )
    if revision is None:
        raise NotFound(f"Report #{report.number} has no revision {value}.", field=field)
    return revision


def latest_revision(report: Report) -> ReportRevision | None:
    return revisions_of(report).first()


def revision_diff(a: ReportRevision, b: ReportRevision, *, context: int = 3) -> list[textdiff.DiffLine]:
    """The unified diff (difflib) of two revisions' title and body, line by line."""
    return textdiff.unified(
        [f"# {a.title}", "", *a.body.splitlines()],
        [f"# {b.title}", "", *b.body.splitlines()],
        old_name=f"revision {a.number}",
        new_name=f"revision {b.number}",
        context=context,
    )


def comments_of(report: Report) -> QuerySet[ReportComment]:
    return ReportComment.objects.filter(report=report).select_related("author")


def links_of(report: Report) -> QuerySet[ReportLink]:
    return ReportLink.objects.filter(report=report).select_related(
        "review_request", "model_version__repository", "created_by"
    )


def reports_citing_request(request: ReviewRequest) -> list[Report]:
    """The reports linked as evidence from a review request (same project by construction)."""
    return list(Report.objects.filter(links__review_request=request).select_related("project__team").order_by("number"))


def reports_citing_version(version: ModelVersion) -> list[Report]:
    return list(Report.objects.filter(links__model_version=version).select_related("project__team").order_by("number"))


def citable_reports(user: AnyUser | None, project: Project, *, limit: int = 100) -> list[Report]:
    """The reports ``user`` may cite on a request or version of ``project`` (writers: all of
    the project's, last edited first), for the pages' "Cite report" menus."""
    if not access.can(user, "report.edit", project):
        return []
    return list(Report.objects.filter(project=project).order_by("-updated_at")[:limit])


def reports_matching(user: AnyUser | None, text: str, *, limit: int) -> list[dict[str, Any]]:
    """Global search: reports whose title or current text contains ``text``, among the
    projects ``user`` may see."""
    reports = (
        Report.objects.select_related("project__team")
        .filter(access.project_filter(user, prefix="project__"))
        .filter(Q(title__icontains=text) | Q(body__icontains=text))
        .order_by("-updated_at")[:limit]
    )
    return [
        {
            "number": r.number,
            "name": f"#{r.number} {r.title}",
            "title": r.title,
            "project": r.project.path,
            "url": r.path,
            "snippet": snippet(r.body, text),
        }
        for r in reports
    ]


def snippet(body: str, text: str, width: int = 60) -> str:
    return search_selectors.snippet(body, text, width=width)
