"""access_<entity>() for review requests and their comments and reviews.

# SECURITY: a missing request and one in a project the caller may not see raise the same
NotFound; PermissionDenied only when the caller sees the project but the role is too low.
A comment or review id must belong to the request named in the URL (else NotFound).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accounts import access
from accounts.access import access_project
from core.errors import NotFound
from reviews.models import Comment, Review, ReviewRequest

if TYPE_CHECKING:
    from accounts.access import AnyUser

MAX_NUMBER = 10**9


def access_review_request(
    user: AnyUser | None, team: str, project: str, number: int | str, *, action: str = "review.view"
) -> ReviewRequest:
    proj = access_project(user, team, project, action="project.view")
    try:
        value = int(number)
    except (TypeError, ValueError):
        raise NotFound("Not found.") from None
    if not 0 < value < MAX_NUMBER:
        raise NotFound("Not found.")
    request = (
        ReviewRequest.objects.select_related(
            "project__team", "repository__project__team", "candidate", "base", "author", "merged_by"
        )
        .filter(project=proj, number=value)
        .first()
    )
    if request is None:
        raise NotFound("Not found.")
    access.require(user, action, proj)
    return request


def access_comment(
    user: AnyUser | None, team: str, project: str, number: int | str, comment_id: str, *, action: str = "review.view"
) -> Comment:
    request = access_review_request(user, team, project, number, action=action)
    comment = (
        Comment.objects.select_related("author", "request").filter(pk=comment_id, request=request).first()
        if isinstance(comment_id, str) and len(comment_id) <= 32
        else None
    )
    if comment is None:
        raise NotFound("Not found.")
    return comment


def access_review(
    user: AnyUser | None, team: str, project: str, number: int | str, review_id: str, *, action: str = "review.view"
) -> Review:
    request = access_review_request(user, team, project, number, action=action)
    review = (
        Review.objects.select_related("author", "request").filter(pk=review_id, request=request).first()
        if isinstance(review_id, str) and len(review_id) <= 32
        else None
    )
    if review is None:
        raise NotFound("Not found.")
    return review
