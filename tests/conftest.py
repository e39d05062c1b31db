"""Fixtures for every access rule: a team ``acme`` owned by ``owner`` with ``member`` in it,
a project ``acme/proj`` with one run, an ``outsider`` who belongs to nothing of it, and a
``viewer`` who holds only a viewer grant on the project. Clients authenticate with real
bearer tokens, issued by ``accounts.services.token_create``."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.contrib.staticfiles import handlers as staticfiles_handlers
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.db.backends.postgresql.operations import DatabaseOperations as PostgresOperations
from rest_framework.test import APIClient
from whitenoise.base import WhiteNoise, scantree

from accounts.models import Project, ProjectRole, Team, User
from accounts.services import team_create, team_member_add, token_create
from experiments.models import Experiment, Run
from frontend.static_files import collect_if_changed
from tests.db_template import migrated_template
from tests.factories import ExperimentFactory, ProjectFactory, ProjectGrantFactory, RunFactory, UserFactory

ClientFor = Callable[[User | None], APIClient]


class _ThroughWhiteNoise(StaticFilesHandler):
    """pytest-django's live_server would answer /static/ from the finders, which know no
    hashed name: let the request reach WhiteNoise, as in production."""

    def _should_handle(self, path: str) -> bool:
        return False


# WhiteNoise's table of STATIC_ROOT's files (url -> StaticFile with its headers), by everything
# that decides it; see _scan_static_root_once.
_static_tables: dict[tuple[Any, ...], dict[str, Any]] = {}
_scan_static_root = WhiteNoise.update_files_dictionary


def _scan_static_root_once(self: WhiteNoise, root: str, prefix: str) -> None:
    """WhiteNoise's own scan of ``root``, done once per distinct input in this process.

    Django's test clients build a new handler, hence a new WhiteNoiseMiddleware, for every
    client, and the middleware scans STATIC_ROOT when built: ~570 files (hashed names and
    their .gz/.br copies) took ~80 ms a client, most of a short test's time. A server
    process builds it once; here the table is reused while its inputs are the same: the
    middleware's settings, the static storage's and every file's name, size and mtime."""
    stat_cache = dict(scantree(root))
    key = (
        type(self),
        root,
        prefix,
        self.max_age,
        self.allow_all_origins,
        self.charset,
        self.add_headers_function,
        self.index_file,
        tuple(sorted(self.media_types.types_map.items())),
        self.__dict__.get("immutable_file_test"),
        getattr(self, "static_prefix", None),
        settings.STATIC_URL,
        repr(settings.STORAGES),
        tuple(sorted((path, stat.st_size, stat.st_mtime_ns) for path, stat in stat_cache.items())),
    )
    table = _static_tables.get(key)
    if table is None:
        kept, self.files = self.files, {}
        try:
            _scan_static_root(self, root, prefix)
            table = self.files
        finally:
            self.files = kept
        _static_tables[key] = table
    self.files.update(table)


_truncate_tables = PostgresOperations.sql_flush


def _delete_rows(
    self: PostgresOperations, style: Any, tables: Any, *, reset_sequences: bool = False, allow_cascade: bool = False
) -> list[str]:
    """What a transactional test's flush runs: DELETE FROM each table instead of one TRUNCATE.

    The end state is the same, empty tables (sequences are not reset by either), but TRUNCATE
    makes new files for every table, index and TOAST table (~490 relations here): ~0.75 s a
    flush on this machine against ~0.05 s for DELETEs of the few rows a test leaves. Django's
    foreign keys are DEFERRABLE INITIALLY DEFERRED, so the order of the DELETEs, all in the
    flush's one transaction, does not matter. A flush that resets sequences or cascades to
    tables outside the list (``available_apps``) keeps Django's TRUNCATE."""
    if reset_sequences or allow_cascade or not tables:
        return _truncate_tables(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    delete_from = f"{style.SQL_KEYWORD('DELETE')} {style.SQL_KEYWORD('FROM')}"
    return ["SET CONSTRAINTS ALL DEFERRED;"] + [
        f"{delete_from} {style.SQL_FIELD(self.quote_name(table))};" for table in tables
    ]


@pytest.fixture(autouse=True, scope="session")
def _flush_by_delete() -> None:
    PostgresOperations.sql_flush = _delete_rows  # type: ignore[method-assign,assignment]


@pytest.fixture(autouse=True, scope="session")
def _static_files() -> None:
    # Pages link hashed names from the manifest (config/settings.py, STORAGES): collect first,
    # once for every worker and run (only again when a source changed).
    collect_if_changed()
    staticfiles_handlers.StaticFilesHandler = _ThroughWhiteNoise  # type: ignore[misc]
    WhiteNoise.update_files_dictionary = _scan_static_root_once


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, django_db_use_migrations: bool
) -> None:
    # Each worker's test database is a copy of the migrated template (tests/db_template.py),
    # not migrated again from zero; Django's own migrate then finds nothing to apply.
    # (config/settings_test.py sets DATABASE_URL when the environment does not.) With
    # --no-migrations Django creates the tables itself, so it needs an empty database.
    if django_db_use_migrations:
        settings.DATABASES["default"].setdefault("TEST", {})["TEMPLATE"] = migrated_template(os.environ["DATABASE_URL"])


@pytest.fixture
def client_for(db) -> ClientFor:
    """An APIClient carrying a fresh bearer token of ``user`` (anonymous for None)."""

    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION="Bearer " + token_create(user=user, name="tests").raw)
        return client

    return make


@pytest.fixture
def owner(db) -> User:
    return UserFactory.create(username="owner")


@pytest.fixture
def member(db) -> User:
    return UserFactory.create(username="member")


@pytest.fixture
def outsider(db) -> User:
    return UserFactory.create(username="outsider")


@pytest.fixture
def staff(db) -> User:
    return UserFactory.create(username="staffer", is_staff=True)


@pytest.fixture
def team(owner: User, member: User) -> Team:
    team = team_create(name="acme", owner=owner)
    team_member_add(team=team, user=member)
    return team


@pytest.fixture
def project(team: Team, owner: User) -> Project:
    return ProjectFactory.create(team=team, name="proj", created_by=owner)


@pytest.fixture
def experiment(project: Project) -> Experiment:
    return ExperimentFactory.create(project=project, name="default")


@pytest.fixture
def run(project: Project, experiment: Experiment, owner: User) -> Run:
    return RunFactory.create(project=project, experiment=experiment, author=owner, name="first-run")


@pytest.fixture
def viewer(project: Project) -> User:
    """A user outside the team who holds a viewer grant on ``acme/proj`` only."""
    user = UserFactory.create(username="viewer")
    ProjectGrantFactory.create(project=project, user=user, role=ProjectRole.VIEWER)
    return user


@pytest.fixture
def owner_client(client_for: ClientFor, owner: User) -> APIClient:
    return client_for(owner)


@pytest.fixture
def member_client(client_for: ClientFor, member: User) -> APIClient:
    return client_for(member)


@pytest.fixture
def outsider_client(client_for: ClientFor, outsider: User) -> APIClient:
    return client_for(outsider)


@pytest.fixture
def viewer_client(client_for: ClientFor, viewer: User) -> APIClient:
    return client_for(viewer)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()
