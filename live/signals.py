""" "Access may have changed" broadcasts, after commit, so that open sockets re-check their
subscriptions within a second instead of at the next periodic re-check.

Connected to the models that decide access (memberships, grants, projects, users, API
tokens: ``token_revoke`` saves the token, so a socket opened with it closes at once) and to
sign-out. Writes that bypass ``save()``/``delete()`` (queryset ``update()``) and token expiry
are caught by the periodic re-check (``ASSAY_LIVE_RECHECK_SECONDS``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from accounts.models import ApiToken, Membership, Project, ProjectGrant, User
from live.publish import access_changed

# Saving a user with only these fields cannot change what they may see (a sign-in stamps last_login).
_HARMLESS_USER_FIELDS = frozenset({"last_login"})


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


def connect() -> None:
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
