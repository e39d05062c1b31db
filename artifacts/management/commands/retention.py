from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models.functions import Lower

from accounts.models import Project
from artifacts.retention import project_retention_set, retention_enforce
from core.errors import DomainError

UNCHANGED: Any = object()


def _days(text: str) -> int | None:
    if text.lower() in {"none", "forever", "off"}:
        return None
    try:
        return int(text)
    except ValueError:
        raise CommandError(f"days must be a whole number or 'none', not {text!r}") from None


class Command(BaseCommand):
    help = (
        "Enforce the projects' retention policies: delete runs that ended, and artifacts logged, longer ago "
        "than the project keeps them (see artifacts/retention.py). --dry-run lists without deleting. "
        "--set team/project [--runs DAYS] [--artifacts DAYS] sets a project's policy ('none': forever; "
        "an option left out keeps its value)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
        parser.add_argument("--project", help="only this project (team/project)")
        parser.add_argument("--set", metavar="TEAM/PROJECT", help="set this project's policy instead of enforcing")
        parser.add_argument(
            "--runs", type=_days, default=UNCHANGED, metavar="DAYS", help="with --set: keep runs this long"
        )
        parser.add_argument(
            "--artifacts", type=_days, default=UNCHANGED, metavar="DAYS", help="with --set: keep artifacts this long"
        )
        parser.add_argument("--json", action="store_true", help="one JSON document instead of lines")

    def _project(self, path: str) -> Project:
        team, _, name = path.partition("/")
        found = (
            Project.objects.select_related("team")
            .filter(team__name__iexact=team)
            .annotate(lname=Lower("name"))
            .filter(lname=name.lower())
            .first()
        )
        if found is None:
            raise CommandError(f"No project {path!r} (team/project).")
        return found

    def handle(self, *args: Any, **options: Any) -> None:
        if options["set"]:
            project = self._project(options["set"])
            try:
                runs, artifacts = options["runs"], options["artifacts"]
                project_retention_set(
                    project=project,
                    run_days=project.run_retention_days if runs is UNCHANGED else runs,
                    artifact_days=project.artifact_retention_days if artifacts is UNCHANGED else artifacts,
                    actor=None,
                )
            except DomainError as exc:
                raise CommandError(exc.message) from None
            self.stdout.write(
                f"{project.path}: runs kept {project.run_retention_days or 'forever'} days, "
                f"artifacts {project.artifact_retention_days or 'forever'} days"
            )
            return
        projects = [self._project(options["project"])] if options["project"] else None
        reports = retention_enforce(dry_run=options["dry_run"], projects=projects)
        verb = "would delete" if options["dry_run"] else "deleted"
        if options["json"]:
            self.stdout.write(json.dumps({"dry_run": options["dry_run"], "projects": [r.__dict__ for r in reports]}))
            return
        for r in reports:
            for run_id in r.runs:
                self.stdout.write(f"{r.project}\trun\t{run_id}")
            for artifact_id in r.artifacts:
                self.stdout.write(f"{r.project}\tartifact\t{artifact_id}")
            self.stdout.write(
                f"{r.project}: {verb} {len(r.runs)} runs, {len(r.artifacts)} artifacts, "
                f"{len(r.blobs)} stored objects ({r.bytes_freed} bytes)"
            )
