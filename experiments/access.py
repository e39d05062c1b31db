"""access_<entity>() for the experiments app: load by id or name for a user and an action.
(Projects: ``accounts.access.access_project``.)

# SECURITY: a missing object and an object the caller may not see raise the same NotFound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from accounts import access
from accounts.models import User
from core.errors import NotFound
from core.querycache import CompiledQuery
from experiments.models import Run, SavedView

if TYPE_CHECKING:
    from accounts.access import AnyUser


def _runs(run_id: str) -> QuerySet[Run]:
    return Run.objects.select_related("project__team", "experiment", "author").filter(pk=run_id)[:1]


# Every run endpoint (the log call above all) runs one of these: compiled once
# (core/querycache.py). The caller's role is loaded with the run (one query instead of
# three); the rule stays in accounts/access.py.
_RUN = CompiledQuery(Run, _runs, placeholders=["(placeholder run id)"])
_RUN_WITH_ROLE = CompiledQuery(
    Run,
    lambda run_id, user_pk: _runs(run_id).annotate(
        **access.role_annotations(User(pk=user_pk, is_active=True, is_staff=False), prefix="project__")
    ),
    placeholders=["(placeholder run id)", -(2**62) + 1],
)


def access_run(user: AnyUser | None, run_id: str, *, action: str = "run.view") -> Run:
    run: Run | None = None
    if isinstance(run_id, str) and len(run_id) <= 32:
        run = (
            _RUN_WITH_ROLE.first(run_id, getattr(user, "pk", None))
            if access.role_needs_query(user)
            else _RUN.first(run_id)
        )
    if run is None:
        raise NotFound("Not found.")
    access.require(user, action, run.project, annotated=run)
    return run


MAX_RUNS_AT_ONCE = 100


def access_runs(user: AnyUser | None, run_ids: list[str], *, action: str = "run.view") -> list[Run]:
    """Several runs at once (compare, export), in the order asked; NotFound when any one is
    missing or invisible, naming none of them. One query, whatever the number."""
    wanted = list(dict.fromkeys(run_ids))
    if not wanted or len(wanted) > MAX_RUNS_AT_ONCE or any(not isinstance(r, str) or len(r) > 32 for r in wanted):
        raise NotFound("Not found.")
    runs = {
        run.pk: run
        for run in Run.objects.select_related("project__team", "experiment", "author")
        .filter(pk__in=wanted)
        .filter(access.project_filter(user, prefix="project__", minimum=access.ACTIONS[action]))
    }
    if len(runs) != len(wanted):
        raise NotFound("Not found.")
    return [runs[r] for r in wanted]


def access_run_ids(user: AnyUser | None, run_ids: list[str], *, action: str = "run.view") -> list[str]:
    """:func:`access_runs` for a caller that needs only the ids (the compare page's histories):
    the same check and the same NotFound, without loading the runs and their relations."""
    wanted = list(dict.fromkeys(run_ids))
    if not wanted or len(wanted) > MAX_RUNS_AT_ONCE or any(not isinstance(r, str) or len(r) > 32 for r in wanted):
        raise NotFound("Not found.")
    found = set(
        Run.objects.filter(pk__in=wanted)
        .filter(access.project_filter(user, prefix="project__", minimum=access.ACTIONS[action]))
        .values_list("pk", flat=True)
    )
    if len(found) != len(wanted):
        raise NotFound("Not found.")
    return wanted


def access_saved_view(user: AnyUser | None, view_id: str, *, action: str = "project.view") -> SavedView:
    """A saved view is its owner's: anyone else, and anyone who lost sight of the project,
    gets NotFound. (Sharing is by URL: the view's query string, checked like any page.)"""
    view = (
        SavedView.objects.select_related("project__team").filter(pk=view_id).first()
        if isinstance(view_id, str) and len(view_id) <= 32
        else None
    )
    if view is None or view.owner_id != getattr(user, "pk", None) or not access.can(user, action, view.project):
        raise NotFound("Not found.")
    return view
