from __future__ import annotations

from django.apps import AppConfig


class CompatConfig(AppConfig):
    """Foreign wire formats laid over Assay's services: the MLflow REST API (docs/mlflow.md)."""

    name = "compat"
    default_auto_field = "django.db.models.BigAutoField"
