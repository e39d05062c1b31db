"""The permission policy (accounts/access.py): roles, grants, can(), require() and the
querysets narrowed to what a user may see."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts import access
from accounts.models import Membership, Project, ProjectRole, Team, User
from accounts.services import team_create, team_member_add
from core.errors import Forbidden, NotFound
from experiments import selectors
from experiments.models import Run
from tests.factories import ProjectFactory, ProjectGrantFactory, RunFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_team_owner_is_admin_on_the_teams_projects(owner: User, project: Project) -> None:
    assert access.role_on(owner, project) == ProjectRole.ADMIN


def test_team_member_is_writer_on_the_teams_projects(member: User, project: Project) -> None:
    assert access.role_on(member, project) == ProjectRole.WRITER


def test_outsider_has_no_role(outsider: User, project: Project) -> None:
    assert access.role_on(outsider, project) is None


def test_site_staff_is_admin_everywhere(staff: User, project: Project) -> None:
    assert access.role_on(staff, project) == ProjectRole.ADMIN


def test_inactive_user_has_no_role_even_as_team_owner(owner: User, project: Project) -> None:
    owner.is_active = False
    owner.save()

    assert access.role_on(owner, project) is None
    assert not access.can(owner, "project.view", project)


def test_inactive_staff_has_no_role(staff: User, project: Project) -> None:
    staff.is_active = False
    staff.save()

    assert access.role_on(staff, project) is None


@pytest.mark.parametrize("anonymous", [None, AnonymousUser()], ids=["none", "anonymous-user"])
def test_anonymous_has_no_role_and_sees_nothing(anonymous: AnonymousUser | None, project: Project) -> None:
    assert access.role_on(anonymous, project) is None
    assert not access.can(anonymous, "project.view", project)
    assert list(access.visible_projects(anonymous)) == []


def test_user_grant_gives_its_role(viewer: User, project: Project) -> None:
    assert access.role_on(viewer, project) == ProjectRole.VIEWER


def test_team_grant_gives_its_role_to_every_member_of_that_team(project: Project) -> None:
    # given a second team granted maintainer on acme/proj
    lead = UserFactory.create(username="lead")
    analyst = UserFactory.create(username="analyst")
    partners = team_create(name="partners", owner=lead)
    team_member_add(team=partners, user=analyst)
    ProjectGrantFactory.create(project=project, user=None, team=partners, role=ProjectRole.MAINTAINER)

    # then both its owner and its plain member are maintainers there
    assert access.role_on(lead, project) == ProjectRole.MAINTAINER
    assert access.role_on(analyst, project) == ProjectRole.MAINTAINER


def test_a_grant_on_one_project_gives_nothing_on_another(viewer: User, team: Team) -> None:
    other = ProjectFactory.create(team=team, name="other")

    assert access.role_on(viewer, other) is None


def test_the_highest_of_membership_and_grants_wins(member: User, project: Project) -> None:
    ProjectGrantFactory.create(project=project, user=member, role=ProjectRole.ADMIN)

    assert access.role_on(member, project) == ProjectRole.ADMIN


def test_a_lower_grant_does_not_lower_a_team_role(owner: User, project: Project) -> None:
    ProjectGrantFactory.create(project=project, user=owner, role=ProjectRole.VIEWER)

    assert access.role_on(owner, project) == ProjectRole.ADMIN


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (
            ProjectRole.VIEWER,
            {"project.view", "run.view", "model.view", "artifact.view", "review.view", "report.view", "alert.view"},
        ),
        (
            ProjectRole.WRITER,
            {"project.view", "run.view", "run.create", "run.update", "run.log", "experiment.create", "model.view"}
            | {"artifact.view", "artifact.upload", "review.view", "review.create", "review.comment"}
            | {"experiment.update", "run.delete", "run.import"}
            | {"report.view", "report.edit", "alert.view"},
        ),
        (
            ProjectRole.MAINTAINER,
            {"project.view", "run.view", "run.create", "run.update", "run.log", "experiment.create", "model.register"}
            | {"model.view", "model.create", "model.update", "alias.move", "artifact.view", "artifact.upload"}
            | {"review.view", "review.create", "review.comment", "review.merge"}
            | {"experiment.update", "experiment.delete", "run.delete", "run.import", "model.import"}
            | {"report.view", "report.edit", "report.delete", "alert.view"},
        ),
        (ProjectRole.ADMIN, set(access.ACTIONS)),
    ],
)
def test_can_allows_exactly_the_actions_of_the_role(role: ProjectRole, allowed: set[str], project: Project) -> None:
    user = UserFactory.create()
    ProjectGrantFactory.create(project=project, user=user, role=role)

    permitted = {action for action in access.ACTIONS if access.can(user, action, project)}

    assert permitted == allowed


def test_can_refuses_everything_to_an_outsider(outsider: User, project: Project) -> None:
    assert not any(access.can(outsider, action, project) for action in access.ACTIONS)


def test_can_with_an_unknown_action_is_a_programming_error(owner: User, project: Project) -> None:
    with pytest.raises(KeyError):
        access.can(owner, "run.delete_everything", project)


def test_require_raises_not_found_for_an_invisible_project(outsider: User, project: Project) -> None:
    with pytest.raises(NotFound):
        access.require(outsider, "project.view", project)


def test_require_raises_forbidden_when_the_role_is_too_low(viewer: User, project: Project) -> None:
    with pytest.raises(Forbidden):
        access.require(viewer, "run.log", project)
    access.require(viewer, "run.view", project)  # and allows what the role covers


def test_visible_projects_lists_exactly_the_projects_each_user_may_see(
    owner: User, member: User, outsider: User, viewer: User, staff: User, project: Project
) -> None:
    # given projects in acme, in the outsider's personal team and in a third team
    acme_second = ProjectFactory.create(team=project.team, name="second")
    outsiders_own = ProjectFactory.create(team=outsider.personal_team, name="mine")
    elsewhere = ProjectFactory.create(name="elsewhere")
    granted_team = team_create(name="guests", owner=UserFactory.create(username="guest-lead"))
    guest = UserFactory.create(username="guest")
    team_member_add(team=granted_team, user=guest)
    ProjectGrantFactory.create(project=elsewhere, user=None, team=granted_team, role=ProjectRole.VIEWER)

    def visible(user: User) -> set[str]:
        return {p.path for p in access.visible_projects(user)}

    assert visible(owner) == {project.path, acme_second.path}
    assert visible(member) == {project.path, acme_second.path}
    assert visible(outsider) == {outsiders_own.path}
    assert visible(viewer) == {project.path}
    assert visible(guest) == {elsewhere.path}
    assert visible(staff) == {project.path, acme_second.path, outsiders_own.path, elsewhere.path}


def test_project_filter_with_a_minimum_role_leaves_out_lower_roles(
    owner: User, member: User, viewer: User, project: Project
) -> None:
    def writable(user: User) -> list[Project]:
        return list(Project.objects.filter(access.project_filter(user, minimum=ProjectRole.WRITER)).distinct())

    def administrable(user: User) -> list[Project]:
        return list(Project.objects.filter(access.project_filter(user, minimum=ProjectRole.ADMIN)).distinct())

    assert writable(owner) == [project]
    assert writable(member) == [project]
    assert writable(viewer) == []
    assert administrable(owner) == [project]
    assert administrable(member) == []


def test_visible_projects_lists_each_project_once(owner: User, project: Project) -> None:
    # given a team with several members that is also granted the project
    for _ in range(3):
        team_member_add(team=project.team, user=UserFactory.create())
    ProjectGrantFactory.create(project=project, user=None, team=project.team, role=ProjectRole.VIEWER)
    ProjectGrantFactory.create(project=project, user=owner, role=ProjectRole.MAINTAINER)

    assert list(access.visible_projects(owner)) == [project]


def test_runs_visible_to_lists_each_visible_run_once(viewer: User, outsider: User, run: Run) -> None:
    # given the project's team has several members, and the viewer sees it through a grant
    for _ in range(3):
        team_member_add(team=run.project.team, user=UserFactory.create())
    RunFactory.create()  # a run in a project nobody here can see

    assert list(selectors.runs_visible_to(viewer)) == [run]
    assert list(selectors.runs_visible_to(outsider)) == []


def test_can_create_project_only_as_team_member_or_staff(
    owner: User, member: User, viewer: User, outsider: User, staff: User, team: Team
) -> None:
    assert access.can_create_project(owner, team)
    assert access.can_create_project(member, team)
    assert access.can_create_project(staff, team)
    assert not access.can_create_project(viewer, team)
    assert not access.can_create_project(outsider, team)
    assert not access.can_create_project(AnonymousUser(), team)


def test_can_see_team_through_membership_or_a_grant_only(
    member: User, viewer: User, outsider: User, team: Team
) -> None:
    assert access.can_see_team(member, team)
    assert access.can_see_team(viewer, team)
    assert not access.can_see_team(outsider, team)


def test_every_new_user_owns_a_personal_team_named_after_them() -> None:
    user = UserFactory.create(username="Ana")

    team = Team.objects.get(personal_owner=user)
    assert team.name == "ana"
    assert Membership.objects.get(team=team, user=user).role == Membership.Role.OWNER


def test_signal_does_not_create_a_second_personal_team_on_save() -> None:
    user = UserFactory.create(username="bo")
    user.first_name = "Bo"
    user.save()

    assert Team.objects.filter(personal_owner=user).count() == 1
