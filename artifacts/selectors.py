"""Reads shared by the API and the pages; the caller has loaded the run through its access check."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from artifacts.models import Artifact
from experiments.models import Run


def artifacts_of(run: Run, *, path: str | None = None) -> QuerySet[Artifact]:
    """A run's artifacts in path order; with ``path``, that file or the files under that folder."""
    qs = Artifact.objects.filter(run=run).select_related("blob").order_by("path")
    if path:
        qs = qs.filter(Q(path=path) | Q(path__startswith=path + "/"))
    return qs
