"""The request page offers a dismissal only where reviews.policy allows one: a standing
approval or request for changes, to a maintainer (the template holds no rule of its own)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from core.errors import Conflict
from registry.models import ModelVersion
from reviews import services
from reviews.models import Comment, Review

pytestmark = pytest.mark.django_db


def _page(user: User, number: int) -> str:
    web = Client()
    web.force_login(user)
    response = web.get(f"/acme/proj/reviews/{number}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_maintainer_may_dismiss_standing_decisive_reviews_only(
    member: User, maintainer: User, maint2: User, v2: ModelVersion
) -> None:
    rr, _ = services.review_request_open(
        user=member, project=v2.repository.project, model="fraud", version=v2.number, alias="production", title="v2"
    )
    approval, _ = services.review_submit(
        user=maintainer, review_request=rr, verdict="approve", body="", version_hash=v2.content_hash
    )
    remark, _ = services.review_submit(
        user=maint2, review_request=rr, verdict="comment", body="a remark", version_hash=v2.content_hash
    )

    as_maintainer = _page(maint2, rr.number)
    assert f'id="dismiss-{approval.id}"' in as_maintainer
    assert f'id="dismiss-{remark.id}"' not in as_maintainer  # a comment is not dismissable
    assert 'id="dismiss-' not in _page(member, rr.number)  # a writer may dismiss nothing

    services.review_dismiss(user=maint2, review=approval, reason="stale")
    assert 'id="dismiss-' not in _page(maint2, rr.number)  # already dismissed


def test_pushing_the_version_the_alias_holds_is_refused_and_not_offered(
    member: User, v1: ModelVersion, v2: ModelVersion, register: Any
) -> None:
    """Issue 16, bug 1: "Push candidate" offered v1 (what production holds) and made a
    request "move production from v1 to v1"; the policy refuses it, naming the field."""
    v3 = register()
    rr, _ = services.review_request_open(
        user=member, project=v2.repository.project, model="fraud", version=v2.number, alias="production", title="v2"
    )
    page = _page(member, rr.number)
    options = re.findall(r'<option value="(\d+)">', page.split('data-testid="push-form"')[1].split("</form>")[0])
    assert options == [str(v3.number)]  # neither the candidate (v2) nor what the alias holds (v1)

    with pytest.raises(Conflict) as refused:
        services.review_request_update(user=member, review_request=rr, version=v1.number)
    assert (refused.value.code, refused.value.field) == ("nothing_to_merge", "version")
    assert "already points at v1" in refused.value.message
    rr.refresh_from_db()
    assert rr.candidate_id == v2.id

    response = _client(member).post(f"/acme/proj/reviews/{rr.number}/update/", {"version": str(v1.number)})
    assert response.status_code in (302, 400)
    rr.refresh_from_db()
    assert rr.candidate_id == v2.id  # the page's form refuses it too


def _client(user: User) -> Client:
    web = Client()
    web.force_login(user)
    return web


def test_the_comment_button_posts_a_comment_to_the_conversation(member: User, v2: ModelVersion) -> None:
    """Issue 16, bug 2: "Comment" filed a review (verdict comment); the conversation's count
    stayed 0. The button posts to the comment endpoint (the form's other buttons review)."""
    rr, _ = services.review_request_open(
        user=member, project=v2.repository.project, model="fraud", version=v2.number, alias="production", title="v2"
    )
    page = _page(member, rr.number)
    form = page.split('data-testid="review-form"')[1].split("</form>")[0]
    button = re.search(r"<button[^>]*>Comment</button>", form)
    assert button is not None
    assert f'formaction="/acme/proj/reviews/{rr.number}/comment/"' in button.group(0)
    assert 'name="verdict"' not in button.group(0)

    # What the browser sends for that button: the form's fields, to the button's formaction.
    web = _client(member)
    response = web.post(
        f"/acme/proj/reviews/{rr.number}/comment/", {"version_hash": v2.content_hash, "body": "a question"}
    )
    assert response.status_code == 302
    assert list(Comment.objects.filter(request=rr).values_list("body", flat=True)) == ["a question"]
    assert not Review.objects.filter(request=rr).exists()
    assert re.search(r'data-testid="tab-conversation">Conversation <span[^>]*>1</span>', _page(member, rr.number))
