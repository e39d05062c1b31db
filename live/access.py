"""access_topic(): may this user subscribe to this topic? The socket's side of the policy.

Each topic names an object, and subscribing asks the access function of that object for
its view action, as a GET of it would: ``run:<id>`` → ``access_run``,
``project:<team>/<project>`` → ``access_project``, ``review:<team>/<project>/<number>`` →
the review request's access function, ``user`` → the caller's own notifications.

# SECURITY: a topic naming something missing or invisible raises NotFound (the client gets
``not_found``, as the API answers 404), PermissionDenied only when the object is visible
but the role too low. Nothing here trusts the topic string beyond parsing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.access import access_project
from accounts.models import ApiToken, User
from core.errors import NotFound
from experiments.access import access_run
from live import topics

if TYPE_CHECKING:
    from accounts.access import AnyUser

MAX_TOPIC_LENGTH = 300
_NAME = r"[A-Za-z0-9_.-]{1,64}"
_RUN = re.compile(r"^run:([A-Za-z0-9_-]{1,64})$")
_PROJECT = re.compile(rf"^project:({_NAME})/({_NAME})$")
_REVIEW = re.compile(rf"^review:({_NAME})/({_NAME})/([1-9][0-9]{{0,8}})$")
_USER = re.compile(r"^user(?::([0-9]{1,18}))?$")


class InvalidTopic(ValueError):
    """Not a topic at all (answered ``invalid``, unlike an unknown object: ``not_found``)."""


@dataclass(frozen=True)
class Target:
    """A topic the caller may follow: ``topic`` is the publishers' (canonical) name."""

    topic: str
    project_id: str | None


def access_topic(user: AnyUser | None, topic: str) -> Target:
    """Parse ``topic`` and check that ``user`` may see what it names. Raises InvalidTopic,
    NotFound or PermissionDenied."""
    if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC_LENGTH:
        raise InvalidTopic(f"topic must be a string of 1-{MAX_TOPIC_LENGTH} characters.")
    if match := _RUN.match(topic):
        run = access_run(user, match[1], action="run.view")
        return Target(topics.run_topic(run.id), run.project_id)
    if match := _PROJECT.match(topic):
        project = access_project(user, match[1], match[2], action="project.view")
        return Target(topics.project_topic(project.team.name, project.name), project.pk)
    if match := _REVIEW.match(topic):
        return _review_target(user, match[1], match[2], int(match[3]))
    if match := _USER.match(topic):
        own = getattr(user, "pk", None)
        if own is None or (match[1] is not None and match[1] != str(own)):
            raise NotFound("Not found.")
        return Target(topics.user_topic(own), None)
    raise InvalidTopic("topic must be run:<id>, project:<team>/<project>, review:<team>/<project>/<number> or user.")


def _review_target(user: AnyUser | None, team: str, name: str, number: int) -> Target:
    from reviews.access import access_review_request

    review = access_review_request(user, team, name, number, action="review.view")
    project = review.project
    return Target(topics.review_topic(project.team.name, project.name, review.number), project.pk)


# --- who is on the other end: still the same, still allowed? ------------------------------------


def token_user(token_id: str) -> User | None:
    """The user of a token that is still valid (not revoked or expired, user active)."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(pk=token_id, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None or (token.expires_at is not None and token.expires_at <= timezone.now()):
        return None
    return token.user


def session_user(session_key: str | None, user_id: int) -> User | None:
    """The user of a browser session that still holds the same sign-in (not signed out, no
    password change since, user active), read afresh from the session store."""
    from importlib import import_module

    from django.conf import settings

    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if str(store.get(SESSION_KEY, "")) != str(user_id):
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not constant_time_compare(store.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
        return None
    return user
