"""What every review service shares: the caller's role, the request's row lock, its
timeline, the label a person reads (``acme/proj#3``), and how the app's Celery tasks are
queued."""

from __future__ import annotations

from typing import Any

from accounts import access
from accounts.models import Project, User
from reviews import events, serializers
from reviews.models import ReviewRequest, TimelineEvent

# The tasks of reviews/tasks.py call these services, so the services name the tasks instead
# of importing them: reviews.tasks imports reviews.services, never the other way round (no
# cycle). ReviewsConfig.ready() imports reviews.tasks, so every process (the web process in
# eager mode included) has them registered under these names.
CHECK_RUN_TASK = "reviews.tasks.check_run_task"
NOTIFICATION_EMAIL_TASK = "reviews.tasks.notification_email_task"


def role_of(user: User, project: Project) -> int | None:
    """The caller's role on ``project`` as the plain number reviews.policy compares."""
    role = access.role_on(user, project)
    return int(role) if role is not None else None


def policy_id(value: Any) -> str | None:
    """A user's id as reviews.policy compares ids (None: no user, e.g. a deleted author)."""
    return str(value) if value is not None else None


# The lock order of the reviews app, for the services and the worker's tasks alike:
#
#   1. the review request (lock_request / lock_request_id), before
#   2. any row that belongs to it: its checks, reviews, comments, reviewers;
#   3. then rows of other apps (model repository, alias: the merge).
#
# A transaction that locks a row of step 2 or 3 and then needs the request waits for it
# while the request's holder waits for that row: "deadlock detected" (issue 17: re-runs of
# the checks racing the worker, which locked a check and then inserted a timeline event,
# whose foreign key takes FOR KEY SHARE on the request). So everything that locks one of the
# request's rows locks the request first, even the worker (reviews.services.checks.check_run).
# The lock is FOR NO KEY UPDATE: it serializes the writers of a request, yet lets rows that
# merely reference it (timeline events, notifications: FOR KEY SHARE) be inserted beside it;
# nothing here changes a request's key (its id).


def lock_request_id(request_id: str) -> ReviewRequest:
    """The request ``request_id``, locked for this transaction (step 1 of the lock order
    above), with what the services read of it."""
    return (
        ReviewRequest.objects.select_for_update(of=("self",), no_key=True)
        .select_related("project__team", "repository__project__team", "candidate", "base", "author", "merged_by")
        .get(pk=request_id)
    )


def lock_request(request: ReviewRequest) -> ReviewRequest:
    """The request again, locked for this transaction, with what the services read of it."""
    return lock_request_id(request.pk)


def timeline_add(request: ReviewRequest, kind: str, actor: User | None, data: dict[str, Any]) -> TimelineEvent:
    """Add an event to the request's timeline and push it to the request's page."""
    event = TimelineEvent.objects.create(request=request, kind=kind, actor=actor, data=data)
    events.request_event(request, f"timeline.{kind}", serializers.event_out(event))
    return event


def request_label(request: ReviewRequest) -> str:
    return f"{request.project.path}#{request.number}"
