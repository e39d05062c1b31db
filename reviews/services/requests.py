"""Review requests: open one, edit it (title, description, labels, reviewers), push a new
candidate (R5), close or reopen it, and merge it: the alias moves in the same transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import access
from accounts.audit import audit_record
from accounts.models import Project, User
from core import markdown
from core.errors import Invalid, NotFound
from core.validation import choice
from registry import selectors as registry_selectors
from registry import services as registry_services
from registry.models import Alias, ModelRepository, ModelVersion
from registry.services import check_reason
from reviews import events, policy, selectors, serializers
from reviews.models import Notification, Review, ReviewCounter, ReviewerRequest, ReviewRequest, TimelineEvent
from reviews.services.base import lock_request, request_label, role_of, timeline_add
from reviews.services.checks import queue_checks
from reviews.services.inputs import (
    check_labels,
    check_text,
    check_title,
    resolve_reviewers,
    resolve_version,
    suggested_title,
)
from reviews.services.notifications import notify, notify_mentions, watchers


@transaction.atomic
def review_request_open(
    *,
    user: User,
    project: Project,
    model: Any,
    version: Any,
    alias: Any,
    title: Any,
    description: Any = "",
    reviewers: Any = None,
    labels: Any = None,
) -> tuple[ReviewRequest, list[str]]:
    """Open "move ``alias`` of ``model`` to ``version``" (needs ``review.create``). Returns
    the request and the mentions in the description that reached no one."""
    access.require(user, "review.create", project)
    if not isinstance(model, str) or not model:
        raise Invalid("model must be the name of a model of this project.", field="model")
    repository = registry_selectors.model_of(project, model)
    if repository is None:
        raise NotFound(f"No model {model!r} in {project.path}.", code="not_found", field="model")
    candidate = resolve_version(repository, version)
    alias_name = registry_services.check_alias_name(alias)
    title_text = check_title(title)
    body = check_text(description, "description")
    label_values = check_labels(labels)
    reviewer_users, reviewer_teams = resolve_reviewers(project, reviewers, user)
    base_id = selectors.alias_version_id(repository, alias_name)
    duplicate = ReviewRequest.objects.filter(
        repository=repository, alias=alias_name, candidate=candidate, state=ReviewRequest.State.OPEN
    ).first()
    policy.may_open(
        alias=alias_name,
        candidate_number=candidate.number,
        alias_holds_candidate=base_id == candidate.id,
        duplicate=duplicate.number if duplicate is not None else None,
    ).refuse(field="version")
    counter, _ = ReviewCounter.objects.get_or_create(project=project)
    counter = ReviewCounter.objects.select_for_update().get(pk=counter.pk)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    review_request = ReviewRequest.objects.create(
        project=project,
        number=counter.last_number,
        repository=repository,
        alias=alias_name,
        candidate=candidate,
        base_id=base_id,
        title=title_text,
        description=body,
        description_html=markdown.render(body),
        author=user,
        labels=label_values,
    )
    ReviewerRequest.objects.bulk_create(
        [ReviewerRequest(request=review_request, user=u, requested_by=user) for u in reviewer_users]
        + [ReviewerRequest(request=review_request, team=t, requested_by=user) for t in reviewer_teams]
    )
    timeline_add(review_request, TimelineEvent.Kind.OPENED, user, {"version": candidate.number, "alias": alias_name})
    audit_record(
        actor=user,
        action="review.open",
        target=review_request,
        target_label=f"{request_label(review_request)} {repository.name}@{alias_name} → v{candidate.number}",
        project=project,
    )
    requested = list(reviewer_users)
    for team in reviewer_teams:
        requested += selectors.team_readers(team, project)
    notify(
        users=requested,
        kind=Notification.Kind.REVIEW_REQUESTED,
        request=review_request,
        actor=user,
        summary=f"{user.username} requested your review on {request_label(review_request)}: {title_text}",
    )
    # One event, one notification per user: "review requested" is more specific than a mention.
    unreachable = notify_mentions(request=review_request, actor=user, text=body, skip=requested).unreachable
    queue_checks(review_request)
    events.domain_event(review_request, "review_request.opened", user.username)
    return review_request, unreachable


@transaction.atomic
def review_request_update(
    *,
    user: User,
    review_request: ReviewRequest,
    title: Any = None,
    description: Any = None,
    labels: Any = None,
    reviewers: Any = None,
    version: Any = None,
    state: Any = None,
) -> tuple[ReviewRequest, list[str]]:
    """Edit title, description, labels, reviewers; push a new candidate (``version``); close
    or reopen (``state``). The author or a maintainer. Returns unreachable mentions."""
    rr = lock_request(review_request)
    facts = selectors.request_facts(rr)
    policy.may_edit(facts, user_id=str(user.pk), role=role_of(user, rr.project)).refuse()
    changes: dict[str, Any] = {}
    unreachable: list[str] = []
    mention_text: str | None = None
    added: list[User] = []
    new_title = check_title(title) if title is not None else None
    new_description = check_text(description, "description") if description is not None else None
    new_labels = check_labels(labels) if labels is not None else None
    new_reviewers = resolve_reviewers(rr.project, reviewers, rr.author or user) if reviewers is not None else None
    new_version = resolve_version(rr.repository, version) if version is not None else None
    if state is not None:
        choice(
            state,
            ("open", "closed"),
            field="state",
            message='state must be "open" or "closed" (merge with POST …/merge/).',
        )
        policy.may_set_state(facts).refuse(field="state")
    if new_version is not None:
        policy.may_push_candidate(
            facts, alias=rr.alias, version_id=str(new_version.id), version_number=new_version.number
        ).refuse(field="version")

    if new_title is not None and new_title != rr.title:
        changes["title"] = {"from": rr.title, "to": new_title}
        rr.title = new_title
    if new_description is not None and new_description != rr.description:
        changes["description"] = True
        rr.description = new_description
        rr.description_html = markdown.render(new_description)
        mention_text = new_description
    if new_labels is not None and new_labels != rr.labels:
        changes["labels"] = new_labels
        rr.labels = new_labels
    if new_reviewers is not None:
        users, teams = new_reviewers
        before_users = set(
            ReviewerRequest.objects.filter(request=rr, user__isnull=False).values_list("user_id", flat=True)
        )
        ReviewerRequest.objects.filter(request=rr).delete()
        ReviewerRequest.objects.bulk_create(
            [ReviewerRequest(request=rr, user=u, requested_by=user) for u in users]
            + [ReviewerRequest(request=rr, team=t, requested_by=user) for t in teams]
        )
        added = [u for u in users if u.pk not in before_users]
        changes["reviewers"] = [u.username for u in users] + [f"team:{t.name}" for t in teams]
        notify(
            users=added,
            kind=Notification.Kind.REVIEW_REQUESTED,
            request=rr,
            actor=user,
            summary=f"{user.username} requested your review on {request_label(rr)}: {rr.title}",
        )
    if mention_text is not None:
        # After the reviewers: one who is both added and mentioned gets "review requested" only.
        unreachable = notify_mentions(request=rr, actor=user, text=mention_text, skip=added).unreachable
    if new_version is not None and new_version.id != rr.candidate_id:
        # A title still as the open form suggested it follows the candidate, so the merge
        # (and the alias log) does not say "to v1" when it moves the alias to v2.
        suggested = suggested_title(model=rr.repository.name, alias=rr.alias, version_number=rr.candidate.number)
        if new_title is None and rr.title == suggested:
            rr.title = suggested_title(model=rr.repository.name, alias=rr.alias, version_number=new_version.number)
            changes["title"] = {"from": suggested, "to": rr.title}
        _push_candidate(rr, new_version, user=user)
        changes["version"] = new_version.number
    if state is not None and state != rr.state:
        now = timezone.now()
        if state == "closed":
            rr.state = ReviewRequest.State.CLOSED
            rr.closed_at = now
            timeline_add(rr, TimelineEvent.Kind.CLOSED, user, {})
            events.domain_event(rr, "review_request.closed", user.username)
            notify(
                users=watchers(rr),
                kind=Notification.Kind.CLOSED,
                request=rr,
                actor=user,
                summary=f"{user.username} closed {request_label(rr)}: {rr.title}",
            )
        else:
            rr.state = ReviewRequest.State.OPEN
            rr.closed_at = None
            timeline_add(rr, TimelineEvent.Kind.REOPENED, user, {})
        changes["state"] = state
        audit_record(
            actor=user,
            action=f"review.{'close' if state == 'closed' else 'reopen'}",
            target=rr,
            target_label=request_label(rr),
            project=rr.project,
        )
    if changes:
        rr.save()
        shown = {k: v for k, v in changes.items() if k in ("title", "labels", "reviewers")}
        if shown:
            timeline_add(rr, TimelineEvent.Kind.EDITED, user, shown)
        events.request_event(rr, "request.updated", serializers.request_out(rr))
    return rr, unreachable


def _push_candidate(rr: ReviewRequest, version: ModelVersion, *, user: User) -> None:
    """R5: a new candidate dismisses every earlier approval and re-runs the checks.
    Requests for changes stay (R6) until their reviewer approves or a maintainer dismisses
    them; the page marks them as made on an earlier candidate."""
    if version.repository_id != rr.repository_id:  # pragma: no cover - _resolve_version stays in the repository
        raise Invalid("The candidate must be a version of the same model.", field="version")
    previous = rr.candidate
    now = timezone.now()
    dismissed = Review.objects.filter(request=rr, verdict=Review.Verdict.APPROVE, dismissed_at__isnull=True).update(
        dismissed_at=now, dismiss_reason=f"R5: new candidate v{version.number}"
    )
    rr.candidate = version
    rr.save(update_fields=["candidate", "updated_at"])
    timeline_add(
        rr,
        TimelineEvent.Kind.CANDIDATE,
        user,
        {"from": previous.number, "to": version.number, "version_hash": version.content_hash, "dismissed": dismissed},
    )
    audit_record(
        actor=user,
        action="review.push",
        target=rr,
        target_label=request_label(rr),
        project=rr.project,
        data={"from": previous.number, "to": version.number, "approvals_dismissed": dismissed},
    )
    notify(
        users=watchers(rr),
        kind=Notification.Kind.NEW_CANDIDATE,
        request=rr,
        actor=user,
        summary=f"{user.username} pushed v{version.number} to {request_label(rr)}: {rr.title}",
    )
    queue_checks(rr)


@transaction.atomic
def review_request_merge(
    *,
    user: User,
    review_request: ReviewRequest,
    bypass: Any = False,
    reason: Any = None,
) -> ReviewRequest:
    """Move the alias to the candidate, in one transaction, if the policy allows it now."""
    if not isinstance(bypass, bool):
        raise Invalid("bypass must be true or false.", field="bypass")
    text = check_reason(reason)
    rr = lock_request(review_request)
    # Lock the repository and the alias before reading them: two merges into one alias
    # run one after the other, and the second sees the first's move ("out of date").
    ModelRepository.objects.select_for_update().get(pk=rr.repository_id)
    Alias.objects.select_for_update().filter(repository_id=rr.repository_id, name=rr.alias).first()
    facts = selectors.request_facts(rr)
    decision = policy.may_merge(facts, role=role_of(user, rr.project), bypass=bypass, reason=text)
    decision.refuse(field="reason" if decision.code == "bypass_needs_reason" else None)
    blockers = [b.code for b in policy.merge_blockers(facts)]
    registry_services.alias_move(
        alias=rr.alias,
        version=rr.candidate,
        user=user,
        reason=text or f"merged review request #{rr.number}: {rr.title}"[:2000],
        merge=registry_services.ReviewMerge(
            review_request_id=rr.id, number=rr.number, alias=rr.alias, version_id=rr.candidate_id
        ),
    )
    rr.state = ReviewRequest.State.MERGED
    rr.merged_by = user
    rr.merged_at = timezone.now()
    rr.save(update_fields=["state", "merged_by", "merged_at", "updated_at"])
    timeline_add(
        rr,
        TimelineEvent.Kind.MERGED,
        user,
        {"alias": rr.alias, "version": rr.candidate.number, "bypass": bool(bypass and blockers), "reason": text},
    )
    audit_record(
        actor=user,
        action="review.bypass" if bypass else "review.merge",
        target=rr,
        target_label=f"{request_label(rr)} {rr.repository.name}@{rr.alias} → v{rr.candidate.number}",
        project=rr.project,
        data={
            "alias": rr.alias,
            "version": rr.candidate.number,
            "content_hash": rr.candidate.content_hash,
            "bypassed": blockers if bypass else [],
            "reason": text,
        },
    )
    notify(
        users=watchers(rr),
        kind=Notification.Kind.MERGED,
        request=rr,
        actor=user,
        summary=f"{user.username} merged {request_label(rr)}: {rr.repository.name}@{rr.alias} → v{rr.candidate.number}",
    )
    events.request_event(rr, "request.merged", serializers.request_out(rr))
    events.domain_event(rr, "review_request.merged", user.username)
    return rr
