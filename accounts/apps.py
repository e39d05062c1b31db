from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    # Not "Accounts": allauth's app (e-mail addresses) has that title in the admin already.
    verbose_name = "Users, teams and projects"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported when the app registry is ready (models can be imported): registers the
        # signal receivers, the schema extension and the live topics.
        from accounts import live, schema, signals  # noqa: F401

        live.register()
