"""What every page's navbar shows, read through the selectors."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.selectors import projects_visible_to
from reviews.selectors import unread_count


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The projects shown in the navigation switcher: only those the user may see."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_projects": []}
    return {"nav_projects": list(projects_visible_to(user)[:50])}


def notifications(request: HttpRequest) -> dict[str, Any]:
    """The unread notification count for the navbar (one indexed COUNT per page)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"unread_notifications": 0}
    return {"unread_notifications": unread_count(user)}
