"""The review policy's settings (R10): a model repository's own, or its project's, which
every repository of the project without its own follows. Project admins change them here
only, audit-logged; no field of a request, review or merge body does."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from accounts import access
from accounts.audit import audit_record
from accounts.models import Project, ProjectRole, User
from core.errors import Invalid
from core.validation import choice, choices
from registry.models import ModelRepository
from reviews import events, gates, policy, selectors
from reviews.models import ProjectReviewSettings, ReviewPolicy, ReviewRequest, ReviewSettings, TimelineEvent
from reviews.services.base import timeline_add
from reviews.services.checks import queue_checks

MAX_GATES = 20


def _policy_view(settings: ReviewPolicy) -> dict[str, Any]:
    return {
        "required_approvals": settings.required_approvals,
        "approver_role": ProjectRole(settings.approver_role).label.lower(),
        "gates": settings.gates,
        "required_checks": settings.required_checks,
        "block_unscanned": settings.block_unscanned,
    }


def _apply_policy(
    settings: ReviewPolicy,
    *,
    required_approvals: Any,
    approver_role: Any,
    gates_config: Any,
    required_checks: Any,
    block_unscanned: Any = None,
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
    if block_unscanned is not None:
        if not isinstance(block_unscanned, bool):
            raise Invalid("block_unscanned must be true or false.", field="block_unscanned")
        settings.block_unscanned = block_unscanned
    if approver_role is not None:
        roles = {"writer": ProjectRole.WRITER, "maintainer": ProjectRole.MAINTAINER}
        chosen = choice(
            approver_role, roles, field="approver_role", message='approver_role must be "writer" or "maintainer".'
        )
        settings.approver_role = roles[chosen]
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
        settings.required_checks = sorted(
            choices(required_checks, known, field="required_checks", max_items=MAX_GATES + 2)
        )
    settings.required_checks = [
        n for n in settings.required_checks if n in {c["name"] for c in selectors.configured_checks(settings)}
    ]


# A change to these re-runs the checks of open requests: they decide which checks exist
# (gates) or how one ends (block_unscanned). required_checks and approvals are read live.
CHECK_FIELDS = ("gates", "block_unscanned")


def _open_requests_following(*, repository: ModelRepository | None = None, project: Project | None = None) -> Any:
    """Open requests whose policy is the one being changed: a repository's, or its project's
    for every repository of the project without a policy of its own."""
    requests = ReviewRequest.objects.filter(state=ReviewRequest.State.OPEN).select_related(
        "repository", "project", "project__team", "candidate"
    )
    if repository is not None:
        return requests.filter(repository=repository)
    return requests.filter(project=project).exclude(repository__in=ReviewSettings.objects.values("repository"))


def _record_on_open_requests(
    requests: Any, *, user: User, scope: str, before: dict[str, Any], after: dict[str, Any]
) -> None:
    """Issue 16, bug 9: a policy change is an event of every open request it governs (its
    timeline says what changed, who changed it), and the request's checks follow the new
    policy, so its page never shows a verdict of a policy that no longer applies."""
    changes = {field: {"from": before[field], "to": after[field]} for field in after if before[field] != after[field]}
    if not changes:
        return
    rerun = any(field in changes for field in CHECK_FIELDS)
    for rr in requests:
        timeline_add(rr, TimelineEvent.Kind.POLICY, user, {"scope": scope, "changes": changes})
        if rerun:
            queue_checks(rr)
        events.request_event(rr, "policy.changed", {"scope": scope, "changes": changes})


def _save_policy(
    settings: ReviewPolicy,
    *,
    user: User,
    action: str,
    target: Any,
    project: Project,
    **fields: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate and apply ``fields`` to a repository's or a project's policy, save it and
    audit-log the change (a new policy is logged even when it equals what applied before).
    Returns the policy before and after."""
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
    return before, after


@transaction.atomic
def review_settings_update(
    *,
    user: User,
    repository: ModelRepository,
    required_approvals: Any = None,
    approver_role: Any = None,
    gates_config: Any = None,
    required_checks: Any = None,
    block_unscanned: Any = None,
) -> ReviewSettings:
    """R10: a repository's policy changes here only (project admins), audit-logged. A
    repository without its own settings starts from the policy that applies to it now
    (its project's, or the defaults), so a change of one field keeps the others."""
    access.require(user, "review.settings", repository.project)
    settings = ReviewSettings.objects.select_for_update().filter(repository=repository).first()
    if settings is None:
        current = selectors.settings_for(repository)
        settings = ReviewSettings(repository=repository, **{f: getattr(current, f) for f in selectors.POLICY_FIELDS})
    before, after = _save_policy(
        settings,
        user=user,
        action="review.settings",
        target=repository,
        project=repository.project,
        required_approvals=required_approvals,
        approver_role=approver_role,
        gates_config=gates_config,
        required_checks=required_checks,
        block_unscanned=block_unscanned,
    )
    _record_on_open_requests(
        _open_requests_following(repository=repository), user=user, scope="model", before=before, after=after
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
        after = _policy_view(selectors.settings_for(repository))
        audit_record(
            actor=user,
            action="review.settings.delete",
            target=repository,
            project=repository.project,
            data={"before": before, "after": after},
        )
        _record_on_open_requests(
            _open_requests_following(repository=repository), user=user, scope="project", before=before, after=after
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
    block_unscanned: Any = None,
) -> ProjectReviewSettings:
    """R10: the project's policy, the default of every model repository of the project
    without its own, changes here only (project admins), audit-logged."""
    access.require(user, "review.settings", project)
    settings = ProjectReviewSettings.objects.select_for_update().filter(project=project).first()
    if settings is None:
        settings = selectors.project_settings_for(project)
    before, after = _save_policy(
        settings,
        user=user,
        action="review.project_settings",
        target=project,
        project=project,
        required_approvals=required_approvals,
        approver_role=approver_role,
        gates_config=gates_config,
        required_checks=required_checks,
        block_unscanned=block_unscanned,
    )
    _record_on_open_requests(
        _open_requests_following(project=project), user=user, scope="project", before=before, after=after
    )
    return settings
