from __future__ import annotations

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported when the app registry is ready: registers the app's live topics.
        from experiments import live

        live.register()

        # Lazy by necessity, as in reviews/apps.py: registers the tasks under the names the
        # services queue them by (experiments.services.REFINGERPRINT_TASK) in every process.
        from experiments import tasks  # noqa: F401
