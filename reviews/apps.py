from __future__ import annotations

from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported when the app registry is ready: registers the app's live topics.
        from reviews import live

        live.register()

        # Lazy by necessity: the tasks import the services, which import models, so this waits
        # for the app registry. Importing them here registers the tasks under the names the
        # services queue them by (reviews.services.base) in every process, not only in workers.
        from reviews import tasks  # noqa: F401
