"""Every write on accounts: one function per use case."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, Membership, Team, User
from accounts.names import canonical, name_problem

TOKEN_PREFIX = "asy_"  # noqa: S105 - a public marker, not a secret
# last_used_at is advisory; writing it at most once a minute keeps hot paths read-only.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _digest(raw: str) -> str:
    # Tokens carry 256 bits of randomness, so a plain SHA-256 is enough (no slow KDF needed).
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str  # shown once, never stored


@transaction.atomic
def token_create(*, user: User, name: str) -> IssuedToken:
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name[:100], prefix=raw[:12], digest=_digest(raw))
    return IssuedToken(token=token, raw=raw)


def token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def token_authenticate(*, raw: str) -> ApiToken | None:
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=_digest(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@transaction.atomic
def personal_team_ensure(*, user: User) -> Team:
    """Every user has a team named after them, so ``<username>/<project>`` works on day one."""
    team = Team.objects.filter(personal_owner=user).first()
    if team is None:
        team = Team.objects.create(name=user.username.lower(), display_name=user.username, personal_owner=user)
        Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)
    return team


@transaction.atomic
def team_create(*, name: str, owner: User, display_name: str = "") -> Team:
    problem = name_problem(canonical(name), team=True)
    if problem:
        raise ValueError(problem)
    team = Team.objects.create(name=canonical(name), display_name=display_name or name)
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    return team


@transaction.atomic
def team_member_add(*, team: Team, user: User, role: str = Membership.Role.MEMBER) -> Membership:
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    return membership
