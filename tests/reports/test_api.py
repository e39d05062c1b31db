"""The reports API: CRUD, revisions, diff, freeze, comments, links; who may do what; bad input."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from rest_framework.test import APIClient

from accounts.models import User
from experiments.models import Run
from reports.models import Report, ReportComment, ReportLink, ReportRevision
from reviews.models import Notification
from tests.helpers import assert_error, log_path, patch_json, post_json, rows

pytestmark = pytest.mark.django_db

BASE = "/api/v1/projects/acme/proj/reports/"
CHART = "```assay-chart metrics=loss query=\"attributes.name = 'first-run'\"\n```\n"


def _create(client: APIClient, title: str = "Findings", body: str = "Intro\n\n" + CHART) -> dict[str, Any]:
    response = post_json(client, BASE, {"title": title, "body": body})
    assert response.status_code == 201, response.content
    return orjson.loads(response.content)  # type: ignore[no-any-return]


def _log(client: APIClient, run: Run, steps: range, value: float, batch: str) -> None:
    body = {"batch_id": batch, "metrics": rows("loss", steps, value)}
    assert post_json(client, log_path(run), body).status_code == 200


def test_a_writer_creates_and_edits_a_report_and_each_edit_is_a_revision(member_client: APIClient) -> None:
    # given
    created = _create(member_client)
    # when
    response = patch_json(member_client, f"{BASE}{created['number']}/", {"body": "Changed", "message": "tidy"})
    # then
    assert response.status_code == 200
    revisions = orjson.loads(member_client.get(f"{BASE}1/revisions/").content)
    assert [(r["number"], r["author"], r["message"]) for r in revisions] == [
        (2, "member", "tidy"),
        (1, "member", "Created"),
    ]
    assert Report.objects.get().body == "Changed"


def test_an_edit_that_changes_nothing_adds_no_revision(member_client: APIClient) -> None:
    created = _create(member_client)

    response = patch_json(member_client, f"{BASE}{created['number']}/", {"title": "Findings"})

    assert response.status_code == 200
    assert ReportRevision.objects.count() == 1


def test_the_revision_diff_shows_added_and_removed_lines(member_client: APIClient) -> None:
    _create(member_client, body="alpha\nbeta\ngamma\n")
    patch_json(member_client, f"{BASE}1/", {"body": "alpha\nBETA\ngamma\n"})

    response = member_client.get(f"{BASE}1/diff/?from=1&to=2")

    assert response.status_code == 200
    lines = orjson.loads(response.content)["lines"]
    assert {"kind": "del", "text": "-beta"} in lines
    assert {"kind": "add", "text": "+BETA"} in lines
    assert not any(line["text"] in ("-alpha", "+alpha") for line in lines)


def test_a_diff_against_a_missing_revision_names_the_field(member_client: APIClient) -> None:
    _create(member_client)

    assert_error(member_client.get(f"{BASE}1/diff/?from=1&to=9"), 404, field="to")
    assert_error(member_client.get(f"{BASE}1/diff/?from=x"), 400, field="from")


def test_freeze_stores_the_blocks_data_in_a_revision(
    member_client: APIClient, owner_client: APIClient, run: Run
) -> None:
    _log(owner_client, run, range(3), 0.5, "b1")
    _create(member_client)

    response = post_json(member_client, f"{BASE}1/freeze/", {"message": "for the record"})

    assert response.status_code == 201
    frozen = orjson.loads(response.content)
    assert frozen["frozen"] is True
    assert frozen["number"] == 2
    assert "error" not in frozen["snapshot"]["0"], frozen["snapshot"]
    curve = frozen["snapshot"]["0"]["data"]["series"]["loss"][0]
    assert curve["steps"] == [0, 1, 2]
    assert curve["values"] == [0.5, 0.5, 0.5]


def test_freezing_a_report_without_blocks_is_refused(member_client: APIClient) -> None:
    _create(member_client, body="just prose")

    assert_error(post_json(member_client, f"{BASE}1/freeze/", {}), 409, code="nothing_to_freeze")
    assert ReportRevision.objects.count() == 1


@pytest.mark.usefixtures("viewer")
def test_a_viewer_reads_but_cannot_write(member_client: APIClient, viewer_client: APIClient) -> None:
    _create(member_client)

    assert viewer_client.get(f"{BASE}1/").status_code == 200
    assert viewer_client.get(BASE).status_code == 200
    assert_error(post_json(viewer_client, BASE, {"title": "x"}), 403)
    assert_error(patch_json(viewer_client, f"{BASE}1/", {"body": "mine now"}), 403)
    assert_error(post_json(viewer_client, f"{BASE}1/freeze/", {}), 403)
    assert_error(post_json(viewer_client, f"{BASE}1/comments/", {"body": "hi"}), 403)
    assert_error(viewer_client.delete(f"{BASE}1/"), 403)
    assert Report.objects.get().body.startswith("Intro")
    assert ReportRevision.objects.count() == 1


def test_an_outsider_gets_404_for_a_report_and_for_a_missing_one_alike(
    member_client: APIClient, outsider_client: APIClient
) -> None:
    _create(member_client)

    for url in (f"{BASE}1/", f"{BASE}2/", f"{BASE}1/revisions/", f"{BASE}1/diff/", BASE):
        assert_error(outsider_client.get(url), 404)
    assert_error(patch_json(outsider_client, f"{BASE}1/", {"body": "x"}), 404)
    assert Report.objects.get().revision_count == 1


def test_only_the_author_or_a_maintainer_deletes(
    member_client: APIClient, owner_client: APIClient, client_for: Any, project: Any
) -> None:
    from accounts.models import ProjectGrant, ProjectRole
    from tests.factories import UserFactory

    writer = UserFactory.create(username="writer")
    ProjectGrant.objects.create(project=project, user=writer, role=ProjectRole.WRITER)
    _create(member_client)
    _create(member_client, title="Second")

    assert_error(client_for(writer).delete(f"{BASE}1/"), 403)
    assert member_client.delete(f"{BASE}1/").status_code == 204
    assert owner_client.delete(f"{BASE}2/").status_code == 204
    assert Report.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": 3}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "ok", "body": ["no"]}, "body"),
        ({"title": "ok", "body": None}, "body"),
        ({"title": "ok", "owner": "me"}, "owner"),
        ({"title": "ok", "message": "m" * 301}, "message"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(
    member_client: APIClient, body: dict[str, Any], field: str
) -> None:
    assert_error(post_json(member_client, BASE, body), 400, field=field)
    assert Report.objects.count() == 0
    assert ReportRevision.objects.count() == 0


def test_comments_notify_mentioned_users_through_the_notification_centre(
    member_client: APIClient, owner: User, viewer: User, outsider: User
) -> None:
    _create(member_client)

    response = post_json(member_client, f"{BASE}1/comments/", {"body": "@viewer look at the chart, @outsider too"})

    assert response.status_code == 201
    assert orjson.loads(response.content)["unreachable_mentions"] == ["outsider"]
    mention = Notification.objects.get(user=viewer)
    assert mention.kind == "mention"
    assert mention.link == "/acme/proj/reports/1/"
    assert mention.request is None
    assert not Notification.objects.filter(user=outsider).exists()
    assert ReportComment.objects.count() == 1


def test_a_comment_notifies_the_reports_author(member_client: APIClient, owner_client: APIClient, member: User) -> None:
    _create(member_client)

    assert post_json(owner_client, f"{BASE}1/comments/", {"body": "nice"}).status_code == 201

    notification = Notification.objects.get(user=member)
    assert notification.kind == "report_comment"
    listed = orjson.loads(member_client.get("/api/v1/notifications/").content)
    items = listed["results"] if isinstance(listed, dict) else listed
    assert items[0]["url"].endswith("/acme/proj/reports/1/")
    assert items[0]["request"] is None


def test_a_mention_in_the_body_notifies_once_not_at_every_edit(member_client: APIClient, viewer: User) -> None:
    _create(member_client, body="cc @viewer")
    patch_json(member_client, f"{BASE}1/", {"body": "cc @viewer, updated"})

    assert Notification.objects.filter(user=viewer).count() == 1


def test_links_to_a_version_and_a_review_request_of_the_same_project_only(
    member_client: APIClient, owner_client: APIClient, run: Run, owner: User
) -> None:
    from tests.reports.samples import model_with_request

    model_with_request(run, owner)
    _create(member_client)

    by_version = post_json(member_client, f"{BASE}1/links/", {"model": "fraud", "version": "v1"})
    by_request = post_json(member_client, f"{BASE}1/links/", {"review_request": 1})
    again = post_json(member_client, f"{BASE}1/links/", {"review_request": 1})

    assert by_version.status_code == 201
    assert by_request.status_code == 201
    assert again.status_code == 201
    assert ReportLink.objects.count() == 2
    assert_error(post_json(member_client, f"{BASE}1/links/", {"review_request": 7}), 404, field="review_request")
    assert_error(post_json(member_client, f"{BASE}1/links/", {"review_request": "1"}), 400, field="review_request")
    assert_error(post_json(member_client, f"{BASE}1/links/", {"model": "fraud", "version": "v9"}), 404, field="version")
    assert_error(post_json(member_client, f"{BASE}1/links/", {}), 400, field="review_request")
    links = orjson.loads(member_client.get(f"{BASE}1/links/").content)
    assert {(x.get("model"), x.get("version"), x.get("review_request")) for x in links} == {
        ("fraud", 1, None),
        (None, None, 1),
    }
    link_id = links[0]["id"]
    assert member_client.delete(f"{BASE}1/links/{link_id}/").status_code == 204
    assert_error(member_client.delete(f"{BASE}1/links/{link_id}/"), 404)


def test_a_report_mention_is_emailed_with_the_reports_address(
    member_client: APIClient, viewer: User, mailoutbox: list[Any]
) -> None:
    from django.conf import settings

    from reviews.services import notification_email

    viewer.email = "viewer@example.com"
    viewer.save(update_fields=["email"])
    _create(member_client, body="@viewer have a look")
    notification = Notification.objects.get(user=viewer)

    assert notification_email(notification_id=notification.id) is True
    assert notification_email(notification_id=notification.id) is False  # at most once

    assert len(mailoutbox) == 1
    assert f"{settings.PUBLIC_URL}/acme/proj/reports/1/" in mailoutbox[0].body
    assert mailoutbox[0].subject == "[Assay] member mentioned you in report #1: Findings"
