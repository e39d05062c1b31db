"""SCIM 2.0 against a real ASGI server (uvicorn on the test database and Redis):

- the independent compliance checker ``scim2-tester`` runs every check it has against
  ``/scim/v2/`` and none fails (what it skips is asserted, and listed in docs/sso.md);
- provisioning end to end: a user created through SCIM, given an API token, with a WebSocket
  open with it and one open with their browser session; deactivating them through SCIM answers
  their token with 401 and closes both sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from django.conf import settings
from django.db import connection
from django.test import Client
from scim2_client import BaseSyncSCIMClient
from scim2_tester import Status, check_server

from accounts.models import User
from accounts.services import token_create
from tests.e2e.test_embedded_smoke import UVICORN, free_port
from tests.factories import UserFactory
from tests.helpers import stop_process

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class HttpxSCIMClient(BaseSyncSCIMClient):
    """scim2-client's network engine over ``httpx`` (its own engine needs ``httpx2``, a fork
    of httpx with the same interface that the project does not otherwise need)."""

    def __init__(self, client: httpx.Client, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        url = self.client.build_request("GET", endpoint).url
        base = self.client.base_url
        return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port) and url.raw_path.startswith(
            base.raw_path
        )

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.client.request(method, url, **kwargs)


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var_dir = tmp_path_factory.mktemp("scim-server")
    tag = uuid.uuid4().hex[:12]
    with django_db_blocker.unblock():
        database = connection.settings_dict["NAME"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "REDIS_URL": settings.REDIS_URL,
        "ASSAY_CHANNELS_PREFIX": f"test-ch:{tag}",
        "ASSAY_LIVE_PREFIX": f"test-live:{tag}",
        # the test's own key: sessions made here are valid there
        "ASSAY_SECRET_KEY": settings.SECRET_KEY,
        "ASSAY_VAR_DIR": str(var_dir),
        "ASSAY_PUBLIC_URL": url,
        "ASSAY_DB_POOL_MIN": "1",
        "ASSAY_DB_POOL_MAX": "4",
        # a socket re-checks its access at once on a broadcast; the periodic re-check stays long,
        # so the test proves the broadcast, not the timer
        "ASSAY_LIVE_RECHECK_SECONDS": "300",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = var_dir / "server.log"
    process = subprocess.Popen(
        [UVICORN, "config.asgi:application", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        cwd=REPO,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not start within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        stop_process(process)


@pytest.fixture
def scim_token(transactional_db: None) -> str:
    admin = UserFactory.create(username="idp-admin", is_staff=True)
    return token_create(user=admin, name="okta", scope="scim").raw


def _http(server: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server}/scim/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30)


# What scim2-tester skips, and why (docs/sso.md lists the same).
EXPECTED_SKIPS = {
    # RFC 7644 §3.4.3: searching several resource types at once is optional; IdPs search one.
    "search_with_attributes",
}


def test_scim2_tester_passes_every_check(server: str, scim_token: str) -> None:
    # given an identity provider's SCIM client with its token
    with _http(server, scim_token) as http:
        client = HttpxSCIMClient(http)
        # when the independent checker runs all its checks
        results = check_server(client)

    # then none fails, and what it skips is what docs/sso.md says it skips
    failed = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    assert not failed, "\n\n".join(f"{r.title} [{r.resource_type}]: {r.reason}" for r in failed)
    skipped = {r.title for r in results if r.status == Status.SKIPPED}
    assert skipped <= EXPECTED_SKIPS, skipped
    passed = [r for r in results if r.status == Status.SUCCESS]
    assert len(passed) >= 40, f"only {len(passed)} checks ran: {[r.title for r in results]}"
    titles = {r.title for r in passed}
    for needed in ("object_creation", "object_deletion", "check_replace_attribute", "check_add_attribute"):
        assert needed in titles, titles


def test_deactivating_through_scim_answers_401_and_closes_the_sockets(server: str, scim_token: str) -> None:
    # given a person provisioned through SCIM, with an API token and a browser session
    with _http(server, scim_token) as http:
        created = http.post(
            "/Users",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "Ana.Lopez@corp.example",
                "name": {"givenName": "Ana", "familyName": "Lopez"},
                "emails": [{"value": "ana.lopez@corp.example", "primary": True, "type": "work"}],
                "active": True,
            },
        )
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
    ana = User.objects.get(pk=int(user_id))
    assert ana.username == "ana-lopez"
    api_token = token_create(user=ana, name="laptop").raw
    # (the session is made here, in the server's session store: same database, same secret key)
    browser = Client()
    browser.force_login(ana)
    session = browser.cookies["sessionid"].value
    with httpx.Client(base_url=server, cookies={"sessionid": session}) as page:
        assert page.get("/").status_code == 200
    api = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {api_token}"}, timeout=30)
    assert api.get("/api/v1/me/").status_code == 200

    ws_url = server.replace("http://", "ws://") + "/ws/"

    async def scenario() -> tuple[Any, Any]:
        async with (
            websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {api_token}"}) as by_token,
            websockets.connect(
                ws_url, additional_headers={"Cookie": f"sessionid={session}", "Origin": server}
            ) as by_session,
        ):
            for sock in (by_token, by_session):
                await sock.send(json.dumps({"type": "subscribe", "topic": "user"}))
                assert json.loads(await asyncio.wait_for(sock.recv(), timeout=5))["type"] == "subscribed"
            # when the identity provider deactivates them
            async with httpx.AsyncClient(
                base_url=f"{server}/scim/v2", headers={"Authorization": f"Bearer {scim_token}"}
            ) as idp:
                answer = await idp.patch(
                    f"/Users/{user_id}",
                    json={
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "active", "value": False}],
                    },
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["active"] is False
            # then both sockets are closed by the server within seconds
            closed = []
            for sock in (by_token, by_session):
                with contextlib.suppress(websockets.ConnectionClosed):
                    while True:
                        await asyncio.wait_for(sock.recv(), timeout=5)
                closed.append(sock.close_code)
            return closed[0], closed[1]

    token_close, session_close = asyncio.run(scenario())
    assert (token_close, session_close) == (4401, 4401)
    # and their token answers 401, their session is signed out
    assert api.get("/api/v1/me/").status_code == 401
    with httpx.Client(base_url=server, cookies={"sessionid": session}) as page:
        home = page.get("/")
        assert home.status_code == 302
        assert "/login" in home.headers["location"]
    ana.refresh_from_db()
    assert not ana.is_active
    assert ana.api_tokens.filter(revoked_at__isnull=True).count() == 0

    # and reactivating them later revives neither the token nor the session (both were ended,
    # not only refused while the account was inactive)
    with _http(server, scim_token) as http:
        again = http.put(
            f"/Users/{user_id}",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "Ana.Lopez@corp.example",
                "active": True,
            },
        )
        assert again.status_code == 200, again.text
        assert again.json()["active"] is True
    assert api.get("/api/v1/me/").status_code == 401
    with httpx.Client(base_url=server, cookies={"sessionid": session}) as page:
        assert page.get("/").status_code == 302
