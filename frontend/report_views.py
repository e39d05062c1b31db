"""Report pages (issue 22): the list, a report (live blocks drawn on the server), the editor
(a textarea with a server-rendered preview: no script), history, a revision, the diff between
two revisions, freeze, comments, evidence links, delete and the self-contained HTML export.

Thin: reports.access loads, reports.services writes, reports.render draws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import access_project
from core.errors import DomainError, Invalid
from frontend.common import request_user
from frontend.errors import form_errors, policy_errors
from reports import render as report_render
from reports import selectors, services
from reports.access import access_report, can_delete
from reports.blocks import KINDS
from reports.models import Report, ReportLink, ReportRevision

# The report styles: linked through app.css on the site, inlined in an export.
REPORT_CSS = Path(__file__).resolve().parent / "assets" / "report.css"


def _url(report: Report, suffix: str = "") -> str:
    return f"{report.path}{suffix}"


def _error_text(exc: DomainError) -> str:
    return f"{exc.field}: {exc.message}" if exc.field and not exc.message.startswith(exc.field) else exc.message


def _html(report: Report, revision: ReportRevision | None) -> str:
    """A revision as HTML: from its snapshot when frozen, live otherwise."""
    if revision is None:
        return report_render.render_body(report.project, report.body)
    return report_render.render_body(report.project, revision.body, snapshot=revision.snapshot)


@login_required
def report_list(request: HttpRequest, team: str, project: str) -> HttpResponse:
    with policy_errors():
        proj = access_project(request.user, team, project, action="report.view")
    return render(
        request,
        "reports/list.html",
        {
            "project": proj,
            "reports": list(selectors.reports_of(proj)[:200]),
            "can_edit": access.can(request.user, "report.edit", proj, annotated=proj),
        },
    )


@login_required
def report_new(request: HttpRequest, team: str, project: str) -> HttpResponse:
    with policy_errors():
        proj = access_project(request.user, team, project, action="report.edit")
    form = {"title": "", "body": "", "message": ""}
    error, preview = "", None
    if request.method == "POST":
        form = {k: request.POST.get(k, "").replace("\r\n", "\n") for k in form}
        if request.POST.get("action") == "preview":
            preview = report_render.render_body(proj, form["body"])
        else:
            try:
                saved = services.report_create(
                    user=request_user(request),
                    project=proj,
                    title=form["title"],
                    body=form["body"],
                    message=form["message"],
                )
            except DomainError as exc:
                error = _error_text(exc)
            else:
                _say_unreachable(request, saved.unreachable_mentions)
                return redirect(_url(saved.report))
    return render(
        request,
        "reports/edit.html",
        {"project": proj, "report": None, "form": form, "error": error, "preview": preview, "kinds": KINDS},
        status=400 if error else 200,
    )


def _say_unreachable(request: HttpRequest, names: list[str]) -> None:
    if names:
        messages.warning(request, "These mentions reach no one who may see the project: " + ", ".join(names))


@login_required
def report_page(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    with policy_errors():
        report = access_report(request.user, team, project, number)
    latest = selectors.latest_revision(report)
    links = list(selectors.links_of(report))
    proj = report.project
    return render(
        request,
        "reports/report.html",
        {
            "project": proj,
            "report": report,
            "revision": latest,
            "body_html": _html(report, latest),
            "comments": list(selectors.comments_of(report)),
            "request_links": [link for link in links if link.review_request_id],
            "version_links": [link for link in links if link.model_version_id],
            "can_edit": access.can(request.user, "report.edit", proj),
            "can_delete": can_delete(request.user, report),
        },
    )


@login_required
def report_edit(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    with policy_errors():
        report = access_report(request.user, team, project, number, action="report.edit")
    form = {"title": report.title, "body": report.body, "message": ""}
    error, preview = "", None
    if request.method == "POST":
        form = {k: request.POST.get(k, "").replace("\r\n", "\n") for k in form}
        if request.POST.get("action") == "preview":
            preview = report_render.render_body(report.project, form["body"])
        else:
            try:
                saved = services.report_update(
                    user=request_user(request),
                    report=report,
                    title=form["title"],
                    body=form["body"],
                    message=form["message"],
                )
            except DomainError as exc:
                error = _error_text(exc)
            else:
                _say_unreachable(request, saved.unreachable_mentions)
                if saved.revision is None:
                    messages.info(request, "Nothing changed: no new revision.")
                return redirect(_url(report))
    return render(
        request,
        "reports/edit.html",
        {"project": report.project, "report": report, "form": form, "error": error, "preview": preview, "kinds": KINDS},
        status=400 if error else 200,
    )


@login_required
@require_POST
def report_freeze(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    with policy_errors():
        report = access_report(request.user, team, project, number, action="report.edit")
    with form_errors(request, "Not frozen"):
        revision = services.report_freeze(
            user=request_user(request), report=report, message=request.POST.get("message", "")
        )
        messages.success(request, f"Frozen as revision {revision.number}: its blocks keep today's data.")
    return redirect(_url(report))


@login_required
@require_POST
def report_delete(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    with policy_errors():
        report = access_report(request.user, team, project, number, action="report.delete")
    services.report_delete(user=request_user(request), report=report)
    messages.success(request, f"Deleted report #{report.number}.")
    return redirect("report-list", team=report.project.team.name, project=report.project.name)


@login_required
def report_history(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    with policy_errors():
        report = access_report(request.user, team, project, number)
    return render(
        request,
        "reports/history.html",
        {"project": report.project, "report": report, "revisions": list(selectors.revisions_of(report)[:500])},
    )


@login_required
def report_revision(request: HttpRequest, team: str, project: str, number: int, revision: int) -> HttpResponse:
    with policy_errors():
        report = access_report(request.user, team, project, number)
        found = selectors.revision_of(report, revision)
    return render(
        request,
        "reports/revision.html",
        {"project": report.project, "report": report, "revision": found, "body_html": _html(report, found)},
    )


def _int_arg(request: HttpRequest, name: str, default: int) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise Invalid(f"{name} is a revision number.", field=name)
    return int(raw)


@login_required
def report_diff(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    with policy_errors():
        report = access_report(request.user, team, project, number)
        latest = report.revision_count
        a = selectors.revision_of(report, _int_arg(request, "from", max(latest - 1, 1)), field="from")
        b = selectors.revision_of(report, _int_arg(request, "to", latest), field="to")
    return render(
        request,
        "reports/diff.html",
        {
            "project": report.project,
            "report": report,
            "a": a,
            "b": b,
            "lines": selectors.revision_diff(a, b),
            "revisions": list(selectors.revisions_of(report).values_list("number", flat=True)[:500]),
        },
    )


@login_required
@require_POST
def report_comment(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    with policy_errors():
        report = access_report(request.user, team, project, number, action="report.edit")
    with form_errors(request, "Not commented"):
        _, unreachable = services.report_comment_create(
            user=request_user(request), report=report, body=request.POST.get("body", "").replace("\r\n", "\n")
        )
        _say_unreachable(request, unreachable)
    return redirect(_url(report, "#comments"))


@login_required
@require_POST
def report_link(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    """Cite the report on a review request (``review_request``: a number) or a model version
    (``model`` and ``version``)."""
    with policy_errors():
        report = access_report(request.user, team, project, number, action="report.edit")
    raw_request = request.POST.get("review_request", "").strip().lstrip("#")
    try:
        if raw_request:
            if not raw_request.isdigit() or len(raw_request) > 9:
                raise Invalid("review_request is a review request's number.", field="review_request")
            target = services.link_target(report, review_request=int(raw_request))
        else:
            target = services.link_target(
                report, model=request.POST.get("model") or None, version=request.POST.get("version") or None
            )
        services.report_link_add(user=request_user(request), report=report, target=target)
    except DomainError as exc:  # a request or version the form named that is not in the project
        messages.error(request, f"Not linked: {exc.message}")
    else:
        messages.success(request, "Linked as evidence.")
    return redirect(_url(report))


@login_required
@require_POST
def report_unlink(request: HttpRequest, team: str, project: str, number: int, link_id: str) -> HttpResponse:
    with policy_errors():
        report = access_report(request.user, team, project, number, action="report.edit")
    link = ReportLink.objects.filter(report=report, pk=link_id[:32]).first()
    if link is not None:
        services.report_link_remove(user=request_user(request), link=link)
    return redirect(_url(report))


@login_required
def report_export(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    """One HTML file that needs nothing else: the report's styles inline, charts as inline
    SVG, tables as HTML, no script and no request to any server when opened. ``?revision=N``
    exports that revision (a frozen one shows its snapshot)."""
    with policy_errors():
        report = access_report(request.user, team, project, number)
        revision = (
            selectors.revision_of(report, _int_arg(request, "revision", 0))
            if request.GET.get("revision")
            else selectors.latest_revision(report)
        )
    context: dict[str, Any] = {
        "report": report,
        "revision": revision,
        # Links of the blocks and the text are site paths: absolute in a file opened elsewhere.
        "body_html": mark_safe(  # noqa: S308 - the rendered report, only its site paths made absolute
            _html(report, revision).replace('href="/', f'href="{settings.PUBLIC_URL}/')
        ),
        "css": mark_safe(REPORT_CSS.read_text(encoding="utf-8")),  # noqa: S308 - our own file
        "exported_at": timezone.now(),
    }
    html = render_to_string("reports/export.html", context)
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    name = slugify(report.title)[:60] or "report"
    response["Content-Disposition"] = f'attachment; filename="{report.project.name}-report-{report.number}-{name}.html"'
    return response


def _cite(request: HttpRequest, team: str, project: str, target_of: Any, back: str) -> HttpResponse:
    """Cite report ``report`` (a number, from the form) on the review request or version that
    ``target_of(report)`` names; back to that page with a message."""
    raw = request.POST.get("report", "").strip().lstrip("#")
    with policy_errors():
        access_project(request.user, team, project, action="report.edit")
    if not raw.isdigit() or len(raw) > 9:
        messages.error(request, "Not cited: report is a report's number.")
        return redirect(back)
    try:
        report = access_report(request.user, team, project, raw, action="report.edit")
        services.report_link_add(user=request_user(request), report=report, target=target_of(report))
    except DomainError as exc:
        # A report number that is not the project's is "not found", as on any page.
        messages.error(request, f"Not cited: {exc.message}")
    else:
        messages.success(request, f"Cited report #{report.number} as evidence.")
    return redirect(back)


@login_required
@require_POST
def review_cite_report(request: HttpRequest, team: str, project: str, number: int) -> HttpResponse:
    """From a review request's page: cite one of the project's reports as evidence."""
    back = f"/{team}/{project}/reviews/{number}/"
    return _cite(request, team, project, lambda report: services.link_target(report, review_request=number), back)


@login_required
@require_POST
def version_cite_report(request: HttpRequest, team: str, project: str, model: str, number: int) -> HttpResponse:
    """From a model version's page: cite one of the project's reports as evidence."""
    back = f"/{team}/{project}/models/{model}/v{number}/"
    return _cite(
        request, team, project, lambda report: services.link_target(report, model=model, version=str(number)), back
    )
