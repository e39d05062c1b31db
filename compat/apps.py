from __future__ import annotations

from django.apps import AppConfig


class CompatConfig(AppConfig):
    """Foreign wire formats laid over Assay's services: the MLflow REST API (docs/mlflow.md)."""

    name = "compat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from compat.wire import refusal_response
        from core.http import register_error_dialect

        # Refusals before a view under /mlflow/ (unknown paths, bodies over the limit, NUL in
        # a parameter, malformed requests) answer MLflow's JSON, which its client parses.
        register_error_dialect("/mlflow/", refusal_response)
