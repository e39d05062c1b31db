from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from experiments.selectors import projects_visible_to


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/home.html", {"projects": projects_visible_to(request.user)})
