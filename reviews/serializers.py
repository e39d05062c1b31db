"""Output shapes of the reviews app: the REST answers and the live events use the same
functions, so a pushed event carries exactly what a GET returns."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from reviews import policy, selectors
from reviews.models import Check, Comment, Notification, Review, ReviewerRequest, ReviewRequest, TimelineEvent


def _name(user: Any) -> str | None:
    return user.username if user is not None else None


def request_url(request: ReviewRequest) -> str:
    project = request.project
    return f"{settings.PUBLIC_URL}/{project.team.name}/{project.name}/reviews/{request.number}/"


def reviewer_out(item: ReviewerRequest) -> dict[str, Any]:
    if item.user is not None:
        return {"kind": "user", "name": item.user.username}
    assert item.team is not None
    return {"kind": "team", "name": item.team.name}


def request_out(request: ReviewRequest, *, facts: policy.RequestFacts | None = None) -> dict[str, Any]:
    facts = facts or selectors.request_facts(request)
    blockers = policy.merge_blockers(facts)
    return {
        "number": request.number,
        "project": request.project.path,
        "title": request.title,
        "description": request.description,
        "description_html": request.description_html,
        "state": request.state,
        "status": policy.derived_status(facts),
        "model": request.repository.name,
        "alias": request.alias,
        "version": request.candidate.number,
        "version_hash": request.candidate.content_hash,
        "base_version": request.base.number if request.base is not None else None,
        "author": _name(request.author),
        "labels": request.labels,
        "reviewers": [reviewer_out(r) for r in selectors.reviewers_of(request)],
        "approvals": len(policy.counted_approvers(facts)),
        "required_approvals": facts.required_approvals,
        "mergeable": request.state == "open" and not blockers,
        "blockers": [{"code": b.code, "message": b.message} for b in blockers],
        "created_at": request.created_at,
        "updated_at": request.updated_at,
        "merged_by": _name(request.merged_by),
        "merged_at": request.merged_at,
        "closed_at": request.closed_at,
        "url": request_url(request),
    }


def request_brief(request: ReviewRequest) -> dict[str, Any]:
    """A short form for lists in events and notifications."""
    return {
        "number": request.number,
        "project": request.project.path,
        "title": request.title,
        "state": request.state,
        "url": request_url(request),
    }


def review_out(review: Review) -> dict[str, Any]:
    return {
        "id": review.id,
        "author": _name(review.author),
        "verdict": review.verdict,
        "body": review.body,
        "body_html": review.body_html,
        "version": review.version.number,
        "version_hash": review.version_hash,
        "created_at": review.created_at,
        "dismissed": review.dismissed_at is not None,
        "dismissed_at": review.dismissed_at,
        "dismissed_by": _name(review.dismissed_by),
        "dismiss_reason": review.dismiss_reason,
    }


def comment_out(comment: Comment) -> dict[str, Any]:
    deleted = comment.deleted_at is not None
    return {
        "id": comment.id,
        "author": _name(comment.author),
        "parent": comment.parent_id,
        "body": "" if deleted else comment.body,
        "body_html": "" if deleted else comment.body_html,
        "anchor": comment.anchor,
        "version": comment.version.number,
        "created_at": comment.created_at,
        "edited": comment.edited_at is not None,
        "edited_at": comment.edited_at,
        "deleted": deleted,
        "resolved": comment.resolved_at is not None,
        "resolved_by": _name(comment.resolved_by),
    }


def check_out(check: Check, *, required: bool) -> dict[str, Any]:
    return {
        "id": check.id,
        "name": check.name,
        "kind": check.kind,
        "expression": check.expression,
        "required": required,
        "status": check.status,
        "summary": check.summary,
        "details": check.details,
        "version_hash": check.version_hash,
        "against_version": check.against.number if check.against is not None else None,
        "attempt": check.attempt,
        "started_at": check.started_at,
        "finished_at": check.finished_at,
    }


def checks_out(request: ReviewRequest) -> list[dict[str, Any]]:
    required = set(selectors.settings_for(request.repository).required_checks)
    return [check_out(c, required=c.name in required) for c in selectors.checks_of(request)]


def event_out(event: TimelineEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "actor": _name(event.actor),
        "data": event.data,
        "text": event.text,
        "at": event.created_at,
    }


def notification_url(notification: Notification) -> str:
    """Where a notification leads: its review request's page, or the page it names."""
    if notification.request is not None:
        return request_url(notification.request)
    return f"{settings.PUBLIC_URL}{notification.link}"


def notification_out(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.id,
        "kind": notification.kind,
        "summary": notification.summary,
        "actor": _name(notification.actor),
        "request": request_brief(notification.request) if notification.request is not None else None,
        "project": notification.project.path if notification.project is not None else None,
        "url": notification_url(notification),
        "created_at": notification.created_at,
        "read": notification.read_at is not None,
        "read_at": notification.read_at,
    }
