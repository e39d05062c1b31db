"""What live sockets learn from accounts: the ``user`` topic, who a token or a session
belongs to, and "access may have changed" broadcasts.

The broadcasts go out after commit, so that open sockets re-check their subscriptions within
a second instead of at the next periodic re-check. They are connected to the models that
decide access (memberships, grants, projects, users, API tokens: ``token_revoke`` saves the
token, so a socket opened with it closes at once) and to sign-out. Writes that bypass
``save()``/``delete()`` (queryset ``update()``) and token expiry are caught by the periodic
re-check (``ASSAY_LIVE_RECHECK_SECONDS``).
"""

from __future__ import annotations

import re
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import ApiToken, Membership, Project, ProjectGrant, User
from accounts.services import token_authenticate
from core.errors import NotFound
from live import topics
from live.access import Target, register_identity, register_topic
from live.publish import access_changed

# Saving a user with only these fields cannot change what they may see (a sign-in stamps last_login).
_HARMLESS_USER_FIELDS = frozenset({"last_login"})


def _user_target(user: Any, match: re.Match[str]) -> Target:
    own = getattr(user, "pk", None)
    if own is None or (match[1] is not None and match[1] != str(own)):
        raise NotFound("Not found.")
    return Target(topics.user_topic(own), None)


class AccountsIdentity:
    def authenticate_token(self, raw: str) -> tuple[str, User] | None:
        token = token_authenticate(raw=raw)
        return None if token is None else (str(token.pk), token.user)

    def token_user(self, token_id: str) -> User | None:
        token = (
            ApiToken.objects.select_related("user")
            .filter(pk=token_id, revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if token is None or (token.expires_at is not None and token.expires_at <= timezone.now()):
            return None
        return token.user

    def session_user(self, session_key: str | None, user_id: int) -> User | None:
        """Read afresh from the session store: not signed out, no password change since, user active."""
        if not session_key:
            return None
        store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        if str(store.get(SESSION_KEY, "")) != str(user_id):
            return None
        user = User.objects.filter(pk=user_id, is_active=True).first()
        if user is None or not constant_time_compare(store.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
            return None
        return user


# --- "access may have changed" ---------------------------------------------------------------------


def _later(*, user_ids: list[int] | None = None, project_ids: list[str] | None = None) -> None:
    transaction.on_commit(lambda: access_changed(user_ids=user_ids, project_ids=project_ids), robust=True)


def _membership_changed(sender: Any, instance: Membership, **kwargs: Any) -> None:
    _later(user_ids=[instance.user_id])


def _grant_changed(sender: Any, instance: ProjectGrant, **kwargs: Any) -> None:
    _later(user_ids=[instance.user_id] if instance.user_id else None, project_ids=[instance.project_id])


def _project_changed(sender: Any, instance: Project, created: bool = False, **kwargs: Any) -> None:
    if not created:  # visibility, team (a transfer), deletion
        _later(project_ids=[instance.pk])


def _user_changed(sender: Any, instance: User, created: bool = False, update_fields: Any = None, **kwargs: Any) -> None:
    if created or (update_fields is not None and set(update_fields) <= _HARMLESS_USER_FIELDS):
        return
    _later(user_ids=[instance.pk])


def _token_changed(sender: Any, instance: ApiToken, created: bool = False, **kwargs: Any) -> None:
    # A new token changes nothing; a revoked (or edited, or deleted) one re-checks its user's
    # sockets, and those authenticated with it find it invalid and close.
    if not created:
        _later(user_ids=[instance.user_id])


def _logged_out(sender: Any, request: Any, user: User | None, **kwargs: Any) -> None:
    if user is not None:
        _later(user_ids=[user.pk])


def register() -> None:
    register_topic(r"^user(?::([0-9]{1,18}))?$", _user_target, example="user", order=40)
    register_identity(AccountsIdentity())
    for model, handler in ((Membership, _membership_changed), (ProjectGrant, _grant_changed)):
        post_save.connect(handler, sender=model, dispatch_uid=f"live-{model.__name__}-save")
        post_delete.connect(handler, sender=model, dispatch_uid=f"live-{model.__name__}-delete")
    post_save.connect(_project_changed, sender=Project, dispatch_uid="live-project-save")
    post_delete.connect(_project_changed, sender=Project, dispatch_uid="live-project-delete")
    post_save.connect(_user_changed, sender=User, dispatch_uid="live-user-save")
    post_delete.connect(_user_changed, sender=User, dispatch_uid="live-user-delete")
    post_save.connect(_token_changed, sender=ApiToken, dispatch_uid="live-token-save")
    post_delete.connect(_token_changed, sender=ApiToken, dispatch_uid="live-token-delete")
    user_logged_out.connect(_logged_out, dispatch_uid="live-logged-out")
