"""Every write SCIM provisioning makes: an identity provider (Okta, Entra ID, Keycloak, …)
creates, changes, deactivates and deletes accounts, and keeps groups as teams.

The protocol (JSON shapes, filters, PATCH) is ``accounts/scim.py``; these functions take
plain values, check them, write in one transaction and audit with ``by: scim``.

- **Users.** SCIM's ``userName`` is often an e-mail or a UPN, which is no valid Assay handle
  (handles are team names): the account then gets a handle made from it (``ana.lopez@corp``
  → ``ana-lopez``) and keeps the provider's ``userName`` in ``scim_user_name``. Deactivating
  (``active: false``) signs the person out everywhere (``session_epoch``), revokes their API
  tokens (``token_revoke``, which also closes the sockets opened with them) and, through the
  saved user, makes their other sockets re-check and close (``accounts/live.py``). DELETE
  deactivates the same way and detaches the account from SCIM (it is no longer listed); the
  account and what it made stay, as a departed colleague's runs do.
- **Groups** are teams (``Team.scim_group``). A group whose displayName is mapped by
  ``ASSAY_OIDC_GROUP_MAP`` is that team, its members get the mapped role; any other group gets
  a new team named after it (``-2`` when the name is taken: never an existing team). Members made by SCIM are ``managed_by =
  "scim"``: they follow the provider and cannot be edited by hand; a hand-made membership of a
  listed member is taken over (its role kept when the group maps none). DELETE detaches the
  team from SCIM and removes the memberships SCIM made; the team and its projects stay.
- # SECURITY: superusers cannot be changed through SCIM (the break-glass accounts stay in the
  hands of the site, as for "SSO required"); a SCIM token belongs to a staff user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from accounts.audit import audit_record
from accounts.models import Membership, Team, User
from accounts.names import RESERVED_TEAM_NAMES, canonical, name_problem
from accounts.services import handle_generate, user_deactivate
from core.errors import Conflict, Forbidden, Invalid, NotFound

SCIM_MANAGER = "scim"
MAX_VALUE = 255
_BY = {"by": SCIM_MANAGER}


@dataclass(frozen=True)
class UserFields:
    """What a SCIM User sets on an account (a full replacement: PUT, or a patched whole)."""

    user_name: str
    external_id: str = ""
    given_name: str = ""
    family_name: str = ""
    email: str = ""
    active: bool = True


@dataclass(frozen=True)
class GroupFields:
    display_name: str
    external_id: str = ""
    member_ids: tuple[int, ...] = ()


# --- reads the services and the protocol share ------------------------------------------------


def scim_users() -> QuerySet[User]:
    """The accounts SCIM sees: every account not detached by a SCIM DELETE."""
    return User.objects.filter(scim_deleted=False)


def scim_groups() -> QuerySet[Team]:
    return Team.objects.filter(scim_group=True, personal_owner__isnull=True)


def scim_user_name(user: User) -> str:
    return str(user.scim_user_name or user.username)


def user_name_q(value: str) -> Q:
    """The accounts whose SCIM userName is ``value`` (case-insensitive, as userName is)."""
    return Q(scim_user_name__iexact=value) | Q(scim_user_name="", username__iexact=value)


def scim_user_get(user_id: str) -> User:
    if not user_id.isdigit() or len(user_id) > 18:
        raise NotFound(f"No user {user_id!r}.")
    user = scim_users().filter(pk=int(user_id)).first()
    if user is None:
        raise NotFound(f"No user {user_id!r}.")
    return user


def scim_group_get(group_id: str) -> Team:
    if not group_id.isdigit() or len(group_id) > 18:
        raise NotFound(f"No group {group_id!r}.")
    team = scim_groups().filter(pk=int(group_id)).first()
    if team is None:
        raise NotFound(f"No group {group_id!r}.")
    return team


# --- users ------------------------------------------------------------------------------------


def _text(raw: Any, field: str, *, required: bool = False, max_length: int = MAX_VALUE) -> str:
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise Invalid(f"{field} must be a string.", field=field)
    value: str = raw.strip()
    if required and not value:
        raise Invalid(f"{field} is required.", field=field)
    if len(value) > max_length or any(ord(c) < 32 for c in value):
        raise Invalid(f"{field} must be at most {max_length} printable characters.", field=field)
    return value


def _clean_user(fields: UserFields) -> UserFields:
    email = _text(fields.email, "emails", max_length=254)
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise Invalid(f"{email!r} is not an e-mail address.", field="emails") from None
    return UserFields(
        user_name=_text(fields.user_name, "userName", required=True),
        external_id=_text(fields.external_id, "externalId"),
        given_name=_text(fields.given_name, "name.givenName", max_length=150),
        family_name=_text(fields.family_name, "name.familyName", max_length=150),
        email=email,
        active=bool(fields.active),
    )


def _require_unique(fields: UserFields, *, except_pk: int | None = None) -> None:
    others = scim_users().exclude(pk=except_pk) if except_pk is not None else scim_users()
    if others.filter(user_name_q(fields.user_name)).exists():
        raise Conflict(f"The userName {fields.user_name!r} is taken.", code="uniqueness", field="userName")
    # Assay keeps e-mail addresses unique (ACCOUNT_UNIQUE_EMAIL): an account is never linked to
    # another by its address here, whatever the provider says.
    same_email = User.objects.filter(email__iexact=fields.email)
    if except_pk is not None:
        same_email = same_email.exclude(pk=except_pk)
    if fields.email and same_email.exists():
        raise Conflict(f"An account has the e-mail {fields.email!r}.", code="uniqueness", field="emails")


def _handle_for(user_name: str) -> tuple[str, str]:
    """(username, scim_user_name): the userName itself when it is a free, valid handle."""
    handle = canonical(user_name)
    if (
        user_name == handle
        and name_problem(handle, team=True) is None
        and not User.objects.filter(username__iexact=handle).exists()
        and not Team.objects.filter(name__iexact=handle).exists()
    ):
        return handle, ""
    return handle_generate([user_name]), user_name


def _refuse_superuser(user: User) -> None:
    if user.is_superuser:
        raise Forbidden(f"{user.username} is a superuser: superusers are managed on the site, not through SCIM.")


@transaction.atomic
def scim_user_create(*, actor: User, fields: UserFields) -> User:
    fields = _clean_user(fields)
    _require_unique(fields)
    username, stored_name = _handle_for(fields.user_name)
    try:
        with transaction.atomic():
            user = User.objects.create(
                username=username,
                scim_user_name=stored_name,
                external_id=fields.external_id,
                first_name=fields.given_name,
                last_name=fields.family_name,
                email=fields.email,
                is_active=fields.active,
            )
    except IntegrityError:
        raise Conflict(f"The userName {fields.user_name!r} is taken.", code="uniqueness", field="userName") from None
    user.set_unusable_password()  # they sign in through the provider
    user.save(update_fields=["password"])
    audit_record(actor=actor, action="user.create", target=user, data={**_BY, "user": user.username})
    return user


@transaction.atomic
def scim_user_update(*, actor: User, user: User, fields: UserFields) -> User:
    fields = _clean_user(fields)
    user = User.objects.select_for_update().get(pk=user.pk)
    _refuse_superuser(user)
    _require_unique(fields, except_pk=user.pk)
    changed: list[str] = []
    # The handle never changes (it names the personal team and is in URLs); a new userName is kept beside it.
    new_values: dict[str, Any] = {
        "scim_user_name": "" if fields.user_name == user.username else fields.user_name,
        "external_id": fields.external_id,
        "first_name": fields.given_name,
        "last_name": fields.family_name,
        "email": fields.email,
    }
    for name, value in new_values.items():
        if getattr(user, name) != value:
            setattr(user, name, value)
            changed.append(name)
    if changed:
        user.save(update_fields=[*changed, "modified_at"])
        audit_record(actor=actor, action="user.change", target=user, data={**_BY, "fields": sorted(changed)})
    if fields.active != user.is_active:
        if fields.active:
            user.is_active = True
            user.save(update_fields=["is_active", "modified_at"])
            audit_record(actor=actor, action="user.reactivate", target=user, data=_BY)
        else:
            _deactivate(actor=actor, user=user)
    return user


def _deactivate(*, actor: User, user: User) -> None:
    """Signed out everywhere, tokens revoked, sockets closed: as staff deactivate."""
    user_deactivate(user=user, actor=actor, audit=_BY)


@transaction.atomic
def scim_user_delete(*, actor: User, user: User) -> None:
    user = User.objects.select_for_update().get(pk=user.pk)
    _refuse_superuser(user)
    if user.is_active:
        _deactivate(actor=actor, user=user)
    # Detached: no longer a SCIM resource (404), its userName and externalId free again.
    user.scim_deleted = True
    user.scim_user_name = ""
    user.external_id = ""
    user.save(update_fields=["scim_deleted", "scim_user_name", "external_id", "modified_at"])
    for membership in Membership.objects.filter(user=user, managed_by=SCIM_MANAGER).select_related("team"):
        membership.delete()
        audit_record(
            actor=actor, action="team.member_remove", target=membership.team, data={**_BY, "user": user.username}
        )
    audit_record(actor=actor, action="user.scim_delete", target=user, data=_BY)


# --- groups -----------------------------------------------------------------------------------


def _team_for(display_name: str) -> tuple[str, str | None]:
    """(team name, mapped role or None) for a group's displayName."""
    mapped = settings.ASSAY_OIDC_GROUP_MAP.get(display_name)
    if mapped is not None:
        return mapped[0], mapped[1]
    name = re.sub(r"[^a-z0-9_-]+", "-", display_name.lower()).strip("-_")[:64] or "group"
    if not name[0].isalnum() or name in RESERVED_TEAM_NAMES:
        name = f"g-{name}"[:64]
    return name, None


def _clean_group(fields: GroupFields) -> GroupFields:
    ids = tuple(dict.fromkeys(fields.member_ids))
    known = set(scim_users().filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise Invalid(f"No user {unknown[0]} (members.value).", code="invalidValue", field="members")
    return GroupFields(
        display_name=_text(fields.display_name, "displayName", required=True, max_length=128),
        external_id=_text(fields.external_id, "externalId"),
        member_ids=ids,
    )


@transaction.atomic
def scim_group_create(*, actor: User, fields: GroupFields) -> Team:
    fields = _clean_group(fields)
    if scim_groups().filter(display_name__iexact=fields.display_name).exists():
        raise Conflict(f"The group {fields.display_name!r} exists.", code="uniqueness", field="displayName")
    name, mapped_role = _team_for(fields.display_name)
    # SECURITY: only a group the site mapped (ASSAY_OIDC_GROUP_MAP) takes over an existing
    # team; any other group gets a team of its own, so a provider cannot join people to a
    # team by naming a group after it.
    team = (
        Team.objects.select_for_update().filter(name__iexact=name, personal_owner__isnull=True).first()
        if mapped_role is not None
        else None
    )
    if team is not None and team.scim_group:
        raise Conflict(f"The team {team.name} is another SCIM group.", code="uniqueness", field="displayName")
    if team is None:
        if User.objects.filter(username__iexact=name).exists() or Team.objects.filter(name__iexact=name).exists():
            name = handle_generate([name])
        team = Team.objects.create(name=name, display_name=fields.display_name)
        audit_record(actor=actor, action="team.create", target=team, data=_BY)
    team.scim_group = True
    team.display_name = fields.display_name
    team.external_id = fields.external_id
    team.save(update_fields=["scim_group", "display_name", "external_id", "modified_at"])
    audit_record(actor=actor, action="team.scim_link", target=team, data=_BY)
    _members_sync(actor=actor, team=team, member_ids=fields.member_ids)
    return team


@transaction.atomic
def scim_group_update(*, actor: User, team: Team, fields: GroupFields) -> Team:
    fields = _clean_group(fields)
    team = Team.objects.select_for_update().get(pk=team.pk)
    if scim_groups().exclude(pk=team.pk).filter(display_name__iexact=fields.display_name).exists():
        raise Conflict(f"The group {fields.display_name!r} exists.", code="uniqueness", field="displayName")
    if (team.display_name, team.external_id) != (fields.display_name, fields.external_id):
        team.display_name, team.external_id = fields.display_name, fields.external_id
        team.save(update_fields=["display_name", "external_id", "modified_at"])
        audit_record(actor=actor, action="team.change", target=team, data=_BY)
    if _members_sync(actor=actor, team=team, member_ids=fields.member_ids):
        team.save(update_fields=["modified_at"])
    return team


@transaction.atomic
def scim_group_delete(*, actor: User, team: Team) -> None:
    team = Team.objects.select_for_update().get(pk=team.pk)
    _members_sync(actor=actor, team=team, member_ids=())
    team.scim_group = False
    team.external_id = ""
    team.save(update_fields=["scim_group", "external_id", "modified_at"])
    audit_record(actor=actor, action="team.scim_unlink", target=team, data=_BY)


def scim_member_ids(team: Team) -> list[int]:
    return list(
        Membership.objects.filter(team=team, managed_by=SCIM_MANAGER)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


def _members_sync(*, actor: User, team: Team, member_ids: tuple[int, ...]) -> bool:
    """The SCIM-made memberships of ``team`` become exactly ``member_ids``; True if any changed."""
    _name, mapped_role = _team_for(team.display_name)
    current = {m.user_id: m for m in Membership.objects.select_related("user").filter(team=team)}
    wanted = set(member_ids)
    changed = False
    users = {u.pk: u for u in User.objects.filter(pk__in=wanted)}
    for user_id in sorted(wanted):
        membership = current.get(user_id)
        who = {**_BY, "user": users[user_id].username}
        if membership is None:
            role = mapped_role or Membership.Role.MEMBER
            Membership.objects.create(team=team, user_id=user_id, role=role, managed_by=SCIM_MANAGER)
            audit_record(actor=actor, action="team.member_add", target=team, data={**who, "role": role})
            changed = True
        elif membership.managed_by != SCIM_MANAGER or (mapped_role and membership.role != mapped_role):
            before = membership.role
            membership.managed_by, membership.role = SCIM_MANAGER, mapped_role or membership.role
            membership.save(update_fields=["managed_by", "role"])
            audit_record(
                actor=actor, action="team.member_role", target=team, data={**who, "from": before, "to": membership.role}
            )
            changed = True
    for user_id, membership in current.items():
        if membership.managed_by == SCIM_MANAGER and user_id not in wanted:
            membership.delete()
            audit_record(
                actor=actor, action="team.member_remove", target=team, data={**_BY, "user": membership.user.username}
            )
            changed = True
    return changed
