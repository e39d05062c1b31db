from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from artifacts.store_check import store_check


class Command(BaseCommand):
    help = (
        "Check the artifact store against the database: every verified blob has its object with the "
        "recorded size and sha256; objects no row references (orphans) are listed. Exits 1 on a problem."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-digests", action="store_true", help="compare sizes only (no object is read)")
        parser.add_argument("--delete-orphans", action="store_true", help="delete the orphan objects it finds")
        parser.add_argument("--json", action="store_true", help="one JSON document instead of lines")

    def handle(self, *args: Any, **options: Any) -> None:
        report = store_check(digests=not options["no_digests"], delete_orphans=options["delete_orphans"])
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "blobs_checked": report.blobs_checked,
                        "objects_seen": report.objects_seen,
                        "orphans_deleted": report.orphans_deleted,
                        "problems": [
                            {"kind": p.kind, "key": p.key, "detail": p.detail, "artifacts": list(p.artifacts)}
                            for p in report.problems
                        ],
                    }
                )
            )
        else:
            for p in report.problems:
                used = f" (artifacts {', '.join(p.artifacts)})" if p.artifacts else ""
                self.stdout.write(f"{p.kind}\t{p.key}\t{p.detail}{used}")
            self.stdout.write(
                f"{report.blobs_checked} blobs checked, {report.objects_seen} objects seen, "
                f"{len(report.problems)} problems, {report.orphans_deleted} orphans deleted"
            )
        remaining = [p for p in report.problems if not (p.kind == "orphan" and options["delete_orphans"])]
        if remaining:
            raise CommandError(f"{len(remaining)} problems in the artifact store", returncode=1)
