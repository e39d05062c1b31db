"""Small helpers every page module uses."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.models import User


def request_user(request: HttpRequest) -> User:
    """The signed-in user of a view behind ``login_required``."""
    assert isinstance(request.user, User)  # login_required ran first
    return request.user
