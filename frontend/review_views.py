"""Review pages: the list (open, closed, awaiting my review, mine), a request page with
Conversation / Checks / Changes tabs, the open form, and the notification centre.

Thin: the policy loads, the services write, reviews.policy answers every "may I" as a
ready boolean for the template (``can_approve``, ``can_merge`` …).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import access_project
from accounts.models import ProjectRole
from frontend.common import request_user
from frontend.errors import form_errors, policy_errors
from live.eventlog import current_seq
from registry import selectors as registry_selectors
from registry.models import ModelVersion
from reports import selectors as report_selectors
from reviews import events, policy, selectors, serializers, services
from reviews.access import access_review_request
from reviews.models import Comment, ReviewRequest

TABS = ("open", "closed", "awaiting", "mine")


def _page_url(rr: ReviewRequest, tab: str = "") -> str:
    url = reverse("review-request", args=[rr.project.team.name, rr.project.name, rr.number])
    return f"{url}?tab={tab}" if tab else url


def _mention_note(request: HttpRequest, unreachable: list[str]) -> None:
    if unreachable:
        names = ", ".join("@" + n for n in unreachable)
        messages.warning(request, f"Nobody was notified for {names}: no one by that name may see this project.")


@login_required
def review_list(request: HttpRequest, team: str, project: str) -> HttpResponse:
    with policy_errors():
        proj = access_project(request.user, team, project, action="review.view")
    tab = request.GET.get("tab", "open")
    if tab not in TABS:
        tab = "open"
    user = request_user(request)
    if tab == "awaiting":
        qs = selectors.requests_of(proj, state="open", reviewer=user)
    elif tab == "mine":
        qs = selectors.requests_of(proj, author=user)
    elif tab == "closed":
        qs = selectors.requests_of(proj).exclude(state="open")
    else:
        qs = selectors.requests_of(proj, state="open")
    rows = []
    for rr in qs[:200]:
        facts = selectors.request_facts(rr)
        rows.append({"rr": rr, "status": policy.derived_status(facts), "url": _page_url(rr)})
    return render(
        request,
        "reviews/list.html",
        {"project": proj, "rows": rows, "tab": tab, "tabs": TABS, "can_open": access.can(user, "review.create", proj)},
    )


@login_required
def review_new(request: HttpRequest, team: str, project: str) -> HttpResponse:
    with policy_errors():
        proj = access_project(request.user, team, project, action="review.create")
    form = {
        k: request.POST.get(k, request.GET.get(k, "")).strip()
        for k in ("model", "version", "alias", "title", "description", "reviewers")
    }
    form["alias"] = form["alias"] or "production"
    if form["version"].isdigit():
        form["version"] = f"v{form['version']}"
    if request.method == "POST":
        reviewers = [r for r in form["reviewers"].replace(",", " ").split() if r]
        with form_errors(request, "The request was not opened", with_code=True):
            rr, unreachable = services.review_request_open(
                user=request_user(request),
                project=proj,
                model=form["model"],
                version=form["version"],
                alias=form["alias"],
                title=form["title"],
                description=form["description"],
                reviewers=reviewers,
            )
            _mention_note(request, unreachable)
            return redirect(_page_url(rr))
    models = list(registry_selectors.models_of(proj))
    versions = _version_choices(models)
    if models and form["model"] not in versions:
        form["model"] = models[0].name
    choices = versions.get(form["model"], [])
    if choices and form["version"] not in {c["value"] for c in choices}:
        # the newest version the alias does not hold already (the policy refuses that no-op)
        form["version"] = next((c["value"] for c in choices if form["alias"] not in c["aliases"]), choices[0]["value"])
    suggestion = (
        services.suggested_title(model=form["model"], alias=form["alias"], version_number=int(form["version"][1:]))
        if choices
        else ""
    )
    if request.method == "GET" and not form["title"]:
        form["title"] = suggestion
    groups = [{"model": name, "choices": choices} for name, choices in versions.items()]
    context = {
        "project": proj,
        "form": form,
        "models": models,
        "version_groups": groups,
        "suggestion": suggestion,
        "can_invite": access.can(request.user, "project.invite", proj),
    }
    return render(request, "reviews/new.html", context, status=400 if request.method == "POST" else 200)


MAX_VERSION_CHOICES = 100


def _version_choices(models: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Each model's newest versions for the form's select, with the aliases each one holds."""
    out: dict[str, list[dict[str, Any]]] = {}
    for repository in models:
        out[repository.name] = [
            {"value": f"v{v.number}", "hash": v.short_hash, "aliases": sorted(a.name for a in v.aliases.all())}
            for v in registry_selectors.versions_of(repository)[:MAX_VERSION_CHOICES]
        ]
    return out


def _thread_rows(comments: list[Comment]) -> list[dict[str, Any]]:
    roots = [c for c in comments if c.parent_id is None]
    replies: dict[str, list[Comment]] = {}
    for c in comments:
        if c.parent_id is not None:
            replies.setdefault(c.parent_id, []).append(c)
    return [{"root": c, "comments": [c, *replies.get(c.id, [])]} for c in roots]


def _anchor_key(kind: str, key: str) -> str:
    return f"{kind}:{key}"


# What a comment may anchor on (reviews.services.inputs.check_anchor); code and environment
# rows are shown but commented on in the conversation.
ANCHORABLE = {"param", "metric", "package", "dataset", "file"}


def _diff_rows(rr: ReviewRequest) -> list[dict[str, Any]]:
    """The Changes tab: the candidate against what the alias holds. When it holds nothing,
    the candidate's whole contents, each row "new" (issue 16, bug 8)."""
    new = rr.base is None
    result = registry_selectors.version_diff(rr.base, rr.candidate)
    rows: list[dict[str, Any]] = []

    def add(kind: str, key: str, change: str, a: Any, b: Any) -> None:
        rows.append(
            {
                "kind": kind,
                "key": key,
                "change": "new" if new else change,
                "a": a,
                "b": b,
                "anchorable": kind in ANCHORABLE,
            }
        )

    for key, value in result["params"]["added"].items():
        add("param", key, "added", "—", value)
    for key, value in result["params"]["removed"].items():
        add("param", key, "removed", value, "—")
    for key, change in result["params"]["changed"].items():
        add("param", key, "changed", change["from"], change["to"])
    for row in result["metrics"]:
        delta = f" (Δ {row['delta']:+.6g})" if row["delta"] is not None else ""
        add(
            "metric",
            row["key"],
            row["status"] + delta,
            row["a"] if row["a"] is not None else "—",
            row["b"] if row["b"] is not None else "—",
        )
    if result["binary"]["changed"]:
        add(
            "file",
            rr.candidate.binary_path,
            "binary changed",
            (result["binary"]["from"] or "—")[:12],
            f"{(result['binary']['to'] or '')[:12]} · {rr.candidate.binary_size} bytes"
            if new
            else (result["binary"]["to"] or "")[:12],
        )
    for field, change in result["code"].items():
        if change is not None and (change["to"] is not None or not new):
            shown = [_code_text(change["from"]), _code_text(change["to"])]
            add("code", field, "changed", *shown)
    environment = result["environment"]
    for field in ("python", "os", "accelerator"):
        change = environment[field]
        if change is not None and (change["to"] is not None or not new):
            add("environment", field, "changed", change["from"] or "—", change["to"] or "—")
    for kind, items in environment["packages"].items():
        for name, value in items.items():
            a, b = (
                (value["from"], value["to"])
                if isinstance(value, dict)
                else (("—", value) if kind == "added" else (value, "—"))
            )
            add("package", name, kind, a, b)
    for item in result["datasets"]["added"]:
        add("dataset", item["name"], "added", "—", item.get("digest") or "")
    for item in result["datasets"]["removed"]:
        add("dataset", item["name"], "removed", item.get("digest") or "", "—")
    for item in result["datasets"]["changed"]:
        add("dataset", item["name"], "changed", "", "")
    return rows


def _code_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    text = str(value)
    return text[:12] if len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text) else text


@login_required
def review_page(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    with policy_errors():
        rr = access_review_request(request.user, team, project, number)
    # Before the queries: the page's live updates start after what it shows (live/eventlog.py).
    live_seq = current_seq(events.request_topic(rr))
    rr.refresh_from_db()  # the access check read it before the number: read it again after
    user = request_user(request)
    tab = request.GET.get("tab", "conversation")
    if tab not in ("conversation", "checks", "changes"):
        tab = "conversation"
    page = selectors.review_page_context(user, rr)
    threads = _thread_rows(selectors.comments_of(rr))
    anchored: dict[str, list[dict[str, Any]]] = {}
    for thread in threads:
        anchor = thread["root"].anchor
        if anchor:
            anchored.setdefault(_anchor_key(anchor["kind"], anchor["key"]), []).append(thread)
    diff_rows = _diff_rows(rr)
    for row in diff_rows:
        row["threads"] = anchored.get(_anchor_key(row["kind"], str(row["key"])), [])
    reviews = selectors.reviews_of(rr)
    context = {
        "project": rr.project,
        "rr": rr,
        "tab": tab,
        "live_seq": live_seq,
        "out": serializers.request_out(rr, facts=page.facts),
        "description_html": mark_safe(rr.description_html),  # noqa: S308 - sanitised by core.markdown
        "timeline": selectors.timeline_of(rr),
        "reviews": reviews,
        "threads": threads,
        "checks": serializers.checks_out(rr),
        "diff_rows": diff_rows,
        # The versions a push may offer: not the candidate, and not what the alias holds
        # already (the policy refuses that no-op move, so the form does not offer it).
        "newer_versions": [
            v
            for v in ModelVersion.objects.filter(repository=rr.repository)
            .exclude(pk=rr.candidate_id)
            .order_by("-number")[:21]
            if policy.may_push_candidate(page.facts, alias=rr.alias, version_id=str(v.id), version_number=v.number)
        ][:20],
        "can_comment": page.can_comment,
        "can_approve": page.can_approve,
        "can_request_changes": page.can_request_changes,
        "can_merge": page.can_merge,
        "is_maintainer": page.can_rerun_checks,
        "can_edit": page.can_edit,
        "can_dismiss": page.can_dismiss,
        "dismissable_ids": page.dismissable_ids,
        "blockers": page.blockers,
        # A second reviewer: who may bring one in, and the role approving needs (R1, R3).
        "can_invite": access.can(user, "project.invite", rr.project),
        "approver_role": ProjectRole(page.facts.approver_role).label,
        "roles": [role.label for role in ProjectRole],
        "invite": {"invitee": "", "role": ProjectRole(page.facts.approver_role).label},
        "here": _page_url(rr),
        "evidence": report_selectors.reports_citing_request(rr),
        "cite_choices": report_selectors.citable_reports(user, rr.project),
    }
    return render(request, "reviews/request.html", context)


def _load_for_post(request: HttpRequest, team: str, project: str, number: int) -> ReviewRequest:
    with policy_errors():
        return access_review_request(request.user, team, project, number)


@login_required
@require_POST
def review_submit_form(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    rr = _load_for_post(request, team, project, number)
    with form_errors(request, "The review was not submitted", with_code=True):
        _, unreachable = services.review_submit(
            user=request_user(request),
            review_request=rr,
            verdict=request.POST.get("verdict", ""),
            body=request.POST.get("body", ""),
            version_hash=request.POST.get("version_hash") or None,
        )
        _mention_note(request, unreachable)
    return redirect(_page_url(rr))


@login_required
@require_POST
def comment_form(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    rr = _load_for_post(request, team, project, number)
    kind, key = request.POST.get("anchor_kind", ""), request.POST.get("anchor_key", "")
    anchor = {"kind": kind, "key": key} if kind else None
    with form_errors(request, "The comment was not posted", with_code=True):
        _, unreachable = services.comment_create(
            user=request_user(request),
            review_request=rr,
            body=request.POST.get("body", ""),
            parent=request.POST.get("parent") or None,
            anchor=anchor,
        )
        _mention_note(request, unreachable)
    return redirect(_page_url(rr, request.POST.get("tab", "")))


@login_required
@require_POST
def request_update_form(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    """Push a new candidate, close or reopen."""
    rr = _load_for_post(request, team, project, number)
    with form_errors(request, "The request was not changed", with_code=True):
        services.review_request_update(
            user=request_user(request),
            review_request=rr,
            version=request.POST.get("version") or None,
            state=request.POST.get("state") or None,
        )
    return redirect(_page_url(rr))


@login_required
@require_POST
def merge_form(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    rr = _load_for_post(request, team, project, number)
    with form_errors(request, "Not merged", with_code=True):
        rr = services.review_request_merge(user=request_user(request), review_request=rr)
        messages.success(request, f"Merged: {rr.alias} now points to v{rr.candidate.number}.")
    return redirect(_page_url(rr))


@login_required
@require_POST
def checks_rerun_form(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    rr = _load_for_post(request, team, project, number)
    with form_errors(request, "Checks not re-run", with_code=True):
        services.checks_rerun(user=request_user(request), review_request=rr)
    return redirect(_page_url(rr, "checks"))


@login_required
@require_POST
def dismiss_form(request: HttpRequest, team: str, project: str, number: int, review_id: str) -> HttpResponse:
    rr = _load_for_post(request, team, project, number)
    review = next((r for r in selectors.reviews_of(rr) if r.id == review_id), None)
    if review is None:
        messages.error(request, "No such review.")
        return redirect(_page_url(rr))
    with form_errors(request, "Not dismissed", with_code=True):
        services.review_dismiss(user=request_user(request), review=review, reason=request.POST.get("reason", ""))
    return redirect(_page_url(rr))


@login_required
def notifications_page(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    if request.method == "POST":
        ids = request.POST.getlist("id")
        with form_errors(request, "Not marked", with_code=True):
            services.notifications_mark_read(user=user, ids=ids or None, all_unread=not ids)
        return redirect("notifications")
    items = list(selectors.notifications_of(user)[:100])
    rows = [{"n": n, "url": _page_url(n.request) if n.request is not None else n.link} for n in items]
    return render(request, "reviews/notifications.html", {"rows": rows, "unread": selectors.unread_count(user)})
