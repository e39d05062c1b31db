"""Registry pages: models list, model page, version page, and the two forms (move an alias,
register a version from a run). Thin: the policy loads, the services write, the selectors
read; templates receive ready booleans (``can_move``, ``protected``), never rules."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import access_project
from artifacts.models import Artifact
from artifacts.presenters import scan_state
from core import markdown
from core.errors import DomainError, Invalid
from experiments.access import access_run
from frontend.common import request_user
from frontend.errors import policy_errors
from registry import refs, reproduce, selectors, services
from registry.access import access_model, access_version
from registry.models import ModelRepository, ModelVersion
from reports import selectors as report_selectors
from reviews import selectors as review_selectors


def _model_url(repository: ModelRepository) -> str:
    project = repository.project
    return reverse("model", args=[project.team.name, project.name, repository.name])


def _version_url(version: ModelVersion) -> str:
    project = version.repository.project
    return reverse("model-version", args=[project.team.name, project.name, version.repository.name, version.number])


@login_required
def models_page(request: HttpRequest, team: str, project: str) -> HttpResponse:
    with policy_errors():
        proj = access_project(request.user, team, project, action="model.view")
    models = list(selectors.models_of(proj))
    return render(
        request,
        "registry/models.html",
        {
            "project": proj,
            "models": models,
            "can_create": access.can(request.user, "model.create", proj),
            "open_reviews": review_selectors.open_request_count(request.user, proj),
        },
    )


@login_required
def model_page(request: HttpRequest, team: str, project: str, model: str) -> HttpResponse:
    with policy_errors():
        repository = access_model(request.user, team, project, model)
    return _render_model(request, repository)


def _render_model(
    request: HttpRequest,
    repository: ModelRepository,
    *,
    move: dict[str, str] | None = None,
    review_offer: str = "",
    status: int = 200,
) -> HttpResponse:
    """The model page; after a refused alias move, with the form's values kept (``move``)
    and, for a protected alias, the prefilled review request that would move it."""
    versions = list(selectors.versions_of(repository))
    protected = set(repository.protected_aliases)
    aliases = [
        {"alias": a, "protected": a.name in protected, "url": _version_url(a.version)}
        for a in selectors.aliases_of(repository)
    ]
    unset_protected = sorted(protected - {a.name for a in selectors.aliases_of(repository)})
    return render(
        request,
        "registry/model.html",
        {
            "project": repository.project,
            "repository": repository,
            "description_html": markdown.render_safe(repository.description),
            "versions": versions,
            "aliases": aliases,
            "unset_protected": unset_protected,
            "log": _alias_log_rows(repository),
            "can_move": access.can(request.user, "alias.move", repository.project),
            "can_edit": access.can(request.user, "model.update", repository.project),
            "open_reviews": review_selectors.open_request_count(
                request.user, repository.project, repository=repository
            ),
            "move": move or {"alias": "", "version": "", "reason": ""},
            "review_offer": review_offer,
        },
        status=status,
    )


def _alias_log_rows(repository: ModelRepository) -> list[dict[str, Any]]:
    """The alias history with each merge's review request as ``#N`` and its page."""
    moves = selectors.alias_log(repository)
    project = repository.project
    numbers = review_selectors.request_numbers(project, [m.review_request_id or "" for m in moves])
    rows = []
    for move in moves:
        number = numbers.get(move.review_request_id or "")
        url = reverse("review-request", args=[project.team.name, project.name, number]) if number else ""
        rows.append({"move": move, "review_number": number, "review_url": url})
    return rows


def _diff_context(version: ModelVersion, against: ModelVersion | None) -> dict[str, Any] | None:
    if against is None:
        return None
    result = selectors.version_diff(against, version)
    return {"against": against, "result": result, "url": _version_url(against)}


@login_required
def version_page(request: HttpRequest, team: str, project: str, model: str, number: int) -> HttpResponse:
    with policy_errors():
        version = access_version(request.user, team, project, model, f"v{number}")
    repository = version.repository
    others = selectors.other_versions(version)
    against: ModelVersion | None = None
    problem = ""
    raw = request.GET.get("compare")
    if raw:
        try:
            with policy_errors():
                against = selectors.resolve_version(repository, refs.parse_version_ref(raw), field="compare")
        except (refs.RefError, Http404) as exc:
            problem = f"Cannot compare with {raw!r}: {exc}"
    else:
        against = selectors.diff_base(version)
    lineage = selectors.lineage(version)
    blocking, warnings = reproduce.problems_of(version)
    full = f"{repository.project.path}/{repository.name}@v{version.number}"
    review_url = None
    if access.can(request.user, "review.create", repository.project):
        # Into the first protected alias (the ones only a merged review moves), else production.
        into = next(iter(repository.protected_aliases or []), "production")
        query = urlencode({"model": repository.name, "version": f"v{version.number}", "alias": into})
        review_url = f"{reverse('review-new', args=[team, project])}?{query}"
    download_ready = (
        version.artifact is not None
        and version.artifact.status == Artifact.Status.READY
        and version.artifact.blob.status == "verified"
    )
    binary_scan = None
    if version.artifact is not None and version.artifact.status == Artifact.Status.READY:
        findings = version.artifact.findings if isinstance(version.artifact.findings, dict) else {}
        binary_scan = {
            **scan_state(findings),
            "count": len(findings.get("globals") or []),
            "unsafe_globals": [str(g) for g in (findings.get("unsafe_globals") or [])[:20]],
        }
    return render(
        request,
        "registry/version.html",
        {
            "project": repository.project,
            "repository": repository,
            "version": version,
            "description_html": markdown.render_safe(version.description),
            "aliases": sorted(a.name for a in version.aliases.all()),
            "parents": list(version.parents.select_related("repository").order_by("repository__name", "number")),
            "others": others,
            "diff": _diff_context(version, against),
            "compare_problem": problem,
            "lineage": {"nodes": lineage.nodes, "edges": lineage.edges},
            "packages": sorted((version.environment.get("packages") or {}).items()),
            "config_json": json.dumps(version.config, indent=2, sort_keys=True),
            "problems": blocking,
            "warnings": warnings,
            "reproduce_ref": full,
            "download_ready": download_ready,
            "binary_scan": binary_scan,
            "can_edit": access.can(request.user, "model.update", repository.project),
            "review_url": review_url,
            "evidence": report_selectors.reports_citing_version(version),
            "cite_choices": report_selectors.citable_reports(request.user, repository.project),
            "open_reviews": review_selectors.open_request_count(
                request.user, repository.project, repository=repository
            ),
            "download_url": reverse("model-version-download", args=[team, project, model, number]),
            "run_url": reverse(
                "run", args=[repository.project.team.name, repository.project.name, version.source_run_ref]
            )
            if version.source_run_id
            else None,
        },
    )


@login_required
def version_download(request: HttpRequest, team: str, project: str, model: str, number: int) -> HttpResponse:
    with policy_errors():
        version = access_version(request.user, team, project, model, f"v{number}")
    try:
        url = selectors.version_download_url(version)
    except DomainError:
        raise Http404("The binary cannot be downloaded (not verified yet, or deleted with its run).") from None
    return HttpResponseRedirect(url)


@require_POST
@login_required
def alias_move_form(request: HttpRequest, team: str, project: str, model: str) -> HttpResponse:
    with policy_errors():
        repository = access_model(request.user, team, project, model, action="alias.move")
    move = {k: request.POST.get(k, "") for k in ("alias", "version", "reason")}
    try:
        moved = services.alias_move_direct(
            user=request_user(request),
            repository=repository,
            alias=move["alias"],
            version=move["version"],
            reason=move["reason"],
        )
    except DomainError as exc:
        # The page again, with what was typed; a protected alias moves through a review
        # request: offer that one, prefilled with the same choice.
        messages.error(request, f"The alias was not moved: {exc.message}")
        offer = ""
        if exc.code == "protected_alias" and access.can(request.user, "review.create", repository.project):
            number = move["version"].removeprefix("v")
            query = {"model": repository.name, "version": f"v{number}", "alias": move["alias"].strip()}
            if move["reason"].strip():
                query["description"] = move["reason"].strip()
            offer = f"{reverse('review-new', args=[team, project])}?{urlencode(query)}"
        return _render_model(request, repository, move=move, review_offer=offer, status=409 if offer else 400)
    messages.success(request, f"{move['alias']} now points to v{moved.version.number}.")
    return redirect(_model_url(repository))


MAX_TAG_LINES = 200


def parse_tag_lines(text: str) -> dict[str, str]:
    """The edit form's tags, one ``key=value`` a line (blank lines skipped); the service
    checks keys and values. Raises DomainError naming the line."""
    tags: dict[str, str] = {}
    lines = text.splitlines()
    if len(lines) > MAX_TAG_LINES:
        raise Invalid(f"tags: at most {MAX_TAG_LINES} lines.", field="tags")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise Invalid(f"tags line {number}: write key=value.", field="tags")
        if key.strip() in tags:
            raise Invalid(f"tags line {number}: {key.strip()} is given twice.", field="tags")
        tags[key.strip()] = value.strip()
    return tags


@login_required
def metadata_form(request: HttpRequest, team: str, project: str, model: str, number: int | None = None) -> HttpResponse:
    """Edit the metadata of a model, or of a version (``number``): description (markdown)
    and tags. The ingredients of a version never change; these edits are audited by the
    services. GET: the form; POST: save, then back to the model or version page."""
    version: ModelVersion | None = None
    with policy_errors():
        if number is None:
            repository = access_model(request.user, team, project, model, action="model.update")
        else:
            version = access_version(request.user, team, project, model, f"v{number}", action="model.update")
            repository = version.repository
    target: ModelRepository | ModelVersion = version if version is not None else repository
    form = {
        "description": target.description,
        "tags": "\n".join(f"{key}={value}" for key, value in target.tags.items()),
    }
    error = ""
    if request.method == "POST":
        form = {key: request.POST.get(key, "") for key in form}
        form["description"] = form["description"].replace("\r\n", "\n")
        try:
            tags = parse_tag_lines(form["tags"])
            if version is not None:
                services.version_update(
                    user=request_user(request), version=version, description=form["description"], tags=tags
                )
            else:
                services.model_update(
                    user=request_user(request),
                    repository=repository,
                    description=form["description"],
                    tags=tags,
                )
        except DomainError as exc:
            detail = exc.message
            error = f"{exc.field}: {detail}" if exc.field and not detail.startswith(exc.field) else detail
        else:
            label = f"{repository.name} v{version.number}" if version is not None else repository.name
            messages.success(request, f"Saved the description and tags of {label}.")
            return redirect(_version_url(version) if version is not None else _model_url(repository))
    return render(
        request,
        "registry/edit.html",
        {
            "project": repository.project,
            "repository": repository,
            "version": version,
            "form": form,
            "error": error,
            "back_url": _version_url(version) if version is not None else _model_url(repository),
            "preview_html": markdown.render_safe(form["description"]),
        },
        status=400 if error else 200,
    )


@login_required
def register_form(request: HttpRequest, team: str, project: str, run_id: str) -> HttpResponse:
    """GET: the form (the run's uploaded artifacts, the project's models); POST: register."""
    with policy_errors():
        run = access_run(request.user, run_id, action="model.register")
    if run.project.team.name.lower() != team.lower() or run.project.name.lower() != project.lower():
        raise Http404("Not found.")
    candidates = list(selectors.registrable_artifacts(run))
    form = {"name": "", "artifact": "", "aliases": "", "description": ""}
    error = ""
    if request.method == "POST":
        form = {key: request.POST.get(key, "").strip() for key in form}
        aliases = [a.strip() for a in form["aliases"].split(",") if a.strip()]
        try:
            version = services.version_register_by_name(
                user=request_user(request),
                run=run,
                model=form["name"],
                artifact=form["artifact"],
                aliases=aliases or None,
                description=form["description"],
            )
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(request, f"Registered {version.repository.name} v{version.number}.")
            return redirect(_version_url(version))
    return render(
        request,
        "registry/register.html",
        {
            "project": run.project,
            "run": run,
            "artifacts": candidates,
            "models": list(selectors.models_of(run.project).values_list("name", flat=True)),
            "form": form,
            "error": error,
        },
        status=400 if error else 200,
    )
