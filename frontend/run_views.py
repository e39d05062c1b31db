"""The run page: params, summaries, charts, confusion matrices, the run's structured info
and (artifact_views) its artifacts. Thin: the policy loads and checks, the selectors read."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from accounts import access
from core import textdiff
from experiments import selectors, services, tried
from experiments.access import access_run
from experiments.models import Figure, MetricSummary, Run, RunStatus
from frontend.artifact_views import artifact_context
from frontend.common import request_user
from frontend.errors import form_errors, policy_errors
from live.eventlog import current_seq
from live.topics import run_topic

# Points per chart: the API downsamples longer histories on the server (MinMaxLTTB).
CHART_MAX_POINTS = 1000
# "Same configuration as run X (ana, 3 days ago)": the newest few other runs with its fingerprint.
DUPLICATES_SHOWN = 3


@dataclass
class InfoItem:
    key: str
    value: str
    block: bool = False


@dataclass
class InfoSection:
    key: str
    title: str
    items: list[InfoItem]


INFO_SECTIONS = {"code": "Code", "environment": "Environment", "system": "System", "error": "Error"}
# Shown first, in this order, when present; anything else follows alphabetically.
INFO_FIRST = ["remote", "branch", "commit", "dirty", "command", "python", "os", "accelerator"]


def _info_value(value: Any) -> InfoItem:
    if isinstance(value, dict | list):
        return InfoItem("", json.dumps(value, indent=2, ensure_ascii=False, default=str), block=True)
    if isinstance(value, bool):
        return InfoItem("", "yes" if value else "no")
    if value is None:
        return InfoItem("", "—")
    text = str(value)
    return InfoItem("", text, block="\n" in text or len(text) > 160)


def _info_sections(info: dict[str, Any]) -> list[InfoSection]:
    """The run's structured info (code, environment, system, error, anything else) as
    key/value lists; nested values become collapsible JSON. All of it is user-written
    and reaches the template as plain strings (escaped there)."""
    sections: list[InfoSection] = []
    names = [k for k in INFO_SECTIONS if k in info] + sorted(k for k in info if k not in INFO_SECTIONS)
    for name in names:
        value = info[name]
        if value in (None, {}, [], ""):
            continue
        items: list[InfoItem] = []
        if isinstance(value, dict):
            keys = [k for k in INFO_FIRST if k in value] + sorted(str(k) for k in value if k not in INFO_FIRST)
            for key in keys:
                item = _info_value(value[key])
                item.key = key
                items.append(item)
        else:
            item = _info_value(value)
            item.key = "value"
            items.append(item)
        sections.append(InfoSection(key=name, title=INFO_SECTIONS.get(name, str(name).capitalize()), items=items))
    return sections


@dataclass
class RunError:
    """What ended a failed or killed run, shown at the top of its page: the exception the SDK
    recorded (``info.error``: type, message, traceback; sdk/src/assay/run.py ``error_info``)."""

    kind: str
    message: str
    where: str
    traceback: str


# The innermost frame of a Python traceback: ``  File "train.py", line 12, in step``.
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (.+)$', re.MULTILINE)


def run_error(run: Run) -> RunError | None:
    """The error of a run that did not finish well, or None. A failed run without a recorded
    error still gets a line saying so (the status alone is not an explanation)."""
    if run.status not in (RunStatus.FAILED, RunStatus.KILLED):
        return None
    error = run.info.get("error") if isinstance(run.info, dict) else None
    if not isinstance(error, dict):
        return RunError(kind="", message="", where="", traceback="")
    traceback = str(error.get("traceback") or "")
    frames = _FRAME.findall(traceback)
    where = f"{frames[-1][0]}, line {frames[-1][1]}, in {frames[-1][2]}" if frames else ""
    return RunError(
        kind=str(error.get("type") or ""),
        message=str(error.get("message") or ""),
        where=where,
        traceback=traceback,
    )


def single_point(summary: MetricSummary) -> bool:
    """Whether a metric was logged at one step only: shown as its value, never as a chart."""
    return summary.count <= 1


@dataclass
class SingleValue:
    """A metric logged once, shown as a number (its full value on hover)."""

    key: str
    value: float | None
    step: int
    dom_id: str


@dataclass
class FigureView:
    figure: Figure
    script_id: str
    size: int


@login_required
def run_page(request: HttpRequest, team: str, project: str, run_id: str) -> HttpResponse:
    with policy_errors():
        run = access_run(request.user, run_id)
    # The URL names the run's project; a run reached through another project's URL is not there.
    if run.project.team.name.lower() != team.lower() or run.project.name.lower() != project.lower():
        raise Http404("Not found.")
    live_seq = current_seq(run_topic(run.id))  # before the queries (live/eventlog.py) …
    run.refresh_from_db()  # … so the run read by the access check is read again after it
    detail = selectors.run_detail_context(run)
    summaries: list[MetricSummary] = sorted(detail["summaries"], key=lambda s: s.key)
    # A metric logged once is a value, not a chart (issue 16, bug 7): a line of one point says nothing.
    charts = [
        {
            "key": s.key,
            "url": reverse("api-run-metric", args=[run.id, s.key]) + f"?max_points={CHART_MAX_POINTS}",
            "dom_id": f"chart-{index}",
        }
        for index, s in enumerate(summaries)
        if not single_point(s)
    ]
    single_values = [
        SingleValue(key=s.key, value=s.last, step=s.last_step, dom_id=f"chart-{index}")
        for index, s in enumerate(summaries)
        if single_point(s)
    ]
    figures = [
        FigureView(figure=f, script_id=f"figure-data-{index}", size=len(f.data.get("labels", [])))
        for index, f in enumerate(detail["figures"])
        if f.kind == Figure.Kind.CONFUSION_MATRIX and isinstance(f.data, dict)
    ]
    duration = run.duration_seconds
    if duration is None:
        duration = (timezone.now() - run.start_time).total_seconds()
    context = {
        "project": run.project,
        "run": run,
        "duration": duration,
        "params": detail["params"],
        "config_values": detail["config_values"],
        "tags": detail["tags"],
        "summaries": summaries,
        "charts": charts,
        "single_values": single_values,
        "figures": figures,
        "run_error": (error := run_error(run)),
        # The error is at the top of the page; the info sections below leave it out then.
        "info_sections": _info_sections(
            {k: v for k, v in run.info.items() if not (k == "error" and error is not None)}
            if isinstance(run.info, dict)
            else {}
        ),
        "info_json": json.dumps(run.info, indent=2, ensure_ascii=False, default=str) if run.info else "",
        "config_json": json.dumps(run.config, indent=2, ensure_ascii=False, default=str) if run.config else "",
        "sdk_project": run.project.path,
        # The "Register model" button (registry_views.register_form checks again on submit).
        "can_register_model": access.can(request.user, "model.register", run.project),
        "can_edit_notes": access.can(request.user, "run.update", run.project),
        "note_revisions": run.note_revisions.count(),
        "live_seq": live_seq,
    }
    duplicates = tried.duplicates_of(run, limit=DUPLICATES_SHOWN + 1)
    context["duplicates"] = duplicates[:DUPLICATES_SHOWN]
    context["duplicates_more"] = len(duplicates) > DUPLICATES_SHOWN
    context.update(artifact_context(run))
    return render(request, "frontend/run.html", context)


def _run_in_url(request: HttpRequest, team: str, project: str, run_id: str, *, action: str) -> Run:
    with policy_errors():
        run = access_run(request.user, run_id, action=action)
    if run.project.team.name.lower() != team.lower() or run.project.name.lower() != project.lower():
        raise Http404("Not found.")
    return run


@login_required
def run_notes(request: HttpRequest, team: str, project: str, run_id: str) -> HttpResponse:
    """GET: the history of a run's notes, each revision against the one before (difflib).
    POST: save the notes written on the run page (writers), a new revision by the user."""
    if request.method == "POST":
        run = _run_in_url(request, team, project, run_id, action="run.update")
        with form_errors(request, "Notes not saved"):
            services.run_notes_set(
                run=run, user=request_user(request), notes=request.POST.get("notes", "").replace("\r\n", "\n")
            )
            messages.success(request, "Saved the notes.")
        return redirect(reverse("run", args=[run.project.team.name, run.project.name, run.pk]) + "#notes-title")
    run = _run_in_url(request, team, project, run_id, action="run.view")
    revisions = list(run.note_revisions.select_related("author").order_by("-number")[:200])
    rows = []
    for index, revision in enumerate(revisions):
        before = revisions[index + 1] if index + 1 < len(revisions) else None
        rows.append(
            {
                "revision": revision,
                "lines": textdiff.unified(
                    before.body.splitlines() if before is not None else [],
                    revision.body.splitlines(),
                    old_name=f"revision {before.number}" if before is not None else "(none)",
                    new_name=f"revision {revision.number}",
                ),
            }
        )
    return render(request, "frontend/run_notes.html", {"project": run.project, "run": run, "rows": rows})
