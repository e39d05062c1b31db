"""The audit log's one entry point. Every app records its events through ``audit_record``.

Events are rows of ``accounts.AuditEvent``: append-only (no update or delete path exists in
services or the admin). Call it inside the transaction of the change it records, so the
event and the change commit or roll back together.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from django.db import models

from accounts.models import AuditEvent, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpRequest
    from rest_framework.request import Request

    from experiments.models import Project

# SECURITY: keys whose values must never reach the log, whatever a caller passes in ``data``.
_SECRET_KEYS = frozenset({"password", "token", "raw", "secret", "digest", "key"})


def client_ip(request: HttpRequest | Request | None) -> str | None:
    """The caller's address as the server saw it (REMOTE_ADDR). A proxy in front sets it
    through its own means (e.g. uvicorn's --forwarded-allow-ips); X-Forwarded-For is not
    trusted here because any client can send it."""
    if request is None:
        return None
    raw = request.META.get("REMOTE_ADDR") or ""
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


def _clean(data: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (data or {}).items() if k.lower() not in _SECRET_KEYS}


def audit_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    target: models.Model | None = None,
    target_label: str = "",
    project: Project | None = None,
    request: HttpRequest | Request | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event: ``actor`` did ``action`` (``"grant.create"``, ``"token.revoke"`` …)
    on ``target`` (any model instance), optionally inside ``project``."""
    real_actor = actor if isinstance(actor, User) else None
    return AuditEvent.objects.create(
        actor=real_actor,
        actor_label=real_actor.username if real_actor is not None else "",
        action=action[:64],
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=(target_label or (str(target) if target is not None else ""))[:200],
        project=project,
        project_label=project.path if project is not None else "",
        ip=client_ip(request),
        data=_clean(data),
    )
