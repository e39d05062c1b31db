"""The review policy, rules R1–R10, in one module. Pure: functions over a snapshot of a
request's state (:class:`RequestFacts`) and the caller's role; no queries, no writes.

Services build the facts (``reviews.selectors.request_facts``), ask here, and refuse with
the returned :class:`Decision`'s code; pages ask the same functions for their booleans
(``can_approve``, ``can_merge``), so a button is shown exactly when the action would pass.
The rules mirror GitHub's and GitLab's protected-branch settings:

====  ==================================================================================
R1    the author of the request cannot approve it (``author_cannot_approve``) nor request
      changes on it (``author_cannot_request_changes``): verdicts are the reviewers'
R2    whoever registered the candidate cannot approve it (``registrar_cannot_approve``)
R3    only approvals from members whose role is ≥ the repository's approver role
      (maintainer by default, configurable down to writer) count; others may comment
      (``approver_role_too_low``); the role is read again at merge time
R4    k approvals (1–6, default 1) from distinct users (``approvals_missing``)
R5    a new candidate dismisses every earlier approval (services, on push)
R6    "request changes" blocks merging until the same reviewer approves, or a maintainer
      dismisses it with a reason (``changes_requested``)
R7    a review names the candidate's content hash it was made on; another hash is 409
      ``stale_version``
R8    required checks must have passed on the current candidate (``checks_failing``,
      ``checks_pending``); and the alias must still hold what it held when they ran
      (``out_of_date``)
R9    admins are bound too; an explicit bypass (admins only) needs a reason and is
      audit-logged (``bypass_needs_reason``, ``bypass_not_allowed``)
R10   the policy is read from the settings of the repository (or its project), never
      from the request: no field of a request, review or merge body changes it (the
      services accept none)
====  ==================================================================================

Besides R1–R10, the workflow's other rules are here too: who may edit a request, push a
candidate, close or reopen it (``may_edit``, ``may_push_candidate``, ``may_set_state``),
what a new request must ask for (``may_open``), which reviews a dismissal applies to
(``dismissable``), and comment moderation (``may_edit_comment``, ``may_delete_comment``,
``may_resolve_thread``): a maintainer may edit or delete anyone's comment, as on GitHub.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from accounts.models import ProjectRole
from core.errors import Conflict, DomainError, Forbidden, Invalid

MIN_APPROVALS, MAX_APPROVALS = 1, 6


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str = ""
    message: str = ""
    # What a refusal raises: Forbidden (who you are), Conflict (the state of the request)
    # or Invalid (what you sent).
    error: type[DomainError] = Conflict

    def __bool__(self) -> bool:
        return self.allowed

    def refuse(self, field: str | None = None) -> None:
        """Raise a refusal as its domain error (naming ``field``); nothing when allowed."""
        if not self.allowed:
            raise self.error(self.message, code=self.code, field=field)


ALLOW = Decision(True)


def deny(code: str, message: str, error: type[DomainError] = Conflict) -> Decision:
    return Decision(False, code, message, error)


@dataclass(frozen=True)
class ReviewFact:
    author_id: str
    verdict: str  # approve | request_changes | comment
    version_hash: str
    dismissed: bool
    order: int  # position in time: later reviews have higher numbers


@dataclass(frozen=True)
class CheckFact:
    name: str
    required: bool
    status: str  # queued | running | passed | failed | error
    version_hash: str
    against_id: str | None  # the alias's version when it ran (None: no alias yet)
    finished: bool


@dataclass(frozen=True)
class RequestFacts:
    state: str  # open | merged | closed
    author_id: str | None
    registrar_id: str | None  # who registered the candidate version
    candidate_hash: str
    required_approvals: int
    approver_role: int
    alias_version_id: str | None  # what the alias holds now
    reviews: tuple[ReviewFact, ...] = ()
    checks: tuple[CheckFact, ...] = ()
    # the current role of every reviewer (R3 is evaluated against roles as they are now)
    roles: dict[str, int] = field(default_factory=dict)


def _is_maintainer(role: int | None) -> bool:
    return role is not None and role >= ProjectRole.MAINTAINER


# --- reviews -------------------------------------------------------------------------------


def may_review(
    facts: RequestFacts, *, user_id: str, role: int | None, verdict: str, version_hash: str | None
) -> Decision:
    """May ``user_id`` (with ``role`` on the project) submit a review with ``verdict``?"""
    if role is None or role < ProjectRole.WRITER:
        return deny("permission_denied", "Reviewing needs the writer role on the project.", Forbidden)
    if facts.state != "open":
        return deny("request_not_open", f"The request is {facts.state}: it takes no more reviews.")
    if verdict == "approve":
        if user_id == facts.author_id:
            return deny("author_cannot_approve", "R1: the author of a review request cannot approve it.", Forbidden)
        if user_id == facts.registrar_id:
            return deny(
                "registrar_cannot_approve", "R2: whoever registered the candidate version cannot approve it.", Forbidden
            )
        if role < facts.approver_role:
            return deny(
                "approver_role_too_low",
                f"R3: only members with the {ProjectRole(facts.approver_role).label} role or higher may approve; "
                "you may comment.",
                Forbidden,
            )
    if verdict == "request_changes" and user_id == facts.author_id:
        # R1's other half: a verdict is a reviewer's; the author answers with comments and pushes.
        return deny(
            "author_cannot_request_changes",
            "R1: the author of a review request cannot request changes on it; comment, or push a new candidate.",
            Forbidden,
        )
    if verdict in ("approve", "request_changes") and version_hash != facts.candidate_hash:
        return deny(
            "stale_version",
            "R7: the candidate changed since you loaded it (its content hash is now "
            f"{facts.candidate_hash[:12]}); review the current candidate.",
        )
    if verdict == "comment" and version_hash is not None and version_hash != facts.candidate_hash:
        return deny("stale_version", "R7: the candidate changed since you loaded it; reload and review again.")
    return ALLOW


def may_dismiss(facts: RequestFacts, *, role: int | None, reason: str) -> Decision:
    """R6: a maintainer dismisses a review (a request for changes, usually) with a reason."""
    if role is None or role < ProjectRole.MAINTAINER:
        return deny("permission_denied", "Dismissing a review needs the maintainer role.", Forbidden)
    if facts.state != "open":
        return deny("request_not_open", f"The request is {facts.state}.")
    if not reason.strip():
        return deny("dismiss_needs_reason", "R6: dismissing a review needs a reason.", Invalid)
    return ALLOW


def dismissable(*, verdict: str, dismissed: bool) -> Decision:
    """R6: a dismissal applies to a standing approval or request for changes."""
    if dismissed:
        return deny("already_dismissed", "This review is already dismissed.")
    if verdict == "comment":
        return deny("not_dismissable", "Only approvals and requests for changes can be dismissed.")
    return ALLOW


def _latest_decisive(facts: RequestFacts) -> dict[str, ReviewFact]:
    """Each reviewer's latest non-dismissed approve or request-changes review."""
    latest: dict[str, ReviewFact] = {}
    for review in sorted(facts.reviews, key=lambda r: r.order):
        if review.dismissed or review.verdict not in ("approve", "request_changes"):
            continue
        latest[review.author_id] = review
    return latest


def counted_approvers(facts: RequestFacts) -> list[str]:
    """R1–R5, R7: distinct users whose standing approval counts."""
    out = []
    for user_id, review in _latest_decisive(facts).items():
        if review.verdict != "approve" or review.version_hash != facts.candidate_hash:
            continue
        if user_id in (facts.author_id, facts.registrar_id):
            continue
        if facts.roles.get(user_id, 0) < facts.approver_role:
            continue
        out.append(user_id)
    return sorted(out)


def changes_requested_by(facts: RequestFacts) -> list[str]:
    """R6: reviewers whose latest standing decisive review requests changes (whatever
    candidate it was made on: a push does not clear it)."""
    return sorted(u for u, r in _latest_decisive(facts).items() if r.verdict == "request_changes")


def required_check_problems(facts: RequestFacts) -> Decision:
    """R8 over the checks of the current candidate."""
    current = [c for c in facts.checks if c.version_hash == facts.candidate_hash]
    required = [c for c in current if c.required]
    failing = [c.name for c in required if c.status in ("failed", "error")]
    if failing:
        return deny("checks_failing", f"R8: required checks did not pass: {', '.join(sorted(failing))}.")
    pending = [c.name for c in required if c.status not in ("passed", "failed", "error")]
    if pending:
        return deny("checks_pending", f"R8: required checks have not finished: {', '.join(sorted(pending))}.")
    return ALLOW


def is_out_of_date(facts: RequestFacts) -> bool:
    """The alias moved since the checks of the current candidate ran."""
    ran = [c for c in facts.checks if c.version_hash == facts.candidate_hash and c.finished]
    return any(c.against_id != facts.alias_version_id for c in ran)


def merge_blockers(facts: RequestFacts) -> list[Decision]:
    """Every reason the request cannot be merged now (empty: it can), in the order a
    reader fixes them."""
    problems: list[Decision] = []
    if facts.state != "open":
        return [deny("request_not_open", f"The request is {facts.state}.")]
    approvals = counted_approvers(facts)
    if len(approvals) < facts.required_approvals:
        problems.append(
            deny(
                "approvals_missing",
                f"R4: {facts.required_approvals} approval(s) needed from members with the "
                f"{ProjectRole(facts.approver_role).label} role or higher; {len(approvals)} counted.",
            )
        )
    blockers = changes_requested_by(facts)
    if blockers:
        problems.append(
            deny(
                "changes_requested",
                "R6: a reviewer requested changes; they must approve, or a "
                "maintainer must dismiss the review with a reason.",
            )
        )
    checks = required_check_problems(facts)
    if not checks:
        problems.append(checks)
    if is_out_of_date(facts):
        problems.append(
            deny("out_of_date", "R8: the alias moved since the checks ran; re-run the checks before merging.")
        )
    return problems


def may_merge(facts: RequestFacts, *, role: int | None, bypass: bool = False, reason: str = "") -> Decision:
    """Merging needs the maintainer role and no blocker (R9: admins too), unless an admin
    bypasses explicitly with a reason."""
    if role is None or role < ProjectRole.MAINTAINER:
        return deny("permission_denied", "Merging needs the maintainer role.", Forbidden)
    if facts.state != "open":
        return deny("request_not_open", f"The request is {facts.state}.")
    if bypass:
        if role < ProjectRole.ADMIN:
            return deny("bypass_not_allowed", "R9: only project admins may bypass the review policy.", Forbidden)
        if not reason.strip():
            return deny("bypass_needs_reason", "R9: a bypass needs a reason (it is written to the audit log).", Invalid)
        return ALLOW
    blockers = merge_blockers(facts)
    return blockers[0] if blockers else ALLOW


def derived_status(facts: RequestFacts) -> str:
    """What a list shows: merged, closed, changes_requested, checks_failing, out_of_date,
    approved or review_required."""
    if facts.state != "open":
        return facts.state
    if changes_requested_by(facts):
        return "changes_requested"
    checks = required_check_problems(facts)
    if not checks and checks.code == "checks_failing":
        return "checks_failing"
    if is_out_of_date(facts):
        return "out_of_date"
    if len(counted_approvers(facts)) >= facts.required_approvals:
        return "approved"
    return "review_required"


# --- the request itself ------------------------------------------------------------------------


def may_open(*, alias: str, candidate_number: int, alias_holds_candidate: bool, duplicate: int | None) -> Decision:
    """A new request asks for a move that is not made yet (the alias does not already hold
    the candidate) and that no open request (number ``duplicate``) asks for already."""
    if alias_holds_candidate:
        return deny("nothing_to_merge", f"The alias {alias!r} already points at v{candidate_number}.")
    if duplicate is not None:
        return deny("duplicate_request", f"#{duplicate} already asks to move {alias!r} to v{candidate_number}.")
    return ALLOW


def may_edit(facts: RequestFacts, *, user_id: str, role: int | None) -> Decision:
    """Title, description, labels, reviewers, candidate, close and reopen: the author
    (writer or above) or a maintainer."""
    if role is None or role < ProjectRole.WRITER:
        return deny("permission_denied", "Editing a review request needs the writer role.", Forbidden)
    if user_id != facts.author_id and role < ProjectRole.MAINTAINER:
        return deny("permission_denied", "Only the author or a maintainer may change this review request.", Forbidden)
    return ALLOW


def may_set_state(facts: RequestFacts) -> Decision:
    """Close or reopen (on top of may_edit): a merged request stays merged."""
    if facts.state == "merged":
        return deny("request_not_open", "The request is merged.")
    return ALLOW


def may_push_candidate(
    facts: RequestFacts, *, alias: str = "", version_id: str | None = None, version_number: int | None = None
) -> Decision:
    """A new candidate (on top of may_edit; R5 follows) goes to an open request only, and
    (as for :func:`may_open`) it is not the version the alias already holds: that request
    would move nothing. Without ``version_id`` only the request's state is asked (may the
    page offer a push at all)."""
    if facts.state == "merged":
        return deny("request_not_open", "The request is merged.")
    if facts.state != "open":
        return deny("request_not_open", "Reopen the request before pushing a new candidate.")
    if version_id is not None and facts.alias_version_id is not None and str(version_id) == facts.alias_version_id:
        return deny("nothing_to_merge", f"The alias {alias!r} already points at v{version_number}.")
    return ALLOW


def may_rerun_checks(facts: RequestFacts, *, role: int | None) -> Decision:
    if role is None or role < ProjectRole.MAINTAINER:
        return deny("permission_denied", "Re-running checks needs the maintainer role.", Forbidden)
    if facts.state != "open":
        return deny("request_not_open", f"The request is {facts.state}.")
    return ALLOW


# --- comments -----------------------------------------------------------------------------------
# Commenting itself is the ``review.comment`` action of accounts.access; these rules come after.


def may_change_comment(*, deleted: bool) -> Decision:
    """A deleted comment keeps its place in its thread but takes no edit and no resolution."""
    if deleted:
        return deny("comment_deleted", "This comment was deleted.")
    return ALLOW


def may_edit_comment(*, user_id: str, author_id: str | None, role: int | None) -> Decision:
    """Moderation, as on GitHub: its author edits a comment; a maintainer edits anyone's
    (the comment shows it was edited)."""
    if user_id != author_id and not _is_maintainer(role):
        return deny("permission_denied", "Only its author (or a maintainer) may edit a comment.", Forbidden)
    return ALLOW


def may_delete_comment(*, user_id: str, author_id: str | None, role: int | None) -> Decision:
    """Moderation: its author deletes a comment; a maintainer deletes anyone's."""
    if user_id != author_id and not _is_maintainer(role):
        return deny("permission_denied", "Only its author (or a maintainer) may delete a comment.", Forbidden)
    return ALLOW


def may_resolve_thread(
    *, user_id: str, thread_author_id: str | None, request_author_id: str | None, role: int | None
) -> Decision:
    """A thread is resolved (or unresolved) by the author of its first comment, the
    request's author or a maintainer."""
    if user_id not in (thread_author_id, request_author_id) and not _is_maintainer(role):
        return deny(
            "permission_denied",
            "Only the thread's author, the request's author or a maintainer may resolve it.",
            Forbidden,
        )
    return ALLOW
