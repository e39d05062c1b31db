"""factory_boy factories for the server tests. Users get their personal team from the
post_save signal, exactly as in production."""

from __future__ import annotations

from django.utils import timezone
from factory.declarations import LazyAttribute, LazyFunction, SelfAttribute, Sequence, SubFactory
from factory.django import DjangoModelFactory, Password

from accounts.models import Membership, Project, ProjectGrant, ProjectRole, Team, User
from experiments.models import Experiment, Run

PASSWORD = "correct-horse-battery-staple"


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User

    username = Sequence(lambda n: f"user{n}")
    email = LazyAttribute(lambda user: f"{user.username}@example.com")
    password = Password(PASSWORD)


class TeamFactory(DjangoModelFactory[Team]):
    class Meta:
        model = Team

    name = Sequence(lambda n: f"team{n}")
    display_name = LazyAttribute(lambda team: team.name.title())


class MembershipFactory(DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    team = SubFactory(TeamFactory)
    user = SubFactory(UserFactory)
    role = Membership.Role.MEMBER


class ProjectFactory(DjangoModelFactory[Project]):
    class Meta:
        model = Project

    team = SubFactory(TeamFactory)
    name = Sequence(lambda n: f"project{n}")


class ExperimentFactory(DjangoModelFactory[Experiment]):
    class Meta:
        model = Experiment

    project = SubFactory(ProjectFactory)
    name = "default"


class RunFactory(DjangoModelFactory[Run]):
    class Meta:
        model = Run

    project = SubFactory(ProjectFactory)
    experiment = SubFactory(ExperimentFactory, project=SelfAttribute("..project"))
    name = Sequence(lambda n: f"run-{n}")
    author = SubFactory(UserFactory)
    start_time = LazyFunction(timezone.now)


class ProjectGrantFactory(DjangoModelFactory[ProjectGrant]):
    class Meta:
        model = ProjectGrant

    project = SubFactory(ProjectFactory)
    user = SubFactory(UserFactory)
    team = None
    role = ProjectRole.VIEWER
