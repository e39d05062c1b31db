"""A real OpenID provider (the ``oidc-provider-mock`` package: authlib's authorization server
behind Flask) started on loopback for a test, and the settings that point Assay at it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import oidc_provider_mock
from csp.constants import SELF
from werkzeug.serving import make_server

from config.env import oidc_apps, oidc_origins


@dataclass
class Provider:
    url: str  # the issuer
    client_id: str
    client_secret: str

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        """What the provider asserts about ``sub`` from now on (the next sign-in sees it)."""
        response = httpx.put(f"{self.url}/users/{sub}", json=claims)
        assert response.status_code == 204, response.text

    def settings(
        self, *, provider_id: str = "idp", secret: str | None = None, url: str | None = None
    ) -> dict[str, Any]:
        """``SOCIALACCOUNT_PROVIDERS`` as ``ASSAY_OIDC_PROVIDERS`` would configure it."""
        entry = {
            "id": provider_id,
            "name": "Corp SSO",
            "server_url": url or self.url,
            "client_id": self.client_id,
            "secret": self.client_secret if secret is None else secret,
        }
        return {"openid_connect": {"APPS": oidc_apps([entry])}}

    def csp(self, current: dict[str, Any]) -> dict[str, Any]:
        """``CONTENT_SECURITY_POLICY`` as settings.py builds it with this provider configured."""
        directives = dict(current["DIRECTIVES"])
        directives["form-action"] = [SELF, *oidc_origins(self.settings()["openid_connect"]["APPS"])]
        return {**current, "DIRECTIVES": directives}


@contextmanager
def oidc_provider(redirect_uri: str) -> Iterator[Provider]:
    """The provider, with one client registered (dynamic client registration) for
    ``redirect_uri``: its secret is checked at the token endpoint, its redirect URI exactly."""
    app = oidc_provider_mock.app(require_client_registration=True, require_nonce=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        registered = httpx.post(
            f"{url}/oauth2/clients",
            json={"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_post"},
        )
        assert registered.status_code == 201, registered.text
        body = registered.json()
        yield Provider(url=url, client_id=body["client_id"], client_secret=body["client_secret"])
    finally:
        server.shutdown()
        server.server_close()
