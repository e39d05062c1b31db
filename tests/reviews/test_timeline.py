"""The review timeline's wording: one function (reviews/timeline.py) writes every entry, the
request page shows it, and the live event carries the same sentence for the browser."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from registry.models import ModelVersion
from reviews import events, services
from reviews.timeline import entry_text


@pytest.mark.parametrize(
    ("kind", "data", "text"),
    [
        ("opened", {"version": 2, "alias": "production"}, "opened the request for v2"),
        ("review", {"verdict": "approve", "version": 2}, "approved v2"),
        ("review", {"verdict": "request_changes", "version": 2}, "requested changes on v2"),
        ("review", {"verdict": "comment", "version": 2}, "reviewed v2"),
        ("comment", {"reply": False, "anchor": None}, "commented"),
        ("comment", {"reply": True, "anchor": {"kind": "metric", "key": "acc"}}, "replied on metric acc"),
        ("candidate_pushed", {"from": 2, "to": 3, "dismissed": 0}, "pushed v3 (was v2)"),
        ("candidate_pushed", {"from": 2, "to": 3, "dismissed": 1}, "pushed v3 (was v2); 1 approval dismissed"),
        ("candidate_pushed", {"from": 2, "to": 3, "dismissed": 2}, "pushed v3 (was v2); 2 approvals dismissed"),
        ("review_dismissed", {"reviewer": "ana", "reason": "stale"}, "dismissed the review of ana: stale"),
        ("check", {"name": "gates", "status": "passed", "version": 3}, "check gates passed on v3"),
        ("merged", {"alias": "production", "version": 3, "bypass": False}, "merged: production → v3"),
        (
            "merged",
            {"alias": "production", "version": 3, "bypass": True, "reason": "hotfix"},
            "merged: production → v3 (policy bypassed: hotfix)",
        ),
        ("edited", {"title": "x", "labels": ["a"]}, "edited title, labels"),
        ("closed", {}, "closed"),
        ("reopened", {}, "reopened"),
    ],
)
def test_each_kind_of_entry_is_worded(kind: str, data: dict[str, Any], text: str) -> None:
    assert entry_text(kind, data) == text


@pytest.mark.django_db
def test_the_page_and_the_live_event_word_an_entry_alike(
    member: User, maintainer: User, v2: ModelVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the events the reviews app publishes, captured
    published: list[dict[str, Any]] = []
    monkeypatch.setattr(events, "publish_on_commit", lambda **event: published.append(event))
    rr, _ = services.review_request_open(
        user=member, project=v2.repository.project, model="fraud", version=v2.number, alias="production", title="v2"
    )

    # when
    services.review_submit(user=maintainer, review_request=rr, verdict="approve", body="", version_hash=v2.content_hash)

    # then: each timeline event carries the sentence the page shows after the actor's name
    sent = [(e["data"]["actor"], e["data"]["text"]) for e in published if e["event"].startswith("timeline.")]
    assert sent == [("member", "opened the request for v2"), (maintainer.username, "approved v2")]
    web = Client()
    web.force_login(member)
    page = web.get(f"/acme/proj/reviews/{rr.number}/").content.decode()
    for actor, text in sent:
        assert f"<strong>{actor}</strong> {text} <span" in page
