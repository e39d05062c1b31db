"""Live events of the reviews app, published after commit through live.publish.

Topics: ``review:<team>/<project>/<number>`` (everything on the request page) and
``user:<user id>`` (that user's notifications). ``data`` is the REST output of the object.
"""

from __future__ import annotations

from typing import Any

from core import domain_events
from live.publish import publish_on_commit
from reviews.models import Notification, ReviewRequest


def request_topic(request: ReviewRequest) -> str:
    return f"review:{request.project.team.name}/{request.project.name}/{request.number}"


def user_topic(user_id: Any) -> str:
    return f"user:{user_id}"


def request_event(request: ReviewRequest, event: str, data: dict[str, Any]) -> None:
    publish_on_commit(topic=request_topic(request), event=event, data=data)


def notification_event(notification: Notification, data: dict[str, Any]) -> None:
    publish_on_commit(topic=user_topic(notification.user_id), event="notification.created", data=data)


def domain_event(request: ReviewRequest, event_type: str, actor: str | None, **data: Any) -> None:
    """Tell the listeners above (automations) that ``request`` was opened, reviewed, merged
    or closed; inside the transaction of the change (core.domain_events)."""
    domain_events.emit(
        domain_events.DomainEvent(
            type=event_type,
            project_id=request.project_id,
            repository_id=request.repository_id,
            actor=actor,
            data={"review_request": request.id, **data},
        )
    )
