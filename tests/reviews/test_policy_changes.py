"""Issue 16, bug 9: a change of the review policy while a request is open is an event of that
request: its timeline says who changed what, its page shows the policy that applies now
(required approvals and checks), and its checks follow a changed gate."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from registry.models import ModelRepository, ModelVersion
from reviews import services
from reviews.models import Check, ReviewRequest, TimelineEvent
from reviews.timeline import entry_text

pytestmark = pytest.mark.django_db


def _open(member: User, v2: ModelVersion) -> ReviewRequest:
    rr, _ = services.review_request_open(
        user=member, project=v2.project, model="fraud", version="v2", alias="production", title="v2"
    )
    return rr


def _policy_events(rr: ReviewRequest) -> list[TimelineEvent]:
    return list(rr.timeline.filter(kind=TimelineEvent.Kind.POLICY))


def test_a_model_policy_change_is_in_the_open_requests_timeline_and_page(
    owner: User, member: User, v2: ModelVersion, model: ModelRepository
) -> None:
    rr = _open(member, v2)

    services.review_settings_update(user=owner, repository=model, required_approvals=2, required_checks=["lineage"])

    [event] = _policy_events(rr)
    assert event.actor == owner
    assert event.data["changes"]["required_approvals"] == {"from": 1, "to": 2}
    text = entry_text(event.kind, event.data)
    assert text.startswith("changed the model's review policy: ")
    assert "required approvals 1 → 2" in text
    assert "required checks artifact-integrity → lineage" in text
    client = Client()
    client.force_login(member)
    page = client.get(f"/acme/proj/reviews/{rr.number}/").content.decode()
    assert "required approvals 1 → 2" in page  # in the timeline
    assert "0/2 approvals" in page  # the header follows the policy that applies now
    checks = client.get(f"/acme/proj/reviews/{rr.number}/?tab=checks").content.decode()
    integrity = checks.split('data-name="artifact-integrity"', 1)[1].split("</tr>", 1)[0]
    assert "optional" in integrity  # no longer required: the page says so beside its result


def test_a_project_policy_change_reaches_the_requests_of_models_that_follow_it(
    owner: User, member: User, v2: ModelVersion, model: ModelRepository
) -> None:
    rr = _open(member, v2)

    services.project_review_settings_update(user=owner, project=v2.project, required_approvals=3)

    [event] = _policy_events(rr)
    assert entry_text(event.kind, event.data) == "changed the project's review policy: required approvals 1 → 3"

    # a model with a policy of its own no longer follows the project's
    services.review_settings_update(user=owner, repository=model, required_approvals=2)
    services.project_review_settings_update(user=owner, project=v2.project, required_approvals=4)
    assert len(_policy_events(rr)) == 2  # the model's own change, not the project's second one


def test_a_changed_gate_reruns_the_checks_of_open_requests(
    owner: User, member: User, v2: ModelVersion, model: ModelRepository, django_capture_on_commit_callbacks: Any
) -> None:
    rr = _open(member, v2)
    assert not Check.objects.filter(request=rr, name="gate:acc").exists()

    with django_capture_on_commit_callbacks():
        services.review_settings_update(
            user=owner,
            repository=model,
            gates_config=[{"name": "acc", "expression": "candidate.metrics.acc >= current.metrics.acc - 0.005"}],
        )

    gate = Check.objects.get(request=rr, name="gate:acc")
    assert gate.status == Check.Status.QUEUED
    assert "metric gates none → acc" in entry_text(TimelineEvent.Kind.POLICY, _policy_events(rr)[0].data)


def test_a_change_that_changes_nothing_and_closed_requests_get_no_entry(
    owner: User, member: User, v2: ModelVersion, model: ModelRepository
) -> None:
    rr = _open(member, v2)
    services.review_request_update(user=member, review_request=rr, state="closed")

    services.review_settings_update(user=owner, repository=model, required_approvals=2)
    services.review_settings_update(user=owner, repository=model, required_approvals=2)

    assert _policy_events(rr) == []
