"""django-allauth adapters: who may sign up, and usernames that are valid team names.

Sign-up modes (``ASSAY_SIGNUP``): ``open`` (anyone), ``invite`` (only with a pending team
invitation opened in this browser session; the default) and ``closed`` (administrators
create accounts). Sign-up through an OpenID Connect provider follows
``ASSAY_OIDC_SIGNUP`` (default on: the identity provider decides who may sign in).

# SECURITY: signing up grants nothing by itself: a new user owns only their personal team
# and sees only internal projects until someone grants them a role.
"""

from __future__ import annotations

import re
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from accounts.models import Team, User
from accounts.names import RESERVED_TEAM_NAMES
from accounts.services import invitation_find

INVITATION_SESSION_KEY = "assay_invitation"


def signup_mode() -> str:
    return str(settings.ASSAY_SIGNUP)


def pending_invitation_in(request: HttpRequest) -> bool:
    raw = request.session.get(INVITATION_SESSION_KEY) if hasattr(request, "session") else None
    return isinstance(raw, str) and invitation_find(raw) is not None


class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        mode = signup_mode()
        if mode == "open":
            return True
        if mode == "invite":
            return pending_invitation_in(request)
        return False

    def clean_username(self, username: str, shallow: bool = False) -> str:
        username = super().clean_username(username, shallow=shallow)
        # Every user gets a personal team named after them, so a team's name is taken too.
        if not shallow and Team.objects.filter(name__iexact=username).exists():
            raise ValidationError("This name is taken by a team; choose another.")
        return username

    def generate_unique_username(self, txts: list[str | None], regex: str | None = None) -> str:
        """A free username that is also a valid, free team name (``ana-lopez``, ``ana-lopez-2``)."""
        base = ""
        for txt in txts:
            if not txt:
                continue
            candidate = re.sub(r"[^a-z0-9_-]+", "-", str(txt).split("@")[0].lower()).strip("-_")[:56]
            if candidate and candidate not in RESERVED_TEAM_NAMES:
                base = candidate
                break
        base = base or "user"
        name, n = base, 1
        while User.objects.filter(username__iexact=name).exists() or Team.objects.filter(name__iexact=name).exists():
            n += 1
            name = f"{base}-{n}"
        return name


class SocialAccountAdapter(DefaultSocialAccountAdapter):  # type: ignore[misc]
    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return (bool(settings.ASSAY_OIDC_SIGNUP) and signup_mode() != "closed") or pending_invitation_in(request)

    def populate_user(self, request: HttpRequest, sociallogin: SocialLogin, data: dict[str, Any]) -> Any:
        user = super().populate_user(request, sociallogin, data)
        # The provider's preferred_username may not be a valid team name: let the account
        # adapter derive a valid one from it (or from the e-mail address).
        username = getattr(user, "username", "") or ""
        user.username = AccountAdapter(request).generate_unique_username([username, data.get("email"), "user"])
        return user
