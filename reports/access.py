"""access_report(): the one loader of a report for every entry point (API, pages, export).

Viewers of a project read its reports; writers write, freeze, comment and link them;
maintainers, and a report's author, delete it (accounts/access.py: ``report.*``).

# SECURITY: a missing report and one in a project the caller may not see raise the same
NotFound; Forbidden only when the caller sees the project but the role is too low.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from accounts import access
from accounts.access import access_project
from core.errors import Forbidden, NotFound
from reports.models import Report

if TYPE_CHECKING:
    from accounts.access import AnyUser

ReportAction = Literal["report.view", "report.edit", "report.delete"]
MAX_NUMBER = 10**9


def access_report(
    user: AnyUser | None, team: str, project: str, number: int | str, *, action: ReportAction = "report.view"
) -> Report:
    proj = access_project(user, team, project, action="project.view")
    try:
        value = int(number)
    except (TypeError, ValueError):
        raise NotFound("Not found.") from None
    report = (
        Report.objects.select_related("project__team", "created_by").filter(project=proj, number=value).first()
        if 0 < value < MAX_NUMBER
        else None
    )
    if report is None:
        raise NotFound("Not found.")
    if action == "report.delete":
        may = access.can(user, "report.delete", proj, annotated=proj) or (
            report.created_by_id is not None
            and report.created_by_id == getattr(user, "pk", None)
            and access.can(user, "report.edit", proj, annotated=proj)
        )
        if not may:
            access.require(user, "report.view", proj, annotated=proj)
            raise Forbidden("Only the report's author and the project's maintainers may delete it.")
        return report
    access.require(user, action, proj, annotated=proj)
    return report


def can_delete(user: AnyUser | None, report: Report) -> bool:
    project = report.project
    if access.can(user, "report.delete", project):
        return True
    return report.created_by_id == getattr(user, "pk", None) and access.can(user, "report.edit", project)
