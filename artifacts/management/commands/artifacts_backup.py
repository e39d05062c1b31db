from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from artifacts.backup import store_backup, store_restore


class Command(BaseCommand):
    help = (
        "Copy the artifact store (objects/ and derived/) into FOLDER, or with --restore from FOLDER back "
        "into the store; only what differs is copied. The database half of a backup is pg_dump (docs/deploy.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument("--restore", action="store_true", help="copy FOLDER into the store")

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["folder"]
        if options["restore"]:
            if not folder.is_dir():
                raise CommandError(f"{folder} is not a folder written by artifacts_backup.")
            report = store_restore(folder=folder)
            verb = "restored"
        else:
            folder.mkdir(parents=True, exist_ok=True)
            report = store_backup(folder=folder)
            verb = "backed up"
        self.stdout.write(f"{verb} {report.copied} objects ({report.bytes_copied} bytes), {report.skipped} unchanged")
