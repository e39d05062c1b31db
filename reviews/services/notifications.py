"""Notifications: who a mention reaches, the rows written in the same transaction as what
caused them (a mention is in the database before any push), their live push and e-mail
after commit, and the user's own notification writes (mark read, e-mail preferences)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts import access
from accounts.models import Project, Team, User
from core.errors import Invalid
from core.tasks import enqueue_on_commit
from reviews import events, mentions, selectors, serializers
from reviews.models import Notification, NotificationPreference, Review, ReviewRequest
from reviews.services.base import NOTIFICATION_EMAIL_TASK, request_label


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
                found = selectors.team_readers(team, project)
        if found:
            for u in found:
                reached[u.pk] = u
        else:
            unreachable.append(name)
    return list(reached.values()), unreachable


def notify(
    *,
    users: Iterable[User],
    kind: str,
    request: ReviewRequest,
    actor: User | None,
    summary: str,
    skip: Iterable[User] = (),
) -> list[Notification]:
    """Write one notification per user (not the actor, only who may see the request), then
    after commit: push each to its user and queue its e-mail. ``skip`` are the users the same
    event already notified with a more specific reason: one event, one notification each."""
    seen: set[int] = {u.pk for u in skip}
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
    for notification in created:
        events.notification_event(notification, serializers.notification_out(notification))
        if kind in selectors.email_kinds(notification.user):
            enqueue_on_commit(NOTIFICATION_EMAIL_TASK, notification.id)
    return created


def notify_project(
    *, users: Iterable[User], kind: str, project: Project, link: str, summary: str, actor: User | None = None
) -> list[Notification]:
    """Notifications about something in ``project`` that is not a review request (a metric
    alert, automations): one per active user who may see the project, ``link`` the path of
    the page it is about; pushed live and e-mailed (by the user's preferences) after commit,
    as :func:`notify`'s are."""
    seen: set[int] = set()
    rows: list[Notification] = []
    for user in users:
        if user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        # SECURITY: never notify someone who may not see the project.
        if not access.can(user, "project.view", project):
            continue
        rows.append(Notification(user=user, kind=kind, project=project, link=link, actor=actor, summary=summary[:300]))
    created = Notification.objects.bulk_create(rows)
    for notification in created:
        events.notification_event(notification, serializers.notification_out(notification))
        if kind in selectors.email_kinds(notification.user):
            enqueue_on_commit(NOTIFICATION_EMAIL_TASK, notification.id)
    return created


@dataclass(frozen=True)
class Mentions:
    reached: list[User]  # who the mentions addressed (the event notifies them as mentioned)
    unreachable: list[str]  # the names that reach no one


def notify_mentions(
    *,
    request: ReviewRequest,
    actor: User,
    text: str,
    place: str | None = None,
    previous_text: str = "",
    skip: Iterable[User] = (),
) -> Mentions:
    """Notify the users the @mentions in ``text`` reach (see resolve_mentions). An edit
    passes the ``previous_text``: who was mentioned by name there is not notified again.
    ``place`` is where the mention is, as the summary says it (by default the request's
    label and title). ``skip``: who the same event notified with a more specific reason (a
    requested reviewer). A caller with a less specific reason of its own (a review submitted
    to its watchers) notifies after this and skips ``reached``."""
    found, unreachable = resolve_mentions(request.project, text)
    already = set(mentions.find_mentions(previous_text))
    reached = [u for u in found if u.username not in already]
    notify(
        users=reached,
        kind=Notification.Kind.MENTION,
        request=request,
        actor=actor,
        summary=f"{actor.username} mentioned you in {place or f'{request_label(request)}: {request.title}'}",
        skip=skip,
    )
    return Mentions(reached=reached, unreachable=unreachable)


def watchers(request: ReviewRequest) -> list[User]:
    """The author, requested reviewers (teams expanded) and everyone who reviewed."""
    users: dict[int, User] = {}
    if request.author is not None:
        users[request.author.pk] = request.author
    for item in selectors.reviewers_of(request):
        if item.user is not None:
            users[item.user.pk] = item.user
        elif item.team is not None:
            for u in selectors.team_readers(item.team, request.project):
                users[u.pk] = u
    for review in Review.objects.filter(request=request).select_related("author"):
        users[review.author.pk] = review.author
    return list(users.values())


@transaction.atomic
def notifications_mark_read(*, user: User, ids: Any = None, all_unread: Any = False) -> int:
    if not isinstance(all_unread, bool):
        raise Invalid("all must be true or false.", field="all")
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    # ids are checked whenever given, also beside "all": true (they were ignored unchecked).
    ids_given = not all_unread or ids is not None
    if ids_given and (
        not isinstance(ids, list) or not ids or len(ids) > 500 or not all(isinstance(i, str) and i for i in ids)
    ):
        raise Invalid('Send {"ids": [notification ids]} or {"all": true}.', field="ids")
    if not all_unread:
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
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("user", "request__project__team", "project__team")
            .filter(pk=notification_id)
            .first()
        )
        if notification is None or notification.emailed_at is not None or not notification.user.email:
            return False
        if notification.request is not None:
            if not access.can(notification.user, "review.view", notification.request.project):
                return False
            url = serializers.request_url(notification.request)
        else:
            assert notification.project is not None  # notification_has_subject
            if not access.can(notification.user, "project.view", notification.project):
                return False
            url = serializers.notification_url(notification)
        send_mail(
            subject=f"[Assay] {notification.summary}"[:200],
            message=f"{notification.summary}\n\n{url}\n\nChange which notifications you receive by e-mail at "
            f"{settings.PUBLIC_URL}/settings/notifications/",
            from_email=None,
            recipient_list=[notification.user.email],
        )
        notification.emailed_at = timezone.now()
        notification.save(update_fields=["emailed_at"])
    return True
