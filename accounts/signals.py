from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import User
from accounts.services import personal_team_ensure


@receiver(post_save, sender=User)
def _personal_team_on_create(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    # A signal, not only a service, because createsuperuser and the admin create users too.
    if created and not kwargs.get("raw"):
        personal_team_ensure(user=instance)
