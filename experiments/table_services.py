"""Writes of a user's runs-table layout (issue 20): the columns chosen and pinned, the runs
pinned to the top. Each user has one layout per project (``RunsTableLayout``); anyone who may
see the project may keep their own."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Project, User
from core.errors import Invalid, NotFound
from experiments.models import ProjectKey, Run, RunsTableLayout

MAX_COLUMNS = 40
MAX_PINNED_COLUMNS = 8
MAX_PINNED_RUNS = 20
MAX_COLUMN_NAME = 260
# How a column is written (``config.optimizer.lr``), as in the query language; the kind it names.
COLUMN_PREFIXES: dict[str, str] = {
    "metrics.": ProjectKey.Kind.METRIC,
    "params.": ProjectKey.Kind.PARAM,
    "config.": ProjectKey.Kind.CONFIG,
    "tags.": ProjectKey.Kind.TAG,
}


def column_parts(name: str) -> tuple[str, str] | None:
    """``"metrics.val/acc"`` → ``("metric", "val/acc")``; None for anything else."""
    if not isinstance(name, str) or len(name) > MAX_COLUMN_NAME:
        return None
    for prefix, kind in COLUMN_PREFIXES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return str(kind), name[len(prefix) :]
    return None


def _names(raw: object, field: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise Invalid(f"{field} is a list of column names.", field=field)
    return list(dict.fromkeys(n.strip() for n in raw if n.strip()))


def _locked_layout(user: User, project: Project) -> RunsTableLayout:
    RunsTableLayout.objects.get_or_create(project=project, user=user)
    return RunsTableLayout.objects.select_for_update().get(project=project, user=user)


@transaction.atomic
def table_columns_set(*, user: User, project: Project, columns: object, pinned: object = ()) -> RunsTableLayout:
    """Keep ``columns`` (in order) as ``user``'s columns of ``project``, ``pinned`` (a subset)
    pinned to the left. Every name must be ``metrics.|params.|config.|tags.<key>`` of a key
    some run of the project logged. A refused change writes nothing."""
    names = _names(columns, "columns")
    pinned_names = _names(list(pinned) if isinstance(pinned, tuple) else pinned, "pinned")
    if len(names) > MAX_COLUMNS:
        raise Invalid(f"At most {MAX_COLUMNS} columns, not {len(names)}.", field="columns")
    parts: list[tuple[str, str]] = []
    for name in names:
        part = column_parts(name)
        if part is None:
            raise Invalid(
                f"Unknown column {name[:100]!r}: columns are metrics.<key>, params.<key>, config.<key> or tags.<key>.",
                field="columns",
            )
        parts.append(part)
    known = _known(project, parts)
    for name, part in zip(names, parts, strict=True):
        if part not in known:
            raise Invalid(f"Unknown column {name[:100]!r}: no run of this project logged it.", field="columns")
    for name in pinned_names:
        if name not in names:
            raise Invalid(f"Cannot pin {name[:100]!r}: it is not one of the chosen columns.", field="pinned")
    if len(pinned_names) > MAX_PINNED_COLUMNS:
        raise Invalid(f"At most {MAX_PINNED_COLUMNS} pinned columns.", field="pinned")
    layout = _locked_layout(user, project)
    layout.columns = names
    # Pinned columns keep the order of the chosen ones.
    layout.pinned_columns = [n for n in names if n in pinned_names]
    layout.save(update_fields=["columns", "pinned_columns", "updated_at"])
    return layout


@transaction.atomic
def table_columns_reset(*, user: User, project: Project) -> RunsTableLayout:
    """Back to the project's default columns (the keys its runs log most)."""
    layout = _locked_layout(user, project)
    layout.columns = None
    layout.pinned_columns = []
    layout.save(update_fields=["columns", "pinned_columns", "updated_at"])
    return layout


@transaction.atomic
def table_run_pin(*, user: User, project: Project, run: Run, pinned: object) -> RunsTableLayout:
    """Pin ``run`` to the top of ``user``'s runs table of ``project`` (the newest pin first),
    or unpin it (``pinned`` True or False). The caller has checked that ``user`` may see ``run``."""
    if run.project_id != project.pk:
        raise NotFound("Not found.")
    if not isinstance(pinned, bool):
        raise Invalid("pinned is 1 (pin) or 0 (unpin).", field="pinned")
    layout = _locked_layout(user, project)
    ids = [run_id for run_id in layout.pinned_runs if run_id != run.pk]
    if pinned:
        if len(ids) >= MAX_PINNED_RUNS:
            raise Invalid(f"At most {MAX_PINNED_RUNS} pinned runs: unpin one first.", field="run")
        ids.insert(0, run.pk)
    layout.pinned_runs = ids
    layout.save(update_fields=["pinned_runs", "updated_at"])
    return layout


def _known(project: Project, parts: list[tuple[str, str]]) -> set[tuple[str, str]]:
    # One query for every key, however many the project has.
    if not parts:
        return set()
    keys = ProjectKey.objects.filter(project=project, key__in={key for _, key in parts})
    return {(kind, key) for kind, key in keys.values_list("kind", "key") if (kind, key) in set(parts)}
