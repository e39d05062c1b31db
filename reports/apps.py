from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lazy by necessity (the app registry must be ready): reports join the global search
        # by registration, as the registry's models do (experiments.search_selectors).
        from experiments.search_selectors import search_section_register
        from reports import selectors

        search_section_register("reports", selectors.reports_matching)
