"""The audit log's one entry point. Every app records its events through ``audit_record``.

Events are rows of ``accounts.AuditEvent``: append-only (no update or delete path exists in
services or the admin). Call it inside the transaction of the change it records, so the
event and the change commit or roll back together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

from accounts.models import AuditEvent, Project, User
from core.context import client_address

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

# SECURITY: keys whose values must never reach the log, whatever a caller passes in ``data``.
_SECRET_KEYS = frozenset({"password", "token", "raw", "secret", "digest", "key"})


def _clean(data: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (data or {}).items() if k.lower() not in _SECRET_KEYS}


def audit_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    target: models.Model | None = None,
    target_label: str = "",
    project: Project | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event: ``actor`` did ``action`` (``"grant.create"``, ``"token.revoke"`` …)
    on ``target`` (any model instance), optionally inside ``project``. The client's address
    comes from the request context (``core.context``), None outside a request."""
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
        ip=client_address(),
        data=_clean(data),
    )
