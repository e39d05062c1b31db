from __future__ import annotations

from typing import Any

from django import template

from accounts.adapters import AccountAdapter

register = template.Library()


@register.simple_tag(takes_context=True)
def signup_open(context: dict[str, Any]) -> bool:
    """Whether the sign-up link may be offered (ASSAY_SIGNUP and a pending invitation)."""
    request = context.get("request")
    return request is not None and AccountAdapter(request).is_open_for_signup(request)
