"""The conversation on a review request: reviews (approve, request changes, comment; R1–R7)
and their dismissal (R6), and threaded comments that may anchor on a param, metric,
package, dataset or file."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import access
from accounts.audit import audit_record
from accounts.models import User
from core import markdown
from core.errors import Invalid, NotFound
from core.validation import choice
from registry.services import check_reason
from reviews import events, policy, selectors, serializers
from reviews.models import Comment, Notification, Review, ReviewRequest, TimelineEvent
from reviews.services.base import lock_request, policy_id, request_label, role_of, timeline_add
from reviews.services.inputs import check_anchor, check_text
from reviews.services.notifications import notify, notify_mentions, watchers


@transaction.atomic
def review_submit(
    *,
    user: User,
    review_request: ReviewRequest,
    verdict: Any,
    body: Any = "",
    version_hash: Any = None,
) -> tuple[Review, list[str]]:
    verdict = choice(
        verdict,
        Review.Verdict.values,
        field="verdict",
        message='verdict must be "approve", "request_changes" or "comment".',
    )
    text = check_text(body, "body")
    if verdict in ("request_changes", "comment") and not text.strip():
        raise Invalid("A request for changes or a comment needs a body.", field="body")
    if version_hash is not None and (not isinstance(version_hash, str) or len(version_hash) > 64):
        raise Invalid("version_hash must be the candidate's content hash.", field="version_hash")
    if verdict in ("approve", "request_changes") and version_hash is None:
        raise Invalid("version_hash is required: the candidate's content hash you reviewed (R7).", field="version_hash")
    rr = lock_request(review_request)
    facts = selectors.request_facts(rr)
    decision = policy.may_review(
        facts, user_id=str(user.pk), role=role_of(user, rr.project), verdict=verdict, version_hash=version_hash
    )
    decision.refuse(field="version_hash" if decision.code == "stale_version" else "verdict")
    review = Review.objects.create(
        request=rr,
        author=user,
        verdict=verdict,
        body=text,
        body_html=markdown.render(text),
        version=rr.candidate,
        version_hash=rr.candidate.content_hash,
    )
    timeline_add(
        rr, TimelineEvent.Kind.REVIEW, user, {"review": review.id, "verdict": verdict, "version": rr.candidate.number}
    )
    events.request_event(rr, "review.created", serializers.review_out(review))
    if verdict in ("approve", "request_changes"):
        kind = "approved" if verdict == "approve" else "changes_requested"
        events.domain_event(rr, f"review_request.{kind}", user.username, review=review.id)
    words = {"approve": "approved", "request_changes": "requested changes on", "comment": "reviewed"}[verdict]
    # One event, one notification per user: a mention is more specific than "review submitted".
    mentioned = notify_mentions(request=rr, actor=user, text=text, place=f"a review of {request_label(rr)}")
    notify(
        users=watchers(rr),
        kind=Notification.Kind.REVIEW_SUBMITTED,
        request=rr,
        actor=user,
        summary=f"{user.username} {words} {request_label(rr)}: {rr.title}",
        skip=mentioned.reached,
    )
    unreachable = mentioned.unreachable
    events.request_event(rr, "request.updated", serializers.request_out(rr))
    return review, unreachable


@transaction.atomic
def review_dismiss(*, user: User, review: Review, reason: Any) -> Review:
    """R6: a maintainer dismisses a review with a reason; audit-logged."""
    text = check_reason(reason)
    rr = lock_request(review.request)
    review = Review.objects.select_for_update().get(pk=review.pk)
    facts = selectors.request_facts(rr)
    policy.may_dismiss(facts, role=role_of(user, rr.project), reason=text).refuse(field="reason")
    policy.dismissable(verdict=review.verdict, dismissed=review.dismissed_at is not None).refuse()
    review.dismissed_at = timezone.now()
    review.dismissed_by = user
    review.dismiss_reason = text
    review.save(update_fields=["dismissed_at", "dismissed_by", "dismiss_reason"])
    timeline_add(
        rr,
        TimelineEvent.Kind.REVIEW_DISMISSED,
        user,
        {"review": review.id, "reviewer": review.author.username, "reason": text},
    )
    audit_record(
        actor=user,
        action="review.dismiss",
        target=rr,
        target_label=request_label(rr),
        project=rr.project,
        data={"review": review.id, "reviewer": review.author.username, "verdict": review.verdict, "reason": text},
    )
    events.request_event(rr, "review.dismissed", serializers.review_out(review))
    return review


@transaction.atomic
def comment_create(
    *,
    user: User,
    review_request: ReviewRequest,
    body: Any,
    parent: Any = None,
    anchor: Any = None,
) -> tuple[Comment, list[str]]:
    access.require(user, "review.comment", review_request.project)
    text = check_text(body, "body", required=True)
    rr = review_request
    parent_comment = None
    if parent is not None:
        if not isinstance(parent, str) or len(parent) > 32:
            raise Invalid("parent must be the id of a comment of this request.", field="parent")
        # SECURITY: the parent must be a comment of this very request.
        parent_comment = Comment.objects.filter(pk=parent, request=rr).first()
        if parent_comment is None:
            raise NotFound("parent must be the id of a comment of this request.", code="not_found", field="parent")
        while parent_comment.parent_id is not None:  # threads are one level deep
            parent_comment = Comment.objects.get(pk=parent_comment.parent_id)
    anchor_value = check_anchor(anchor, rr.candidate)
    if parent_comment is not None and anchor_value is not None:
        raise Invalid("A reply takes the anchor of its thread; send no anchor.", field="anchor")
    comment = Comment.objects.create(
        request=rr,
        author=user,
        parent=parent_comment,
        body=text,
        body_html=markdown.render(text),
        anchor=anchor_value,
        version=rr.candidate,
    )
    timeline_add(
        rr,
        TimelineEvent.Kind.COMMENT,
        user,
        {"comment": comment.id, "anchor": anchor_value, "reply": parent_comment is not None},
    )
    unreachable = notify_mentions(request=rr, actor=user, text=text).unreachable
    events.request_event(rr, "comment.created", serializers.comment_out(comment))
    return comment, unreachable


@transaction.atomic
def comment_update(
    *, user: User, comment: Comment, body: Any = None, resolved: Any = None
) -> tuple[Comment, list[str]]:
    """Edit your own comment (maintainers: any; marked edited), or resolve/unresolve a thread (the author of
    the thread's first comment, the request's author or a maintainer)."""
    comment = (
        Comment.objects.select_for_update(of=("self",))
        .select_related("request__project__team", "author")
        .get(pk=comment.pk)
    )
    rr = comment.request
    access.require(user, "review.comment", rr.project)
    policy.may_change_comment(deleted=comment.deleted_at is not None).refuse()
    role = role_of(user, rr.project)
    unreachable: list[str] = []
    if body is not None:
        text = check_text(body, "body", required=True)
        policy.may_edit_comment(user_id=str(user.pk), author_id=policy_id(comment.author_id), role=role).refuse(
            field="body"
        )
        if text != comment.body:
            previous = comment.body
            comment.body = text
            comment.body_html = markdown.render(text)
            comment.edited_at = timezone.now()
            unreachable = notify_mentions(request=rr, actor=user, text=text, previous_text=previous).unreachable
    if resolved is not None:
        if not isinstance(resolved, bool):
            raise Invalid("resolved must be true or false.", field="resolved")
        if comment.parent_id is not None:
            raise Invalid("Resolve a thread on its first comment.", field="resolved")
        policy.may_resolve_thread(
            user_id=str(user.pk),
            thread_author_id=policy_id(comment.author_id),
            request_author_id=policy_id(rr.author_id),
            role=role,
        ).refuse(field="resolved")
        comment.resolved_at = timezone.now() if resolved else None
        comment.resolved_by = user if resolved else None
    comment.save()
    events.request_event(rr, "comment.updated", serializers.comment_out(comment))
    return comment, unreachable


@transaction.atomic
def comment_delete(*, user: User, comment: Comment) -> Comment:
    """Delete your own comment (maintainers may delete any: moderation): its text goes, the
    thread keeps its place ("deleted")."""
    comment = (
        Comment.objects.select_for_update(of=("self",)).select_related("request__project__team").get(pk=comment.pk)
    )
    access.require(user, "review.comment", comment.request.project)
    policy.may_delete_comment(
        user_id=str(user.pk), author_id=policy_id(comment.author_id), role=role_of(user, comment.request.project)
    ).refuse()
    if comment.deleted_at is None:
        comment.deleted_at = timezone.now()
        comment.body = ""
        comment.body_html = ""
        comment.save(update_fields=["deleted_at", "body", "body_html"])
        events.request_event(comment.request, "comment.deleted", serializers.comment_out(comment))
    return comment
