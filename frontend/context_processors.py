from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.selectors import projects_visible_to


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The projects shown in the navigation switcher: only those the user may see."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_projects": []}
    return {"nav_projects": list(projects_visible_to(user)[:50])}
