"""Issue 16, bug 18: browsers ask for /favicon.ico; it was a 404."""

from __future__ import annotations

from django.test import Client


def test_favicon_ico_leads_to_the_icon() -> None:
    response = Client().get("/favicon.ico")

    assert response.status_code == 301
    assert response["Location"].startswith("/static/favicon")
    assert response["Location"].endswith(".svg")
