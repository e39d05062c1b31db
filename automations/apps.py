from __future__ import annotations

from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "automations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lazy by necessity (they import models): the domain events of registry, reviews and
        # experiments reach the webhooks by this registration (core.domain_events), and the
        # delivery task is registered under the name the services queue it by.
        # Metric batches reach the alert rules the same way (core.domain_events.subscribe_batches).
        from automations import alerts, services, tasks  # noqa: F401
        from core import domain_events

        domain_events.subscribe(services.on_domain_event)
        domain_events.subscribe_batches(alerts.on_batch)
