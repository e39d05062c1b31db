"""R1–R10 as pure functions over a request's facts (reviews/policy.py)."""

from __future__ import annotations

from dataclasses import replace

from accounts.models import ProjectRole
from core.errors import Conflict, Forbidden
from reviews import policy
from reviews.policy import CheckFact, RequestFacts, ReviewFact

H1, H2 = "1" * 64, "2" * 64
AUTHOR, REGISTRAR, ANA, BOB = "author", "registrar", "ana", "bob"
MAINT, WRITER, ADMIN = int(ProjectRole.MAINTAINER), int(ProjectRole.WRITER), int(ProjectRole.ADMIN)


def facts(**kwargs: object) -> RequestFacts:
    base = RequestFacts(
        state="open",
        author_id=AUTHOR,
        registrar_id=REGISTRAR,
        candidate_hash=H2,
        required_approvals=1,
        approver_role=MAINT,
        alias_version_id="v1",
        reviews=(),
        checks=(CheckFact("artifact-integrity", True, "passed", H2, "v1", True),),
        roles={ANA: MAINT, BOB: MAINT, AUTHOR: MAINT, REGISTRAR: MAINT},
    )
    return replace(base, **kwargs)  # type: ignore[arg-type]


def approve(user: str, h: str = H2, order: int = 0, dismissed: bool = False) -> ReviewFact:
    return ReviewFact(user, "approve", h, dismissed, order)


def changes(user: str, h: str = H2, order: int = 0) -> ReviewFact:
    return ReviewFact(user, "request_changes", h, False, order)


def test_r1_the_author_cannot_approve() -> None:
    d = policy.may_review(facts(), user_id=AUTHOR, role=ADMIN, verdict="approve", version_hash=H2)
    assert (d.allowed, d.code, d.error) == (False, "author_cannot_approve", Forbidden)


def test_r1_the_author_may_comment() -> None:
    assert policy.may_review(facts(), user_id=AUTHOR, role=ADMIN, verdict="comment", version_hash=None)


def test_r2_the_registrar_cannot_approve() -> None:
    d = policy.may_review(facts(), user_id=REGISTRAR, role=ADMIN, verdict="approve", version_hash=H2)
    assert d.code == "registrar_cannot_approve"


def test_r3_a_writer_cannot_approve_but_may_comment_and_the_role_is_configurable() -> None:
    d = policy.may_review(facts(), user_id=ANA, role=WRITER, verdict="approve", version_hash=H2)
    assert d.code == "approver_role_too_low"
    assert policy.may_review(facts(), user_id=ANA, role=WRITER, verdict="comment", version_hash=None)
    assert policy.may_review(facts(approver_role=WRITER), user_id=ANA, role=WRITER, verdict="approve", version_hash=H2)


def test_r3_an_approval_stops_counting_when_its_author_is_demoted() -> None:
    f = facts(reviews=(approve(ANA),))
    assert policy.counted_approvers(f) == [ANA]
    assert policy.counted_approvers(replace(f, roles={ANA: WRITER})) == []


def test_r4_k_approvals_from_distinct_users() -> None:
    f = facts(required_approvals=2, reviews=(approve(ANA, order=0), approve(ANA, order=1)))
    assert [b.code for b in policy.merge_blockers(f)] == ["approvals_missing"]
    f = replace(f, reviews=(approve(ANA, order=0), approve(BOB, order=1)))
    assert policy.merge_blockers(f) == []


def test_r5_r7_approvals_of_another_hash_or_dismissed_do_not_count() -> None:
    assert policy.counted_approvers(facts(reviews=(approve(ANA, h=H1),))) == []
    assert policy.counted_approvers(facts(reviews=(approve(ANA, dismissed=True),))) == []


def test_r6_request_changes_blocks_until_the_same_reviewer_approves() -> None:
    f = facts(reviews=(approve(BOB, order=0), changes(ANA, h=H1, order=1)))
    assert "changes_requested" in [b.code for b in policy.merge_blockers(f)]
    f = replace(f, reviews=(*f.reviews, approve(ANA, order=2)))
    assert policy.merge_blockers(f) == []


def test_r6_a_later_comment_does_not_clear_a_request_for_changes() -> None:
    f = facts(reviews=(approve(BOB, order=0), changes(ANA, order=1), ReviewFact(ANA, "comment", H2, False, 2)))
    assert policy.changes_requested_by(f) == [ANA]


def test_r6_dismissal_needs_a_maintainer_and_a_reason() -> None:
    assert policy.may_dismiss(facts(), role=WRITER, reason="x").error is Forbidden
    assert policy.may_dismiss(facts(), role=MAINT, reason=" ").code == "dismiss_needs_reason"
    assert policy.may_dismiss(facts(), role=MAINT, reason="obsolete")


def test_r7_reviewing_a_changed_candidate_is_409_stale_version() -> None:
    d = policy.may_review(facts(), user_id=ANA, role=MAINT, verdict="approve", version_hash=H1)
    assert (d.code, d.error) == ("stale_version", Conflict)
    d = policy.may_review(facts(), user_id=ANA, role=MAINT, verdict="request_changes", version_hash=H1)
    assert d.code == "stale_version"


def test_r8_required_checks_must_pass_on_the_current_candidate() -> None:
    approved = (approve(ANA),)
    failing = facts(reviews=approved, checks=(CheckFact("artifact-integrity", True, "failed", H2, "v1", True),))
    assert [b.code for b in policy.merge_blockers(failing)] == ["checks_failing"]
    pending = facts(reviews=approved, checks=(CheckFact("artifact-integrity", True, "running", H2, None, False),))
    assert [b.code for b in policy.merge_blockers(pending)] == ["checks_pending"]
    optional = facts(reviews=approved, checks=(CheckFact("lineage", False, "failed", H2, "v1", True),))
    assert policy.merge_blockers(optional) == []


def test_r8_the_request_is_out_of_date_when_the_alias_moved_since_the_checks() -> None:
    f = facts(reviews=(approve(ANA),), alias_version_id="v3")
    assert [b.code for b in policy.merge_blockers(f)] == ["out_of_date"]
    assert policy.derived_status(f) == "out_of_date"


def test_r9_admins_are_bound_and_a_bypass_needs_an_admin_and_a_reason() -> None:
    f = facts()
    assert policy.may_merge(f, role=ADMIN).code == "approvals_missing"
    assert policy.may_merge(f, role=MAINT, bypass=True, reason="hotfix").code == "bypass_not_allowed"
    assert policy.may_merge(f, role=ADMIN, bypass=True, reason="").code == "bypass_needs_reason"
    assert policy.may_merge(f, role=ADMIN, bypass=True, reason="hotfix")


def test_merging_needs_a_maintainer_and_an_open_request() -> None:
    f = facts(reviews=(approve(ANA),))
    assert policy.may_merge(f, role=WRITER).error is Forbidden
    assert policy.may_merge(f, role=MAINT)
    assert policy.may_merge(replace(f, state="merged"), role=MAINT).code == "request_not_open"


def test_derived_status() -> None:
    assert policy.derived_status(facts()) == "review_required"
    assert policy.derived_status(facts(reviews=(approve(ANA),))) == "approved"
    assert policy.derived_status(facts(reviews=(changes(ANA),))) == "changes_requested"
    assert policy.derived_status(facts(state="closed")) == "closed"


def test_only_the_author_or_a_maintainer_edits() -> None:
    assert policy.may_edit(facts(), user_id=AUTHOR, role=WRITER)
    assert policy.may_edit(facts(), user_id=ANA, role=WRITER).error is Forbidden
    assert policy.may_edit(facts(), user_id=ANA, role=MAINT)
    assert policy.may_edit(facts(), user_id=AUTHOR, role=ProjectRole.VIEWER).error is Forbidden


def test_r10_no_fact_of_the_policy_comes_from_the_request() -> None:
    # The facts carry the policy (approvals, approver role) as read from the repository's
    # settings; the services take no such field from request, review or merge bodies.
    import inspect

    from reviews import services

    for function in (
        services.review_request_open,
        services.review_request_update,
        services.review_submit,
        services.review_request_merge,
    ):
        params = set(inspect.signature(function).parameters)
        assert not params & {"required_approvals", "approver_role", "required_checks", "gates_config"}


def test_a_comment_is_edited_and_deleted_by_its_author_or_a_maintainer() -> None:
    for may in (policy.may_edit_comment, policy.may_delete_comment):
        assert may(user_id=ANA, author_id=ANA, role=WRITER)
        assert may(user_id=BOB, author_id=ANA, role=MAINT)
        refused = may(user_id=BOB, author_id=ANA, role=WRITER)
        assert (refused.allowed, refused.code, refused.error) == (False, "permission_denied", Forbidden)
        # a comment whose author was deleted is moderated by maintainers only
        assert not may(user_id=BOB, author_id=None, role=WRITER)
        assert may(user_id=BOB, author_id=None, role=ADMIN)


def test_a_thread_is_resolved_by_its_author_the_requests_author_or_a_maintainer() -> None:
    def may(user: str, role: int) -> bool:
        return bool(policy.may_resolve_thread(user_id=user, thread_author_id=ANA, request_author_id=AUTHOR, role=role))

    assert may(ANA, WRITER)
    assert may(AUTHOR, WRITER)
    assert may(BOB, MAINT)
    assert not may(BOB, WRITER)


def test_a_deleted_comment_takes_no_change() -> None:
    assert policy.may_change_comment(deleted=False)
    assert policy.may_change_comment(deleted=True).code == "comment_deleted"


def test_a_merged_request_takes_no_new_state_and_a_closed_one_no_new_candidate() -> None:
    assert policy.may_set_state(facts(state="closed"))
    assert policy.may_set_state(facts(state="merged")).code == "request_not_open"
    assert policy.may_push_candidate(facts())
    pushed_closed = policy.may_push_candidate(facts(state="closed"))
    assert (pushed_closed.code, pushed_closed.error) == ("request_not_open", Conflict)
    assert "Reopen" in pushed_closed.message
    assert policy.may_push_candidate(facts(state="merged")).message == "The request is merged."


def test_only_standing_approvals_and_requests_for_changes_are_dismissable() -> None:
    assert policy.dismissable(verdict="approve", dismissed=False)
    assert policy.dismissable(verdict="request_changes", dismissed=False)
    assert policy.dismissable(verdict="comment", dismissed=False).code == "not_dismissable"
    assert policy.dismissable(verdict="approve", dismissed=True).code == "already_dismissed"


def test_a_request_asks_for_a_move_not_made_and_not_asked_for_already() -> None:
    def decide(holds: bool, duplicate: int | None) -> str:
        return policy.may_open(
            alias="production", candidate_number=2, alias_holds_candidate=holds, duplicate=duplicate
        ).code

    assert decide(False, None) == ""
    assert decide(True, None) == "nothing_to_merge"
    assert decide(False, 3) == "duplicate_request"


def test_a_push_of_the_version_the_alias_holds_moves_nothing_and_is_refused() -> None:
    """Issue 16, bug 1: as may_open refuses a request whose alias holds the candidate."""
    held = policy.may_push_candidate(facts(), alias="production", version_id="v1", version_number=1)
    assert (held.code, held.error) == ("nothing_to_merge", Conflict)
    assert held.message == "The alias 'production' already points at v1."
    assert policy.may_push_candidate(facts(), alias="production", version_id="v3", version_number=3)
    assert policy.may_push_candidate(
        facts(alias_version_id=None), alias="production", version_id="v1", version_number=1
    )
