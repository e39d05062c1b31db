from __future__ import annotations

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lazy: models may be imported only once the app registry is ready. The global search
        # lives in experiments, below the registry; the registry adds its models to it here
        # instead of experiments importing the registry.
        from experiments import search_selectors
        from registry import selectors

        search_selectors.search_section_register("models", selectors.models_matching)
