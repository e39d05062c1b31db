from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.audit import audit_record
from accounts.models import User
from accounts.services import personal_team_ensure


@receiver(post_save, sender=User)
def _personal_team_on_create(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    # A signal, not only a service, because createsuperuser and the admin create users too.
    if created and not kwargs.get("raw"):
        personal_team_ensure(user=instance)


@receiver(user_logged_in)
def _audit_sign_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    audit_record(actor=user, action="auth.sign_in", target=user)


@receiver(user_login_failed)
def _audit_failed_sign_in(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # SECURITY: Django has already masked the password in ``credentials``; only the login
    # name that was tried is kept, truncated.
    tried = credentials.get("username") or credentials.get("email") or credentials.get("login") or ""
    audit_record(actor=None, action="auth.sign_in_failed", data={"login": str(tried)[:150]})
