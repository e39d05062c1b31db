from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from reviews.selectors import unread_count


def notifications(request: HttpRequest) -> dict[str, Any]:
    """The unread notification count for the navbar (one indexed COUNT per page)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"unread_notifications": 0}
    return {"unread_notifications": unread_count(user)}
