"""The DRF default permission class: a thin adapter over the policy (accounts/access.py).

Object-level rules stay in the ``access_*`` helpers the views call; this class only adds
what holds for every endpoint: the caller is authenticated, and a read-scoped token
may not write.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request

from accounts import access
from accounts.models import ApiToken


class TokenScopePermission(IsAuthenticated):
    message = "This token is read-only: create a token with the write scope to change anything."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        token = request.auth
        # SECURITY: enforced here, once for every endpoint; views never look at the scope.
        if isinstance(token, ApiToken):
            return access.token_allows(token.scope, request.method or "GET")
        return True
