"""Querysets compiled to SQL once per process, for the few queries every API request runs.

Compiling a queryset with joins (``select_related``) and subqueries costs more CPU than
PostgreSQL spends answering it (about 1-2 ms against 0.1-0.3 ms here): the token lookup
and the run-with-role lookup of ``POST /api/v1/runs/{id}/log/`` were a third of its
server CPU. A :class:`CompiledQuery` builds the queryset once with placeholder values,
keeps Django's compiled SQL and the row layout, and afterwards only binds the real
values, runs the SQL and builds the instances the way ``QuerySet`` iteration does
(``select_related`` objects, annotations, the fields' ``from_db_value`` converters).

Rules for the ``build`` function: the queryset's shape must not depend on the values (a
query whose shape varies is two CompiledQuery objects), and it uses each value only in
exact lookups (``field=value``), so that the compiled parameters hold the placeholder
unchanged. A placeholder missing from the compiled parameters is a ``ValueError`` when
the query is first compiled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators

M = TypeVar("M", bound=Model)


def prepared_cursor(connection: BaseDatabaseWrapper) -> CursorWrapper:
    """A cursor whose statements PostgreSQL may keep prepared, for the few statements every
    log call runs: Django's cursors bind values on the client (the SQL text differs at each
    call, so the server parses and plans each one again). This one binds on the server, and
    psycopg prepares a statement on its connection after ``prepare_threshold`` runs (settings:
    ``ASSAY_DB_PREPARE``); pooled connections keep them. Same wrapper as
    ``connection.cursor()`` (errors, query logging); on other databases it is that cursor.

    Only for SQL that server-side binding accepts: plain ``%s`` values whose types the
    server can infer (the ORM's SQL for exact lookups, and the log statements)."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = ServerBindingCursor(connection.connection)  # type: ignore[call-arg]  # psycopg's Cursor(connection)
    cursor: CursorWrapper = connection._prepare_cursor(raw)  # type: ignore[attr-defined]  # as connection.cursor() does
    return cursor


@dataclass(frozen=True)
class _Plan:
    sql: str
    # For each compiled parameter: the index of the caller's value, or -1 for a constant.
    slots: tuple[int, ...]
    constants: tuple[Any, ...]
    model: type[Model]
    db: str
    init_list: tuple[str, ...]
    model_start: int
    model_end: int
    related_populators: tuple[Any, ...]
    annotations: tuple[tuple[str, int], ...]
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]


class CompiledQuery(Generic[M]):
    """``build(*values)`` -> QuerySet, compiled once per database alias and vendor.

    ``placeholders``: one value per argument of ``build``, of the right type and never
    equal to a real one (e.g. a negative primary key, a string no id can be)."""

    def __init__(self, model: type[M], build: Callable[..., QuerySet[M]], placeholders: Sequence[Any]) -> None:
        self._model = model
        self._build = build
        self._placeholders = tuple(placeholders)
        self._plans: dict[Hashable, _Plan] = {}
        self._lock = threading.Lock()

    def _plan(self) -> _Plan:
        db = router.db_for_read(self._model)
        key = (db, connections[db].vendor)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        queryset = self._build(*self._placeholders).using(db)
        compiler = queryset.query.get_compiler(using=db)
        sql, params = compiler.as_sql()
        slots: list[int] = []
        for param in params:
            matches = [i for i, p in enumerate(self._placeholders) if type(p) is type(param) and p == param]
            slots.append(matches[0] if matches else -1)
        missing = set(range(len(self._placeholders))) - set(slots)
        if missing:
            raise ValueError(
                f"CompiledQuery: placeholder(s) {sorted(missing)} not found as-is in the compiled parameters; "
                "use each value only in exact lookups."
            )
        select, klass_info = compiler.select, compiler.klass_info
        assert klass_info is not None
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        converters = compiler.get_converters([s[0] for s in select[0 : compiler.col_count]])
        plan = _Plan(
            sql=sql,
            slots=tuple(slots),
            constants=tuple(params),
            model=klass_info["model"],
            db=db,
            init_list=tuple(f[0].target.attname for f in select[start:end]),
            model_start=start,
            model_end=end,
            related_populators=tuple(get_related_populators(klass_info, select, db)),  # type: ignore[call-arg]
            annotations=tuple((compiler.annotation_col_map or {}).items()),
            converters=tuple((pos, tuple(convs), expr) for pos, (convs, expr) in sorted(converters.items())),
        )
        with self._lock:
            self._plans[key] = plan
        return plan

    def first(self, *values: Any) -> M | None:
        """The first row as an instance (with its select_related objects and annotations),
        or None."""
        if len(values) != len(self._placeholders):
            raise TypeError(f"expected {len(self._placeholders)} values, got {len(values)}")
        plan = self._plan()
        params = [values[s] if s >= 0 else c for s, c in zip(plan.slots, plan.constants, strict=True)]
        connection = connections[plan.db]
        with prepared_cursor(connection) as cursor:
            cursor.execute(plan.sql, params)
            raw = cursor.fetchone()
        if raw is None:
            return None
        row = list(raw)
        for pos, convs, expression in plan.converters:
            value = row[pos]
            for converter in convs:
                value = converter(value, expression, connection)
            row[pos] = value
        obj = plan.model.from_db(plan.db, list(plan.init_list), row[plan.model_start : plan.model_end])
        for populator in plan.related_populators:
            populator.populate(row, obj)
        for name, pos in plan.annotations:
            setattr(obj, name, row[pos])
        return obj  # type: ignore[return-value]
