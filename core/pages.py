"""Domain errors on pages, in one place. A page that lets one through gets Django's 404 or
403 page for ``NotFound`` / ``Forbidden`` (so a page never tells an outsider that an
object exists) and a short 400/409 answer for the rest; pages that show a refusal as a
message on the form catch ``DomainError`` and call ``raise_for_page`` first."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase

from core.errors import Conflict, DomainError, Forbidden, NotFound


def raise_for_page(exc: DomainError) -> None:
    """Raise Django's 404 for NotFound and 403 for Forbidden; return for any other error."""
    if isinstance(exc, NotFound):
        raise Http404(exc.message) from None
    if isinstance(exc, Forbidden):
        raise PermissionDenied(exc.message) from None


class DomainErrorMiddleware:
    """Maps a domain error that escaped a page view (API views answer their own)."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponseBase | None:
        if not isinstance(exc, DomainError):
            return None
        raise_for_page(exc)
        return HttpResponse(exc.message, status=409 if isinstance(exc, Conflict) else 400, content_type="text/plain")
