"""Every write of the reviews app: one function per use case, keyword-only, transactional.

Each function validates its whole input first, asks :mod:`reviews.policy` (through the
facts of ``reviews.selectors.request_facts``) and refuses with the rule's code; side effects
(check tasks, e-mail, live events) leave only after commit. Notifications are rows written
in the same transaction as what caused them: a mention is in the database before any push.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from accounts import access
from accounts.audit import audit_record
from accounts.models import ProjectRole, Team, User
from artifacts.models import Artifact, Blob
from core.errors import Conflict, Forbidden, Invalid, NotFound
from experiments.models import Project
from registry import refs
from registry import selectors as registry_selectors
from registry import services as registry_services
from registry.models import Alias, ModelRepository, ModelVersion
from reviews import events, gates, markdown, mentions, policy, selectors, serializers
from reviews.models import (
    MAX_BODY,
    MAX_LABEL,
    MAX_LABELS,
    MAX_TITLE,
    Check,
    Comment,
    Notification,
    NotificationPreference,
    ProjectReviewSettings,
    Review,
    ReviewCounter,
    ReviewerRequest,
    ReviewPolicy,
    ReviewRequest,
    ReviewSettings,
    TimelineEvent,
)

if TYPE_CHECKING:
    pass

MAX_REVIEWERS = 20
MAX_REASON = 2_000
MAX_GATES = 20
MAX_DEPTH = 1  # replies to replies are attached to the thread's first comment, as on GitHub
LABEL = re.compile(r"^[\w .:/+-]{1,50}$")
ANCHOR_KINDS = {k.value for k in Comment.AnchorKind}


def _refuse(decision: policy.Decision, field: str | None = None) -> None:
    decision.refuse(field)


def _role(user: User, project: Project) -> int | None:
    role = access.role_on(user, project)
    return int(role) if role is not None else None


# --- validation ------------------------------------------------------------------------------


def check_text(value: Any, field: str, *, limit: int = MAX_BODY, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string (markdown).", field=field)
    if len(value) > limit:
        raise Invalid(f"{field} is longer than {limit} characters.", field=field)
    if "\x00" in value:
        raise Invalid(f"{field} contains a NUL character.", field=field)
    if required and not value.strip():
        raise Invalid(f"{field} may not be empty.", field=field)
    return value


def check_title(value: Any) -> str:
    title = check_text(value, "title", limit=MAX_TITLE, required=True).strip()
    if any(ord(c) < 32 for c in title):
        raise Invalid("title must be one line of printable characters.", field="title")
    return title


def check_labels(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_LABELS:
        raise Invalid(f"labels must be a list of at most {MAX_LABELS} strings.", field="labels")
    out: list[str] = []
    for index, label in enumerate(value):
        if not isinstance(label, str) or not LABEL.match(label.strip()):
            raise Invalid(f"A label is 1-{MAX_LABEL} letters, digits, spaces or . : / + - _.", field=f"labels.{index}")
        if label.strip() not in out:
            out.append(label.strip())
    return out


def check_reason(value: Any, field: str = "reason") -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_REASON or "\x00" in value:
        raise Invalid(f"{field} must be a string of at most {MAX_REASON} characters.", field=field)
    return value.strip()


def check_anchor(value: Any, candidate: ModelVersion) -> dict[str, str] | None:
    """``{"kind": param|metric|package|dataset|file, "key": …}``; the key must exist in the
    candidate or in the version it is compared with (the diff's two sides)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"kind", "key"}:
        raise Invalid('anchor must be {"kind": "param|metric|package|dataset|file", "key": "…"}.', field="anchor")
    kind, key = value["kind"], value["key"]
    if kind not in ANCHOR_KINDS:
        raise Invalid(f"anchor.kind must be one of {', '.join(sorted(ANCHOR_KINDS))}.", field="anchor.kind")
    if not isinstance(key, str) or not key or len(key) > 500 or any(ord(c) < 32 for c in key):
        raise Invalid("anchor.key must be a name of at most 500 printable characters.", field="anchor.key")
    return {"kind": kind, "key": key}


def _resolve_version(repository: ModelRepository, value: Any, field: str = "version") -> ModelVersion:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"v{value}"
    if not isinstance(value, str) or not value or len(value) > 100:
        raise Invalid("version is vN, a number, latest, an alias or a content-hash prefix.", field=field)
    try:
        ref = refs.parse_version_arg(value)
    except refs.RefError as exc:
        raise Invalid(str(exc), field=field) from None
    return registry_selectors.resolve_version(repository, ref, field=field)


def _resolve_reviewers(project: Project, value: Any, author: User) -> tuple[list[User], list[Team]]:
    """``["ana", "@ana", "team:ml"]``: users (who must see the project) or teams. A name is
    a user first, then a team (every user has a personal team of the same name)."""
    if value is None:
        return [], []
    if not isinstance(value, list) or len(value) > MAX_REVIEWERS:
        raise Invalid(f"reviewers must be a list of at most {MAX_REVIEWERS} user or team names.", field="reviewers")
    users: list[User] = []
    teams: list[Team] = []
    for index, raw in enumerate(value):
        field = f"reviewers.{index}"
        if not isinstance(raw, str) or not raw.strip() or len(raw) > 80:
            raise Invalid("A reviewer is a user name or team:<name>.", field=field)
        name = raw.strip().lstrip("@").lower()
        force_team = name.startswith("team:")
        name = name.removeprefix("team:")
        user = None if force_team else User.objects.filter(username=name, is_active=True).first()
        # SECURITY: a user who may not see the project is refused exactly like a missing one.
        if user is not None and access.can(user, "project.view", project):
            if user.pk == author.pk:
                raise Invalid("The author cannot review their own request.", field=field)
            if user not in users:
                users.append(user)
            continue
        team = Team.objects.filter(name=name).first() if (user is None or force_team) else None
        if team is not None and _team_readers(team, project):
            if team not in teams:
                teams.append(team)
            continue
        raise Invalid(f"No user or team {name!r} who may see {project.path}.", code="reviewer_unreachable", field=field)
    return users, teams


def _team_readers(team: Team, project: Project) -> list[User]:
    members = User.objects.filter(memberships__team=team, is_active=True).distinct()
    return [u for u in members if access.can(u, "project.view", project)]


def resolve_mentions(project: Project, text: str) -> tuple[list[User], list[str]]:
    """Who the mentions in ``text`` reach (users who may see the project; a team reaches
    its members who may), and the names that reach no one. # SECURITY: a user without
    access and a name that exists nowhere are reported the same way."""
    reached: dict[int, User] = {}
    unreachable: list[str] = []
    for name in mentions.find_mentions(text):
        found: list[User] = []
        user = User.objects.filter(username=name, is_active=True).first()
        if user is not None and access.can(user, "project.view", project):
            found = [user]
        else:
            team = Team.objects.filter(name=name).first()
            if team is not None:
                found = _team_readers(team, project)
        if found:
            for u in found:
                reached[u.pk] = u
        else:
            unreachable.append(name)
    return list(reached.values()), unreachable


# --- notifications -------------------------------------------------------------------------


def _notify(
    *, users: Iterable[User], kind: str, request: ReviewRequest, actor: User | None, summary: str
) -> list[Notification]:
    """Write one notification per user (not the actor, only who may see the request), then
    after commit: push each to its user and queue its e-mail."""
    seen: set[int] = set()
    rows: list[Notification] = []
    for user in users:
        if user.pk in seen or (actor is not None and user.pk == actor.pk) or not user.is_active:
            continue
        seen.add(user.pk)
        # SECURITY: never notify someone who may not see the request (a team member
        # without access, a user whose grant was removed).
        if not access.can(user, "review.view", request.project):
            continue
        rows.append(Notification(user=user, kind=kind, request=request, actor=actor, summary=summary[:300]))
    created = Notification.objects.bulk_create(rows)
    from reviews.tasks import notification_email_task

    for notification in created:
        events.notification_event(notification, serializers.notification_out(notification))
        if kind in selectors.email_kinds(notification.user):
            transaction.on_commit(partial(notification_email_task.delay, notification.id))
    return created


def _watchers(request: ReviewRequest) -> list[User]:
    """The author, requested reviewers (teams expanded) and everyone who reviewed."""
    users: dict[int, User] = {}
    if request.author is not None:
        users[request.author.pk] = request.author
    for item in selectors.reviewers_of(request):
        if item.user is not None:
            users[item.user.pk] = item.user
        elif item.team is not None:
            for u in _team_readers(item.team, request.project):
                users[u.pk] = u
    for review in Review.objects.filter(request=request).select_related("author"):
        users[review.author.pk] = review.author
    return list(users.values())


def _timeline(request: ReviewRequest, kind: str, actor: User | None, data: dict[str, Any]) -> TimelineEvent:
    event = TimelineEvent.objects.create(request=request, kind=kind, actor=actor, data=data)
    events.request_event(request, f"timeline.{kind}", serializers.event_out(event))
    return event


def _label(request: ReviewRequest) -> str:
    return f"{request.project.path}#{request.number}"


def _lock(request: ReviewRequest) -> ReviewRequest:
    return (
        ReviewRequest.objects.select_for_update(of=("self",))
        .select_related("project__team", "repository__project__team", "candidate", "base", "author", "merged_by")
        .get(pk=request.pk)
    )


# --- review requests ---------------------------------------------------------------------------


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
    candidate = _resolve_version(repository, version)
    alias_name = registry_services.check_alias_name(alias)
    title_text = check_title(title)
    body = check_text(description, "description")
    label_values = check_labels(labels)
    reviewer_users, reviewer_teams = _resolve_reviewers(project, reviewers, user)
    base_id = selectors.alias_version_id(repository, alias_name)
    if base_id == candidate.id:
        raise Conflict(
            f"The alias {alias_name!r} already points at v{candidate.number}.", code="nothing_to_merge", field="version"
        )
    duplicate = ReviewRequest.objects.filter(
        repository=repository, alias=alias_name, candidate=candidate, state=ReviewRequest.State.OPEN
    ).first()
    if duplicate is not None:
        raise Conflict(
            f"#{duplicate.number} already asks to move {alias_name!r} to v{candidate.number}.",
            code="duplicate_request",
            field="version",
        )
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
    _timeline(review_request, TimelineEvent.Kind.OPENED, user, {"version": candidate.number, "alias": alias_name})
    audit_record(
        actor=user,
        action="review.open",
        target=review_request,
        target_label=f"{_label(review_request)} {repository.name}@{alias_name} → v{candidate.number}",
        project=project,
    )
    requested = list(reviewer_users)
    for team in reviewer_teams:
        requested += _team_readers(team, project)
    _notify(
        users=requested,
        kind=Notification.Kind.REVIEW_REQUESTED,
        request=review_request,
        actor=user,
        summary=f"{user.username} requested your review on {_label(review_request)}: {title_text}",
    )
    reached, unreachable = resolve_mentions(project, body)
    _notify(
        users=reached,
        kind=Notification.Kind.MENTION,
        request=review_request,
        actor=user,
        summary=f"{user.username} mentioned you in {_label(review_request)}: {title_text}",
    )
    _queue_checks(review_request, actor=user)
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
    rr = _lock(review_request)
    facts = selectors.request_facts(rr)
    _refuse(policy.may_edit(facts, user_id=str(user.pk), role=_role(user, rr.project)))
    changes: dict[str, Any] = {}
    unreachable: list[str] = []
    new_title = check_title(title) if title is not None else None
    new_description = check_text(description, "description") if description is not None else None
    new_labels = check_labels(labels) if labels is not None else None
    new_reviewers = _resolve_reviewers(rr.project, reviewers, rr.author or user) if reviewers is not None else None
    new_version = _resolve_version(rr.repository, version) if version is not None else None
    if state is not None and state not in ("open", "closed"):
        raise Invalid('state must be "open" or "closed" (merge with POST …/merge/).', field="state")
    if rr.state == ReviewRequest.State.MERGED and (new_version is not None or state is not None):
        raise Conflict("The request is merged.", code="request_not_open", field="state" if state else "version")
    if new_version is not None and rr.state != ReviewRequest.State.OPEN:
        raise Conflict("Reopen the request before pushing a new candidate.", code="request_not_open", field="version")

    if new_title is not None and new_title != rr.title:
        changes["title"] = {"from": rr.title, "to": new_title}
        rr.title = new_title
    if new_description is not None and new_description != rr.description:
        changes["description"] = True
        rr.description = new_description
        rr.description_html = markdown.render(new_description)
        reached, unreachable = resolve_mentions(rr.project, new_description)
        _notify(
            users=reached,
            kind=Notification.Kind.MENTION,
            request=rr,
            actor=user,
            summary=f"{user.username} mentioned you in {_label(rr)}: {rr.title}",
        )
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
        _notify(
            users=added,
            kind=Notification.Kind.REVIEW_REQUESTED,
            request=rr,
            actor=user,
            summary=f"{user.username} requested your review on {_label(rr)}: {rr.title}",
        )
    if new_version is not None and new_version.id != rr.candidate_id:
        _push_candidate(rr, new_version, user=user)
        changes["version"] = new_version.number
    if state is not None and state != rr.state:
        now = timezone.now()
        if state == "closed":
            rr.state = ReviewRequest.State.CLOSED
            rr.closed_at = now
            _timeline(rr, TimelineEvent.Kind.CLOSED, user, {})
            _notify(
                users=_watchers(rr),
                kind=Notification.Kind.CLOSED,
                request=rr,
                actor=user,
                summary=f"{user.username} closed {_label(rr)}: {rr.title}",
            )
        else:
            rr.state = ReviewRequest.State.OPEN
            rr.closed_at = None
            _timeline(rr, TimelineEvent.Kind.REOPENED, user, {})
        changes["state"] = state
        audit_record(
            actor=user,
            action=f"review.{'close' if state == 'closed' else 'reopen'}",
            target=rr,
            target_label=_label(rr),
            project=rr.project,
        )
    if changes:
        rr.save()
        shown = {k: v for k, v in changes.items() if k in ("title", "labels", "reviewers")}
        if shown:
            _timeline(rr, TimelineEvent.Kind.EDITED, user, shown)
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
    _timeline(
        rr,
        TimelineEvent.Kind.CANDIDATE,
        user,
        {"from": previous.number, "to": version.number, "version_hash": version.content_hash, "dismissed": dismissed},
    )
    audit_record(
        actor=user,
        action="review.push",
        target=rr,
        target_label=_label(rr),
        project=rr.project,
        data={"from": previous.number, "to": version.number, "approvals_dismissed": dismissed},
    )
    _notify(
        users=_watchers(rr),
        kind=Notification.Kind.NEW_CANDIDATE,
        request=rr,
        actor=user,
        summary=f"{user.username} pushed v{version.number} to {_label(rr)}: {rr.title}",
    )
    _queue_checks(rr, actor=user)


# --- reviews -------------------------------------------------------------------------------------


@transaction.atomic
def review_submit(
    *,
    user: User,
    review_request: ReviewRequest,
    verdict: Any,
    body: Any = "",
    version_hash: Any = None,
) -> tuple[Review, list[str]]:
    if verdict not in {v.value for v in Review.Verdict}:
        raise Invalid('verdict must be "approve", "request_changes" or "comment".', field="verdict")
    text = check_text(body, "body")
    if verdict in ("request_changes", "comment") and not text.strip():
        raise Invalid("A request for changes or a comment needs a body.", field="body")
    if version_hash is not None and (not isinstance(version_hash, str) or len(version_hash) > 64):
        raise Invalid("version_hash must be the candidate's content hash.", field="version_hash")
    if verdict in ("approve", "request_changes") and version_hash is None:
        raise Invalid("version_hash is required: the candidate's content hash you reviewed (R7).", field="version_hash")
    rr = _lock(review_request)
    facts = selectors.request_facts(rr)
    decision = policy.may_review(
        facts, user_id=str(user.pk), role=_role(user, rr.project), verdict=verdict, version_hash=version_hash
    )
    _refuse(decision, field="version_hash" if decision.code == "stale_version" else "verdict")
    review = Review.objects.create(
        request=rr,
        author=user,
        verdict=verdict,
        body=text,
        body_html=markdown.render(text),
        version=rr.candidate,
        version_hash=rr.candidate.content_hash,
    )
    _timeline(
        rr, TimelineEvent.Kind.REVIEW, user, {"review": review.id, "verdict": verdict, "version": rr.candidate.number}
    )
    events.request_event(rr, "review.created", serializers.review_out(review))
    words = {"approve": "approved", "request_changes": "requested changes on", "comment": "reviewed"}[verdict]
    _notify(
        users=_watchers(rr),
        kind=Notification.Kind.REVIEW_SUBMITTED,
        request=rr,
        actor=user,
        summary=f"{user.username} {words} {_label(rr)}: {rr.title}",
    )
    reached, unreachable = resolve_mentions(rr.project, text)
    _notify(
        users=reached,
        kind=Notification.Kind.MENTION,
        request=rr,
        actor=user,
        summary=f"{user.username} mentioned you in a review of {_label(rr)}",
    )
    events.request_event(rr, "request.updated", serializers.request_out(rr))
    return review, unreachable


@transaction.atomic
def review_dismiss(*, user: User, review: Review, reason: Any) -> Review:
    """R6: a maintainer dismisses a review with a reason; audit-logged."""
    text = check_reason(reason)
    rr = _lock(review.request)
    review = Review.objects.select_for_update().get(pk=review.pk)
    facts = selectors.request_facts(rr)
    _refuse(policy.may_dismiss(facts, role=_role(user, rr.project), reason=text), field="reason")
    if review.dismissed_at is not None:
        raise Conflict("This review is already dismissed.", code="already_dismissed")
    if review.verdict == Review.Verdict.COMMENT:
        raise Conflict("Only approvals and requests for changes can be dismissed.", code="not_dismissable")
    review.dismissed_at = timezone.now()
    review.dismissed_by = user
    review.dismiss_reason = text
    review.save(update_fields=["dismissed_at", "dismissed_by", "dismiss_reason"])
    _timeline(
        rr,
        TimelineEvent.Kind.REVIEW_DISMISSED,
        user,
        {"review": review.id, "reviewer": review.author.username, "reason": text},
    )
    audit_record(
        actor=user,
        action="review.dismiss",
        target=rr,
        target_label=_label(rr),
        project=rr.project,
        data={"review": review.id, "reviewer": review.author.username, "verdict": review.verdict, "reason": text},
    )
    events.request_event(rr, "review.dismissed", serializers.review_out(review))
    return review


# --- comments ------------------------------------------------------------------------------------


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
    _timeline(
        rr,
        TimelineEvent.Kind.COMMENT,
        user,
        {"comment": comment.id, "anchor": anchor_value, "reply": parent_comment is not None},
    )
    reached, unreachable = resolve_mentions(rr.project, text)
    _notify(
        users=reached,
        kind=Notification.Kind.MENTION,
        request=rr,
        actor=user,
        summary=f"{user.username} mentioned you in {_label(rr)}: {rr.title}",
    )
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
    if comment.deleted_at is not None:
        raise Conflict("This comment was deleted.", code="comment_deleted")
    unreachable: list[str] = []
    if body is not None:
        text = check_text(body, "body", required=True)
        # Moderation, as on GitHub: maintainers may edit anyone's comment (marked edited).
        if comment.author_id != user.pk and not access.can(user, "review.merge", rr.project):
            raise Forbidden(
                "Only its author (or a maintainer) may edit a comment.",
                code="permission_denied",
                field="body",
            )
        if text != comment.body:
            before = set(mentions.find_mentions(comment.body))
            comment.body = text
            comment.body_html = markdown.render(text)
            comment.edited_at = timezone.now()
            reached, unreachable = resolve_mentions(rr.project, text)
            fresh = [u for u in reached if u.username not in before]
            _notify(
                users=fresh,
                kind=Notification.Kind.MENTION,
                request=rr,
                actor=user,
                summary=f"{user.username} mentioned you in {_label(rr)}: {rr.title}",
            )
    if resolved is not None:
        if not isinstance(resolved, bool):
            raise Invalid("resolved must be true or false.", field="resolved")
        if comment.parent_id is not None:
            raise Invalid("Resolve a thread on its first comment.", field="resolved")
        may = user.pk in (comment.author_id, rr.author_id) or access.can(user, "review.merge", rr.project)
        if not may:
            raise Forbidden(
                "Only the thread's author, the request's author or a maintainer may resolve it.",
                code="permission_denied",
                field="resolved",
            )
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
    if comment.author_id != user.pk and not access.can(user, "review.merge", comment.request.project):
        raise Forbidden("Only its author (or a maintainer) may delete a comment.", code="permission_denied")
    if comment.deleted_at is None:
        comment.deleted_at = timezone.now()
        comment.body = ""
        comment.body_html = ""
        comment.save(update_fields=["deleted_at", "body", "body_html"])
        events.request_event(comment.request, "comment.deleted", serializers.comment_out(comment))
    return comment


# --- checks --------------------------------------------------------------------------------------


def _queue_checks(rr: ReviewRequest, *, actor: User | None) -> list[Check]:
    """(Re)queue every configured check on the current candidate; the tasks leave after commit."""
    from reviews.tasks import check_run_task

    config = selectors.configured_checks(selectors.settings_for(rr.repository))
    queued: list[Check] = []
    for item in config:
        check, created = Check.objects.select_for_update().get_or_create(
            request=rr,
            version=rr.candidate,
            name=item["name"],
            defaults={
                "kind": item["kind"],
                "expression": item["expression"],
                "version_hash": rr.candidate.content_hash,
            },
        )
        if not created:
            check.kind = item["kind"]
            check.expression = item["expression"]
            check.status = Check.Status.QUEUED
            check.summary = ""
            check.details = {}
            check.against = None
            check.started_at = check.finished_at = None
            check.attempt += 1
            check.save()
        queued.append(check)
        transaction.on_commit(partial(check_run_task.delay, check.id))
    events.request_event(rr, "checks.queued", {"checks": serializers.checks_out(rr)})
    return queued


@transaction.atomic
def checks_rerun(*, user: User, review_request: ReviewRequest) -> list[Check]:
    """Maintainers re-run the checks of the current candidate (after the alias moved, or
    after a gate changed)."""
    rr = _lock(review_request)
    _refuse(policy.may_rerun_checks(selectors.request_facts(rr), role=_role(user, rr.project)))
    return _queue_checks(rr, actor=user)


def _artifact_integrity(version: ModelVersion) -> tuple[str, str, dict[str, Any]]:
    artifact = Artifact.objects.select_related("blob").filter(pk=version.artifact_id).first()
    blob = Blob.objects.filter(pk=version.blob_id).first()
    details: dict[str, Any] = {"sha256": version.binary_sha256}
    if blob is None or blob.sha256 != version.binary_sha256:
        return "failed", "The binary's bytes are not in the store under its sha256.", details
    if blob.status != Blob.Status.VERIFIED:
        return "failed", f"The binary's hash is not verified yet (blob {blob.status}).", details
    if artifact is not None:
        details["artifact_status"] = artifact.status
        if artifact.status != Artifact.Status.READY:
            return "failed", f"The artifact is not processed ({artifact.status}); re-run when it is ready.", details
        findings = artifact.findings or {}
        unsafe = findings.get("unsafe_globals") or []
        details["unsafe_globals"] = unsafe[:20]
        if findings.get("unsafe") or unsafe:
            return "failed", f"Unsafe pickle globals found: {', '.join(unsafe[:5]) or 'see details'}.", details
        if findings.get("scan_error"):
            return "failed", "The pickle scan did not complete.", details
    return "passed", "Processed, hash verified, no unsafe pickle findings.", details


def _lineage(version: ModelVersion) -> tuple[str, str, dict[str, Any]]:
    code = version.code or {}
    environment = version.environment or {}
    missing = []
    if not code.get("commit"):
        missing.append("code (git commit)")
    if not environment.get("python") or not environment.get("packages"):
        missing.append("environment (Python and packages)")
    if not version.datasets:
        missing.append("data (dataset fingerprints)")
    details = {"missing": missing}
    if missing:
        return "failed", "Not recorded: " + "; ".join(missing) + ".", details
    return "passed", "Code, environment and data are recorded.", details


def _gate(check: Check, version: ModelVersion, current: ModelVersion | None) -> tuple[str, str, dict[str, Any]]:
    try:
        gate = gates.parse(check.expression)
    except gates.GateError as exc:
        return "error", f"The gate does not parse: {exc}", {}
    result = gate.evaluate(candidate=version.metrics or {}, current=current.metrics if current is not None else None)
    details = {"values": result.values, "against": current.number if current is not None else None}
    if result.missing is not None:
        if result.missing.startswith("current.") and current is None:
            return "passed", "Nothing to compare with: the alias points nowhere yet.", details
        return "failed", f"No value for {result.missing}.", details
    if result.passed:
        return "passed", f"{check.expression} holds ({'; '.join(result.values)}).", details
    return "failed", f"{check.expression} does not hold ({'; '.join(result.values)}).", details


def check_run(*, check_id: str) -> Check | None:
    """Run one check (called by the task). Idempotent: a check that is finished, superseded
    (the candidate changed) or re-queued meanwhile is left alone."""
    with transaction.atomic():
        check = Check.objects.select_for_update().filter(pk=check_id).first()
        if check is None or check.status not in (Check.Status.QUEUED, Check.Status.RUNNING):
            return check
        rr = ReviewRequest.objects.select_related("project__team", "repository", "candidate").get(pk=check.request_id)
        if rr.candidate_id != check.version_id or rr.state != ReviewRequest.State.OPEN:
            return check
        check.status = Check.Status.RUNNING
        check.started_at = timezone.now()
        check.save(update_fields=["status", "started_at"])
        attempt = check.attempt
        events.request_event(rr, "check.updated", serializers.check_out(check, required=False))
    version = ModelVersion.objects.get(pk=check.version_id)
    against_id = selectors.alias_version_id(rr.repository, rr.alias)
    current = ModelVersion.objects.filter(pk=against_id).first() if against_id else None
    try:
        if check.kind == Check.Kind.ARTIFACT_INTEGRITY:
            status, summary, details = _artifact_integrity(version)
        elif check.kind == Check.Kind.LINEAGE:
            status, summary, details = _lineage(version)
        else:
            status, summary, details = _gate(check, version, current)
    except Exception as exc:  # noqa: BLE001 - a broken check reports "error", it does not vanish
        status, summary, details = "error", f"The check failed to run: {type(exc).__name__}.", {}
    with transaction.atomic():
        check = Check.objects.select_for_update().get(pk=check_id)
        if check.attempt != attempt or check.status != Check.Status.RUNNING:
            return check  # re-queued meanwhile: the newer attempt reports
        check.status = status
        check.summary = summary[:2000]
        check.details = details
        check.against = current
        check.finished_at = timezone.now()
        check.save()
        rr = ReviewRequest.objects.select_related("project__team", "repository", "candidate", "author").get(
            pk=check.request_id
        )
        required = check.name in selectors.settings_for(rr.repository).required_checks
        _timeline(
            rr,
            TimelineEvent.Kind.CHECK,
            None,
            {"name": check.name, "status": status, "summary": summary[:300], "version": version.number},
        )
        events.request_event(rr, "check.updated", serializers.check_out(check, required=required))
        if status in ("failed", "error") and rr.author is not None:
            _notify(
                users=[rr.author],
                kind=Notification.Kind.CHECKS_FAILED,
                request=rr,
                actor=None,
                summary=f"Check {check.name} {status} on {_label(rr)}: {summary[:150]}",
            )
    return check


# --- merge ------------------------------------------------------------------------------------------


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
    rr = _lock(review_request)
    # Lock the repository and the alias before reading them: two merges into one alias
    # run one after the other, and the second sees the first's move ("out of date").
    ModelRepository.objects.select_for_update().get(pk=rr.repository_id)
    Alias.objects.select_for_update().filter(repository_id=rr.repository_id, name=rr.alias).first()
    facts = selectors.request_facts(rr)
    decision = policy.may_merge(facts, role=_role(user, rr.project), bypass=bypass, reason=text)
    _refuse(decision, field="reason" if decision.code == "bypass_needs_reason" else None)
    blockers = [b.code for b in policy.merge_blockers(facts)]
    registry_services.alias_move(
        alias=rr.alias,
        version=rr.candidate,
        user=user,
        reason=text or f"merged review request #{rr.number}: {rr.title}"[:2000],
        via_review=rr.id,
    )
    rr.state = ReviewRequest.State.MERGED
    rr.merged_by = user
    rr.merged_at = timezone.now()
    rr.save(update_fields=["state", "merged_by", "merged_at", "updated_at"])
    _timeline(
        rr,
        TimelineEvent.Kind.MERGED,
        user,
        {"alias": rr.alias, "version": rr.candidate.number, "bypass": bool(bypass and blockers), "reason": text},
    )
    audit_record(
        actor=user,
        action="review.bypass" if bypass else "review.merge",
        target=rr,
        target_label=f"{_label(rr)} {rr.repository.name}@{rr.alias} → v{rr.candidate.number}",
        project=rr.project,
        data={
            "alias": rr.alias,
            "version": rr.candidate.number,
            "content_hash": rr.candidate.content_hash,
            "bypassed": blockers if bypass else [],
            "reason": text,
        },
    )
    _notify(
        users=_watchers(rr),
        kind=Notification.Kind.MERGED,
        request=rr,
        actor=user,
        summary=f"{user.username} merged {_label(rr)}: {rr.repository.name}@{rr.alias} → v{rr.candidate.number}",
    )
    events.request_event(rr, "request.merged", serializers.request_out(rr))
    return rr


# --- settings and notifications ---------------------------------------------------------------------


def _policy_view(settings: ReviewPolicy) -> dict[str, Any]:
    return {
        "required_approvals": settings.required_approvals,
        "approver_role": ProjectRole(settings.approver_role).label.lower(),
        "gates": settings.gates,
        "required_checks": settings.required_checks,
    }


def _apply_policy(
    settings: ReviewPolicy, *, required_approvals: Any, approver_role: Any, gates_config: Any, required_checks: Any
) -> None:
    """Validate the changed fields of a review policy (project or repository: one rule for
    both) and set them on ``settings``; a ``None`` field is left as it is."""
    if required_approvals is not None:
        if (
            not isinstance(required_approvals, int)
            or isinstance(required_approvals, bool)
            or not policy.MIN_APPROVALS <= required_approvals <= policy.MAX_APPROVALS
        ):
            raise Invalid("required_approvals must be an integer from 1 to 6.", field="required_approvals")
        settings.required_approvals = required_approvals
    if approver_role is not None:
        roles = {"writer": ProjectRole.WRITER, "maintainer": ProjectRole.MAINTAINER}
        if approver_role not in roles:
            raise Invalid('approver_role must be "writer" or "maintainer".', field="approver_role")
        settings.approver_role = roles[approver_role]
    if gates_config is not None:
        if not isinstance(gates_config, list) or len(gates_config) > MAX_GATES:
            raise Invalid(f"gates must be a list of at most {MAX_GATES} {{name, expression}}.", field="gates")
        parsed: list[dict[str, str]] = []
        for index, item in enumerate(gates_config):
            field = f"gates.{index}"
            if not isinstance(item, dict) or set(item) != {"name", "expression"}:
                raise Invalid("A gate is {name, expression}.", field=field)
            name = item["name"]
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
                raise Invalid("A gate name is 1-64 lower-case letters, digits, - and _.", field=f"{field}.name")
            if any(g["name"] == name for g in parsed):
                raise Invalid(f"Two gates are named {name!r}.", field=f"{field}.name")
            try:
                gates.parse(item["expression"])
            except gates.GateError as exc:
                raise Invalid(
                    str(exc), code="invalid_gate", field=f"{field}.expression", extra={"position": exc.position}
                ) from None
            parsed.append({"name": name, "expression": item["expression"]})
        settings.gates = parsed
    if required_checks is not None:
        known = {c["name"] for c in selectors.configured_checks(settings)}
        if not isinstance(required_checks, list) or len(required_checks) > MAX_GATES + 2:
            raise Invalid("required_checks must be a list of check names.", field="required_checks")
        for index, name in enumerate(required_checks):
            if name not in known:
                raise Invalid(
                    f"No check named {name!r}; known: {', '.join(sorted(known))}.", field=f"required_checks.{index}"
                )
        settings.required_checks = sorted(set(required_checks))
    settings.required_checks = [
        n for n in settings.required_checks if n in {c["name"] for c in selectors.configured_checks(settings)}
    ]


def _save_policy(
    settings: ReviewPolicy,
    *,
    user: User,
    action: str,
    target: Any,
    project: Project,
    **fields: Any,
) -> None:
    """Validate and apply ``fields`` to a repository's or a project's policy, save it and
    audit-log the change (a new policy is logged even when it equals what applied before)."""
    before = _policy_view(settings)
    created = settings._state.adding
    _apply_policy(settings, **fields)
    settings.save()
    after = _policy_view(settings)
    if after != before or created:
        audit_record(
            actor=user,
            action=action,
            target=target,
            project=project,
            data={"before": before, "after": after},
        )


@transaction.atomic
def review_settings_update(
    *,
    user: User,
    repository: ModelRepository,
    required_approvals: Any = None,
    approver_role: Any = None,
    gates_config: Any = None,
    required_checks: Any = None,
) -> ReviewSettings:
    """R10: a repository's policy changes here only (project admins), audit-logged. A
    repository without its own settings starts from the policy that applies to it now
    (its project's, or the defaults), so a change of one field keeps the others."""
    access.require(user, "review.settings", repository.project)
    settings = ReviewSettings.objects.select_for_update().filter(repository=repository).first()
    if settings is None:
        current = selectors.settings_for(repository)
        settings = ReviewSettings(repository=repository, **{f: getattr(current, f) for f in selectors.POLICY_FIELDS})
    _save_policy(
        settings,
        user=user,
        action="review.settings",
        target=repository,
        project=repository.project,
        required_approvals=required_approvals,
        approver_role=approver_role,
        gates_config=gates_config,
        required_checks=required_checks,
    )
    return settings


@transaction.atomic
def review_settings_delete(*, user: User, repository: ModelRepository) -> ReviewPolicy:
    """Drop a repository's own policy so its project's applies again (project admins,
    audit-logged). Returns the policy that applies now."""
    access.require(user, "review.settings", repository.project)
    own = ReviewSettings.objects.select_for_update().filter(repository=repository).first()
    if own is not None:
        before = _policy_view(own)
        own.delete()
        audit_record(
            actor=user,
            action="review.settings.delete",
            target=repository,
            project=repository.project,
            data={"before": before, "after": _policy_view(selectors.settings_for(repository))},
        )
    return selectors.settings_for(repository)


@transaction.atomic
def project_review_settings_update(
    *,
    user: User,
    project: Project,
    required_approvals: Any = None,
    approver_role: Any = None,
    gates_config: Any = None,
    required_checks: Any = None,
) -> ProjectReviewSettings:
    """R10: the project's policy, the default of every model repository of the project
    without its own, changes here only (project admins), audit-logged."""
    access.require(user, "review.settings", project)
    settings = ProjectReviewSettings.objects.select_for_update().filter(project=project).first()
    if settings is None:
        settings = selectors.project_settings_for(project)
    _save_policy(
        settings,
        user=user,
        action="review.project_settings",
        target=project,
        project=project,
        required_approvals=required_approvals,
        approver_role=approver_role,
        gates_config=gates_config,
        required_checks=required_checks,
    )
    return settings


@transaction.atomic
def notifications_mark_read(*, user: User, ids: Any = None, all_unread: Any = False) -> int:
    if not isinstance(all_unread, bool):
        raise Invalid("all must be true or false.", field="all")
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if not all_unread:
        if not isinstance(ids, list) or not ids or len(ids) > 500 or not all(isinstance(i, str) for i in ids):
            raise Invalid('Send {"ids": [notification ids]} or {"all": true}.', field="ids")
        # SECURITY: only the caller's own notifications; another user's id changes nothing.
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())


@transaction.atomic
def notification_preferences_update(*, user: User, email_kinds: Any) -> list[str]:
    kinds = {k.value for k in Notification.Kind}
    if not isinstance(email_kinds, list) or not all(isinstance(k, str) and k in kinds for k in email_kinds):
        raise Invalid(f"email must be a list of notification kinds: {', '.join(sorted(kinds))}.", field="email")
    chosen = sorted(set(email_kinds))
    NotificationPreference.objects.update_or_create(user=user, defaults={"email_kinds": chosen})
    return chosen


def notification_email(*, notification_id: str) -> bool:
    """Send one notification by e-mail (called by the task); at most once."""
    from django.conf import settings as django_settings
    from django.core.mail import send_mail

    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("user", "request__project__team")
            .filter(pk=notification_id)
            .first()
        )
        if notification is None or notification.emailed_at is not None or not notification.user.email:
            return False
        if not access.can(notification.user, "review.view", notification.request.project):
            return False
        url = serializers.request_url(notification.request)
        send_mail(
            subject=f"[Assay] {notification.summary}"[:200],
            message=f"{notification.summary}\n\n{url}\n\nChange which notifications you receive by e-mail at "
            f"{django_settings.PUBLIC_URL}/notifications/",
            from_email=None,
            recipient_list=[notification.user.email],
        )
        notification.emailed_at = timezone.now()
        notification.save(update_fields=["emailed_at"])
    return True
