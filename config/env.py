"""Typed readers of the environment: the only place settings read ``os.environ``.

Each helper fails fast with ``ImproperlyConfigured`` naming the variable, so a typo in a
deployment stops the process at start instead of surfacing as odd behaviour later.
The embedded default needs no variable at all.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: list[str]) -> str:
    value = os.environ.get(name, default).strip().lower() or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_json(name: str, default: Any) -> Any:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be JSON: {exc}") from None


OIDC_KEYS = {"id", "name", "server_url", "client_id", "secret"}


def oidc_apps(providers: Any) -> list[dict[str, Any]]:
    """``ASSAY_OIDC_PROVIDERS``: a JSON list of {id, name, server_url, client_id, secret}
    → django-allauth's ``openid_connect`` APPS (one login button per provider)."""
    if not isinstance(providers, list):
        raise ImproperlyConfigured("ASSAY_OIDC_PROVIDERS must be a JSON list of providers")
    apps: list[dict[str, Any]] = []
    for index, provider in enumerate(providers):
        if not isinstance(provider, dict) or not {"id", "server_url", "client_id"} <= set(provider):
            raise ImproperlyConfigured(
                f"ASSAY_OIDC_PROVIDERS[{index}] needs id, server_url and client_id (and name, secret)"
            )
        unknown = set(provider) - OIDC_KEYS
        if unknown:
            raise ImproperlyConfigured(f"ASSAY_OIDC_PROVIDERS[{index}] has unknown keys: {', '.join(sorted(unknown))}")
        if not str(provider["id"]).replace("-", "").isalnum():
            raise ImproperlyConfigured(f"ASSAY_OIDC_PROVIDERS[{index}].id must be letters, digits and '-'")
        if str(provider["id"]).lower() == "scim":
            # Memberships carry their manager's name; "scim" is SCIM provisioning's.
            raise ImproperlyConfigured(f"ASSAY_OIDC_PROVIDERS[{index}].id 'scim' is reserved")
        apps.append(
            {
                "provider_id": str(provider["id"]),
                "name": str(provider.get("name") or provider["id"]),
                "client_id": str(provider["client_id"]),
                "secret": str(provider.get("secret", "")),
                # Authorization code flow with PKCE (S256), whatever the provider requires.
                "settings": {"server_url": str(provider["server_url"]), "oauth_pkce_enabled": True},
            }
        )
    return apps


TEAM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
TEAM_ROLES = ("owner", "member")


def oidc_group_map(raw: str) -> dict[str, tuple[str, str]]:
    """``ASSAY_OIDC_GROUP_MAP``: ``group=team:role`` entries separated by commas
    (``ml-platform=ml:owner,data=ds:member``) → {group: (team, role)}. Role is ``owner``
    or ``member``; a group maps to one team (map several groups to reach several teams)."""
    mapping: dict[str, tuple[str, str]] = {}
    for index, entry in enumerate(part.strip() for part in raw.split(",")):
        if not entry:
            continue
        where = f"ASSAY_OIDC_GROUP_MAP entry {index + 1} ({entry!r})"
        group, sep, target = entry.partition("=")
        team, sep2, role = target.partition(":")
        group, team, role = group.strip(), team.strip().lower(), role.strip().lower()
        if not sep or not sep2 or not group:
            raise ImproperlyConfigured(f"{where} must be group=team:role, e.g. ml-platform=ml:owner")
        if not TEAM_NAME.match(team):
            raise ImproperlyConfigured(f"{where}: {team!r} is not a team name (lowercase letters, digits, '-', '_')")
        if role not in TEAM_ROLES:
            raise ImproperlyConfigured(f"{where}: role must be owner or member, not {role!r}")
        if group in mapping:
            raise ImproperlyConfigured(f"{where}: group {group!r} is mapped twice")
        mapping[group] = (team, role)
    return mapping


def oidc_origins(apps: list[dict[str, Any]]) -> list[str]:
    """The origins of the configured providers: the sign-in form posts to Assay, which
    redirects the browser to the provider, so the CSP's ``form-action`` must allow them."""
    origins: list[str] = []
    for app in apps:
        url = urlsplit(str(app.get("settings", {}).get("server_url", "")))
        if url.scheme in ("http", "https") and url.netloc and f"{url.scheme}://{url.netloc}" not in origins:
            origins.append(f"{url.scheme}://{url.netloc}")
    return origins


DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def sso_required_domains(items: list[str]) -> list[str]:
    """``ASSAY_SSO_REQUIRED_DOMAINS``: e-mail domains whose users must sign in through an
    OpenID Connect provider (``corp.example,example.org``), lowercased; ``*`` for everyone."""
    domains: list[str] = []
    for item in items:
        domain = item.strip().lower().lstrip("@")
        if domain != "*" and not DOMAIN.match(domain):
            raise ImproperlyConfigured(f"ASSAY_SSO_REQUIRED_DOMAINS: {item!r} is not an e-mail domain (or '*')")
        domains.append(domain)
    return domains
