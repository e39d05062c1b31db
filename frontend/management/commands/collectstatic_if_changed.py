"""``manage.py collectstatic_if_changed``: collectstatic when the static sources changed
since the last collection (frontend/static_files.py); what `make run` runs before serving."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from frontend.static_files import collect_if_changed


class Command(BaseCommand):
    help = "Collect the static files (hashed, gzip and brotli) unless STATIC_ROOT already holds the current ones."

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options["verbosity"])
        ran = collect_if_changed(verbosity=max(0, verbosity - 1))
        if verbosity:
            self.stdout.write("Static files collected." if ran else "Static files unchanged.")
