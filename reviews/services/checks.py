"""Review checks: queue the configured checks on a request's candidate, re-run them, and
run one (what the worker's task calls) with its evaluators: artifact integrity, lineage
completeness and the metric gates (parsed and evaluated by the pure reviews.gates)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from artifacts.models import Artifact, Blob
from artifacts.presenters import scan_state
from core.tasks import enqueue_on_commit
from registry.models import ModelVersion
from reviews import events, gates, policy, selectors, serializers
from reviews.models import Check, Notification, ReviewRequest, TimelineEvent
from reviews.services.base import (
    CHECK_RUN_TASK,
    lock_request,
    lock_request_id,
    request_label,
    role_of,
    timeline_add,
)
from reviews.services.notifications import notify


def queue_checks(rr: ReviewRequest) -> list[Check]:
    """(Re)queue every configured check on the current candidate; the tasks leave after commit."""
    config = selectors.configured_checks(selectors.settings_for(rr.repository))
    queued: list[Check] = []
    for item in config:
        check, created = Check.objects.select_for_update().get_or_create(
            request=rr,
            version=rr.candidate,
            name=item["name"],
            defaults={
                "kind": item["kind"],
                "expression": item["expression"],
                "version_hash": rr.candidate.content_hash,
            },
        )
        if not created:
            check.kind = item["kind"]
            check.expression = item["expression"]
            check.status = Check.Status.QUEUED
            check.summary = ""
            check.details = {}
            check.against = None
            check.started_at = check.finished_at = None
            check.attempt += 1
            check.save()
        queued.append(check)
        enqueue_on_commit(CHECK_RUN_TASK, check.id)
    events.request_event(rr, "checks.queued", {"checks": serializers.checks_out(rr)})
    return queued


@transaction.atomic
def checks_rerun(*, user: User, review_request: ReviewRequest) -> list[Check]:
    """Maintainers re-run the checks of the current candidate (after the alias moved, or
    after a gate changed)."""
    rr = lock_request(review_request)
    policy.may_rerun_checks(selectors.request_facts(rr), role=role_of(user, rr.project)).refuse()
    return queue_checks(rr)


def _artifact_integrity(version: ModelVersion) -> tuple[str, str, dict[str, Any]]:
    """Two questions, answered apart: are the binary's bytes intact (the store holds them
    under the sha256 the version names, verified), and were its contents scanned. A
    dangerous pickle global always fails, and so does a file a scanning cap refused (the
    worker flags it unsafe); a file the scanner could not read ("not scanned: <reason>")
    fails only when the review policy says so (``block_unscanned``), else it passes with
    a warning in ``details["warnings"]``. ``details`` keeps its earlier keys
    (``sha256``, ``artifact_status``, ``unsafe_globals``) and adds ``bytes``, ``contents``,
    ``warnings`` and ``block_unscanned``."""
    artifact = Artifact.objects.select_related("blob").filter(pk=version.artifact_id).first()
    blob = Blob.objects.filter(pk=version.blob_id).first()
    details: dict[str, Any] = {"sha256": version.binary_sha256}
    if blob is None or blob.sha256 != version.binary_sha256:
        details["bytes"] = {"state": "missing", "sha256": version.binary_sha256}
        return "failed", "The binary's bytes are not in the store under its sha256.", details
    if blob.status != Blob.Status.VERIFIED:
        details["bytes"] = {"state": "unverified", "sha256": version.binary_sha256}
        return "failed", f"The binary's hash is not verified yet (blob {blob.status}).", details
    details["bytes"] = {"state": "intact", "sha256": version.binary_sha256}
    bytes_text = "Bytes intact (sha256 verified)"
    if artifact is None:
        details["contents"] = {"state": "not_needed", "reason": "no artifact record to scan"}
        return "passed", f"{bytes_text}; no artifact record to scan.", details
    details["artifact_status"] = artifact.status
    if artifact.status != Artifact.Status.READY:
        return "failed", f"The artifact is not processed ({artifact.status}); re-run when it is ready.", details
    findings = artifact.findings or {}
    unsafe = findings.get("unsafe_globals") or []
    details["unsafe_globals"] = unsafe[:20]
    contents = scan_state(findings)
    details["contents"] = contents
    details["warnings"] = []
    if unsafe:
        return "failed", f"{bytes_text}; unsafe pickle globals found: {', '.join(unsafe[:5])}.", details
    if findings.get("unsafe"):
        # SECURITY: refused by a scanning cap (a zip bomb, a pickle over the size limit):
        # the worker flags it unsafe on purpose, so no policy lets it through.
        reason = contents.get("reason", "see the artifact's findings")
        return "failed", f"{bytes_text}; contents refused by a scanning cap, treated as unsafe: {reason}.", details
    if contents["state"] == "not_scanned":
        block = selectors.settings_for(version.repository).block_unscanned
        details["block_unscanned"] = block
        text = f"contents not scanned: {contents['reason']}"
        if block:
            return "failed", f"{bytes_text}; {text}; the review policy blocks files it could not scan.", details
        details["warnings"].append(text)
        return "passed", f"{bytes_text}; warning: {text} (the review policy lets it pass).", details
    if contents["state"] == "scanned":
        count = len(findings.get("globals") or [])
        return "passed", f"{bytes_text}; contents scanned: {count} imported name(s), none dangerous.", details
    return "passed", f"{bytes_text}; no pickle scan needed: {contents['reason']}.", details


def _lineage(version: ModelVersion) -> tuple[str, str, dict[str, Any]]:
    code = version.code or {}
    environment = version.environment or {}
    missing = []
    if not code.get("commit"):
        missing.append("code (git commit)")
    if not environment.get("python") or not environment.get("packages"):
        missing.append("environment (Python and packages)")
    if not version.datasets:
        missing.append("data (dataset fingerprints)")
    details = {"missing": missing}
    if missing:
        return "failed", "Not recorded: " + "; ".join(missing) + ".", details
    return "passed", "Code, environment and data are recorded.", details


def _gate(check: Check, version: ModelVersion, current: ModelVersion | None) -> tuple[str, str, dict[str, Any]]:
    try:
        gate = gates.parse(check.expression)
    except gates.GateError as exc:
        return "error", f"The gate does not parse: {exc}", {}
    result = gate.evaluate(candidate=version.metrics or {}, current=current.metrics if current is not None else None)
    details = {"values": result.values, "against": current.number if current is not None else None}
    if result.missing is not None:
        if result.missing.startswith("current.") and current is None:
            return "passed", "Nothing to compare with: the alias points nowhere yet.", details
        return "failed", f"No value for {result.missing}.", details
    if result.passed:
        return "passed", f"{check.expression} holds ({'; '.join(result.values)}).", details
    return "failed", f"{check.expression} does not hold ({'; '.join(result.values)}).", details


def check_run(*, check_id: str) -> Check | None:
    """Run one check (called by the task). Idempotent: a check that is finished, superseded
    (the candidate changed) or re-queued meanwhile is left alone."""
    # A check never changes request, so its request is read unlocked, then locked before the
    # check: the app's one lock order (reviews.services.base), as the re-run takes them.
    request_id = Check.objects.filter(pk=check_id).values_list("request_id", flat=True).first()
    if request_id is None:
        return None
    with transaction.atomic():
        rr = lock_request_id(request_id)
        check = Check.objects.select_for_update().filter(pk=check_id).first()
        if check is None or check.status not in (Check.Status.QUEUED, Check.Status.RUNNING):
            return check
        if rr.candidate_id != check.version_id or rr.state != ReviewRequest.State.OPEN:
            return check
        check.status = Check.Status.RUNNING
        check.started_at = timezone.now()
        check.save(update_fields=["status", "started_at"])
        attempt = check.attempt
        events.request_event(rr, "check.updated", serializers.check_out(check, required=False))
    version = ModelVersion.objects.get(pk=check.version_id)
    against_id = selectors.alias_version_id(rr.repository, rr.alias)
    current = ModelVersion.objects.filter(pk=against_id).first() if against_id else None
    try:
        if check.kind == Check.Kind.ARTIFACT_INTEGRITY:
            status, summary, details = _artifact_integrity(version)
        elif check.kind == Check.Kind.LINEAGE:
            status, summary, details = _lineage(version)
        else:
            status, summary, details = _gate(check, version, current)
    except Exception as exc:  # noqa: BLE001 - a broken check reports "error", it does not vanish
        status, summary, details = "error", f"The check failed to run: {type(exc).__name__}.", {}
    with transaction.atomic():
        rr = lock_request_id(request_id)
        check = Check.objects.select_for_update().get(pk=check_id)
        if check.attempt != attempt or check.status != Check.Status.RUNNING:
            return check  # re-queued meanwhile: the newer attempt reports
        check.status = status
        check.summary = summary[:2000]
        check.details = details
        check.against = current
        check.finished_at = timezone.now()
        check.save()
        required = check.name in selectors.settings_for(rr.repository).required_checks
        timeline_add(
            rr,
            TimelineEvent.Kind.CHECK,
            None,
            {"name": check.name, "status": status, "summary": summary[:300], "version": version.number},
        )
        events.request_event(rr, "check.updated", serializers.check_out(check, required=required))
        events.domain_event(rr, "check.completed", None, check=check.id)
        if status in ("failed", "error") and rr.author is not None:
            notify(
                users=[rr.author],
                kind=Notification.Kind.CHECKS_FAILED,
                request=rr,
                actor=None,
                summary=f"Check {check.name} {status} on {request_label(rr)}: {summary[:150]}",
            )
    return check
