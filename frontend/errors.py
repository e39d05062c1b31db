"""Domain errors on pages, in one place, on top of ``core.pages``.

A page answers a refusal in one of two ways:

- ``policy_errors()``: the refusal is the page's answer. NotFound is Django's 404 and
  Forbidden its 403 (``core.pages.raise_for_page``); any other domain error goes on, to the
  view's own ``except`` or to ``core.pages.DomainErrorMiddleware`` (400/409).
- ``form_errors(request, what)``: a refused change is a message on the page the form came
  from (the view then redirects or renders the form again); NotFound and Forbidden are
  still 404 and 403.

# SECURITY: a missing object and one the user may not see are both NotFound, hence both 404,
so a page never tells an outsider that a project exists; 403 only when the user can see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from django.contrib import messages
from django.http import HttpRequest

from core.errors import DomainError
from core.pages import raise_for_page


@contextmanager
def policy_errors() -> Iterator[None]:
    """NotFound → 404, Forbidden → 403; any other domain error is raised again."""
    try:
        yield
    except DomainError as exc:
        raise_for_page(exc)
        raise


def form_errors(
    request: HttpRequest, what: str = "", *, with_code: bool = False, with_field: bool = False
) -> FormErrors:
    """A refused change becomes an error message (``"<what>: <message>"``, plus ``(<code>)``
    when asked, and the error's field when asked and the message does not name it already)
    and the rest of the ``with`` block is skipped. NotFound → 404, Forbidden → 403. The
    error is kept in ``.error`` so the view can mark the field and answer 400."""
    return FormErrors(request, what, with_code, with_field)


class FormErrors:
    """The context manager of ``form_errors``. A class, not ``@contextmanager``, so that its
    ``__exit__`` says it may swallow the error: type checkers then know that the code after
    the ``with`` block runs when the block was cut short."""

    def __init__(self, request: HttpRequest, what: str, with_code: bool, with_field: bool = False) -> None:
        self.request, self.what, self.with_code, self.with_field = request, what, with_code, with_field
        self.error: DomainError | None = None

    @property
    def field(self) -> str:
        """The field the refusal names; "" when it names none or nothing was refused."""
        return (self.error.field or "") if self.error is not None else ""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        if not isinstance(exc, DomainError):
            return False
        raise_for_page(exc)
        self.error = exc
        message = exc.message
        if self.with_field and exc.field and exc.field not in message:
            message = f"{exc.field}: {message}"
        text = f"{self.what}: {message}" if self.what else message
        messages.error(self.request, f"{text} ({exc.code})" if self.with_code else text)
        return True
