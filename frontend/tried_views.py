"""The project page's "has this been tried?" box: paste a configuration (JSON, YAML or an
argparse dump), see the project's identical runs or, when none, the nearest ones. The same
answer as ``POST /api/v1/projects/{team}/{project}/tried/`` and ``assay tried``
(experiments/tried.py), for people who have a config file open rather than a shell."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.access import access_project
from core.errors import Invalid
from experiments import services, tried
from experiments.config_text import ConfigTextError, parse_config_text
from frontend.errors import policy_errors


@login_required
@require_http_methods(["GET", "POST"])
def tried_page(request: HttpRequest, team: str, project: str) -> HttpResponse:
    with policy_errors():
        proj = access_project(request.user, team, project, action="run.view")
    context: dict[str, Any] = {"project": proj, "text": "", "error": None, "answer": None}
    if request.method == "POST":
        text = request.POST.get("config", "")
        context["text"] = text
        try:
            config = services.check_config(parse_config_text(text))
        except ConfigTextError as exc:
            context["error"] = f"The configuration {exc}"
        except Invalid as exc:
            context["error"] = exc.message
        else:
            answer = tried.tried_lookup(project=proj, config=config)
            for run in [*answer["identical"], *answer["near"]]:
                run["started"] = datetime.fromisoformat(run["start_time"])  # for {% reltime %}
            context["answer"] = answer
    status = 400 if context["error"] else 200
    return render(request, "frontend/tried.html", context, status=status)
