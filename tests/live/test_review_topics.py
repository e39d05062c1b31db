"""Review and notification topics over /ws/ (WebsocketCommunicator, Redis layer): who may
subscribe to ``review:<team>/<project>/<number>``, and that a comment and its mention reach
exactly the sockets that may see them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async

from accounts.models import ProjectGrant, User
from registry.models import ModelVersion
from reviews import services as review_services
from reviews.models import ReviewRequest
from tests.live.conftest import Ws, in_own_loop
from tests.live.test_consumer import subscribe
from tests.registry.conftest import make_artifact, make_run, model  # noqa: F401
from tests.reviews.conftest import register, v1, v2  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async


@pytest.fixture
def request_v2(member: User, v2: ModelVersion) -> ReviewRequest:  # noqa: F811
    rr, _ = review_services.review_request_open(
        user=member, project=v2.repository.project, model="fraud", version=v2.number, alias="production", title="v2"
    )
    return rr


@pytest.fixture
def people(owner: User, member: User, viewer: User, staff: User, outsider: User) -> dict[str, User]:
    return {"owner": owner, "member": member, "viewer": viewer, "staff": staff, "outsider": outsider}


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("owner", "subscribed"),
        ("member", "subscribed"),
        ("viewer", "subscribed"),
        ("staff", "subscribed"),
        ("outsider", "not_found"),
    ],
)
@in_own_loop
async def test_review_topic_follows_the_policy_for_each_role(
    ws: Ws,
    people: dict[str, User],
    request_v2: ReviewRequest,
    token_of: Callable[[User], str],
    role: str,
    expected: str,
) -> None:
    comm, _, _ = await ws(token=await db(token_of)(people[role]))
    topic = f"review:acme/proj/{request_v2.number}"
    answer = await subscribe(comm, topic)
    assert answer["topic"] == topic
    if expected == "subscribed":
        assert answer["type"] == "subscribed"
        assert answer["seq"] >= 0
    else:
        assert (answer["type"], answer["code"]) == ("error", "not_found")
    await comm.disconnect()


@in_own_loop
async def test_a_comment_and_its_mention_reach_exactly_who_may_see_them(
    ws: Ws,
    owner: User,
    member: User,
    viewer: User,
    outsider: User,
    request_v2: ReviewRequest,
    token_of: Callable[[User], str],
) -> None:
    topic = f"review:acme/proj/{request_v2.number}"
    viewer_ws, _, _ = await ws(token=await db(token_of)(viewer))
    outsider_ws, _, _ = await ws(token=await db(token_of)(outsider))
    member_user_ws, _, _ = await ws(token=await db(token_of)(member))
    owner_user_ws, _, _ = await ws(token=await db(token_of)(owner))
    assert (await subscribe(viewer_ws, topic))["type"] == "subscribed"
    assert (await subscribe(outsider_ws, topic))["code"] == "not_found"
    assert (await subscribe(member_user_ws, "user"))["type"] == "subscribed"
    assert (await subscribe(owner_user_ws, "user"))["type"] == "subscribed"

    await db(review_services.comment_create)(user=owner, review_request=request_v2, body="@member look <b>here</b>")

    frames = [await viewer_ws.receive_json_from(timeout=5) for _ in range(2)]
    by_event = {f["event"]: f for f in frames}
    assert set(by_event) == {"comment.created", "timeline.comment"}
    created = by_event["comment.created"]["data"]
    assert created["author"] == "owner"
    assert created["body"] == "@member look <b>here</b>"
    assert "<b>" not in created["body_html"]  # the REST shape: sanitised markdown
    assert sorted(f["seq"] for f in frames) == [frames[0]["seq"], frames[0]["seq"] + 1]

    notification = await member_user_ws.receive_json_from(timeout=5)
    assert (notification["topic"], notification["event"]) == ("user", "notification.created")
    assert notification["data"]["kind"] == "mention"
    assert notification["data"]["actor"] == "owner"
    assert await outsider_ws.receive_nothing(timeout=0.5)
    assert await owner_user_ws.receive_nothing(timeout=0.1)  # no notification of one's own comment
    for comm in (viewer_ws, outsider_ws, member_user_ws, owner_user_ws):
        await comm.disconnect()


@in_own_loop
async def test_losing_the_grant_ends_the_review_subscription(
    ws: Ws, viewer: User, request_v2: ReviewRequest, token_of: Callable[[User], str]
) -> None:
    topic = f"review:acme/proj/{request_v2.number}"
    comm, _, _ = await ws(token=await db(token_of)(viewer))
    assert (await subscribe(comm, topic))["type"] == "subscribed"
    await db(lambda: ProjectGrant.objects.filter(user=viewer).delete())()
    frame: dict[str, Any] = await comm.receive_json_from(timeout=5)
    assert (frame["type"], frame["topic"], frame["code"]) == ("error", topic, "not_found")
    await comm.disconnect()
