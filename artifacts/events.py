"""Live events of the artifacts app: published after commit (live.publish), with the REST
output's shapes.

* ``run:<id>``: ``artifact.processed`` (the artifact, as in its list, with its run's id)
  when processing made it ready or gave up on it.

The same moment is the domain event ``artifact.processed`` (core.domain_events: webhooks),
emitted in the transaction that wrote the final status.
"""

from __future__ import annotations

from typing import Any

from artifacts.models import Artifact
from artifacts.presenters import artifact_out
from core import domain_events
from live.publish import publish_lazy_on_commit
from live.topics import run_topic


def artifact_processed(artifact_id: str) -> None:
    def build() -> dict[str, Any] | None:
        artifact = Artifact.objects.filter(pk=artifact_id).first()
        if artifact is None:
            return None
        out = artifact_out(artifact)
        out["run"] = artifact.run_id
        return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in out.items()}

    row = Artifact.objects.filter(pk=artifact_id).values_list("run_id", "project_id").first()
    if row is not None:
        publish_lazy_on_commit(topics=[run_topic(row[0])], event="artifact.processed", build=build)
        artifact_finished(artifact_id, project_id=row[1])


def artifact_finished(artifact_id: str, *, project_id: str) -> None:
    """The domain event: ``artifact`` is ready or failed for good (inside the transaction)."""
    domain_events.emit(
        domain_events.DomainEvent(
            type="artifact.processed", project_id=project_id, actor=None, data={"artifact": artifact_id}
        )
    )
