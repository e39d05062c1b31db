"""Groups become teams: at every OpenID Connect sign-in the provider's groups claim
(``ASSAY_OIDC_GROUPS_CLAIM``, default ``groups``) is mapped through ``ASSAY_OIDC_GROUP_MAP``
(``group=team:role,…``) to the user's memberships.

The memberships so made carry ``managed_by`` (the provider's id): they follow the groups at
each sign-in (added, role changed, removed) and cannot be edited by hand
(``access.require_membership_editable``). A membership the user already had by hand in a
mapped team is taken over by the provider. Personal teams are never touched; a mapped team
that does not exist is skipped and logged (create it first). Every change is audited.

# SECURITY: the groups come from the provider's signed ID token or its userinfo endpoint
# (fetched with the access token allauth just obtained), never from the browser.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.audit import audit_record
from accounts.models import Membership, Team, User

logger = logging.getLogger("assay.sso")

_RANK = {Membership.Role.MEMBER: 0, Membership.Role.OWNER: 1}


def configured_providers() -> list[dict[str, Any]]:
    """The OpenID Connect providers allauth signs in with (``ASSAY_OIDC_PROVIDERS``, read at
    start-up into ``SOCIALACCOUNT_PROVIDERS``)."""
    apps = settings.SOCIALACCOUNT_PROVIDERS.get("openid_connect", {}).get("APPS", [])
    return list(apps)


def sso_required(user: User) -> bool:
    """Whether ``user`` must sign in through an identity provider, not with a password: their
    e-mail domain is in ``ASSAY_SSO_REQUIRED_DOMAINS``, or they belong to a team whose owners
    turned on "SSO required" (``Team.sso_required``). Superusers are exempt: the break-glass
    account for when the provider is down. API tokens are not concerned (not a sign-in)."""
    if user.is_superuser:
        return False
    domains = settings.ASSAY_SSO_REQUIRED_DOMAINS
    domain = (user.email or "").rpartition("@")[2].lower()
    if domains and ("*" in domains or domain in domains):
        return True
    return Membership.objects.filter(user=user, team__sso_required=True).exists()


@dataclass(frozen=True)
class GroupSync:
    added: list[str]
    changed: list[str]
    removed: list[str]


def claimed_groups(claims: Mapping[str, Any], claim: str | None = None) -> list[str]:
    """The groups in a userinfo / ID-token payload: a list of strings (or one string)."""
    value = claims.get(claim or settings.ASSAY_OIDC_GROUPS_CLAIM)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [g for g in value if isinstance(g, str)]
    return []


def desired_memberships(groups: list[str], group_map: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """{team name: role} the groups give; several groups on one team give the highest role."""
    wanted: dict[str, str] = {}
    for group in groups:
        if group not in group_map:
            continue
        team, role = group_map[group]
        if team not in wanted or _RANK[Membership.Role(role)] > _RANK[Membership.Role(wanted[team])]:
            wanted[team] = role
    return wanted


@transaction.atomic
def groups_sync(*, user: User, provider_id: str, groups: list[str]) -> GroupSync:
    wanted = desired_memberships(groups, settings.ASSAY_OIDC_GROUP_MAP)
    teams = {t.name: t for t in Team.objects.filter(name__in=wanted, personal_owner__isnull=True)}
    for missing in sorted(set(wanted) - set(teams)):
        logger.warning("sso: team %r of ASSAY_OIDC_GROUP_MAP does not exist; create it (user %s)", missing, user)
    current = {m.team.name: m for m in Membership.objects.select_related("team").filter(user=user)}
    added: list[str] = []
    changed: list[str] = []
    removed: list[str] = []
    by = {"user": user.username, "by": f"sso:{provider_id}"}
    for name, team in sorted(teams.items()):
        role = wanted[name]
        membership = current.get(name)
        if membership is None:
            Membership.objects.create(team=team, user=user, role=role, managed_by=provider_id)
            audit_record(actor=None, action="team.member_add", target=team, data={**by, "role": role})
            added.append(name)
        elif membership.role != role or membership.managed_by != provider_id:
            before = membership.role
            membership.role, membership.managed_by = role, provider_id
            membership.save(update_fields=["role", "managed_by"])
            audit_record(actor=None, action="team.member_role", target=team, data={**by, "from": before, "to": role})
            changed.append(name)
    for name, membership in sorted(current.items()):
        if membership.managed_by == provider_id and name not in teams:
            membership.delete()
            audit_record(actor=None, action="team.member_remove", target=membership.team, data=by)
            removed.append(name)
    if added or changed or removed:
        logger.info("sso: %s via %s: added %s, changed %s, removed %s", user, provider_id, added, changed, removed)
    return GroupSync(added=added, changed=changed, removed=removed)
