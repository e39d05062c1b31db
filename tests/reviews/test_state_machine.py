"""A property-based state machine over review requests (hypothesis): random sequences of
open, push candidate, approve, request changes, dismiss, change role, run checks and merge.

Invariant (issue #8): the alias moves only to a candidate that has k counted approvals on
that exact content hash (from distinct users other than the author and the registrar, whose
role is maintainer or above *now*), no outstanding request for changes, and passing required
checks. It is computed here from the rows, independently of reviews/policy.py. Liveness too:
when all of that holds (and the alias has not moved since the checks), the merge succeeds.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from accounts.models import ProjectGrant, ProjectRole, User
from core.errors import DomainError
from registry.models import Alias, ModelVersion
from reviews import selectors, services
from reviews.models import Check, Review, ReviewRequest
from tests.factories import ProjectGrantFactory, UserFactory

pytestmark = pytest.mark.django_db

REVIEWERS = ("ana", "bob")


def expected_mergeable(rr: ReviewRequest) -> bool:
    settings_ = selectors.settings_for(rr.repository)
    candidate = rr.candidate
    latest: dict[int, Review] = {}
    for review in Review.objects.filter(request=rr, dismissed_at__isnull=True).order_by("created_at", "id"):
        if review.verdict in ("approve", "request_changes"):
            latest[review.author_id] = review
    approvals = set()
    for user_id, review in latest.items():
        if review.verdict == "request_changes":
            return False
        if review.version_hash != candidate.content_hash or user_id in (rr.author_id, candidate.author_id):
            continue
        grant = ProjectGrant.objects.filter(project=rr.project, user_id=user_id).first()
        if grant is not None and grant.role >= ProjectRole.MAINTAINER:
            approvals.add(user_id)
    if len(approvals) < settings_.required_approvals:
        return False
    checks = Check.objects.filter(request=rr, version=candidate)
    required = set(settings_.required_checks)
    if any(c.status != "passed" for c in checks if c.name in required) or not checks.exists():
        return False
    alias_now = selectors.alias_version_id(rr.repository, rr.alias)
    return all(c.against_id == alias_now for c in checks)


@pytest.fixture
def world(owner: User, member: User, project: Any, v1: ModelVersion, register: Any) -> dict[str, Any]:
    users = {"member": member, "owner": owner}
    for name in REVIEWERS:
        users[name] = UserFactory.create(username=name)
        ProjectGrantFactory.create(project=project, user=users[name], role=ProjectRole.MAINTAINER)
    versions = [v1] + [register(metrics={"acc": 0.9 + i / 100}) for i in range(1, 4)]
    return {"users": users, "versions": versions, "project": project}


def test_the_alias_moves_only_to_fully_approved_checked_candidates(world: dict[str, Any]) -> None:
    class ReviewMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.savepoint = transaction.savepoint()
            self.rr: ReviewRequest | None = None
            self.merges = 0

        def teardown(self) -> None:
            if os.environ.get("ASSAY_DEBUG_MACHINE"):
                print("merges", self.merges)
            transaction.savepoint_rollback(self.savepoint)

        def user(self, name: str) -> User:
            return User.objects.get(username=name)

        def fresh(self) -> ReviewRequest:
            assert self.rr is not None
            return ReviewRequest.objects.select_related("repository", "candidate", "project").get(pk=self.rr.pk)

        @precondition(lambda self: self.rr is None or self.rr.state != "open")
        @rule(index=st.integers(1, 3))
        def open(self, index: int) -> None:
            try:
                self.rr, _ = services.review_request_open(
                    user=self.user("member"),
                    project=world["project"],
                    model="fraud",
                    version=world["versions"][index].number,
                    alias="production",
                    title="t",
                )
            except DomainError as exc:
                assert exc.code in ("nothing_to_merge", "duplicate_request")  # noqa: PT017 - the refusal is allowed, not expected

        @precondition(lambda self: self.rr is not None and self.rr.state == "open")
        @rule(index=st.integers(0, 3))
        def push(self, index: int) -> None:
            assert self.rr is not None
            try:
                self.rr, _ = services.review_request_update(
                    user=self.user("member"), review_request=self.fresh(), version=world["versions"][index].number
                )
            except DomainError as exc:
                # The one refusal allowed: the version the alias holds (a no-op move; issue 16, bug 1).
                held = selectors.alias_version_id(world["versions"][index].repository, "production") == str(
                    world["versions"][index].id
                )
                if not (held and exc.code == "nothing_to_merge"):
                    raise AssertionError(exc.message) from None

        @precondition(lambda self: self.rr is not None)
        @rule(
            name=st.sampled_from([*REVIEWERS, "member", "owner"]),
            verdict=st.sampled_from(["approve", "request_changes", "comment"]),
            stale=st.sampled_from([False, False, False, True]),
        )
        def review(self, name: str, verdict: str, stale: bool) -> None:
            rr = self.fresh()
            version_hash = "0" * 64 if stale else rr.candidate.content_hash
            try:
                services.review_submit(
                    user=self.user(name), review_request=rr, verdict=verdict, body="b", version_hash=version_hash
                )
            except DomainError as exc:
                assert exc.code in (  # noqa: PT017 - the refusal is allowed, not expected
                    "author_cannot_approve",
                    "author_cannot_request_changes",
                    "registrar_cannot_approve",
                    "approver_role_too_low",
                    "stale_version",
                    "request_not_open",
                ), exc.code

        @precondition(lambda self: self.rr is not None)
        @rule(name=st.sampled_from(REVIEWERS))
        def approve_current(self, name: str) -> None:
            # the common case, so that sequences reach merges often
            self.review(name, "approve", False)

        @precondition(lambda self: self.rr is not None)
        @rule(name=st.sampled_from(REVIEWERS))
        def approve_and_check(self, name: str) -> None:
            self.run_checks()
            self.review(name, "approve", False)

        @precondition(lambda self: self.rr is not None)
        @rule(pick=st.integers(0, 20))
        def dismiss(self, pick: int) -> None:
            rr = self.fresh()
            reviews = list(Review.objects.filter(request=rr, dismissed_at__isnull=True).exclude(verdict="comment"))
            if not reviews:
                return
            try:
                services.review_dismiss(user=self.user("ana"), review=reviews[pick % len(reviews)], reason="r")
            except DomainError as exc:
                assert exc.code in ("permission_denied", "request_not_open"), exc.code  # noqa: PT017 - the refusal is allowed, not expected

        @rule(name=st.sampled_from(REVIEWERS), maintainer=st.booleans())
        def change_role(self, name: str, maintainer: bool) -> None:
            ProjectGrant.objects.filter(project=world["project"], user__username=name).update(
                role=ProjectRole.MAINTAINER if maintainer else ProjectRole.WRITER
            )

        @precondition(lambda self: self.rr is not None)
        @rule()
        def run_checks(self) -> None:
            for check in Check.objects.filter(request=self.fresh(), status="queued"):
                services.check_run(check_id=check.id)

        @precondition(lambda self: self.rr is not None)
        @rule(name=st.sampled_from(["bob", "owner"]))
        def merge(self, name: str) -> None:
            rr = self.fresh()
            alias_before = selectors.alias_version_id(rr.repository, "production")
            role = (
                ProjectGrant.objects.filter(project=rr.project, user__username=name)
                .values_list("role", flat=True)
                .first()
            )
            allowed_role = name == "owner" or (role is not None and role >= ProjectRole.MAINTAINER)
            should = rr.state == "open" and allowed_role and expected_mergeable(rr)
            try:
                services.review_request_merge(user=self.user(name), review_request=rr)
                merged = True
            except DomainError as exc:
                merged = False
                assert alias_before == selectors.alias_version_id(rr.repository, "production")
                assert exc.code != "bypass_needs_reason"  # noqa: PT017 - the refusal is allowed, not expected
            assert merged == should, (merged, should)
            if merged:
                self.merges += 1
                assert Alias.objects.get(repository=rr.repository, name="production").version_id == rr.candidate_id
            self.rr = self.fresh()

        @invariant()
        def alias_points_at_a_merged_candidate_or_the_seed(self) -> None:
            alias = Alias.objects.filter(name="production").first()
            assert alias is not None
            merged = ReviewRequest.objects.filter(state="merged").order_by("-merged_at").first()
            if merged is not None:
                assert alias.version_id == merged.candidate_id

    run_state_machine_as_test(
        ReviewMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
