from __future__ import annotations

from django.apps import AppConfig


class ArtifactsConfig(AppConfig):
    name = "artifacts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lazy by necessity: the tasks import the services, which import models, so this waits
        # for the app registry. Importing them here registers the tasks under the names the
        # services queue them by, in every process, not only in workers.
        from artifacts import tasks  # noqa: F401
