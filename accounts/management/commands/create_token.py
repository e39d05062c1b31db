from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ApiToken, User
from accounts.services import token_create
from core.errors import DomainError


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME and print it once (it is stored hashed). "
        "--scope scim makes the token an identity provider's SCIM client uses (/scim/v2/ only; "
        "USERNAME must be a site administrator)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="a label to tell tokens apart")
        parser.add_argument("--scope", default=ApiToken.Scope.WRITE, choices=ApiToken.Scope.values)

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username__iexact=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        try:
            issued = token_create(user=user, name=options["name"], scope=options["scope"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(issued.raw)
