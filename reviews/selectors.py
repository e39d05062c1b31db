"""Reads of the reviews app shared by the API, the pages, the tasks and the events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet

from accounts import access
from accounts.models import Membership, Project, ProjectRole, Team, User
from registry.models import Alias, ModelRepository
from reviews import policy
from reviews.models import (
    Check,
    Comment,
    Notification,
    NotificationPreference,
    ProjectReviewSettings,
    Review,
    ReviewerRequest,
    ReviewPolicy,
    ReviewRequest,
    ReviewSettings,
    TimelineEvent,
)

if TYPE_CHECKING:
    from accounts.access import AnyUser

ARTIFACT_CHECK = "artifact-integrity"
LINEAGE_CHECK = "lineage"
GATE_PREFIX = "gate:"
DEFAULT_REQUIRED = (ARTIFACT_CHECK,)


POLICY_FIELDS = ("required_approvals", "approver_role", "gates", "required_checks", "block_unscanned")


def project_settings_for(project: Project) -> ProjectReviewSettings:
    """The project's review policy (the defaults, unsaved, when none was set)."""
    return _project_settings(project.pk)


def _project_settings(project_id: str) -> ProjectReviewSettings:
    found = ProjectReviewSettings.objects.filter(project_id=project_id).first()
    if found is not None:
        return found
    return ProjectReviewSettings(
        project_id=project_id,
        required_approvals=1,
        approver_role=ProjectRole.MAINTAINER,
        gates=[],
        required_checks=list(DEFAULT_REQUIRED),
    )


def settings_for(repository: ModelRepository) -> ReviewPolicy:
    """The policy that applies to a model repository: its own settings when it has them,
    else its project's, else the defaults (unsaved). Every reader of the policy (the merge
    rules, the checks, the API) goes through here."""
    found = ReviewSettings.objects.filter(repository=repository).first()
    if found is not None:
        return found
    return _project_settings(repository.project_id)


def settings_source(settings: ReviewPolicy) -> str:
    """Where a policy comes from: "repository", "project" or "default" (none saved)."""
    if settings._state.adding:
        return "default"
    return "repository" if isinstance(settings, ReviewSettings) else "project"


def configured_checks(settings: ReviewPolicy) -> list[dict[str, str]]:
    """The checks every candidate gets: artifact integrity, lineage, one per gate."""
    out = [
        {"kind": Check.Kind.ARTIFACT_INTEGRITY, "name": ARTIFACT_CHECK, "expression": ""},
        {"kind": Check.Kind.LINEAGE, "name": LINEAGE_CHECK, "expression": ""},
    ]
    for gate in settings.gates:
        out.append(
            {"kind": Check.Kind.METRIC_GATE, "name": GATE_PREFIX + gate["name"], "expression": gate["expression"]}
        )
    return out


def alias_version_id(repository: ModelRepository, alias: str) -> str | None:
    return Alias.objects.filter(repository=repository, name=alias).values_list("version_id", flat=True).first()


def team_readers(team: Team, project: Project) -> list[User]:
    """The active members of ``team`` who may see ``project`` (whom a team mention or a
    team review request reaches)."""
    members = User.objects.filter(memberships__team=team, is_active=True).distinct()
    return [u for u in members if access.can(u, "project.view", project)]


def requests_of(
    project: Project, *, state: str | None = None, author: User | None = None, reviewer: User | None = None
) -> QuerySet[ReviewRequest]:
    qs = ReviewRequest.objects.filter(project=project).select_related(
        "repository", "candidate", "base", "author", "project__team"
    )
    if state is not None:
        qs = qs.filter(state=state)
    if author is not None:
        qs = qs.filter(author=author)
    if reviewer is not None:
        teams = Membership.objects.filter(user=reviewer).values("team_id")
        qs = qs.filter(Q(reviewer_requests__user=reviewer) | Q(reviewer_requests__team__in=teams)).distinct()
    return qs.order_by("-number")


def open_request_count(
    user: AnyUser | None, project: Project, *, repository: ModelRepository | None = None
) -> int | None:
    """How many review requests are open in ``project`` (or on one of its model
    repositories), one COUNT; ``None`` when ``user`` may not see the project's reviews, so
    a page shows neither the link nor the number."""
    if not access.can(user, "review.view", project):
        return None
    qs = ReviewRequest.objects.filter(project=project, state=ReviewRequest.State.OPEN)
    if repository is not None:
        qs = qs.filter(repository=repository)
    return qs.count()


def request_facts(request: ReviewRequest) -> policy.RequestFacts:
    """The snapshot that reviews.policy decides on."""
    settings = settings_for(request.repository)
    required = set(settings.required_checks)
    reviews = list(Review.objects.filter(request=request).order_by("created_at", "id"))
    checks = list(Check.objects.filter(request=request, version_id=request.candidate_id))
    roles: dict[str, int] = {}
    for user in User.objects.filter(pk__in={r.author_id for r in reviews}):
        role = access.role_on(user, request.project)
        roles[str(user.pk)] = int(role) if role is not None else 0
    return policy.RequestFacts(
        state=request.state,
        author_id=str(request.author_id) if request.author_id is not None else None,
        registrar_id=str(request.candidate.author_id) if request.candidate.author_id is not None else None,
        candidate_hash=request.candidate.content_hash,
        required_approvals=settings.required_approvals,
        approver_role=settings.approver_role,
        alias_version_id=alias_version_id(request.repository, request.alias),
        reviews=tuple(
            policy.ReviewFact(
                author_id=str(r.author_id),
                verdict=r.verdict,
                version_hash=r.version_hash,
                dismissed=r.dismissed_at is not None,
                order=index,
            )
            for index, r in enumerate(reviews)
        ),
        checks=tuple(
            policy.CheckFact(
                name=c.name,
                required=c.name in required,
                status=c.status,
                version_hash=c.version_hash,
                against_id=c.against_id,
                finished=c.finished_at is not None,
            )
            for c in checks
        ),
        roles=roles,
    )


@dataclass(frozen=True)
class ReviewPageContext:
    """What the request page offers its viewer, as ready booleans (reviews.policy and
    accounts.access decide each: the view and the template hold no rule), with the facts
    they were decided on and what blocks a merge now."""

    facts: policy.RequestFacts
    can_comment: bool
    can_approve: bool
    can_request_changes: bool
    can_merge: bool
    can_rerun_checks: bool
    can_edit: bool  # push a candidate, close or reopen
    can_dismiss: bool
    blockers: list[policy.Decision]
    # The reviews the viewer may dismiss now (R6 applies to standing approvals and requests for changes).
    dismissable_ids: frozenset[str]


def review_page_context(user: User, request: ReviewRequest) -> ReviewPageContext:
    facts = request_facts(request)
    role = access.role_on(user, request.project)
    role_value = int(role) if role is not None else None
    uid = str(user.pk)
    candidate_hash = request.candidate.content_hash

    def may_review(verdict: str) -> bool:
        return bool(
            policy.may_review(facts, user_id=uid, role=role_value, verdict=verdict, version_hash=candidate_hash)
        )

    return ReviewPageContext(
        facts=facts,
        # The page offers its comment forms on open requests only.
        can_comment=access.can(user, "review.comment", request.project) and request.state == "open",
        can_approve=may_review("approve"),
        can_request_changes=may_review("request_changes"),
        can_merge=bool(policy.may_merge(facts, role=role_value)),
        can_rerun_checks=bool(policy.may_rerun_checks(facts, role=role_value)),
        can_edit=bool(policy.may_edit(facts, user_id=uid, role=role_value)) and bool(policy.may_set_state(facts)),
        # The form asks for the reason; whether one was given is checked when it is sent.
        can_dismiss=bool(policy.may_dismiss(facts, role=role_value, reason="a reason")),
        blockers=policy.merge_blockers(facts),
        dismissable_ids=frozenset(
            str(review.id)
            for review in Review.objects.filter(request=request).only("id", "verdict", "dismissed_at")
            if policy.dismissable(verdict=review.verdict, dismissed=review.dismissed_at is not None)
        )
        if policy.may_dismiss(facts, role=role_value, reason="a reason")
        else frozenset(),
    )


def checks_of(request: ReviewRequest) -> list[Check]:
    return list(Check.objects.filter(request=request, version_id=request.candidate_id).order_by("name"))


def reviews_of(request: ReviewRequest) -> list[Review]:
    return list(Review.objects.filter(request=request).select_related("author", "version", "dismissed_by"))


def comments_of(request: ReviewRequest) -> list[Comment]:
    return list(Comment.objects.filter(request=request).select_related("author", "version", "resolved_by"))


def reviewers_of(request: ReviewRequest) -> list[ReviewerRequest]:
    return list(ReviewerRequest.objects.filter(request=request).select_related("user", "team"))


def timeline_of(request: ReviewRequest) -> list[TimelineEvent]:
    return list(TimelineEvent.objects.filter(request=request).select_related("actor"))


def notifications_of(user: User, *, unread: bool = False) -> QuerySet[Notification]:
    # SECURITY: a notification of a request the user no longer may see is not shown.
    # A review's notification is judged by its request's project, any other by its project.
    visible = (Q(request__isnull=False) & access.project_filter(user, prefix="request__project__")) | (
        Q(request__isnull=True) & access.project_filter(user, prefix="project__")
    )
    qs = Notification.objects.filter(user=user).filter(visible)
    if unread:
        qs = qs.filter(read_at__isnull=True)
    return qs.select_related("request__project__team", "project__team", "actor").order_by("-created_at", "-id")


def unread_count(user: AnyUser | None) -> int:
    if not isinstance(user, User) or not user.is_authenticated:
        return 0
    return notifications_of(user, unread=True).count()


def email_kinds(user: User) -> list[str]:
    found = NotificationPreference.objects.filter(user=user).values_list("email_kinds", flat=True).first()
    return list(found) if found is not None else [kind.value for kind in Notification.Kind]


def mentionable(project: Project, prefix: str, *, limit: int = 10) -> list[dict[str, Any]]:
    """Users and teams whose name starts with ``prefix`` and who may see ``project``
    (what the editor offers when someone types ``@``)."""
    prefix = prefix.lower()[:64]
    users = [
        u
        for u in User.objects.filter(is_active=True, username__startswith=prefix).order_by("username")[: limit * 3]
        if access.can(u, "project.view", project)
    ][:limit]
    teams = [
        t
        for t in Team.objects.filter(name__startswith=prefix).order_by("name")[: limit * 3]
        if t.pk == project.team_id or project.grants.filter(team=t).exists()
    ][:limit]
    out: list[dict[str, Any]] = [{"name": u.username, "kind": "user"} for u in users]
    out += [{"name": t.name, "kind": "team"} for t in teams if t.name not in {u.username for u in users}]
    return out[:limit]


def request_numbers(project: Project, ids: list[str]) -> dict[str, int]:
    """The ``#N`` of each review request id (the alias history keeps ids: the registry does
    not know the reviews app), in ``project`` only."""
    found = ReviewRequest.objects.filter(project=project, pk__in=[i for i in ids if i])
    return dict(found.values_list("id", "number"))
