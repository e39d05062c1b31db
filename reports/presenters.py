"""The JSON shapes of reports, revisions, comments and links (the API's output)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from reports.models import Report, ReportComment, ReportLink, ReportRevision


def _name(user: Any) -> str | None:
    return user.username if user is not None else None


def report_out(report: Report) -> dict[str, Any]:
    return {
        "number": report.number,
        "title": report.title,
        "body": report.body,
        "revision": report.revision_count,
        "created_by": _name(report.created_by),
        "created_at": report.created_at,
        "updated_at": report.updated_at,
        "url": f"{settings.PUBLIC_URL}{report.path}",
    }


def revision_out(revision: ReportRevision, *, with_body: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "number": revision.number,
        "title": revision.title,
        "author": _name(revision.author),
        "message": revision.message,
        "frozen": revision.frozen,
        "created_at": revision.created_at,
    }
    if with_body:
        out["body"] = revision.body
        out["snapshot"] = revision.snapshot
    return out


def comment_out(comment: ReportComment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "author": _name(comment.author),
        "body": comment.body,
        "body_html": comment.body_html,
        "created_at": comment.created_at,
    }


def link_out(link: ReportLink) -> dict[str, Any]:
    out: dict[str, Any] = {"id": link.id, "created_by": _name(link.created_by), "created_at": link.created_at}
    if link.review_request is not None:
        out["review_request"] = link.review_request.number
    if link.model_version is not None:
        out["model"] = link.model_version.repository.name
        out["version"] = link.model_version.number
    return out
