"""access_topic(): may this user subscribe to this topic? The socket's side of the policy.

``live`` knows no domain: each app registers its topics here when it is ready (``run:<id>``
and ``project:<team>/<project>`` in ``experiments/live.py``, ``review:…`` in
``reviews/live.py``, ``user`` in ``accounts/live.py``), each with a resolver that asks the
app's own access function for the view action, as a GET of the object would. Who is on the
other end of a socket (a token, a browser session) is answered by the identity that
``accounts/live.py`` registers.

# SECURITY: a topic naming something missing or invisible raises NotFound (the client gets
``not_found``, as the API answers 404), Forbidden only when the object is visible but the
role too low. Nothing here trusts the topic string beyond parsing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

MAX_TOPIC_LENGTH = 300
NAME = r"[A-Za-z0-9_.-]{1,64}"


class InvalidTopic(ValueError):
    """Not a topic at all (answered ``invalid``, unlike an unknown object: ``not_found``)."""


@dataclass(frozen=True)
class Target:
    """A topic the caller may follow: ``topic`` is the publishers' (canonical) name."""

    topic: str
    project_id: str | None


# (user, the topic's match) -> Target, raising NotFound / Forbidden.
Resolver = Callable[[Any, "re.Match[str]"], Target]


@dataclass(frozen=True)
class _Kind:
    pattern: re.Pattern[str]
    resolve: Resolver
    example: str
    order: int


_KINDS: dict[str, _Kind] = {}


def register_topic(pattern: str, resolve: Resolver, *, example: str, order: int) -> None:
    """Let sockets subscribe to topics matching ``pattern`` (anchored); ``example`` is shown
    in the error for a string that matches no kind, in ``order``."""
    _KINDS[example] = _Kind(re.compile(pattern), resolve, example, order)


def access_topic(user: Any, topic: str) -> Target:
    """Parse ``topic`` and check that ``user`` may see what it names. Raises InvalidTopic,
    NotFound or Forbidden."""
    if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC_LENGTH:
        raise InvalidTopic(f"topic must be a string of 1-{MAX_TOPIC_LENGTH} characters.")
    kinds = sorted(_KINDS.values(), key=lambda kind: kind.order)
    for kind in kinds:
        if match := kind.pattern.match(topic):
            return kind.resolve(user, match)
    examples = [kind.example for kind in kinds]
    raise InvalidTopic(f"topic must be {', '.join(examples[:-1])} or {examples[-1]}.")


# --- who is on the other end: still the same, still allowed? ------------------------------------


class Identity(Protocol):
    """How sockets learn who their caller is, and whether that still holds."""

    def authenticate_token(self, raw: str) -> tuple[str, Any] | None:
        """(token id, user) for a valid raw API token, else None."""

    def token_user(self, token_id: str) -> Any | None:
        """The user of a token that is still valid (not revoked or expired, user active)."""

    def session_user(self, session_key: str | None, user_id: int) -> Any | None:
        """The user of a browser session that still holds the same sign-in."""


_identity: list[Identity] = []


def register_identity(identity: Identity) -> None:
    _identity[:] = [identity]


def identity() -> Identity:
    if not _identity:
        raise RuntimeError("No identity registered for live sockets (accounts/live.py registers it).")
    return _identity[0]
