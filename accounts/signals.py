from __future__ import annotations

from typing import Any

from allauth.account import signals as allauth_signals
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.audit import audit_record
from accounts.models import User
from accounts.services import personal_team_ensure
from accounts.sso import claimed_groups, groups_sync


@receiver(post_save, sender=User)
def _personal_team_on_create(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    # A signal, not only a service, because createsuperuser and the admin create users too.
    if created and not kwargs.get("raw"):
        personal_team_ensure(user=instance)


@receiver(user_logged_in)
def _audit_sign_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    audit_record(actor=user, action="auth.sign_in", target=user)


@receiver(allauth_signals.user_logged_in)
def _groups_become_teams(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    # allauth's own signal (Django's carries no ``sociallogin``): at every sign-in through an
    # OpenID Connect provider, the groups claim decides the managed memberships.
    sociallogin = kwargs.get("sociallogin")
    if sociallogin is None:
        return
    extra = sociallogin.account.extra_data or {}
    claims = {**(extra.get("id_token") or {}), **(extra.get("userinfo") or {})}
    groups_sync(user=user, provider_id=sociallogin.account.provider, groups=claimed_groups(claims))


@receiver(user_login_failed)
def _audit_failed_sign_in(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # SECURITY: Django has already masked the password in ``credentials``; only the login
    # name that was tried is kept, truncated.
    tried = credentials.get("username") or credentials.get("email") or credentials.get("login") or ""
    audit_record(actor=None, action="auth.sign_in_failed", data={"login": str(tried)[:150]})
