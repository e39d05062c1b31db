"""The version page's "Open review request" button: shown to whoever may open a request
(writers and up), it leads to the creation form prefilled for that version, and the
prefilled form opens the request."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from accounts.models import User
from registry.models import ModelRepository, ModelVersion
from reviews.models import ReviewRequest

pytestmark = pytest.mark.django_db

VERSION_PAGE = "/acme/proj/models/fraud/v2/"


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def button_href(page: bytes) -> str | None:
    match = re.search(r'<a [^>]*href="([^"]+)"[^>]*data-testid="open-review"', page.decode())
    return html.unescape(match[1]) if match else None


def test_a_writer_follows_the_button_to_a_form_prefilled_for_the_version(member: User, v2: ModelVersion) -> None:
    client = signed_in(member)

    href = button_href(client.get(VERSION_PAGE).content)
    assert href == "/acme/proj/reviews/new/?model=fraud&version=v2&alias=production"
    form = client.get(href).content.decode()
    assert re.search(r'<option value="fraud" selected>', form)
    assert re.search(r'<option value="v2"[^>]* selected>', form)  # the version select (issue 16, bug 14)
    assert re.search(r'id="alias" name="alias" value="production"', form)

    opened = client.post(href, {"model": "fraud", "version": "v2", "alias": "production", "title": "Ship v2"})

    assert opened.status_code == 302
    request = ReviewRequest.objects.get()
    assert (request.candidate_id, request.alias, request.author) == (v2.pk, "production", member)
    assert opened["Location"] == "/acme/proj/reviews/1/"


def test_the_button_targets_the_first_protected_alias(member: User, model: ModelRepository, v2: ModelVersion) -> None:
    model.protected_aliases = ["live", "production"]
    model.save(update_fields=["protected_aliases"])

    href = button_href(signed_in(member).get(VERSION_PAGE).content)

    assert href is not None
    assert href.endswith("&alias=live")


def test_a_viewer_sees_the_version_but_no_button(viewer: User, v2: ModelVersion) -> None:
    page = signed_in(viewer).get(VERSION_PAGE)

    assert page.status_code == 200
    assert button_href(page.content) is None
    assert signed_in(viewer).get("/acme/proj/reviews/new/?model=fraud&version=v2").status_code == 403
