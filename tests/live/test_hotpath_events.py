"""Log calls served by the fast path (experiments/hotpath.py) publish their live events after
the answer: numbered in order, each once, and readable from the event log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator

from accounts.models import User
from experiments.models import Run
from live.eventlog import event_log
from tests.live.conftest import Ws, in_own_loop
from tests.live.test_consumer import subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@in_own_loop
async def test_fast_path_log_calls_reach_subscribers_in_order(
    ws: Ws, owner: User, run: Run, token_of: Callable[[User], str]
) -> None:
    from config.asgi import application

    token = await database_sync_to_async(token_of)(owner)
    comm, connected, _ = await ws(token=token)
    assert connected
    assert (await subscribe(comm, f"run:{run.id}"))["type"] == "subscribed"

    for step in range(5):
        body = orjson.dumps({"batch_id": f"b{step}", "metrics": [{"key": "loss", "step": step, "value": step / 10}]})
        headers = [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ]
        call = HttpCommunicator(application, "POST", f"/api/v1/runs/{run.id}/log/", body=body, headers=headers)
        answer = await call.get_response(timeout=10)
        assert answer["status"] == 200
        # The application goes on after answering (it publishes then), as under a server;
        # a communicator dropped now would cancel it.
        await call.wait(timeout=10)

    events = [await comm.receive_json_from(timeout=5) for _ in range(5)]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert [e["event"] for e in events] == ["metrics"] * 5
    assert [e["data"]["points"]["loss"]["steps"] for e in events] == [[0], [1], [2], [3], [4]]
    backlog = await asyncio.to_thread(event_log().backlog, f"run:{run.id}", 0)
    assert backlog.complete
    assert [entry.seq for entry in backlog.entries] == [1, 2, 3, 4, 5]
    await comm.disconnect()
