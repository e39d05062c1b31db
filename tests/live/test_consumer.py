"""The /ws/ endpoint through the real ASGI stack (origin check, session and token auth, the
consumer) with WebsocketCommunicator, on the Redis channel layer and event log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async

from accounts.models import Project, ProjectGrant, User
from accounts.services import token_revoke, user_set_active
from experiments import services
from experiments.models import Run
from live.eventlog import event_log
from live.publish import publish
from tests.live.conftest import Ws, in_own_loop

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async


def log_points(run: Run, *steps: int) -> None:
    services.run_log(
        run=run, batch_id=None, metric_rows=[{"key": "loss", "step": s, "value": 1.0 / (s + 1)} for s in steps]
    )


async def subscribe(comm: Any, topic: str, after: int | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "subscribe", "topic": topic}
    if after is not None:
        frame["after"] = after
    await comm.send_json_to(frame)
    return await comm.receive_json_from(timeout=5)  # type: ignore[no-any-return]


async def closed_with(comm: Any) -> int:
    while True:
        output = await comm.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return int(output.get("code", 1000))


# --- who may connect ------------------------------------------------------------------------------


@in_own_loop
async def test_socket_without_credentials_is_closed(ws: Ws) -> None:
    comm, connected, _ = await ws()
    assert connected  # it may still authenticate with a first frame...
    await comm.send_json_to({"type": "subscribe", "topic": "user"})
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error"
    assert error["code"] == "unauthenticated"
    assert await closed_with(comm) == 4401  # ...but anything else closes it


@in_own_loop
async def test_socket_that_never_authenticates_is_closed_after_the_deadline(ws: Ws, settings: Any) -> None:
    settings.ASSAY_LIVE_AUTH_TIMEOUT = 0.3
    comm, connected, _ = await ws()
    assert connected
    assert (await comm.receive_json_from(timeout=5))["code"] == "unauthenticated"
    assert await closed_with(comm) == 4401


@in_own_loop
async def test_wrong_token_is_refused_at_the_handshake(ws: Ws) -> None:
    _, connected, _ = await ws(token="asy_not-a-real-token")
    assert not connected
    _, connected, _ = await ws(authorization="Bearer")  # malformed
    assert not connected


@in_own_loop
async def test_foreign_origin_is_refused(ws: Ws, owner: User, session_cookie: Callable[[User], str]) -> None:
    cookie = await db(session_cookie)(owner)
    _, connected, _ = await ws(cookie=cookie, origin="https://evil.example")
    assert not connected
    _, connected, _ = await ws(cookie=cookie, origin="null")
    assert not connected


@in_own_loop
async def test_session_with_allowed_origin_subscribes(
    ws: Ws, owner: User, session_cookie: Callable[[User], str]
) -> None:
    comm, connected, _ = await ws(cookie=await db(session_cookie)(owner))
    assert connected
    assert (await subscribe(comm, "user")) == {"type": "subscribed", "topic": "user", "seq": 0}
    await comm.disconnect()


@in_own_loop
async def test_session_cookie_without_origin_is_ignored(
    ws: Ws, owner: User, session_cookie: Callable[[User], str]
) -> None:
    # No Origin: not a browser, so no cookie either; such a client must bring a token.
    comm, connected, _ = await ws(cookie=await db(session_cookie)(owner), origin=None)
    assert connected
    await comm.send_json_to({"type": "subscribe", "topic": "user"})
    assert (await comm.receive_json_from(timeout=5))["code"] == "unauthenticated"
    assert await closed_with(comm) == 4401


@in_own_loop
async def test_token_in_header_or_first_frame_authenticates(
    ws: Ws, owner: User, token_of: Callable[[User], str]
) -> None:
    token = await db(token_of)(owner)
    comm, connected, _ = await ws(token=token, origin=None)
    assert connected
    assert (await subscribe(comm, "user"))["type"] == "subscribed"
    await comm.disconnect()

    comm, connected, _ = await ws(origin=None)
    await comm.send_json_to({"type": "auth", "token": token})
    assert await comm.receive_json_from(timeout=5) == {"type": "authenticated", "user": "owner"}
    assert (await subscribe(comm, "user"))["type"] == "subscribed"
    await comm.disconnect()


# --- subscriptions ask the policy ----------------------------------------------------------------------

ROLES_THAT_SEE = ["owner", "member", "viewer", "staff"]


@pytest.fixture
def people(owner: User, member: User, viewer: User, staff: User, outsider: User) -> dict[str, User]:
    return {"owner": owner, "member": member, "viewer": viewer, "staff": staff, "outsider": outsider}


@pytest.mark.parametrize(
    ("role", "expected"), [*[(r, "subscribed") for r in ROLES_THAT_SEE], ("outsider", "not_found")]
)
@in_own_loop
async def test_run_and_project_topics_follow_the_policy(
    ws: Ws, people: dict[str, User], run: Run, token_of: Callable[[User], str], role: str, expected: str
) -> None:
    user = people[role]
    comm, _, _ = await ws(token=await db(token_of)(user))
    for topic in (f"run:{run.id}", "project:acme/proj"):
        answer = await subscribe(comm, topic)
        assert answer["topic"] == topic
        if expected == "subscribed":
            assert answer == {"type": "subscribed", "topic": topic, "seq": 0}
        else:
            assert answer["type"] == "error"
            assert answer["code"] == "not_found"  # as the API's 404: the outsider learns nothing
    await comm.disconnect()


@in_own_loop
async def test_missing_objects_and_other_users_are_not_found(
    ws: Ws, owner: User, member: User, run: Run, token_of: Callable[[User], str]
) -> None:
    comm, _, _ = await ws(token=await db(token_of)(owner))
    for topic in (
        "run:0123456789abcdef0123456789abcdef",
        "project:acme/nope",
        f"user:{member.pk}",
        "review:acme/proj/1",
    ):
        answer = await subscribe(comm, topic)
        assert (answer["type"], answer["code"], answer["topic"]) == ("error", "not_found", topic)
    assert (await subscribe(comm, f"user:{owner.pk}"))["type"] == "subscribed"
    await comm.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "subscribe", "topic": "bogus:1"},
        {"type": "subscribe", "topic": ""},
        {"type": "subscribe", "topic": 12},
        {"type": "subscribe", "topic": "user", "after": -1},
        {"type": "subscribe", "topic": "user", "after": True},
        {"type": "subscribe", "topic": "user", "after": "3"},
        {"type": "unsubscribe", "topic": "user"},
        {"type": "shout"},
        {"no": "type"},
        [1, 2],
    ],
)
@in_own_loop
async def test_malformed_frames_get_invalid(ws: Ws, owner: User, token_of: Callable[[User], str], frame: Any) -> None:
    comm, _, _ = await ws(token=await db(token_of)(owner))
    await comm.send_json_to(frame)
    answer = await comm.receive_json_from(timeout=5)
    assert answer["type"] == "error"
    assert answer["code"] == "invalid"
    assert answer["message"]
    await comm.send_to(text_data="{not json")
    assert (await comm.receive_json_from(timeout=5))["code"] == "invalid"
    # the socket stays usable after a bad frame
    assert (await subscribe(comm, "user"))["type"] == "subscribed"
    await comm.disconnect()


@in_own_loop
async def test_oversize_frame_closes_the_socket(ws: Ws, owner: User, token_of: Callable[[User], str]) -> None:
    comm, _, _ = await ws(token=await db(token_of)(owner))
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "topic": "user", "pad": "x" * 5000}))
    assert (await comm.receive_json_from(timeout=5))["code"] == "too_large"
    assert await closed_with(comm) == 1009


@in_own_loop
async def test_frame_flood_closes_the_socket(ws: Ws, owner: User, token_of: Callable[[User], str]) -> None:
    comm, _, _ = await ws(token=await db(token_of)(owner))
    for _ in range(60):
        await comm.send_json_to({"type": "ping"})
    codes = []
    while True:
        output = await comm.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            break
        codes.append(json.loads(output["text"]).get("code"))
    assert output["code"] == 1008
    assert codes[-1] == "rate_limited"
    # The burst (40) was answered (pong), the rest refused; on a loaded machine the bucket
    # refills (20/s) while the 60 frames are being read, so a few more may pass.
    assert 40 <= codes.count(None) <= 50


# --- events reach exactly those who may see them ---------------------------------------------------------


@in_own_loop
async def test_events_reach_exactly_the_subscribers_who_may_see_them(
    ws: Ws, owner: User, viewer: User, outsider: User, run: Run, token_of: Callable[[User], str]
) -> None:
    owner_ws, _, _ = await ws(token=await db(token_of)(owner))
    viewer_ws, _, _ = await ws(token=await db(token_of)(viewer))
    outsider_ws, _, _ = await ws(token=await db(token_of)(outsider))
    other_ws, _, _ = await ws(token=await db(token_of)(owner))  # subscribed to something else
    assert (await subscribe(owner_ws, f"run:{run.id}"))["type"] == "subscribed"
    assert (await subscribe(viewer_ws, f"run:{run.id}"))["type"] == "subscribed"
    assert (await subscribe(outsider_ws, f"run:{run.id}"))["code"] == "not_found"
    assert (await subscribe(other_ws, "user"))["type"] == "subscribed"

    await db(log_points)(run, 0, 1, 2)

    for comm in (owner_ws, viewer_ws):
        event = await comm.receive_json_from(timeout=5)
        assert event["type"] == "event"
        assert event["topic"] == f"run:{run.id}"
        assert event["seq"] == 1
        assert event["event"] == "metrics"
        assert event["data"]["points"] == {"loss": {"steps": [0, 1, 2], "values": [1.0, 0.5, 1 / 3]}}
        assert event["data"]["summaries"]["loss"]["count"] == 3
    assert await outsider_ws.receive_nothing(timeout=0.5)
    assert await other_ws.receive_nothing(timeout=0.1)
    for comm in (owner_ws, viewer_ws, outsider_ws, other_ws):
        await comm.disconnect()


@in_own_loop
async def test_run_status_reaches_run_and_project_subscribers(
    ws: Ws, owner: User, member: User, run: Run, token_of: Callable[[User], str]
) -> None:
    run_ws, _, _ = await ws(token=await db(token_of)(owner))
    project_ws, _, _ = await ws(token=await db(token_of)(member))
    await subscribe(run_ws, f"run:{run.id}")
    await subscribe(project_ws, "project:acme/proj")

    await db(services.run_update)(run=run, status="finished")

    on_run = await run_ws.receive_json_from(timeout=5)
    on_project = await project_ws.receive_json_from(timeout=5)
    assert on_run["event"] == on_project["event"] == "run.updated"
    assert on_run["data"]["status"] == on_project["data"]["status"] == "finished"
    assert on_run["data"]["id"] == run.id
    # a rename alone is news for the run page, not for the project's list of statuses
    await db(services.run_update)(run=run, name="renamed")
    assert (await run_ws.receive_json_from(timeout=5))["data"]["name"] == "renamed"
    assert await project_ws.receive_nothing(timeout=0.5)
    await run_ws.disconnect()
    await project_ws.disconnect()


@in_own_loop
async def test_unsubscribe_stops_delivery(ws: Ws, owner: User, run: Run, token_of: Callable[[User], str]) -> None:
    comm, _, _ = await ws(token=await db(token_of)(owner))
    await subscribe(comm, f"run:{run.id}")
    await comm.send_json_to({"type": "unsubscribe", "topic": f"run:{run.id}"})
    assert await comm.receive_json_from(timeout=5) == {"type": "unsubscribed", "topic": f"run:{run.id}"}
    await db(log_points)(run, 0)
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


# --- losing access ends the subscription -----------------------------------------------------------------


@in_own_loop
async def test_revoked_grant_ends_the_subscription_within_seconds(
    ws: Ws, viewer: User, run: Run, project: Project, token_of: Callable[[User], str]
) -> None:
    comm, _, _ = await ws(token=await db(token_of)(viewer))
    await subscribe(comm, f"run:{run.id}")
    await subscribe(comm, "user")

    await db(lambda: ProjectGrant.objects.filter(project=project, user=viewer).delete())()

    error = await comm.receive_json_from(timeout=3)
    assert (error["type"], error["topic"], error["code"]) == ("error", f"run:{run.id}", "not_found")
    await db(log_points)(run, 0)
    assert await comm.receive_nothing(timeout=0.5)  # no data after the error
    # the rest of the socket lives on
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    await comm.disconnect()


@in_own_loop
async def test_deactivated_user_is_disconnected(
    ws: Ws, member: User, staff: User, run: Run, token_of: Callable[[User], str]
) -> None:
    comm, _, _ = await ws(token=await db(token_of)(member))
    await subscribe(comm, f"run:{run.id}")

    await db(user_set_active)(user=member, active=False, actor=staff)

    assert (await comm.receive_json_from(timeout=3))["code"] == "unauthenticated"
    assert await closed_with(comm) == 4401


@in_own_loop
async def test_revoking_a_token_closes_its_sockets_at_once(ws: Ws, member: User, run: Run, settings: Any) -> None:
    from accounts.services import token_create

    settings.ASSAY_LIVE_RECHECK_SECONDS = 600  # the periodic re-check cannot be what closes it
    revoked = await db(token_create)(user=member, name="laptop")
    kept = await db(token_create)(user=member, name="ci")
    comm, _, _ = await ws(token=revoked.raw)
    other, _, _ = await ws(token=kept.raw)
    await subscribe(comm, f"run:{run.id}")
    await subscribe(other, f"run:{run.id}")

    await db(token_revoke)(token=revoked.token, actor=member)

    assert (await comm.receive_json_from(timeout=3))["code"] == "unauthenticated"
    assert await closed_with(comm) == 4401
    # the same user's socket on another token is re-checked, finds its token valid, lives on
    await db(log_points)(run, 0)
    event = await other.receive_json_from(timeout=3)
    assert (event["type"], event["topic"]) == ("event", f"run:{run.id}")
    await other.disconnect()


@in_own_loop
async def test_an_expired_token_is_caught_by_the_periodic_recheck(
    ws: Ws, member: User, run: Run, settings: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import ApiToken
    from accounts.services import token_create

    settings.ASSAY_LIVE_RECHECK_SECONDS = 1
    issued = await db(token_create)(user=member, name="live", expires_at=timezone.now() + timedelta(days=1))
    comm, _, _ = await ws(token=issued.raw)
    await subscribe(comm, f"run:{run.id}")

    # expiry is the passing of time, not a write: no broadcast, only the periodic re-check
    past = timezone.now() - timedelta(seconds=1)
    await db(lambda: ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=past))()

    assert (await comm.receive_json_from(timeout=4))["code"] == "unauthenticated"
    assert await closed_with(comm) == 4401


@in_own_loop
async def test_signed_out_session_is_disconnected(
    ws: Ws, owner: User, run: Run, settings: Any, session_cookie: Callable[[User], str]
) -> None:
    from django.contrib.sessions.models import Session

    settings.ASSAY_LIVE_RECHECK_SECONDS = 1
    comm, _, _ = await ws(cookie=await db(session_cookie)(owner))
    await subscribe(comm, f"run:{run.id}")

    await db(lambda: Session.objects.all().delete())()

    assert (await comm.receive_json_from(timeout=4))["code"] == "unauthenticated"
    assert await closed_with(comm) == 4401


# --- nothing missed -----------------------------------------------------------------------------------------


@in_own_loop
async def test_reconnect_with_last_seq_receives_exactly_the_missed_three(
    ws: Ws, owner: User, run: Run, token_of: Callable[[User], str]
) -> None:
    token = await db(token_of)(owner)
    topic = f"run:{run.id}"
    comm, _, _ = await ws(token=token)
    await subscribe(comm, topic)
    await db(log_points)(run, 0)
    last_seen = (await comm.receive_json_from(timeout=5))["seq"]
    await comm.disconnect()

    for step in (1, 2, 3):
        await db(log_points)(run, step)

    comm, _, _ = await ws(token=token)
    assert await subscribe(comm, topic, after=last_seen) == {"type": "subscribed", "topic": topic, "seq": last_seen + 3}
    missed = [await comm.receive_json_from(timeout=5) for _ in range(3)]
    assert [e["seq"] for e in missed] == [last_seen + 1, last_seen + 2, last_seen + 3]
    assert [e["data"]["points"]["loss"]["steps"] for e in missed] == [[1], [2], [3]]
    assert await comm.receive_nothing(timeout=0.5)
    # and live delivery continues after the catch-up, in order
    await db(log_points)(run, 4)
    assert (await comm.receive_json_from(timeout=5))["seq"] == last_seen + 4
    await comm.disconnect()


@in_own_loop
async def test_reconnect_beyond_the_window_is_told_to_reload(
    ws: Ws, owner: User, run: Run, token_of: Callable[[User], str], settings: Any
) -> None:
    settings.ASSAY_LIVE_LOG_SIZE = 2
    token = await db(token_of)(owner)
    topic = f"run:{run.id}"
    for step in (1, 2, 3):
        await db(log_points)(run, step)
    comm, _, _ = await ws(token=token)
    assert (await subscribe(comm, topic, after=0))["seq"] == 3
    assert await comm.receive_json_from(timeout=5) == {"type": "reset", "topic": topic, "seq": 3}
    assert await comm.receive_nothing(timeout=0.3)
    # a number from the future (the log expired and restarted) is also a reset
    await comm.send_json_to({"type": "subscribe", "topic": topic, "after": 99})
    assert (await comm.receive_json_from(timeout=5))["type"] == "subscribed"
    assert await comm.receive_json_from(timeout=5) == {"type": "reset", "topic": topic, "seq": 3}
    await comm.disconnect()


@in_own_loop
async def test_an_event_lost_on_the_way_is_filled_from_the_log(
    ws: Ws, owner: User, run: Run, token_of: Callable[[User], str]
) -> None:
    topic = f"run:{run.id}"
    comm, _, _ = await ws(token=await db(token_of)(owner))
    await subscribe(comm, topic)
    # logged but never sent (as if the channel layer dropped it), then a normal one
    await asyncio.to_thread(event_log().append, topic, "note", '{"n": 1}')
    await asyncio.to_thread(publish, topic=topic, event="note", data={"n": 2})
    first = await comm.receive_json_from(timeout=5)
    second = await comm.receive_json_from(timeout=5)
    assert [(first["seq"], first["data"]), (second["seq"], second["data"])] == [(1, {"n": 1}), (2, {"n": 2})]
    await comm.disconnect()


@in_own_loop
async def test_open_sockets_are_counted(ws: Ws, owner: User, token_of: Callable[[User], str]) -> None:
    from core.observability import WEBSOCKETS_OPEN

    before = WEBSOCKETS_OPEN._value.get()
    comm, _, _ = await ws(token=await db(token_of)(owner))
    assert WEBSOCKETS_OPEN._value.get() == before + 1
    await comm.disconnect()
    await asyncio.sleep(0.05)
    assert WEBSOCKETS_OPEN._value.get() == before
