"""The topic of a review request on live sockets (registered when the app is ready)."""

from __future__ import annotations

import re
from typing import Any

from live import topics
from live.access import NAME, Target, register_topic
from reviews.access import access_review_request


def _review_target(user: Any, match: re.Match[str]) -> Target:
    review = access_review_request(user, match[1], match[2], int(match[3]), action="review.view")
    project = review.project
    return Target(topics.review_topic(project.team.name, project.name, review.number), project.pk)


def register() -> None:
    register_topic(
        rf"^review:({NAME})/({NAME})/([1-9][0-9]{{0,8}})$",
        _review_target,
        example="review:<team>/<project>/<number>",
        order=30,
    )
