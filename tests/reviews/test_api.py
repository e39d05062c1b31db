"""Review requests through the REST API: open, mention, review, push, checks, merge."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import AuditEvent, ProjectRole, User
from registry.models import Alias, AliasMove, ModelVersion
from reviews.models import Check, Notification, Review, ReviewRequest
from tests.conftest import ClientFor
from tests.factories import ProjectGrantFactory, UserFactory
from tests.helpers import assert_error, patch_json, post_json

pytestmark = pytest.mark.django_db

BASE = "/api/v1/projects/acme/proj/review-requests/"


def open_request(client: APIClient, **extra: Any) -> Any:
    body = {"model": "fraud", "version": 2, "alias": "production", "title": "Ship v2", **extra}
    return post_json(client, BASE, body)


@pytest.fixture
def opened(
    member_client: APIClient, v2: ModelVersion, maintainer: User, eager: None, django_capture_on_commit_callbacks: Any
) -> dict[str, Any]:
    with django_capture_on_commit_callbacks(execute=True):
        response = open_request(member_client, description="@maint please look", reviewers=["maint"])
    assert response.status_code == 201, response.content
    opened: dict[str, Any] = response.json()
    return opened


def test_opening_a_request_numbers_it_and_returns_the_candidate_hash(opened: dict[str, Any], v2: ModelVersion) -> None:
    assert opened["number"] == 1
    assert opened["state"] == "open"
    assert opened["version"] == 2
    assert opened["version_hash"] == v2.content_hash
    assert opened["base_version"] == 1
    assert opened["reviewers"] == [{"kind": "user", "name": "maint"}]
    assert opened["unreachable_mentions"] == []


def test_numbers_are_per_project_and_sequential(member_client: APIClient, v2: ModelVersion, register: Any) -> None:
    register()
    first = open_request(member_client).json()
    second = open_request(member_client, version=3).json()

    assert (first["number"], second["number"]) == (1, 2)


def test_checks_run_on_open_and_artifact_integrity_passes(opened: dict[str, Any], member_client: APIClient) -> None:
    checks = {c["name"]: c for c in member_client.get(BASE + "1/checks/").json()}

    assert checks["artifact-integrity"]["status"] == "passed"
    assert checks["artifact-integrity"]["required"] is True
    assert checks["lineage"]["status"] == "passed"
    assert checks["lineage"]["required"] is False


def test_a_mention_and_a_review_request_notify_the_reviewer_once_in_the_database(
    opened: dict[str, Any], maintainer: User
) -> None:
    """Issue 16, bug 10: one event, one notification, with the most specific reason (a
    requested reviewer who is also mentioned was notified twice: "review_requested" and
    "mention")."""
    kinds = sorted(Notification.objects.filter(user=maintainer).values_list("kind", flat=True))

    assert kinds == ["review_requested"]


def test_a_mention_of_someone_without_access_notifies_no_one_and_says_so(
    member_client: APIClient, v2: ModelVersion, outsider: User
) -> None:
    response = open_request(member_client, description="cc @outsider and @nosuchuser")

    assert response.json()["unreachable_mentions"] == ["outsider", "nosuchuser"]
    assert not Notification.objects.filter(user=outsider).exists()


def test_a_team_mention_reaches_its_members_who_may_see(
    member_client: APIClient, v2: ModelVersion, owner: User
) -> None:
    response = open_request(member_client, description="cc @acme")

    assert response.json()["unreachable_mentions"] == []
    assert Notification.objects.filter(user=owner, kind="mention").count() == 1


def test_a_reviewer_without_access_is_refused(member_client: APIClient, v2: ModelVersion, outsider: User) -> None:
    assert_error(
        open_request(member_client, reviewers=["outsider"]), 400, code="reviewer_unreachable", field="reviewers.0"
    )
    assert not ReviewRequest.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"model": "nosuch"}, 404, "not_found", "model"),
        ({"version": 99}, 404, "not_found", "version"),
        ({"version": "v0"}, 400, "invalid", "version"),
        ({"alias": "v3"}, 400, "invalid_alias", "alias"),
        ({"alias": ["x"]}, 400, "invalid", "alias"),
        ({"title": ""}, 400, "invalid", "title"),
        ({"title": "x" * 300}, 400, "invalid", "title"),
        ({"description": 5}, 400, "invalid", "description"),
        ({"labels": ["ok", "<script>"]}, 400, "invalid", "labels.1"),
        ({"reviewers": "maint"}, 400, "invalid", "reviewers"),
        # R10: the policy is not a field of the request
        ({"required_approvals": 0}, 400, "invalid", "required_approvals"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(
    member_client: APIClient, v2: ModelVersion, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    response = open_request(member_client, **body)

    assert_error(response, status, code=code, field=field)
    assert not ReviewRequest.objects.exists()
    assert not Notification.objects.exists()
    assert not Check.objects.exists()
    assert not AuditEvent.objects.filter(action="review.open").exists()


def test_a_viewer_cannot_open_a_request(viewer_client: APIClient, v2: ModelVersion) -> None:
    assert_error(open_request(viewer_client), 403, code="permission_denied")


def test_r1_the_author_cannot_approve(opened: dict[str, Any], client_for: ClientFor, member: User) -> None:
    ProjectGrantFactory.create(project=ReviewRequest.objects.get().project, user=member, role=ProjectRole.MAINTAINER)
    body = {"verdict": "approve", "version_hash": opened["version_hash"]}

    assert_error(post_json(client_for(member), BASE + "1/reviews/", body), 403, code="author_cannot_approve")


def test_r2_the_registrar_cannot_approve(opened: dict[str, Any], owner_client: APIClient) -> None:
    body = {"verdict": "approve", "version_hash": opened["version_hash"]}

    assert_error(post_json(owner_client, BASE + "1/reviews/", body), 403, code="registrar_cannot_approve")


def test_r7_approving_a_stale_hash_is_409(opened: dict[str, Any], client_for: ClientFor, maintainer: User) -> None:
    body = {"verdict": "approve", "version_hash": "0" * 64}

    assert_error(post_json(client_for(maintainer), BASE + "1/reviews/", body), 409, code="stale_version")
    assert not Review.objects.exists()


def test_merging_without_approval_is_409_approvals_missing(
    opened: dict[str, Any], client_for: ClientFor, maintainer: User
) -> None:
    assert_error(post_json(client_for(maintainer), BASE + "1/merge/", {}), 409, code="approvals_missing")
    assert Alias.objects.get(name="production").version.number == 1


def test_the_whole_path_request_changes_push_approve_merge(
    opened: dict[str, Any],
    client_for: ClientFor,
    member_client: APIClient,
    maintainer: User,
    maint2: User,
    register: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    reviewer = client_for(maintainer)
    # the reviewer comments on a metric line and requests changes
    comment = post_json(
        reviewer, BASE + "1/comments/", {"body": "acc dropped?", "anchor": {"kind": "metric", "key": "acc"}}
    )
    assert comment.status_code == 201
    assert comment.json()["anchor"] == {"kind": "metric", "key": "acc"}
    body = {"verdict": "request_changes", "body": "Please retrain", "version_hash": opened["version_hash"]}
    assert post_json(reviewer, BASE + "1/reviews/", body).status_code == 201
    assert member_client.get(BASE + "1/").json()["status"] == "changes_requested"
    # an approval by another maintainer does not override the request for changes (R6)
    post_json(client_for(maint2), BASE + "1/reviews/", {"verdict": "approve", "version_hash": opened["version_hash"]})
    assert_error(post_json(reviewer, BASE + "1/merge/", {}), 409, code="changes_requested")
    # the author pushes v3: approvals are dismissed (R5), checks re-run
    v3 = register(metrics={"acc": 0.95, "loss": 0.2})
    with django_capture_on_commit_callbacks(execute=True):
        pushed = patch_json(member_client, BASE + "1/", {"version": 3})
    assert pushed.status_code == 200, pushed.content
    assert pushed.json()["version_hash"] == v3.content_hash
    assert Review.objects.get(author=maint2).dismissed_at is not None
    assert Check.objects.filter(version=v3, status="passed").count() == 2
    # the reviewer approves the new candidate; the merge moves the alias
    body = {"verdict": "approve", "version_hash": v3.content_hash}
    assert post_json(reviewer, BASE + "1/reviews/", body).status_code == 201
    merged = post_json(reviewer, BASE + "1/merge/", {})
    assert merged.status_code == 200, merged.content
    assert merged.json()["state"] == "merged"
    assert Alias.objects.get(name="production").version_id == v3.id
    move = AliasMove.objects.get(alias="production", to_version=v3)
    assert move.review_request_id == ReviewRequest.objects.get().id
    assert AuditEvent.objects.filter(action="review.merge").count() == 1
    assert Notification.objects.filter(user__username="member", kind="merged").exists()


def test_the_old_approval_of_an_earlier_candidate_is_dismissed_by_a_push(
    opened: dict[str, Any], client_for: ClientFor, member_client: APIClient, maintainer: User, register: Any
) -> None:
    post_json(
        client_for(maintainer), BASE + "1/reviews/", {"verdict": "approve", "version_hash": opened["version_hash"]}
    )
    assert member_client.get(BASE + "1/").json()["approvals"] == 1
    register(metrics={"acc": 0.95})

    patch_json(member_client, BASE + "1/", {"version": 3})

    assert member_client.get(BASE + "1/").json()["approvals"] == 0


def test_a_maintainer_dismisses_a_request_for_changes_with_a_reason_audited(
    opened: dict[str, Any], client_for: ClientFor, maintainer: User, maint2: User
) -> None:
    review = post_json(
        client_for(maint2),
        BASE + "1/reviews/",
        {"verdict": "request_changes", "body": "no", "version_hash": opened["version_hash"]},
    ).json()
    url = BASE + f"1/reviews/{review['id']}/dismiss/"
    assert_error(post_json(client_for(maintainer), url, {"reason": ""}), 400, code="dismiss_needs_reason")

    response = post_json(client_for(maintainer), url, {"reason": "addressed offline"})

    assert response.json()["dismissed"] is True
    assert AuditEvent.objects.get(action="review.dismiss").data["reason"] == "addressed offline"


def test_merge_is_refused_when_the_alias_moved_since_the_checks(
    opened: dict[str, Any],
    client_for: ClientFor,
    maintainer: User,
    owner: User,
    register: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from registry import services as registry_services

    reviewer = client_for(maintainer)
    post_json(reviewer, BASE + "1/reviews/", {"verdict": "approve", "version_hash": opened["version_hash"]})
    moved = register()
    registry_services.alias_move(
        alias="production",
        version=moved,
        user=owner,
        merge=registry_services.ReviewMerge(
            review_request_id="other", number=0, alias="production", version_id=moved.id
        ),
    )

    assert_error(post_json(reviewer, BASE + "1/merge/", {}), 409, code="out_of_date")
    with django_capture_on_commit_callbacks(execute=True):
        assert post_json(reviewer, BASE + "1/checks/", {}).status_code == 202
    assert post_json(reviewer, BASE + "1/merge/", {}).status_code == 200


def test_failing_required_check_blocks_and_notifies_the_author(
    member_client: APIClient,
    client_for: ClientFor,
    maintainer: User,
    register: Any,
    v1: ModelVersion,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    register(status="uploaded")  # v2: bytes not verified yet
    with django_capture_on_commit_callbacks(execute=True):
        opened = open_request(member_client).json()
    post_json(
        client_for(maintainer), BASE + "1/reviews/", {"verdict": "approve", "version_hash": opened["version_hash"]}
    )

    assert_error(post_json(client_for(maintainer), BASE + "1/merge/", {}), 409, code="checks_failing")
    assert Notification.objects.filter(user__username="member", kind="checks_failed").exists()


def test_metric_gates_compare_with_the_current_version(
    member_client: APIClient,
    owner_client: APIClient,
    client_for: ClientFor,
    v1: ModelVersion,
    register: Any,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings_url = "/api/v1/projects/acme/proj/models/fraud/review-settings/"
    gate = {"name": "acc", "expression": "candidate.metrics.acc >= current.metrics.acc - 0.005"}
    response = patch_json(
        owner_client, settings_url, {"gates": [gate], "required_checks": ["artifact-integrity", "gate:acc"]}
    )
    assert response.status_code == 200, response.content
    register(metrics={"acc": 0.85})
    with django_capture_on_commit_callbacks(execute=True):
        open_request(member_client)

    check = Check.objects.get(name="gate:acc")

    assert check.status == "failed"
    assert "0.85" in check.summary


def test_gate_settings_refuse_bad_expressions_and_non_admins(
    owner_client: APIClient, client_for: ClientFor, maintainer: User, v1: ModelVersion
) -> None:
    url = "/api/v1/projects/acme/proj/models/fraud/review-settings/"
    response = patch_json(owner_client, url, {"gates": [{"name": "g", "expression": "candidate.metrics.acc >"}]})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_gate",
        "field": "gates.0.expression",
        "position": 22,
        "message": response.json()["error"]["message"],
    }
    assert_error(patch_json(client_for(maintainer), url, {"required_approvals": 1}), 403, code="permission_denied")
    assert_error(patch_json(owner_client, url, {"required_approvals": 7}), 400, field="required_approvals")


def test_r9_an_admin_bypass_needs_a_reason_and_is_audited(opened: dict[str, Any], owner_client: APIClient) -> None:
    assert_error(post_json(owner_client, BASE + "1/merge/", {}), 409, code="approvals_missing")
    assert_error(post_json(owner_client, BASE + "1/merge/", {"bypass": True}), 400, code="bypass_needs_reason")

    response = post_json(owner_client, BASE + "1/merge/", {"bypass": True, "reason": "incident 42"})

    assert response.status_code == 200
    event = AuditEvent.objects.get(action="review.bypass")
    assert event.data["bypassed"] == ["approvals_missing"]


def test_a_maintainer_cannot_bypass(opened: dict[str, Any], client_for: ClientFor, maintainer: User) -> None:
    body = {"bypass": True, "reason": "x"}
    assert_error(post_json(client_for(maintainer), BASE + "1/merge/", body), 403, code="bypass_not_allowed")


def test_comments_thread_edit_delete_and_resolve(
    opened: dict[str, Any], member_client: APIClient, client_for: ClientFor, maintainer: User
) -> None:
    reviewer = client_for(maintainer)
    root = post_json(reviewer, BASE + "1/comments/", {"body": "why **this**?"}).json()
    assert root["body_html"] == "<p>why <strong>this</strong>?</p>"
    reply = post_json(member_client, BASE + "1/comments/", {"body": "because", "parent": root["id"]}).json()
    assert reply["parent"] == root["id"]
    assert_error(patch_json(member_client, BASE + f"1/comments/{root['id']}/", {"body": "hijack"}), 403)

    edited = patch_json(reviewer, BASE + f"1/comments/{root['id']}/", {"body": "why this?"}).json()
    resolved = patch_json(member_client, BASE + f"1/comments/{root['id']}/", {"resolved": True}).json()
    deleted = member_client.delete(BASE + f"1/comments/{reply['id']}/").json()

    assert edited["edited"] is True
    assert resolved["resolved"] is True
    assert deleted["deleted"] is True
    assert deleted["body"] == ""


def test_a_parent_of_another_request_is_refused(
    opened: dict[str, Any], member_client: APIClient, register: Any
) -> None:
    other_comment = post_json(member_client, BASE + "1/comments/", {"body": "x"}).json()
    register()
    open_request(member_client, version=3, alias="staging")

    response = post_json(member_client, BASE + "2/comments/", {"body": "y", "parent": other_comment["id"]})

    assert_error(response, 404, field="parent")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": ""}, "body"),
        ({"body": "x", "anchor": {"kind": "line", "key": "a"}}, "anchor.kind"),
        ({"body": "x", "anchor": {"kind": "metric"}}, "anchor"),
        ({"body": "x" * 20_001}, "body"),
        ({"body": "x", "extra": 1}, "extra"),
    ],
)
def test_bad_comments_are_refused(
    opened: dict[str, Any], member_client: APIClient, body: dict[str, Any], field: str
) -> None:
    assert_error(post_json(member_client, BASE + "1/comments/", body), 400, field=field)


def test_comment_xss_is_sanitised_in_the_api(opened: dict[str, Any], member_client: APIClient) -> None:
    body = "<img src=x onerror=alert(1)> [x](javascript:alert(1))"
    html = post_json(member_client, BASE + "1/comments/", {"body": body}).json()["body_html"]

    assert "<img" not in html
    assert "javascript:" not in html


def test_close_and_reopen(opened: dict[str, Any], member_client: APIClient) -> None:
    assert patch_json(member_client, BASE + "1/", {"state": "closed"}).json()["state"] == "closed"
    assert member_client.get(BASE, {"state": "closed"}).json()["count"] == 1
    assert patch_json(member_client, BASE + "1/", {"state": "open"}).json()["state"] == "open"


def test_lists_awaiting_my_review_and_mine(
    opened: dict[str, Any], member_client: APIClient, client_for: ClientFor, maintainer: User
) -> None:
    assert client_for(maintainer).get(BASE, {"reviewer": "me"}).json()["count"] == 1
    assert member_client.get(BASE, {"reviewer": "me"}).json()["count"] == 0
    assert member_client.get(BASE, {"author": "me"}).json()["count"] == 1


def test_notifications_list_mark_read_and_all(
    opened: dict[str, Any], client_for: ClientFor, member_client: APIClient, maintainer: User
) -> None:
    # A second notification (the request made one: "review requested"; issue 16, bug 10).
    remark = {"verdict": "comment", "body": "a remark", "version_hash": opened["version_hash"]}
    assert post_json(member_client, BASE + "1/reviews/", remark).status_code == 201
    client = client_for(maintainer)
    listed = client.get("/api/v1/notifications/").json()
    assert listed["unread"] == 2
    first = listed["results"][0]["id"]

    assert post_json(client, "/api/v1/notifications/", {"ids": [first]}).json()["unread"] == 1
    assert post_json(client, "/api/v1/notifications/", {"all": True}).json()["unread"] == 0
    assert_error(post_json(client, "/api/v1/notifications/", {"ids": "x"}), 400, field="ids")


def test_another_users_notification_cannot_be_marked_read(
    opened: dict[str, Any], member_client: APIClient, maintainer: User
) -> None:
    theirs = Notification.objects.filter(user=maintainer).first()
    assert theirs is not None

    post_json(member_client, "/api/v1/notifications/", {"ids": [theirs.id]})

    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_notifications_are_emailed_by_preference(
    member_client: APIClient,
    client_for: ClientFor,
    v2: ModelVersion,
    maintainer: User,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    maintainer.email = "maint@example.com"
    maintainer.save()
    client = client_for(maintainer)
    assert patch_json(client, "/api/v1/notifications/preferences/", {"email": ["mention"]}).status_code == 405
    assert client.put(
        "/api/v1/notifications/preferences/", data=b'{"email": ["mention"]}', content_type="application/json"
    ).json() == {"email": ["mention"]}
    with django_capture_on_commit_callbacks(execute=True):
        open_request(member_client, description="@maint look")

    assert len(mail.outbox) == 1
    assert "mentioned you" in mail.outbox[0].subject


def test_mentionables_complete_only_people_who_may_see(
    opened: dict[str, Any], member_client: APIClient, outsider: User
) -> None:
    UserFactory.create(username="maxwell")
    names = [m["name"] for m in member_client.get("/api/v1/projects/acme/proj/mentionables/", {"q": "ma"}).json()]

    assert names == ["maint"]


def test_a_review_with_a_mention_notifies_and_emails_each_user_once(
    opened: dict[str, Any],
    client_for: ClientFor,
    member: User,
    maintainer: User,
    maint2: User,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Issue 16, bug 10: one @mention in a review made "review submitted" and "mention" (and
    two e-mails) for the author; the mention, the more specific reason, is the only one."""
    member.email, maint2.email = "member@example.com", "maint2@example.com"
    member.save()
    maint2.save()
    Notification.objects.all().delete()
    mail.outbox.clear()
    body = {"verdict": "comment", "body": "@member and @maint2: one question", "version_hash": opened["version_hash"]}
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(client_for(maintainer), BASE + "1/reviews/", body)
    assert response.status_code == 201, response.content

    def kinds(user: User) -> list[str]:
        return list(Notification.objects.filter(user=user).values_list("kind", flat=True))

    assert kinds(member) == ["mention"]  # the author watches the request and is mentioned
    assert kinds(maint2) == ["mention"]  # not a watcher: mentioned only
    assert kinds(maintainer) == []  # the reviewer is not notified of their own review
    assert sorted(m.to[0] for m in mail.outbox) == ["maint2@example.com", "member@example.com"]


def test_adding_a_reviewer_and_mentioning_them_in_one_edit_notifies_once(
    member_client: APIClient, v2: ModelVersion, maintainer: User
) -> None:
    """Issue 16, bug 10, for an edit: the new reviewer mentioned in the new description gets
    "review_requested" only."""
    assert open_request(member_client).status_code == 201
    response = patch_json(member_client, BASE + "1/", {"description": "@maint please", "reviewers": ["maint"]})
    assert response.status_code == 200, response.content

    assert list(Notification.objects.filter(user=maintainer).values_list("kind", flat=True)) == ["review_requested"]
